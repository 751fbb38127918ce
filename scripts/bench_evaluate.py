"""Benchmark ``multiflow-gm evaluate``: 100 samples of length 100 against the shared reference set.

The samples are 100-residue windows of reference chains (realistic folds, so
TM-align and ProteinMPNN cost what they would on generated proteins), written
as PDB files with a FASTA file. The evaluation runs with its defaults
(ProteinMPNN on, native and random-walk baselines of 32 chains each) and the
wall time is reported in total and split by metric, as JSON (medians over
``--repeats``).

    python scripts/bench_evaluate.py --reference CACHE_DIR [--workers 2]

Without ``--reference`` the shared subset is preprocessed first into
``--cache`` (default ``cache/bench_reference``, git-ignored; reruns reuse it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED_SUBSET = Path(os.environ.get("MULTIFLOW_GM_SHARED_DATA", REPO.parent / "shared" / "data")) / "pdb_subset"


def reference_cache(args) -> Path:
    if args.reference:
        return Path(args.reference)
    from multiflow_gm.protein.data.preprocess import run_preprocess

    cache = Path(args.cache)
    if not (cache / "metadata.csv").is_file():
        print(f"preprocessing {SHARED_SUBSET} into {cache} (once)")
        run_preprocess([SHARED_SUBSET], cache, workers=args.workers, progress=True)
    return cache


def write_samples(cache_dir: Path, directory: Path, count: int, length: int, seed: int) -> None:
    """``count`` windows of ``length`` residues from random reference chains, as PDB + FASTA."""
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.pdb_writer import write_backbone_pdb

    cache = ChainCache(cache_dir)
    rng = np.random.default_rng(seed)
    long_enough = np.nonzero(cache.lengths >= length)[0]
    picked = rng.choice(long_enough, size=count, replace=count > len(long_enough))
    with open(directory / "samples.fasta", "w") as fasta:
        for number, index in enumerate(picked):
            chain = cache.load(int(index))
            start = int(rng.integers(0, len(chain) - length + 1))
            name = f"sample_{number:03d}"
            sequence = chain.sequence[start:start + length]
            write_backbone_pdb(directory / f"{name}.pdb", chain.atoms[start:start + length], sequence)
            fasta.write(f">{name}\n{sequence}\n")


def run_once(cache_dir: Path, args) -> dict:
    from multiflow_gm.protein.evaluation.novelty import NoveltySettings
    from multiflow_gm.protein.evaluation.pipeline import run_evaluation
    from multiflow_gm.protein.evaluation.runner import EvaluationSettings

    with tempfile.TemporaryDirectory() as tmp:
        samples, out = Path(tmp) / "samples", Path(tmp) / "report"
        samples.mkdir()
        write_samples(cache_dir, samples, args.num_samples, args.length, args.seed)
        settings = EvaluationSettings(workers=args.workers, use_mpnn=not args.no_mpnn,
                                      novelty=NoveltySettings(top_k=args.novelty_top_k),
                                      baseline_count=args.baseline_count, progress=False)
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        run = run_evaluation(samples, cache_dir, out, settings)
        wall = time.perf_counter() - start
        summary = run.primary.summary
        return {"wall_s": wall, "by_metric_s": run.timings, "load_before": load_before,
                "load_after": os.getloadavg()[0], "num_evaluated": int(summary["overview"]["num_samples"]),
                "mpnn_recovery_mean": summary["mpnn"]["mpnn_recovery_mean"],
                "max_tm_mean": summary["novelty"]["max_tm_mean"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="preprocessed cache of the shared subset")
    parser.add_argument("--cache", default=str(REPO / "cache" / "bench_reference"))
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-count", type=int, default=32)
    parser.add_argument("--novelty-top-k", type=int, default=32)
    parser.add_argument("--no-mpnn", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=str(REPO / "results" / "bench_evaluate.json"))
    args = parser.parse_args()

    cache_dir = reference_cache(args)
    runs = [run_once(cache_dir, args) for _ in range(args.repeats)]
    metrics = sorted({key for run in runs for key in run["by_metric_s"]})
    result = {
        "benchmark": "evaluate",
        "num_samples": args.num_samples, "length": args.length, "workers": args.workers,
        "baseline_count": args.baseline_count, "novelty_top_k": args.novelty_top_k, "mpnn": not args.no_mpnn,
        "reference": str(cache_dir), "repeats": args.repeats, "cpu_count": os.cpu_count(),
        "wall_s_median": statistics.median(run["wall_s"] for run in runs),
        "by_metric_s_median": {m: statistics.median(run["by_metric_s"].get(m, 0.0) for run in runs) for m in metrics},
        "load_average": [[run["load_before"], run["load_after"]] for run in runs],
        "target_s": 600,
        "runs": runs,
    }
    text = json.dumps(result, indent=1)
    print(text)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    from multiflow_gm.atomic_files import atomic_write_text

    atomic_write_text(args.json, text + "\n")


if __name__ == "__main__":
    main()
