"""What the network's clean-structure prediction looks like from each time, for several exports.

    python scripts/denoising_by_time.py A.safetensors B.safetensors --out runs/denoising_by_time \\
        [--times 0.3 0.5 0.65 0.8 0.95] [--chains 32] [--cache cache/all]

Validation chains (60-128 residues) are corrupted to each time with the same noise for every
model, and each model predicts the clean structure (self-conditioned, as the sampler runs it):
the DSSP strand fraction, the fraction of residues in a CA clash (< 3 A) and the CA RMSE (A)
of that prediction, beside the natives' own DSSP strand. A model whose prediction only shows
strands from late times cannot pair them while the fold is still being decided. Writes
``OUT/table.md`` and ``OUT/table.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIGURES = (("pred_strand", "DSSP strand"), ("pred_clash", "CA clash"), ("ca_rmse_A", "CA RMSE (A)"))


def measure(model: Path, data, cfg) -> dict[str, float]:
    from multiflow_gm.protein.losses import LossConfig
    from multiflow_gm.protein.model_file import load_codesign
    from multiflow_gm.protein.validation import denoising_metrics

    network, process, _, _ = load_codesign(model)
    network.eval()
    metrics = denoising_metrics(network, process, data, cfg, LossConfig())
    return {key: value for key, value in metrics.items() if key.startswith(tuple(f for f, _ in FIGURES))}


def native_strand(data, scale: float) -> float:
    from multiflow_gm.protein.coordinates import frame_batch_from_collated
    from multiflow_gm.protein.validation import strand_fraction

    clean = frame_batch_from_collated(data.batch, scale)
    return strand_fraction(clean.rotations, clean.translations, clean.residue_mask, scale)


def render(rows: dict[str, dict], native: float, times: list[float], chains: int) -> str:
    lines = [f"Clean-structure prediction of {chains} validation chains (60-128 residues) corrupted to each time "
             f"(the same noise for every model; self-conditioned). Natives: DSSP strand {native:.3f}.", ""]
    for key, label in FIGURES:
        lines += [f"**{label}**", "", "| model | " + " | ".join(f"t = {t:g}" for t in times) + " |",
                  "|---|" + "---:|" * len(times)]
        for name, row in rows.items():
            cells = [row.get(f"{key}_t{t:g}") for t in times]
            lines.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--times", type=float, nargs="+", default=[0.3, 0.5, 0.65, 0.8, 0.95])
    parser.add_argument("--chains", type=int, default=32)
    parser.add_argument("--cache", default="cache/all")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    missing = [str(m) for m in args.models if not m.is_file()]
    if missing:
        parser.error(f"no such model: {', '.join(missing)}")
    if not (Path(args.cache) / "splits.csv").is_file():
        parser.error(f"no split cache at {args.cache} (multiflow-gm preprocess, then multiflow-gm split)")
    if not all(0.0 < t < 1.0 for t in args.times):
        parser.error("--times must lie in (0, 1)")

    import torch

    from multiflow_gm.atomic_files import atomic_write_bytes
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.data.splits import split_of
    from multiflow_gm.protein.model_file import load_codesign
    from multiflow_gm.protein.validation import ValidationConfig, ValidationSet

    torch.set_num_threads(args.threads)
    cfg = ValidationConfig(num_chains=args.chains, times=tuple(args.times))
    data = ValidationSet.from_cache(split_of(ChainCache(args.cache), "val").filter_length(60, 128), cfg)
    native = native_strand(data, load_codesign(args.models[0])[1].cfg.translation_scale)
    rows = {}
    for model in args.models:
        rows[str(model)] = measure(model, data, cfg)
        print(model, json.dumps({k: round(v, 3) for k, v in rows[str(model)].items()}), flush=True)
    text = render(rows, native, args.times, args.chains)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "table.md", text.encode())
    payload = {"times": args.times, "chains": args.chains, "native_dssp_strand": native, "rows": rows}
    atomic_write_bytes(args.out / "table.json", (json.dumps(payload, indent=1) + "\n").encode())
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
