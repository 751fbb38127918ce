"""Assemble and run co-design training: data, Lightning trainer, callbacks, checkpoints, export, plots.

The callbacks carry the run's state besides the weights: :class:`EMACallback` the weight
average (exported as ``model_ema.safetensors`` and validated), :class:`BatchCounter` the
number of batches consumed (data order and step seeds). Both write into the checkpoint's
``"multiflow_gm"`` entry, next to the module's ``skipped_batches``.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from multiflow_gm.atomic_files import atomic_write_json
from multiflow_gm.config import save_config, to_dict
from multiflow_gm.errors import ConfigError, MissingResourceError
from multiflow_gm.protein.model_file import export_weights
from multiflow_gm.training.checkpoints import AtomicCheckpointIO
from multiflow_gm.training.ema_callback import EMACallback
from multiflow_gm.training.interrupts import GracefulInterrupt
from multiflow_gm.training.plots import plot_loss_curves
from multiflow_gm.training.metrics_log import merge_metrics, set_aside_metrics
from multiflow_gm.training.protein.config import TrainConfig
from multiflow_gm.training.protein.data import CoDesignData, training_chains
from multiflow_gm.training.protein.module import CoDesignModule, parameter_count
from multiflow_gm.training.run_lock import exclusive_run_dir, is_launching_process
from multiflow_gm.training.step_sampler import BatchCounter


def _validation_callback(cfg: TrainConfig, cache_dir: Path, out_dir: Path, ema: EMACallback):
    """The validation callback, or None when validation is off or the cache has no split."""
    from multiflow_gm.protein.data.splits import read_splits
    from multiflow_gm.protein.validation import ValidationSet
    from multiflow_gm.training.protein.validation_callback import ValidationCallback

    if cfg.validation.every_steps <= 0:
        return None
    if not cfg.data.use_split or read_splits(cache_dir) is None:
        print(f"validation off: {cache_dir} has no splits.csv (make one with `multiflow-gm split`)")
        return None
    chains = training_chains(cfg, cache_dir, "val")
    print(f"validation: {len(chains)} chains of the val split, every {cfg.validation.every_steps} steps")
    return ValidationCallback(ValidationSet.from_cache(chains, cfg.validation), out_dir, ema)


# Parts a config may add on top of a trained trunk (they start from their initialisation;
# the backbone-pair edge projection and the decoder's output start at zero, so the
# network's function is unchanged).
OPTIONAL_HEADS = ("jump_intensity.", "edges.backbone.", "sequence_decoder.")


def _initialise_from(module: CoDesignModule, path: str) -> None:
    """Load exported weights into the network (the EMA callback then starts from them, without warmup)."""
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


def _initialise_decoder_from(module: CoDesignModule, path: str) -> None:
    """Load a separately trained sequence decoder (all of its tensors must match)."""
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise ConfigError(f"decoder_init_from: no such file {path}")
    try:
        module.network.sequence_decoder.load_state_dict(load_file(path))
    except RuntimeError as error:
        raise ConfigError(f"decoder_init_from {path}: weights do not match model.decoder_*: {error}") from None
    print(f"decoder_init_from: sequence decoder loaded from {path}")


def _checkpoint_dir(out_dir: Path) -> Path:
    return out_dir / "checkpoints"


def latest_checkpoint(out_dir: Path) -> Path | None:
    last = _checkpoint_dir(out_dir) / "last.ckpt"
    return last if last.is_file() else None


def _final_validation(callback, module, step: int, out_dir: Path) -> list[dict]:
    """Validate the final weights unless the last validation was at this step; all rows."""
    from multiflow_gm.training.protein.validation_callback import VALIDATION_FILE, read_validation

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
    # Only the launching process locks: DDP's other ranks write the same directory by design.
    with exclusive_run_dir(out_dir) if is_launching_process() else nullcontext(out_dir):
        return _fit(cfg, cache_dir, out_dir, ckpt_path, extra_callbacks, enable_progress_bar)


def _fit(cfg: TrainConfig, cache_dir: Path, out_dir: Path, ckpt_path: Path | None, extra_callbacks,
         enable_progress_bar: bool) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "config.yaml")
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    L.seed_everything(cfg.trainer.seed, workers=True, verbose=False)
    module = CoDesignModule(to_dict(cfg))
    initialised = bool(cfg.init_from) and ckpt_path is None
    if initialised:
        _initialise_from(module, cfg.init_from)
    if cfg.decoder_init_from and ckpt_path is None:
        _initialise_decoder_from(module, cfg.decoder_init_from)
    # Trained weights need no warmup of the average; a resumed run takes the flag from its checkpoint.
    ema = EMACallback(cfg.optim.ema_decay, warmup=not initialised)
    counter = BatchCounter()
    data = CoDesignData(cfg, cache_dir)
    validation = _validation_callback(cfg, cache_dir, out_dir, ema)
    # The EMA first: the validation callback reads the average this batch has just updated
    # (Lightning moves ModelCheckpoint to the end itself).
    extra_callbacks = (ema, counter, *extra_callbacks)
    if validation is not None:
        extra_callbacks = (*extra_callbacks, validation)
    checkpoint = ModelCheckpoint(dirpath=_checkpoint_dir(out_dir), filename="step{step:07d}",
                                 every_n_train_steps=cfg.trainer.checkpoint_every, save_last=True,
                                 save_top_k=1, auto_insert_metric_name=False,
                                 # A run directory copied or moved elsewhere must still overwrite
                                 # last.ckpt; Lightning would otherwise write last-v1.ckpt, which a
                                 # resume never reads.
                                 enable_version_counter=False)
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
    if ckpt_path is not None and trainer.global_rank == 0:
        set_aside_metrics(out_dir / "logs")
    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    seconds = time.perf_counter() - start
    final = _checkpoint_dir(out_dir) / "last.ckpt"
    # Full state (optimiser, callbacks) so a resume continues exactly; collective: every rank calls it.
    trainer.save_checkpoint(final, weights_only=False)
    if trainer.global_rank != 0:
        return {}
    validation_rows = _final_validation(validation, module, trainer.global_step, out_dir)
    export = export_weights(ema.shadow, to_dict(cfg), out_dir / "model_ema.safetensors",
                            extra={"global_step": trainer.global_step, "batches_consumed": counter.value})
    merge_metrics(out_dir / "logs")
    plot = plot_loss_curves(out_dir / "logs" / "metrics.csv", out_dir / "loss_curve.png")
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    summary = {"steps": trainer.global_step, "batches_consumed": counter.value,
               "skipped_batches": module.skipped_batches, "seconds": seconds,
               "parameters": parameter_count(module.network), "checkpoint": str(final),
               "model": str(export), "loss_curve": str(plot) if plot else None, "last_metrics": metrics,
               "validation": validation_rows,
               "validation_seconds": validation.seconds if validation is not None else 0.0,
               "interrupted_by": interrupt.received}
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
