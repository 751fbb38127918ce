"""Residue-type sampling temperature of one export, chosen on data the model card does not use.

    python scripts/temperature_study.py MODEL.safetensors --out runs/temperature_study \\
        --temperatures 0.30 0.35 0.40 [--inverse-fold-temperatures 0.1 0.2] [--seed 1] [--num 4] [--val-chains 32]

For each temperature (with purity): ``--num`` co-designs at each of the card's lengths (60-128)
drawn with ``--seed`` (the model card draws with seed 0, so these are other samples), scored
by ``multiflow-gm evaluate`` exactly as the card scores its 64; and inverse folding of
``--val-chains`` chains of the **validation** split (the card's held-out figures use the test
split). ``--inverse-fold-temperatures`` adds inverse folding of the same chains at more
temperatures (no co-designs). Every step is a CLI call whose output is kept, so a rerun
resumes. Writes ``OUT/table.md`` and ``OUT/table.json``.

The temperature trades sequence fit (ProteinMPNN NLL falls as it falls) against diversity
(sequence entropy falls too); the card's targets ask for NLL <= 2.3 with entropy >= 2.3.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LENGTHS = ("60", "70", "80", "90", "100", "110", "120", "128")
COLUMNS = (("clash_residue_fraction", "clash"), ("ca_ca_outside_fraction", "CA-CA out"),
           ("dssp_strand", "strand"), ("strand_paired", "paired strand"), ("dssp_helix", "helix"), ("mpnn_nll_mean", "MPNN NLL"),
           ("aa_entropy_mean", "entropy"), ("mpnn_recovery_mean", "MPNN rec"),
           ("low_complexity_fraction", "low-complexity"), ("cluster_fraction", "clusters"))


def run(command: list[str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def measure(model: Path, out: Path, temperature: float, args) -> None:
    """Every output of one temperature under ``out`` (steps already done are skipped)."""
    out.mkdir(parents=True, exist_ok=True)
    export = out / "model.safetensors"
    if not export.is_file():
        run([sys.executable, str(ROOT / "scripts" / "set_sampling_defaults.py"), str(model), str(export),
             f"temperature={temperature}", "purity=true"])
    if not (out / "codesign" / "samples.fasta").is_file():
        run(["multiflow-gm", "sample", "--ckpt", str(export), "--lengths", *LENGTHS, "--num", str(args.num),
             "--seed", str(args.seed), "--threads", "1", "--no-progress", "--out", str(out / "codesign")])
    if not (out / "report" / "metrics.json").is_file():
        run(["multiflow-gm", "evaluate", str(out / "codesign" / "samples"), "--reference", args.cache,
             "--out", str(out / "report"), "--compare", "none", "--workers", "1", "--mpnn-threads", "1",
             "--no-progress"])
    if args.val_chains:
        inverse_fold_val(export, out / "inverse_fold_val", None, args)


def inverse_fold_val(model: Path, out: Path, temperature: float | None, args) -> None:
    """Inverse folding of the validation chains (at the model's temperature when None)."""
    if (out / "benchmark.json").is_file():
        return
    chosen = [] if temperature is None else ["--temperature", str(temperature)]
    run(["multiflow-gm", "benchmark", "--cache", args.cache, "--split", "val", "--max-chains",
         str(args.val_chains), "--lengths", "60-128", "--task", "inverse-fold", "--num-steps", "100",
         "--num-designs", "1", "--ckpt", str(model), *chosen, "--threads", "1", "--workers", "1",
         "--no-progress", "--out", str(out)])


def read_inverse_fold(benchmark: Path) -> dict:
    held = json.loads(benchmark.read_text())["summary"]
    return {"val_recovery": held.get("recovery_mean"), "val_mpnn_recovery": held.get("mpnn_recovery_mean"),
            "val_chains": held.get("chains")}


def read_row(out: Path) -> dict:
    summary = json.loads((out / "report" / "metrics.json").read_text())["sets"]["samples"]["summary"]
    flat = {key: value for group in summary.values() for key, value in group.items()}
    row = {key: flat.get(key) for key, _ in COLUMNS}
    row["num_samples"] = flat.get("num_samples")
    benchmark = out / "inverse_fold_val" / "benchmark.json"
    if benchmark.is_file():
        row.update(read_inverse_fold(benchmark))
    return row


def render(rows: dict[str, dict], inverse_rows: dict[str, dict], model: str, args) -> str:
    header = [label for _, label in COLUMNS] + ["val inverse-fold recovery", "ProteinMPNN (anchor)"]
    lines = [f"Sampling temperature (with purity) of `{model}`: {args.num} co-designs per length at lengths "
             f"{LENGTHS[0]}-{LENGTHS[-1]} with seed {args.seed}; inverse folding of {args.val_chains} "
             "validation chains of 60-128 residues (100 steps, one design each).", "",
             "| temperature | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for temperature, row in rows.items():
        cells = [row.get(key) for key, _ in COLUMNS] + [row.get("val_recovery"), row.get("val_mpnn_recovery")]
        lines.append(f"| {temperature} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |")
    if inverse_rows:
        lines += ["", "Inverse folding alone, same validation chains:", "",
                  "| temperature | val inverse-fold recovery | ProteinMPNN (anchor) |", "|---|---:|---:|"]
        lines += [f"| {t} | {row['val_recovery']:.3f} | {row['val_mpnn_recovery']:.3f} |"
                  for t, row in inverse_rows.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--temperatures", type=float, nargs="+", required=True)
    parser.add_argument("--inverse-fold-temperatures", type=float, nargs="*", default=[],
                        help="more temperatures for inverse folding of the validation chains alone")
    parser.add_argument("--seed", type=int, default=1, help="co-design seed (the model card uses 0)")
    parser.add_argument("--num", type=int, default=4, help="co-designs per length")
    parser.add_argument("--val-chains", type=int, default=32, help="validation chains to inverse-fold (0: none)")
    parser.add_argument("--cache", default="cache/all")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        parser.error(f"no such model: {args.model}")
    if not (Path(args.cache) / "splits.csv").is_file():
        parser.error(f"no split cache at {args.cache} (multiflow-gm preprocess, then multiflow-gm split)")

    from multiflow_gm.atomic_files import atomic_write_bytes

    rows = {}
    for temperature in args.temperatures:
        out = args.out / f"t{temperature:g}"
        measure(args.model, out, temperature, args)
        rows[f"{temperature:g}"] = read_row(out)
    inverse_rows = {}
    for temperature in args.inverse_fold_temperatures:
        out = args.out / f"inverse_fold_val_t{temperature:g}"
        inverse_fold_val(args.model, out, temperature, args)
        inverse_rows[f"{temperature:g}"] = read_inverse_fold(out / "benchmark.json")
    text = render(rows, inverse_rows, str(args.model), args)
    atomic_write_bytes(args.out / "table.md", text.encode())
    payload = {"model": str(args.model), "seed": args.seed, "num_per_length": args.num,
               "val_chains": args.val_chains, "rows": rows, "inverse_fold_rows": inverse_rows}
    atomic_write_bytes(args.out / "table.json", (json.dumps(payload, indent=1) + "\n").encode())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
