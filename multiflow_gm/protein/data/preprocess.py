"""Structure files -> chain cache (see :mod:`multiflow_gm.protein.data.cache` for the layout).

Each input file is handled on its own (in a worker process when ``workers > 1``):
read, filter, write one npz per accepted chain, then a per-file JSON record. The
record is written last and atomically, so an interrupted run is resumed by
running the same command again: files with a record are skipped, the rest are
done, and the tables (metadata.csv, rejections.csv, summary.json) are rebuilt
from all records.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from multiflow_gm.errors import ConfigError, UserError
from multiflow_gm.protein.data import cache as cache_layout
from multiflow_gm.protein.data.config import PreprocessConfig
from multiflow_gm.protein.data.summary_plot import write_summary_plot
from multiflow_gm.protein.structure_io import Problem, entry_id_from_path, read_chains, structure_format

LIST_SUFFIXES = (".txt", ".list")


@dataclass
class PreprocessReport:
    """What one preprocess run did (counts over all records in the cache)."""

    cache_dir: str
    files: int = 0  # input files of this run
    files_processed: int = 0  # read in this run
    files_cached: int = 0  # skipped: already in the cache
    chains_accepted: int = 0
    entries_accepted: int = 0
    clusters: int = 0
    rejections: dict = field(default_factory=dict)  # reason -> count
    seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        lines = [
            f"{self.files} input files ({self.files_processed} processed, {self.files_cached} already cached) "
            f"in {self.seconds:.1f} s",
            f"accepted {self.chains_accepted} chains from {self.entries_accepted} entries"
            + (f" in {self.clusters} sequence clusters" if self.clusters else ""),
        ]
        if self.rejections:
            lines.append("rejected: " + ", ".join(f"{reason} {count}" for reason, count in
                                                  sorted(self.rejections.items(), key=lambda kv: -kv[1])))
        lines.append(f"cache: {self.cache_dir} ({cache_layout.METADATA_FILE}, {cache_layout.REJECTIONS_FILE}, "
                     f"{cache_layout.SUMMARY_PLOT_FILE})")
        return lines


def discover_inputs(inputs) -> list[Path]:
    """Structure files from paths: directories (recursive), list files (.txt/.list), or files.

    A list file holds one path per line (blank lines and '#' comments ignored;
    relative paths are relative to the list file). Paths come back absolute, so a
    cache stays valid when the command is run from another directory. Raises
    UserError for a missing path.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item).absolute()
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and structure_format(p)))
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            for line in path.read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    listed = Path(line) if Path(line).is_absolute() else path.parent / line
                    if not listed.exists():
                        raise UserError(f"{path}: listed file not found: {line}")
                    found.extend(discover_inputs([listed]))
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"input not found: {path}")
    return found


def process_file(path: str, cache_dir: str, config: PreprocessConfig) -> dict:
    """Read and filter one file, write its chains and its record; returns the record.

    Runs in worker processes; never raises for a bad file (the problems are in the record).
    """
    from multiflow_gm.protein.data.filters import filter_chain

    result = read_chains(path, max_file_mb=config.reading.max_file_mb)
    accepted, problems = [], list(result.problems)
    for raw in result.chains:
        chains, rejected = filter_chain(raw, config.filters)
        accepted.extend(chains)
        problems.extend(rejected)
    if config.reading.first_chain_only and len(accepted) > 1:
        for extra in accepted[1:]:
            label = extra.chain_id + (f"-{extra.segment}" if extra.segment else "")
            problems.append(Problem(result.source, label, "not_first_chain",
                                    "reading.first_chain_only keeps one chain per entry"))
        accepted = accepted[:1]
    chains_dir = Path(cache_dir) / cache_layout.CHAINS_DIR
    for item in accepted:
        cache_layout.save_chain(chains_dir / f"{item.chain.name}.npz", item.chain)
    record = {
        "source": result.source, "entry": result.entry, "fingerprint": config.fingerprint(),
        "accepted": [item.metadata() for item in accepted],
        "rejections": [asdict(problem) for problem in problems],
    }
    cache_layout.write_json(Path(cache_dir) / cache_layout.RECORDS_DIR / f"{result.entry}.json", record)
    return record


def _process_task(task) -> dict:
    path, cache_dir, config = task
    try:
        return process_file(path, cache_dir, config)
    except Exception as err:  # a bug must not end the run; the file is retried next time
        return {"source": path, "entry": entry_id_from_path(path), "transient": True, "accepted": [],
                "rejections": [asdict(Problem(path, "", "internal_error", f"{type(err).__name__}: {err}"))]}


def _load_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _is_done(record: dict | None, source: str, fingerprint: str, chains_dir: Path) -> bool:
    if not record or record.get("source") != source or record.get("fingerprint") != fingerprint:
        return False
    return all((chains_dir / f"{row['name']}.npz").is_file() for row in record.get("accepted", []))


def _prepare_cache_dir(out: Path, config: PreprocessConfig, rebuild: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / cache_layout.CONFIG_FILE
    previous = _load_record(config_path) if config_path.is_file() else None
    if previous and not rebuild:
        old = json.dumps({"reading": previous.get("reading"), "filters": previous.get("filters")}, sort_keys=True)
        if old != config.fingerprint():
            raise ConfigError(f"{out} was built with other reading/filter settings; "
                              "use a new --out directory or pass --rebuild")
    if rebuild:
        for sub in (cache_layout.CHAINS_DIR, cache_layout.RECORDS_DIR):
            shutil.rmtree(out / sub, ignore_errors=True)
    for sub in (cache_layout.CHAINS_DIR, cache_layout.RECORDS_DIR):
        (out / sub).mkdir(exist_ok=True)
        for stale in (out / sub).glob(".*.tmp"):  # left by a killed run
            stale.unlink(missing_ok=True)
    cache_layout.write_json(config_path, config.to_dict())


def run_preprocess(inputs, out, *, config: PreprocessConfig | None = None, workers: int = 1,
                   progress: bool = True, rebuild: bool = False) -> PreprocessReport:
    """Preprocess structure files into the cache at ``out`` (resumable); returns the report."""
    from tqdm import tqdm

    start = time.perf_counter()
    config = config or PreprocessConfig()
    out = Path(out)
    files = discover_inputs(inputs)
    if not files:
        raise UserError("no structure files found in the inputs (.pdb, .ent, .cif, .bcif, optionally .gz)")
    _prepare_cache_dir(out, config, rebuild)

    run_problems: list[dict] = []
    unique: dict[str, Path] = {}
    for path in files:
        entry = entry_id_from_path(path)
        if entry in unique:
            detail = f"entry {entry} also in {unique[entry]}"
            run_problems.append(asdict(Problem(str(path), "", "duplicate_entry", detail)))
        else:
            unique[entry] = path
    records_dir, chains_dir = out / cache_layout.RECORDS_DIR, out / cache_layout.CHAINS_DIR
    fingerprint = config.fingerprint()
    todo = [str(path) for entry, path in unique.items()
            if not _is_done(_load_record(records_dir / f"{entry}.json"), str(path), fingerprint, chains_dir)]

    tasks = [(path, str(out), config) for path in todo]
    bar = tqdm(total=len(tasks), unit="file", desc="preprocess", disable=not progress)
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(tasks) or 1))
    try:
        if workers == 1:
            for record in map(_process_task, tasks):
                _collect(record, run_problems, bar)
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for record in pool.imap_unordered(_process_task, tasks, chunksize=4):
                    _collect(record, run_problems, bar)
    finally:
        bar.close()

    report = consolidate(out, config, extra_rejections=run_problems)
    report.files, report.files_processed = len(files), len(todo)
    report.files_cached = len(unique) - len(todo)
    report.seconds = time.perf_counter() - start
    cache_layout.write_json(out / cache_layout.SUMMARY_FILE, asdict(report))
    return report


def _collect(record: dict, run_problems: list[dict], bar) -> None:
    if record.get("transient"):
        run_problems.extend(record["rejections"])
    bar.update(1)


def _cluster_ids(out: Path, metadata: list[dict], config: PreprocessConfig) -> np.ndarray:
    """Cluster id per metadata row (-1 without clustering); reused from the last run when
    neither the chains nor the clustering settings changed (clustering takes seconds)."""
    from multiflow_gm.protein.data.clustering import cluster_sequences

    if not config.clustering.identity:
        return np.full(len(metadata), -1, dtype=np.int64)
    digest = hashlib.sha256("\n".join(f"{row['name']}:{row['sequence']}" for row in metadata).encode())
    key = {"settings": asdict(config.clustering), "chains": digest.hexdigest()}
    stored_path = out / cache_layout.CLUSTERS_FILE
    stored = _load_record(stored_path) if stored_path.is_file() else None
    if stored and stored.get("key") == key and len(stored.get("ids", [])) == len(metadata):
        return np.asarray(stored["ids"], dtype=np.int64)
    ids = cluster_sequences([row["sequence"] for row in metadata], config.clustering.identity,
                            config.clustering.kmer_prefilter)
    cache_layout.write_json(stored_path, {"key": key, "ids": ids.tolist()})
    return ids


def consolidate(out: Path, config: PreprocessConfig, extra_rejections=()) -> PreprocessReport:
    """Rebuild metadata.csv (with clusters) and rejections.csv from every record in the cache."""
    out = Path(out)
    fingerprint = config.fingerprint()
    metadata, rejections = [], list(extra_rejections)
    for path in sorted((out / cache_layout.RECORDS_DIR).glob("*.json")):
        record = _load_record(path)
        if record is None or record.get("fingerprint") != fingerprint:
            continue
        metadata.extend(record["accepted"])
        rejections.extend(record["rejections"])
    metadata.sort(key=lambda row: row["name"])
    ids = _cluster_ids(out, metadata, config)
    for row, cluster in zip(metadata, ids):
        row["cluster"] = int(cluster)
    clusters = int(ids.max()) + 1 if config.clustering.identity and ids.size else 0
    cache_layout.write_csv(out / cache_layout.METADATA_FILE, metadata, cache_layout.METADATA_COLUMNS)
    cache_layout.write_csv(out / cache_layout.REJECTIONS_FILE, rejections, cache_layout.REJECTION_COLUMNS)
    counts = dict(Counter(row["reason"] for row in rejections))
    write_summary_plot(out / cache_layout.SUMMARY_PLOT_FILE, metadata, counts)
    return PreprocessReport(
        cache_dir=str(out), chains_accepted=len(metadata),
        entries_accepted=len({row["entry"] for row in metadata}), clusters=clusters,
        rejections=counts,
    )
