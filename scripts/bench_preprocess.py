"""Benchmark ``multiflow-gm preprocess`` on the shared PDB subset with 1 and 2 workers.

Each run preprocesses the whole subset into a fresh temporary cache with the
default settings and reports files/s and accepted chains/s (medians over
``--repeats``), the time of a rerun that finds everything cached, the
accept/reject counts by reason and the load average, as JSON (printed and saved).

    python scripts/bench_preprocess.py [--input DIR] [--workers 1 2] [--repeats 1]
                                       [--json results/bench_preprocess.json]

Rerun when ``uptime`` shows a load above about 2.5 before starting: other
processes on a 2-core machine distort the figures (the JSON records the load).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_SUBSET = Path(os.environ.get("MULTIFLOW_GM_SHARED_DATA", REPO.parent / "shared" / "data")) / "pdb_subset"


def run_once(inputs: Path, workers: int) -> dict:
    from multiflow_gm.protein.data.preprocess import run_preprocess

    with tempfile.TemporaryDirectory() as tmp:
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        report = run_preprocess([inputs], Path(tmp) / "cache", workers=workers, progress=False)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()[0]
        start = time.perf_counter()
        rerun = run_preprocess([inputs], Path(tmp) / "cache", workers=workers, progress=False)
        rerun_wall = time.perf_counter() - start
    assert rerun.files_processed == 0, "a rerun should find every file cached"
    return {
        "wall_s": wall, "files": report.files, "chains": report.chains_accepted,
        "entries": report.entries_accepted, "clusters": report.clusters,
        "rejections": report.rejections, "rerun_all_cached_s": rerun_wall,
        "load_before": load_before, "load_after": load_after,
    }


def summarise(runs: list[dict], workers: int) -> dict:
    wall = statistics.median(run["wall_s"] for run in runs)
    first = runs[0]
    return {
        "workers": workers, "repeats": len(runs), "wall_s_median": round(wall, 2),
        "files_per_s": round(first["files"] / wall, 2), "chains_per_s": round(first["chains"] / wall, 2),
        "rerun_all_cached_s_median": round(statistics.median(run["rerun_all_cached_s"] for run in runs), 2),
        "load_before": [round(run["load_before"], 2) for run in runs],
        "load_after": [round(run["load_after"], 2) for run in runs],
        "files": first["files"], "chains_accepted": first["chains"], "entries_accepted": first["entries"],
        "clusters": first["clusters"], "rejections_by_reason": dict(sorted(first["rejections"].items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=str(SHARED_SUBSET), help="structure folder (default: the shared subset)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", default=str(REPO / "results" / "bench_preprocess.json"))
    args = parser.parse_args()
    inputs = Path(args.input)
    if not inputs.is_dir():
        raise SystemExit(f"input folder not found: {inputs}")
    results = {"input": str(inputs), "cpu_count": os.cpu_count(), "runs": []}
    for workers in args.workers:
        runs = [run_once(inputs, workers) for _ in range(args.repeats)]
        results["runs"].append(summarise(runs, workers))
        print(json.dumps(results["runs"][-1], indent=1), flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(out)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
