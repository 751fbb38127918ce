"""Training throughput of the sequence decoder alone (`multiflow-gm pretrain-decoder`), float32
against bf16 autocast, on real batches of a cache's training split.

Each setting runs the pretraining step itself (corruption, forward, loss, backward, clipping,
AdamW) on the same batches after a warm-up, and reports the median seconds per step,
steps/s and residues/s; the ratio to float32 is the speed-up. JSON out.

    python scripts/bench_decoder.py --data cache/all --threads 1 --steps 40 --out results/bench_decoder.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _batches(cache_dir: Path, settings, count: int) -> list[dict]:
    from multiflow_gm.protein.data.batching import LengthBatchSampler, collate_chains
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.data.dataset import ProteinChainDataset
    from multiflow_gm.protein.data.splits import split_of

    train = split_of(ChainCache(cache_dir), "train").filter_length(settings.min_length, settings.max_length)
    dataset = ProteinChainDataset(train, seed=0)
    sampler = LengthBatchSampler(dataset.lengths, squared_residue_budget=settings.squared_residue_budget,
                                 max_batch_size=64, mode="same_length", seed=0)
    batches = []
    for indices in sampler:
        batches.append(collate_chains([dataset[i] for i in indices]))
        if len(batches) == count:
            return batches
    return batches


def time_setting(batches: list[dict], settings, warmup: int) -> dict:
    import torch

    from multiflow_gm.protein.model.sequence_decoder import SequenceDecoder
    from multiflow_gm.training.protein.decoder_pretraining import _training_step

    torch.manual_seed(0)
    decoder = SequenceDecoder(settings.context_width, settings.hidden, settings.layers, settings.knn,
                              oxygen=settings.oxygen)
    optimiser = torch.optim.AdamW(decoder.parameters(), lr=settings.lr)
    generator = torch.Generator().manual_seed(0)
    seconds, residues = [], []
    for step, batch in enumerate(batches):
        start = time.perf_counter()
        _training_step(decoder, optimiser, batch, generator, settings, step, {})
        if step >= warmup:
            seconds.append(time.perf_counter() - start)
            residues.append(int(batch["residue_mask"].sum()))
    return {"steps": len(seconds), "median_step_s": statistics.median(seconds),
            "steps_per_s": len(seconds) / sum(seconds), "residues_per_s": sum(residues) / sum(seconds),
            "mean_residues_per_batch": statistics.mean(residues)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="preprocessed cache with splits.csv")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--knn", type=int, default=30)
    parser.add_argument("--budget", type=int, default=40_000, help="squared_residue_budget (chains per batch)")
    parser.add_argument("--no-oxygen", action="store_true", help="16 distances per pair instead of 25")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from multiflow_gm.training.protein.decoder_pretraining import DecoderPretraining

    torch.set_num_threads(args.threads)
    common = dict(layers=args.layers, knn=args.knn, oxygen=not args.no_oxygen, warmup_steps=0,
                  squared_residue_budget=args.budget)
    batches = _batches(args.data, DecoderPretraining(**common), args.steps + args.warmup)
    result = {"threads": args.threads, "machine": platform.processor() or platform.machine(), **common,
              "settings": {}}
    for precision in ("32-true", "bf16-mixed"):
        result["settings"][precision] = time_setting(batches, DecoderPretraining(precision=precision, **common),
                                                     args.warmup)
        print(precision, json.dumps(result["settings"][precision]), flush=True)
    base = result["settings"]["32-true"]["median_step_s"]
    result["bf16_speedup"] = base / result["settings"]["bf16-mixed"]["median_step_s"]
    print(json.dumps(result, indent=1))
    if args.out:
        from multiflow_gm.atomic_files import atomic_write_json
        atomic_write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
