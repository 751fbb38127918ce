"""Run sampling jobs to files: one PDB per sample, a FASTA, a summary, a gallery; resumable.

Samples are drawn in chunks of one length; chunk ``c`` of length ``L`` uses a
generator seeded by ``(seed, L, c)``, so the same seed and batch size give the
same files, and a rerun skips chunks whose PDB files and records all exist
(files are written atomically, the record after its PDB).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from multiflow_gm.atomic_files import atomic_write_text
from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.coordinates import backbone_atoms_angstrom
from multiflow_gm.protein.sampling import SamplingConfig, sample_batch
from multiflow_gm.protein.pdb_writer import write_backbone_pdb
from multiflow_gm.protein.seeding import seed_from


@dataclass
class SampleJob:
    lengths: list[int]
    num: int
    out: Path
    mode: str = "codesign"
    seed: int = 0
    batch_size: int = 8
    sequence: str | None = None
    backbone: tuple[torch.Tensor, torch.Tensor] | None = None
    device: str = "cpu"


def _chunk_generator(seed: int, length: int, chunk: int, device) -> torch.Generator:
    return seeded_generator(seed_from(seed, length, chunk), device=device)


def sample_name(length: int, index: int) -> str:
    return f"len{length}_{index:03d}"


def _describe(atoms: np.ndarray, sequence: str) -> dict:
    ca = atoms[:, 1]
    gaps = np.linalg.norm(ca[1:] - ca[:-1], axis=-1)
    return {"length": len(sequence), "sequence": sequence, "ca_ca_mean": float(gaps.mean()),
            "ca_ca_std": float(gaps.std()), "ca_ca_outside_3.6_4.0": float(((gaps < 3.6) | (gaps > 4.0)).mean())}


def run_sampling(network, process, cfg: SamplingConfig, job: SampleJob, progress: bool = True,
                 log=print) -> dict:
    """Draw every requested sample not yet on disk; returns the run summary (also saved as JSON).

    Each sample's record (``records/<name>.json``) keeps its CA trace at full precision, so a
    gallery draws from the sampler's own arrays (:func:`sample_traces`), not from the PDB text.
    """
    from tqdm import tqdm

    pdb_dir = job.out / "samples"
    pdb_dir.mkdir(parents=True, exist_ok=True)
    records_path = job.out / "records"
    records_path.mkdir(exist_ok=True)
    network.eval()
    start, drawn = time.perf_counter(), 0
    for length in job.lengths:
        for chunk, first in enumerate(range(0, job.num, job.batch_size)):
            names = [sample_name(length, i) for i in range(first, min(first + job.batch_size, job.num))]
            # A sample's record is written after its PDB, so a chunk is done only when every
            # record exists: a run killed between the two redraws the chunk (same seed, same files).
            if all((records_path / f"{n}.json").is_file() and (pdb_dir / f"{n}.pdb").is_file() for n in names):
                continue
            seq_tensor = None
            if job.sequence is not None:
                seq_tensor = torch.tensor(alphabet.sequence_to_indices(job.sequence), dtype=torch.long)
            bar = (lambda r, d=f"L={length} chunk {chunk}": tqdm(r, desc=d, leave=False)) if progress else None
            t0 = time.perf_counter()
            out = sample_batch(network, process, cfg, len(names), length, job.mode, sequence=seq_tensor,
                               backbone=job.backbone, device=job.device, progress=bar,
                               generator=_chunk_generator(job.seed, length, chunk, job.device))
            seconds = (time.perf_counter() - t0) / len(names)
            atoms = backbone_atoms_angstrom(out.rotations, out.translations,
                                            nm_per_angstrom=process.cfg.translation_scale,
                                            dtype=torch.float64).float().cpu()
            for i, name in enumerate(names):
                sequence = alphabet.indices_to_sequence(out.aatype[i].tolist())
                write_backbone_pdb(pdb_dir / f"{name}.pdb", atoms[i].numpy(), sequence)
                record = _describe(atoms[i].numpy(), sequence) | {"name": name, "seconds": seconds,
                                                                  "ca": atoms[i, :, 1].tolist()}
                atomic_write_text(records_path / f"{name}.json", json.dumps(record))
                log(f"{name}: {length} res, CA-CA {record['ca_ca_mean']:.2f}±{record['ca_ca_std']:.2f} A, "
                    f"{seconds:.1f} s, {sequence[:40]}{'...' if length > 40 else ''}")
                drawn += 1
    return _finish(job, drawn, time.perf_counter() - start)


def sample_traces(out: Path) -> list[tuple[str, np.ndarray]] | None:
    """``(name, CA [L, 3] in Angstrom)`` of every sample recorded in ``out``, by name; None when
    a record predates the CA field (a run resumed from an older version)."""
    traces = []
    for path in sorted((Path(out) / "records").glob("*.json")):
        record = json.loads(path.read_text())
        if "ca" not in record:
            return None
        traces.append((record["name"], np.asarray(record["ca"], dtype=np.float64)))
    return traces


def _finish(job: SampleJob, drawn: int, seconds: float) -> dict:
    records = [json.loads(p.read_text()) for p in sorted((job.out / "records").glob("*.json"))]
    fasta = "".join(f">{r['name']}\n{r['sequence']}\n" for r in records)
    atomic_write_text(job.out / "samples.fasta", fasta)
    summary = {"mode": job.mode, "samples": len(records), "drawn_this_run": drawn, "seconds_this_run": seconds,
               "mean_ca_ca": float(np.mean([r["ca_ca_mean"] for r in records])) if records else None,
               "lengths": sorted({r["length"] for r in records})}
    atomic_write_text(job.out / "summary.json", json.dumps(summary, indent=2))
    return summary
