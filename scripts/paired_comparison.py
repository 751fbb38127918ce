"""Paired differences between models evaluated on the same seeds: co-designs and held-out chains.

    python scripts/paired_comparison.py --base "round 2" runs/eval_r2_t05_report runs/heldout_r2_t05/benchmark.json \\
        --model control runs/eval3/control/report runs/eval3/control/heldout/benchmark.json \\
        [--model NAME REPORT BENCHMARK ...] --out results/recipe_study_round3/paired

Co-designs are paired by sample name (``sample`` draws sample k of length L from the same seed
whatever the model), held-out chains by chain name. Each cell gives the model's mean, its mean
difference to the base and the standard error of that difference; ``*`` marks a difference
larger than twice its standard error. Writes ``OUT.md`` and ``OUT.json``. A REPORT or BENCHMARK
given as ``-`` is left out (its rows read n/c), for comparisons of held-out chains or co-designs alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE_METRICS = (("clash_residue_fraction", "residues in a CA clash"), ("ca_ca_outside_fraction", "CA-CA outside 3.6-4.0 A"),
                  ("dssp_strand", "DSSP strand"), ("strand_paired", "paired strand (P-SEA)"),
                  ("dssp_helix", "DSSP helix"), ("mpnn_nll", "ProteinMPNN NLL"),
                  ("mpnn_recovery", "ProteinMPNN recovery"))
HELDOUT_METRICS = (("recovery", "held-out inverse-folding recovery"), ("fold_tm", "held-out folding TM"))


def read_samples(report: Path) -> dict[str, dict]:
    if str(report) == "-":
        return {}
    with open(report / "per_sample.csv", newline="") as handle:
        return {row["name"]: row for row in csv.DictReader(handle) if row["set"] == "samples"}


def read_heldout(benchmark: Path) -> dict[str, dict]:
    if str(benchmark) == "-":
        return {}
    return {row["name"]: row for row in json.loads(benchmark.read_text())["rows"]}


def paired(model: dict[str, dict], base: dict[str, dict], key: str) -> dict | None:
    """Mean, mean difference to the base and its standard error over the shared, finite pairs."""
    pairs = [(float(model[n][key]), float(base[n][key])) for n in sorted(set(model) & set(base))
             if model[n].get(key) not in ("", None) and base[n].get(key) not in ("", None)]
    pairs = [(x, y) for x, y in pairs if np.isfinite(x) and np.isfinite(y)]
    if len(pairs) < 2:
        return None
    x, y = np.array(pairs).T
    diff = x - y
    return {"n": len(diff), "mean": float(x.mean()), "base_mean": float(y.mean()), "difference": float(diff.mean()),
            "se": float(diff.std(ddof=1) / np.sqrt(len(diff)))}


def render(base_name: str, results: dict) -> str:
    names = list(results)
    lines = [f"Paired against {base_name} (same seeds and chains): model mean, difference (standard error); "
             "`*` marks a difference beyond twice its standard error.", "",
             "| metric | " + " | ".join([base_name, *names]) + " |", "|---" * (len(names) + 2) + "|"]
    for key, label in (*SAMPLE_METRICS, *HELDOUT_METRICS):
        cells, base_mean = [], None
        for name in names:
            cell = results[name].get(key)
            if cell is None:
                cells.append("n/c")
                continue
            base_mean = cell["base_mean"]
            mark = "*" if abs(cell["difference"]) > 2 * cell["se"] else ""
            cells.append(f"{cell['mean']:.3f} ({cell['difference']:+.3f} ± {cell['se']:.3f}){mark}")
        lines.append(f"| {label} | " + ("n/c" if base_mean is None else f"{base_mean:.3f}") + " | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from multiflow_gm.atomic_files import atomic_write_bytes

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", nargs=3, metavar=("NAME", "REPORT", "BENCHMARK"), required=True)
    parser.add_argument("--model", nargs=3, action="append", metavar=("NAME", "REPORT", "BENCHMARK"), required=True)
    parser.add_argument("--out", type=Path, required=True, help="output stem (writes OUT.md and OUT.json)")
    args = parser.parse_args(argv)
    base_samples, base_heldout = read_samples(Path(args.base[1])), read_heldout(Path(args.base[2]))
    results = {}
    for name, report, benchmark in args.model:
        samples, heldout = read_samples(Path(report)), read_heldout(Path(benchmark))
        row = {key: paired(samples, base_samples, key) for key, _ in SAMPLE_METRICS}
        row.update({key: paired(heldout, base_heldout, key) for key, _ in HELDOUT_METRICS})
        results[name] = row
    text = render(args.base[0], results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out.with_suffix(".md"), text.encode())
    atomic_write_bytes(args.out.with_suffix(".json"), (json.dumps({"base": args.base, "models": results}, indent=1) + "\n").encode())
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
