"""Gradient norm of each weighted loss term of the protein recipe, on training batches.

    python scripts/loss_gradient_norms.py MODEL.safetensors [--config configs/protein/small.yaml]
        [--set KEY=VALUE ...] [--batches 12] [--out grad_norms.json]

Every term's own gradient is taken over the whole network (one backward each, with the
recipe's weight), alongside the total's. Training clips the total's norm
(``optim.grad_clip``), so a term whose norm is a small share of a clipped total learns at
that share of the learning rate: this shows which term the update is spent on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TERMS = {"translation": "translation_weight", "rotation": "rotation_weight", "aatype": "aatype_weight",
         "auxiliary": "aux_weight", "clash": "clash_weight", "bond": "bond_weight"}


def main(argv=None) -> int:
    from safetensors.torch import load_file

    from multiflow_gm.config import load_config, to_dict
    from multiflow_gm.protein.data.batching import collate_chains
    from multiflow_gm.protein.data.dataset import ProteinChainDataset
    from multiflow_gm.core.seeding import seeded_generator
    from multiflow_gm.protein.seeding import seed_from
    from multiflow_gm.training.protein.config import TrainConfig
    from multiflow_gm.training.protein.data import training_chains
    from multiflow_gm.training.protein.module import CoDesignModule

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="exported weights (.safetensors)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "protein" / "small.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--data", type=Path, default=ROOT / "cache" / "all")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config(TrainConfig, args.config, args.set)
    module = CoDesignModule(to_dict(cfg))
    module.network.load_state_dict(load_file(args.model), strict=False)
    chains = training_chains(cfg, args.data, "train")
    dataset = ProteinChainDataset(chains, seed=0, designed_sequence_fraction=cfg.data.designed_sequence_fraction)
    rng = np.random.default_rng(0)
    rows = []
    for b in range(args.batches):
        batch = collate_chains([dataset[int(i)] for i in rng.choice(len(dataset), args.batch_size, replace=False)])
        losses, t_struct, _ = module.compute_losses(batch, seeded_generator(seed_from(b)))
        row = {"t_struct": [round(float(t), 3) for t in t_struct]}
        for name in [*TERMS, "total"]:
            if name not in losses:
                continue
            weight = 1.0 if name == "total" else getattr(cfg.loss, TERMS[name])
            module.network.zero_grad()
            (weight * losses[name].mean()).backward(retain_graph=True)
            grads = [p.grad for p in module.network.parameters() if p.grad is not None]
            row[name] = float(torch.sqrt(sum((g ** 2).sum() for g in grads))) if grads else 0.0
        rows.append(row)
        print(b, json.dumps(row), flush=True)
    names = [k for k in rows[0] if k != "t_struct"]
    median = {k: float(np.median([r[k] for r in rows])) for k in names}
    print("median gradient norm per term:", json.dumps({k: round(v, 3) for k, v in median.items()}),
          f"(clip {cfg.optim.grad_clip})")
    if args.out:
        args.out.write_text(json.dumps({"model": str(args.model), "median": median, "batches": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
