"""Assemble and run co-design training: data, Lightning trainer, checkpoints, export, plots."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader

from multiflow_gm.atomic_files import atomic_write_json
from multiflow_gm.config import save_config, to_dict
from multiflow_gm.errors import ConfigError, MissingResourceError
from multiflow_gm.protein.model_file import export_weights
from multiflow_gm.training.checkpoints import AtomicCheckpointIO
from multiflow_gm.training.ema import EMA
from multiflow_gm.training.interrupts import GracefulInterrupt, ignore_sigint_in_worker
from multiflow_gm.training.plots import plot_loss_curves
from multiflow_gm.training.protein_config import TrainConfig
from multiflow_gm.training.protein_module import CoDesignModule, parameter_count
from multiflow_gm.training.step_sampler import StepBatchSampler


class CoDesignData(L.LightningDataModule):
    """Training batches from a chain cache, sharded by rank and indexed by batches consumed."""

    def __init__(self, cfg: TrainConfig, cache_dir: Path, module: CoDesignModule):
        super().__init__()
        self.cfg, self.cache_dir, self.module = cfg, cache_dir, module

    def train_dataloader(self):
        from multiflow_gm.protein.data.batching import LengthBatchSampler, collate_chains
        from multiflow_gm.protein.data.dataset import ProteinChainDataset

        d = self.cfg.data
        cache = training_chains(self.cfg, self.cache_dir)
        dataset = ProteinChainDataset(cache, seed=self.cfg.trainer.seed, preload=d.preload,
                                      designed_sequence_fraction=d.designed_sequence_fraction)
        if d.designed_sequence_fraction > 0:
            print(f"designed sequences: {dataset.chains_with_designs} of {len(dataset)} training chains have "
                  f"them (`multiflow-gm distill`); the rest keep their native sequence")
        epochs = LengthBatchSampler(
            dataset.lengths, squared_residue_budget=d.squared_residue_budget, max_batch_size=d.max_batch_size,
            mode=d.batching, cluster_ids=dataset.cluster_ids, cluster_weighting=d.cluster_weighting,
            seed=self.cfg.trainer.seed, rank=self.trainer.global_rank, world_size=self.trainer.world_size)
        # Generous total: skipped batches do not count as optimiser steps.
        total = 2 * self.cfg.trainer.max_steps + 1000
        sampler = StepBatchSampler(epochs, self.module.counter, total)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_chains,
                          num_workers=d.num_workers, persistent_workers=d.num_workers > 0,
                          worker_init_fn=ignore_sigint_in_worker if d.num_workers > 0 else None)


def training_chains(cfg: TrainConfig, cache_dir: Path, split: str = "train"):
    """Chains of ``split`` in the training length window (the whole cache without splits.csv)."""
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.data.splits import split_of

    d = cfg.data
    cache = ChainCache(cache_dir)
    if d.use_split:
        cache = split_of(cache, split, required=split != "train")
    cache = cache.filter_length(d.min_length, d.max_length)
    if d.sources and split == "train":  # validation stays the same set whatever the training sources
        cache = cache.subset([i for i, r in enumerate(cache.records) if any(s in r.source for s in d.sources)])
    if len(cache) == 0:
        raise ConfigError(f"no {split} chain in {cache_dir} has a length in "
                          f"[{d.min_length}, {d.max_length}] (data.min_length / data.max_length)")
    return cache


def _validation_callback(cfg: TrainConfig, cache_dir: Path, out_dir: Path):
    """The validation callback, or None when validation is off or the cache has no split."""
    from multiflow_gm.protein.data.splits import read_splits
    from multiflow_gm.protein.validation import ValidationSet
    from multiflow_gm.training.validation_callback import ValidationCallback

    if cfg.validation.every_steps <= 0:
        return None
    if not cfg.data.use_split or read_splits(cache_dir) is None:
        print(f"validation off: {cache_dir} has no splits.csv (make one with `multiflow-gm split`)")
        return None
    chains = training_chains(cfg, cache_dir, "val")
    print(f"validation: {len(chains)} chains of the val split, every {cfg.validation.every_steps} steps")
    return ValidationCallback(ValidationSet.from_cache(chains, cfg.validation), out_dir)


# Heads a config may add on top of a trained trunk (they start from their initialisation).
OPTIONAL_HEADS = ("jump_intensity.",)


def _initialise_from(module: CoDesignModule, path: str) -> None:
    """Load exported weights into the network and restart the EMA from them."""
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise ConfigError(f"init_from: no such file {path}")
    weights = load_file(path)
    missing, unexpected = module.network.load_state_dict(weights, strict=False)
    new_heads = [key for key in missing if key.startswith(OPTIONAL_HEADS)]
    missing = [key for key in missing if key not in new_heads]
    if missing or unexpected:
        raise ConfigError(f"init_from {path}: weights do not match model (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})")
    if new_heads:
        print(f"init_from: {len(new_heads)} tensors of heads the source model lacks start fresh "
              f"({', '.join(sorted({k.split('.')[0] for k in new_heads}))})")
    module.ema = EMA(module.network, module.cfg.optim.ema_decay, warmup=False)


def _checkpoint_dir(out_dir: Path) -> Path:
    return out_dir / "checkpoints"


def latest_checkpoint(out_dir: Path) -> Path | None:
    last = _checkpoint_dir(out_dir) / "last.ckpt"
    return last if last.is_file() else None


def _final_validation(callback, module, step: int, out_dir: Path) -> list[dict]:
    """Validate the final weights unless the last validation was at this step; all rows."""
    from multiflow_gm.training.validation_callback import VALIDATION_FILE, read_validation

    if callback is None:
        return []
    rows = read_validation(out_dir / VALIDATION_FILE)
    if not rows or rows[-1]["step"] < step:
        callback.run(module, step, rows)
    return read_validation(out_dir / VALIDATION_FILE)


def train(cfg: TrainConfig, cache_dir: str | Path, out_dir: str | Path, resume: bool = False,
          extra_callbacks=(), enable_progress_bar: bool = True) -> dict:
    """Train (or resume) and return a summary dict; writes checkpoints, logs, plots, export."""
    cache_dir, out_dir = Path(cache_dir), Path(out_dir)
    if not (cache_dir / "metadata.csv").is_file():
        raise MissingResourceError(f"{cache_dir} is not a preprocessed cache (no metadata.csv); "
                                   f"run `multiflow-gm preprocess` first")
    ckpt_path = latest_checkpoint(out_dir) if resume else None
    if resume and ckpt_path is None:
        print(f"no checkpoint in {_checkpoint_dir(out_dir)}: starting from scratch")
    if not resume and latest_checkpoint(out_dir) is not None:
        raise ConfigError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "config.yaml")
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    module = CoDesignModule(to_dict(cfg))
    if cfg.init_from and ckpt_path is None:
        _initialise_from(module, cfg.init_from)
    data = CoDesignData(cfg, cache_dir, module)
    validation = _validation_callback(cfg, cache_dir, out_dir)
    if validation is not None:
        extra_callbacks = (*extra_callbacks, validation)
    checkpoint = ModelCheckpoint(dirpath=_checkpoint_dir(out_dir), filename="step{step:07d}",
                                 every_n_train_steps=cfg.trainer.checkpoint_every, save_last=True,
                                 save_top_k=1, auto_insert_metric_name=False)
    interrupt = GracefulInterrupt()
    t = cfg.trainer
    trainer = L.Trainer(
        max_steps=t.max_steps, max_epochs=-1, accelerator=t.accelerator, devices=t.devices,
        num_nodes=t.num_nodes, strategy=t.strategy, precision=t.precision,
        max_time={"minutes": t.max_minutes} if t.max_minutes else None,
        logger=[CSVLogger(out_dir, name="logs", version=""), TensorBoardLogger(out_dir, name="tensorboard", version="")],
        callbacks=[checkpoint, interrupt, *extra_callbacks], log_every_n_steps=t.log_every,
        plugins=[AtomicCheckpointIO()], use_distributed_sampler=False,
        enable_progress_bar=enable_progress_bar, enable_model_summary=False, num_sanity_val_steps=0,
        deterministic=False)
    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    seconds = time.perf_counter() - start
    final = _checkpoint_dir(out_dir) / "last.ckpt"
    trainer.save_checkpoint(final)  # collective: every rank calls it, rank 0 writes
    if trainer.global_rank != 0:
        return {}
    validation_rows = _final_validation(validation, module, trainer.global_step, out_dir)
    export = export_weights(module.ema.shadow, to_dict(cfg), out_dir / "model_ema.safetensors",
                            extra={"global_step": trainer.global_step,
                                   "batches_consumed": module.counter.value})
    plot = plot_loss_curves(out_dir / "logs" / "metrics.csv", out_dir / "loss_curve.png")
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    summary = {"steps": trainer.global_step, "batches_consumed": module.counter.value,
               "skipped_batches": module.skipped_batches, "seconds": seconds,
               "parameters": parameter_count(module.network), "checkpoint": str(final),
               "model": str(export), "loss_curve": str(plot) if plot else None, "last_metrics": metrics,
               "validation": validation_rows,
               "validation_seconds": validation.seconds if validation is not None else 0.0,
               "interrupted_by": interrupt.received}
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
