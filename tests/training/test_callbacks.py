"""The generic training callbacks on a small manual-optimisation module: the EMA moves only on
optimiser steps, the batch counter counts every batch, and both save into and restore from the
checkpoint's ``"multiflow_gm"`` entry. The generic modules import no workload."""

import ast
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from multiflow_gm.training.ema_callback import EMACallback
from multiflow_gm.training.step_sampler import BatchCounter, batch_counter

TRAINING = Path(__file__).resolve().parents[2] / "multiflow_gm" / "training"
SKIPPED = 2  # index of the batch whose optimiser step is left out


class _Manual(L.LightningModule):
    """``network``: Linear(4, 1); batch ``SKIPPED`` takes no optimiser step (like a non-finite loss)."""

    def __init__(self):
        super().__init__()
        self.network = torch.nn.Linear(4, 1)
        self.automatic_optimization = False
        self.seen = []

    def training_step(self, batch, batch_idx):
        index = batch_counter(self.trainer).value - 1
        self.seen.append(index)
        if index == SKIPPED:
            return None
        optimizer = self.optimizers()
        (x,) = batch
        self.manual_backward(self.network(x).pow(2).mean())
        optimizer.step()
        optimizer.zero_grad()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(module, callbacks, max_steps):
    trainer = L.Trainer(max_steps=max_steps, max_epochs=-1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=callbacks)
    trainer.fit(module, DataLoader(TensorDataset(torch.randn(32, 4)), batch_size=4))
    return trainer


def test_ema_updates_per_optimiser_step_and_counter_per_batch(tmp_path, single_thread):
    module, ema, counter = _Manual(), EMACallback(0.5, warmup=False), BatchCounter()
    trainer = _fit(module, [ema, counter], max_steps=4)
    assert module.seen == [0, 1, 2, 3, 4]      # 5 batches for 4 steps: one was skipped
    assert counter.value == 5 and trainer.global_step == 4 and ema.ema.num_updates == 4
    assert not torch.equal(ema.shadow["weight"], module.network.weight.detach())
    with ema.swapped_into(module.network):
        assert torch.equal(module.network.weight, ema.shadow["weight"])
    assert not torch.equal(module.network.weight.detach(), ema.shadow["weight"])

    trainer.save_checkpoint(tmp_path / "last.ckpt")
    ckpt = torch.load(tmp_path / "last.ckpt", weights_only=True)
    state = ckpt["multiflow_gm"]
    assert state["batches_consumed"] == 5 and state["ema"]["num_updates"] == 4
    assert set(state["ema"]) == {"decay", "warmup", "num_updates", "shadow"}
    assert "callbacks" not in ckpt or not any("EMA" in k or "BatchCounter" in k for k in ckpt["callbacks"])

    # Resuming restores both from that entry and continues the count.
    resumed, ema2, counter2 = _Manual(), EMACallback(0.5, warmup=False), BatchCounter()
    trainer2 = L.Trainer(max_steps=5, max_epochs=-1, accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[ema2, counter2])
    trainer2.fit(resumed, DataLoader(TensorDataset(torch.randn(32, 4)), batch_size=4),
                 ckpt_path=tmp_path / "last.ckpt")
    assert trainer2.global_step == 5 and counter2.value == 6 and ema2.ema.num_updates == 5


def test_generic_training_modules_import_no_workload():
    for name in ("ema.py", "ema_callback.py", "step_sampler.py", "checkpoints.py", "interrupts.py", "plots.py"):
        tree = ast.parse((TRAINING / name).read_text())
        imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        workload = [m for m in imported if m.startswith(("multiflow_gm.protein", "multiflow_gm.images",
                                                         "multiflow_gm.training.protein",
                                                         "multiflow_gm.training.images"))]
        assert not workload, (name, workload)
