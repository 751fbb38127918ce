"""Validation curves of several `multiflow-gm pretrain-decoder` runs in one figure, and their table.

    python scripts/plot_decoder_curves.py --run native runs/decoder_scratch_native \\
        --run distilled runs/decoder_scratch_distill --out results/decoder_distillation/scratch_curves

Reads each run's curve.csv (validation cross-entropy and argmax recovery of the native sequence,
whole sequence masked) and writes OUT.png and OUT.md (one row per evaluated step, runs side by side).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from multiflow_gm.atomic_files import atomic_save_figure, atomic_write_bytes

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs=2, action="append", required=True, metavar=("NAME", "RUN_DIR"))
    parser.add_argument("--out", type=Path, required=True, help="output stem (OUT.png, OUT.md)")
    args = parser.parse_args(argv)
    curves = {}
    for name, run in args.run:
        path = Path(run) / "curve.csv"
        if not path.is_file():
            parser.error(f"--run {name}: no curve.csv in {run}")
        curves[name] = {int(r["step"]): (float(r["val_ce"]), float(r["val_recovery"]))
                        for r in csv.DictReader(path.open())}
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, rows in curves.items():
        steps = sorted(rows)
        left.plot(steps, [rows[s][0] for s in steps], marker="o", label=name)
        right.plot(steps, [rows[s][1] for s in steps], marker="o", label=name)
    left.set(xlabel="step", ylabel="validation cross-entropy (nats/residue)")
    right.set(xlabel="step", ylabel="validation argmax recovery")
    left.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_save_figure(fig, args.out.with_suffix(".png"), dpi=120)
    names = list(curves)
    lines = ["| step | " + " | ".join(f"{n}: CE, recovery" for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for step in sorted(set().union(*curves.values())):
        cells = [f"{curves[n][step][0]:.3f}, {curves[n][step][1]:.3f}" if step in curves[n] else "" for n in names]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    atomic_write_bytes(args.out.with_suffix(".md"), ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
