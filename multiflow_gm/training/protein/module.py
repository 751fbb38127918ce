"""Lightning module for co-design training: manual optimisation with guards.

Every random choice of a training step (times, tasks, noise, self-conditioning)
comes from a generator seeded by ``(seed, batches consumed, rank)``, and the data
order is indexed the same way (:mod:`multiflow_gm.training.step_sampler`), so a
resumed run repeats an uninterrupted one exactly. The batch count lives in the
trainer's :class:`~multiflow_gm.training.step_sampler.BatchCounter` callback and the
weight average in its :class:`~multiflow_gm.training.ema_callback.EMACallback`; the
module keeps only the network, the process and the number of skipped batches. A batch
whose loss or gradients are not finite is skipped and counted (all ranks agree before
stepping).
"""

from __future__ import annotations

import lightning as L
import torch

from multiflow_gm.config import from_dict, migrate
from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.protein.coordinates import frame_batch_from_collated
from multiflow_gm.protein.losses import codesign_losses
from multiflow_gm.protein.model.network import CoDesignNetwork
from multiflow_gm.protein.alphabet import NUM_AMINO_ACIDS
from multiflow_gm.protein.process import CoDesignProcess
from multiflow_gm.protein.seeding import seed_from
from multiflow_gm.training.protein.config import TrainConfig
from multiflow_gm.training.step_sampler import BatchCounter, batch_counter

TIME_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return seeded_generator(seed_from(seed, step, rank))


class CoDesignModule(L.LightningModule):
    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg: TrainConfig = from_dict(TrainConfig, migrate(TrainConfig, config))
        self.network = CoDesignNetwork(self.cfg.model)
        freeze_parameters(self.network, self.cfg.optim.frozen)  # a wrong prefix fails here, at start
        self.process = CoDesignProcess(self.cfg.process)
        self.skipped_batches = 0
        self.automatic_optimization = False

    @property
    def counter(self) -> BatchCounter:
        """The trainer's batch counter; inside ``training_step`` it already counts the current batch."""
        return batch_counter(self.trainer)

    # -- forward pieces ---------------------------------------------------------------
    def _network_inputs(self, noisy, sc=None):
        return dict(aatype=noisy["aatype_t"], rotations=noisy["rot_t"], translations=noisy["trans_t"],
                    t_struct=noisy["t_struct"], t_seq=noisy["t_seq"], residue_index=noisy["residue_index"],
                    residue_mask=noisy["residue_mask"],
                    sc_translations=None if sc is None else sc[0], sc_probs=None if sc is None else sc[1])

    def compute_losses(self, batch, generator):
        """Losses of a collated batch (Angstrom; it becomes a frame batch in nm here)."""
        clean = frame_batch_from_collated(batch, self.process.cfg.translation_scale)
        size = clean.aatype.shape[0]
        t_struct, t_seq, task = self.process.sample_times(size, generator)
        device = clean.aatype.device
        t_struct, t_seq = t_struct.to(device), t_seq.to(device)
        noisy = self.process.corrupt(clean, t_struct, t_seq, generator)
        sc = None
        if self.cfg.self_condition and torch.rand((), generator=generator) < 0.5:
            with torch.no_grad():
                first = self.network(**self._network_inputs(noisy))
            sc = (first["translations"].detach(), torch.softmax(first["logits"][..., :NUM_AMINO_ACIDS], -1).detach())
        pred = self.network(**self._network_inputs(noisy, sc))
        losses = codesign_losses(self.process, noisy, pred, self.cfg.loss)
        return losses, t_struct, task

    # -- training -----------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        step = self.counter.value - 1  # the counter callback counted this batch on its start
        generator = step_generator(self.cfg.trainer.seed, step, self.global_rank)
        losses, t_struct, task = self.compute_losses(batch, generator)
        loss = losses["total"].mean()
        optimizer = self.optimizers()
        if self._any_rank(not bool(torch.isfinite(loss))):
            return self._skip("loss")
        self.manual_backward(loss)
        grads_ok = all(torch.isfinite(p.grad).all() for p in self.network.parameters() if p.grad is not None)
        if self._any_rank(not grads_ok):
            optimizer.zero_grad(set_to_none=True)
            return self._skip("gradients")
        self._set_learning_rate(optimizer)
        if self.cfg.optim.grad_clip > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.cfg.optim.grad_clip,
                                gradient_clip_algorithm="norm")
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self._log_losses(losses, t_struct, task, batch)
        return loss.detach()

    def _any_rank(self, flag: bool) -> bool:
        if self.trainer is None or self.trainer.world_size == 1:
            return flag
        return bool(self.trainer.strategy.reduce_boolean_decision(flag, all=False))

    def _skip(self, what: str):
        self.skipped_batches += 1
        self.log("train/skipped_batches", float(self.skipped_batches), on_step=True, prog_bar=True)
        self.print(f"skipped batch {self.counter.value - 1}: non-finite {what} "
                   f"({self.skipped_batches} skipped so far)")
        return None

    def _set_learning_rate(self, optimizer):
        lr = self.cfg.optim.lr_at(self.global_step, self.cfg.trainer.max_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.log("train/lr", lr, on_step=True)

    def _log_losses(self, losses, t_struct, task, batch):
        for name, value in losses.items():
            self.log(f"train/{name}", value.mean(), on_step=True, prog_bar=name == "total",
                     batch_size=value.shape[0])
        codesign = task.to(t_struct.device) == 0
        for lo, hi in zip(TIME_BINS[:-1], TIME_BINS[1:]):
            in_bin = codesign & (t_struct >= lo) & (t_struct < hi)
            if in_bin.any():
                for name in ("translation", "rotation", "aatype"):
                    self.log(f"train_by_t/{name}_t{lo:.2f}-{hi:.2f}", losses[name][in_bin].mean(),
                             on_step=True, batch_size=int(in_bin.sum()))
        self.log("train/residues", float(batch["residue_mask"].sum()), on_step=True, reduce_fx="sum")

    def configure_optimizers(self):
        o = self.cfg.optim
        trainable = [p for p in self.network.parameters() if p.requires_grad]
        return torch.optim.AdamW(trainable, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)

    # -- checkpoint state -----------------------------------------------------------------
    # The callbacks' hooks run first and fill ``checkpoint["multiflow_gm"]`` with "ema" and
    # "batches_consumed"; the module adds its own count next to them.
    def on_save_checkpoint(self, checkpoint):
        checkpoint.setdefault("multiflow_gm", {})["skipped_batches"] = self.skipped_batches

    def on_load_checkpoint(self, checkpoint):
        self.skipped_batches = int(checkpoint["multiflow_gm"]["skipped_batches"])


def freeze_parameters(network: torch.nn.Module, prefixes: list[str]) -> None:
    """Turn off gradients of parameters whose names start with one of ``prefixes``.

    A prefix that names no parameter is a config mistake (a typo would silently train
    everything), so it raises with the key and the network's top-level modules.
    """
    names = [name for name, _ in network.named_parameters()]
    for prefix in prefixes:
        if not any(_under(name, prefix) for name in names):
            tops = sorted({name.split(".")[0] for name in names})
            raise ValueError(f"optim.frozen: {prefix!r} names no parameter of the network; "
                             f"its modules are {tops}")
    for name, param in network.named_parameters():
        param.requires_grad_(not any(_under(name, prefix) for prefix in prefixes))


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix.rstrip(".") + ".")


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
