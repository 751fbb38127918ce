"""Inverse folding with retrained sequence decoders inside one co-design export, paired chain by chain.

    python scripts/decoder_study.py --model multiflow_gm/assets/codesign_small.safetensors \\
        --arm control runs/decoder_control/decoder.safetensors \\
        --arm distill runs/decoder_distill/decoder.safetensors \\
        --split val --chains 32 --work runs/decoder_study --out results/decoder_distillation/val

Each arm's decoder replaces the export's (``scripts/replace_decoder.py``); every model designs one
sequence per chain of 60-128 residues of the split with ``multiflow-gm benchmark --task
inverse-fold`` (100 steps, the export's inverse-folding temperature), each chain from the same seed
whatever the model. A finished benchmark is not rerun. Writes OUT.md / OUT.json: each arm's recovery,
its difference to the unchanged export and the standard error of that difference, and the
decoder run's last validation row (curve.csv beside its decoder.safetensors).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def benchmark(model: Path, out: Path, args) -> Path:
    result = out / "benchmark.json"
    if not result.is_file():
        subprocess.run(["multiflow-gm", "benchmark", "--cache", args.cache, "--split", args.split, "--max-chains",
                        str(args.chains), "--lengths", "60-128", "--task", "inverse-fold", "--num-steps", "100",
                        "--num-designs", "1", "--ckpt", str(model), "--threads", "1", "--workers", "1",
                        "--no-progress", "--out", str(out)], check=True)
    return result


def last_curve_row(decoder: Path) -> dict:
    curve = decoder.parent / "curve.csv"
    if not curve.is_file():
        return {}
    rows = list(csv.DictReader(curve.open()))
    return {key: float(value) for key, value in rows[-1].items()} if rows else {}


def main(argv=None) -> int:
    from paired_comparison import paired, read_heldout

    from multiflow_gm.atomic_files import atomic_write_bytes
    from multiflow_gm.protein.model_file import decoder_shape_beside, with_decoder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="co-design export with a sequence decoder")
    parser.add_argument("--arm", nargs=2, action="append", required=True, metavar=("NAME", "DECODER"))
    parser.add_argument("--cache", default="cache/all")
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--chains", type=int, default=32)
    parser.add_argument("--work", type=Path, default=Path("runs/decoder_study"))
    parser.add_argument("--out", type=Path, required=True, help="output stem (OUT.md, OUT.json)")
    args = parser.parse_args(argv)
    for name, decoder in args.arm:
        if not Path(decoder).is_file():
            parser.error(f"--arm {name}: no such decoder {decoder}")
    work = args.work / args.split
    base = read_heldout(benchmark(args.model, work / "base", args))
    rows = {}
    for name, decoder in args.arm:
        model = work / name / "model.safetensors"
        if not model.is_file():
            with_decoder(args.model, decoder, model, decoder_shape_beside(decoder))
        cell = paired(read_heldout(benchmark(model, work / name / "benchmark", args)), base, "recovery")
        rows[name] = {"recovery": cell, "decoder": decoder, "decoder_validation": last_curve_row(Path(decoder))}
    base_mean = next(iter(rows.values()))["recovery"]["base_mean"]
    lines = [f"Inverse folding of {args.chains} {args.split} chains of 60-128 residues (one design each, 100 steps), "
             f"{args.model.name} with its decoder replaced; difference to the unchanged export ± standard error, "
             "`*` beyond two.", "",
             "| decoder | recovery | difference | decoder alone: argmax recovery, CE (nats), step |",
             "|---|---|---|---|", f"| unchanged | {base_mean:.3f} | | |"]
    for name, row in rows.items():
        cell, curve = row["recovery"], row["decoder_validation"]
        mark = "*" if abs(cell["difference"]) > 2 * cell["se"] else ""
        alone = (f"{curve['val_recovery']:.3f}, {curve['val_ce']:.3f}, {int(curve['step'])}" if curve else "n/c")
        lines.append(f"| {name} | {cell['mean']:.3f} | {cell['difference']:+.3f} ± {cell['se']:.3f}{mark} | {alone} |")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out.with_suffix(".md"), text.encode())
    payload = {"model": str(args.model), "split": args.split, "chains": args.chains, "arms": rows}
    atomic_write_bytes(args.out.with_suffix(".json"), (json.dumps(payload, indent=1) + "\n").encode())
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
