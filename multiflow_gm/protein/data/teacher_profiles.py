"""Teacher profiles: ProteinMPNN's residue-type distribution for every residue of a cache's chains.

A native sequence gives one label per residue; ProteinMPNN's distribution given the
backbone alone gives twenty numbers per residue, which tell a student decoder which
other residue types the backbone also admits. Training the sequence decoder against
them (knowledge distillation, Hinton et al. 2015) transfers more per residue than the
native label does. This module writes, for each usable chain::

    profiles/<name>.npz    np.savez_compressed, no pickle:
                           log_probs float16 [L, 20]  log-probabilities in the file alphabet's order
                           settings  str              JSON of ProfileSettings
                           sequence  str              the native sequence (a changed chain is redone)
    profiles_summary.json  what the last run did, with the skipped chains and reasons
                           (profiles_summary_shardK-of-N.json for a run with --shard K/N)

Chains are visited in a seeded random order and each file is written atomically right after
its batch, so a run stopped early leaves a random subset, and a rerun resumes.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from multiflow_gm.atomic_files import atomic_write_bytes
from multiflow_gm.errors import UserError
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.data import cache as cache_layout
from multiflow_gm.protein.data.cache import ChainCache, ChainRecord
from multiflow_gm.protein.data.distill import (AATYPE_TO_MPNN, plan_batches, require_mpnn, select_records,
                                              skipped_summary, usable_chains)

PROFILES_DIR = "profiles"
SUMMARY_FILE = "profiles_summary.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ProfileSettings:
    """What a set of profiles depends on; a rerun with other settings redoes every chain."""

    model: str = "v_48_020"  # ProteinMPNN vanilla weights, 48 neighbours, 0.20 A training noise

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT_VERSION, **asdict(self)}, sort_keys=True)


def profile_path(cache_dir: str | Path, name: str) -> Path:
    return Path(cache_dir) / PROFILES_DIR / f"{name}.npz"


def to_file_alphabet(mpnn_log_probs: np.ndarray) -> np.ndarray:
    """``[L, 21]`` ProteinMPNN-order log-probabilities -> ``[L, 20]`` in the file alphabet's order,
    renormalised over the twenty amino acids (ProteinMPNN's unknown letter dropped)."""
    amino = np.asarray(mpnn_log_probs, dtype=np.float64)[:, AATYPE_TO_MPNN[: alphabet.UNKNOWN]]
    return amino - np.logaddexp.reduce(amino, axis=-1, keepdims=True)


def save_profile(path: Path, log_probs: np.ndarray, settings: ProfileSettings, sequence: str) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, log_probs=np.asarray(log_probs, dtype=np.float16),
                        settings=np.array(settings.to_json()), sequence=np.array(sequence))
    atomic_write_bytes(path, buffer.getvalue())


def load_profile(path: str | Path) -> dict:
    """Read a profiles/<name>.npz (pickle disabled): log_probs float32 [L, 20], settings (dict), sequence."""
    with np.load(path, allow_pickle=False) as data:
        return {"log_probs": data["log_probs"].astype(np.float32), "settings": json.loads(str(data["settings"])),
                "sequence": str(data["sequence"])}


def current_profile(path: Path, record: ChainRecord, settings: ProfileSettings) -> np.ndarray | None:
    """The chain's log_probs ``[L, 20]`` (float32) when ``path`` holds a profile of its native sequence
    made with ``settings``; None when it is absent, truncated, foreign or stale (to be redone)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if (str(data["settings"]) != settings.to_json() or str(data["sequence"]) != record.sequence
                    or data["log_probs"].shape != (record.length, alphabet.UNKNOWN)):
                return None
            return data["log_probs"].astype(np.float32)
    except (OSError, ValueError, KeyError, EOFError):
        return None


def is_done(path: Path, record: ChainRecord, settings: ProfileSettings) -> bool:
    return current_profile(path, record, settings) is not None


def load_profiles(cache: ChainCache, settings: ProfileSettings | None = None) -> dict[str, np.ndarray]:
    """``name -> log_probs [L, 20]`` for every chain of ``cache`` with a current profile (each file read once)."""
    settings = settings or ProfileSettings()
    found = {}
    for record in cache.records:
        profile = current_profile(profile_path(cache.path, record.name), record, settings)
        if profile is not None:
            found[record.name] = profile
    return found


@dataclass
class ProfileReport:
    cache_dir: str
    chains: int = 0
    profiled: int = 0
    cached: int = 0
    skipped: dict = field(default_factory=dict)
    skipped_chains: list = field(default_factory=list)
    native_recovery: float = float("nan")  # argmax of the profile against the native, this run's chains
    seconds: float = 0.0
    residues_per_second: float = 0.0

    def summary_lines(self) -> list[str]:
        lines = [f"{self.chains} chains: {self.profiled} profiled, {self.cached} already done, "
                 f"{sum(self.skipped.values())} skipped; {self.seconds:.1f} s "
                 f"({self.residues_per_second:.0f} residues/s)"]
        if self.profiled:
            lines.append(f"argmax of the profiles recovers {self.native_recovery:.3f} of the native residues")
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())))
        lines.append(f"profiles: {Path(self.cache_dir) / PROFILES_DIR} (summary in {self.cache_dir})")
        return lines


def profile_batch(scorer, cache_dir: Path, records: list[ChainRecord], settings: ProfileSettings) -> list[dict]:
    """Profile and store one batch of chains; one result per chain (a bad chain is skipped, never raised)."""
    results, usable = usable_chains(cache_dir, records)
    if not usable:
        return results
    for (record, _, native), raw in zip(usable, scorer.structure_only_log_probs([atoms for _, atoms, _ in usable])):
        log_probs = to_file_alphabet(raw)
        save_profile(profile_path(cache_dir, record.name), log_probs, settings, record.sequence)
        known = native != alphabet.UNKNOWN
        hits = int(((log_probs.argmax(-1) == native) & known).sum())
        results.append({"name": record.name, "status": "profiled", "hits": hits, "known": int(known.sum()),
                        "residues": record.length})
    return results


def run_profiles(cache_dir: str | Path, settings: ProfileSettings | None = None, *, threads: int = 1,
                 split: str | None = "train", min_length: int | None = None, max_length: int | None = None,
                 max_chains: int | None = None, residue_budget: int = 6000, seed: int = 0,
                 shard: tuple[int, int] = (0, 1), progress: bool = True) -> ProfileReport:
    """Write teacher profiles for the selected chains (resumable; see the module docstring).

    ``max_chains`` takes that many chains of a seeded random order; ``residue_budget`` bounds
    chains x longest length per ProteinMPNN call; ``shard = (k, n)`` keeps every n-th chain of
    that order from the k-th, so n processes can share the work.
    """
    import torch
    from tqdm import tqdm

    from multiflow_gm.protein.evaluation.mpnn import ProteinMPNNScorer

    start = time.perf_counter()
    settings = settings or ProfileSettings()
    if threads < 1 or (max_chains is not None and max_chains < 1):
        raise UserError("--threads and --max-chains must be at least 1")
    if not 0 <= shard[0] < shard[1]:
        raise UserError(f"--shard K/N needs 0 <= K < N; got {shard[0]}/{shard[1]}")
    require_mpnn()
    cache = ChainCache(cache_dir)
    out = Path(cache_dir)
    (out / PROFILES_DIR).mkdir(exist_ok=True)
    records = select_records(cache, min_length=min_length, max_length=max_length, split=split)
    records = [records[i] for i in np.random.default_rng(seed).permutation(len(records))][:max_chains]
    records = records[shard[0]::shard[1]]
    todo = [r for r in records if not is_done(profile_path(out, r.name), r, settings)]
    report = ProfileReport(cache_dir=str(out), chains=len(records), cached=len(records) - len(todo))
    results: list[dict] = []
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    bar = tqdm(total=len(todo), unit="chain", desc="profiles", disable=not progress)
    try:
        scorer = ProteinMPNNScorer(settings.model) if todo else None
        # Chunks of the random order, each grouped by length, so an early stop leaves a random subset.
        for chunk_start in range(0, len(todo), 256):
            chunk = todo[chunk_start: chunk_start + 256]
            for batch in plan_batches([r.length for r in chunk], 1, residue_budget):
                done = profile_batch(scorer, out, [chunk[i] for i in batch], settings)
                results.extend(done)
                bar.update(len(done))
    finally:
        bar.close()
        torch.set_num_threads(previous_threads)
    profiled = [r for r in results if r["status"] == "profiled"]
    report.profiled = len(profiled)
    report.skipped, report.skipped_chains = skipped_summary(results)
    if profiled:
        report.native_recovery = sum(r["hits"] for r in profiled) / max(sum(r["known"] for r in profiled), 1)
    report.seconds = time.perf_counter() - start
    report.residues_per_second = sum(r["residues"] for r in profiled) / max(report.seconds, 1e-9)
    summary = asdict(report)
    summary["native_recovery"] = None if np.isnan(summary["native_recovery"]) else summary["native_recovery"]
    name = SUMMARY_FILE if shard[1] == 1 else SUMMARY_FILE.replace(".json", f"_shard{shard[0]}-of-{shard[1]}.json")
    cache_layout.write_json(out / name, summary)
    return report
