"""SIGINT / SIGTERM during a Lightning fit stop it after the current step, so the caller's
normal end path runs: the dummy fit returns, and the real ``train`` writes its checkpoint,
``summary.json`` and EMA export."""

import json
import os
import signal
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from multiflow_gm.training.interrupts import GracefulInterrupt

TINY = Path(__file__).resolve().parents[2] / "configs" / "protein" / "tiny.yaml"


class _Dummy(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        (x,) = batch
        return self.layer(x).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class _SignalAt(L.Callback):
    """Sends ``signum`` to this process once, at the end of optimiser step ``step``."""

    def __init__(self, step: int, signum: int):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def _fit(callbacks, max_steps=200):
    trainer = L.Trainer(max_steps=max_steps, max_epochs=-1, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=callbacks)
    data = DataLoader(TensorDataset(torch.randn(64, 4)), batch_size=4)
    trainer.fit(_Dummy(), data)
    return trainer


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_fit_after_the_current_step(signum, single_thread):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupt = GracefulInterrupt(log=lambda message: None)
    trainer = _fit([interrupt, _SignalAt(3, signum)])
    assert interrupt.received == signal.Signals(signum).name
    # The signal arrives after this step's stop check, so the next step is the last one.
    assert trainer.global_step == 4
    assert trainer.state.status.value == "finished"  # fit returned normally: the caller's end path runs
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored


def test_without_a_signal_the_fit_runs_to_max_steps(single_thread):
    interrupt = GracefulInterrupt(log=lambda message: None)
    assert _fit([interrupt], max_steps=10).global_step == 10 and interrupt.received is None


def test_second_ctrl_c_aborts_at_once():
    interrupt = GracefulInterrupt(log=lambda message: None)
    interrupt._handle(signal.SIGINT, None)
    with pytest.raises(KeyboardInterrupt):
        interrupt._handle(signal.SIGINT, None)


def _compact_cache(compact_backbone, directory):
    """A chain cache holding one compact 92-residue backbone (passes the default filters)."""
    from multiflow_gm.protein.data.preprocess import run_preprocess
    from multiflow_gm.protein.pdb_writer import write_backbone_pdb

    write_backbone_pdb(directory / "inputs" / "bundle.pdb", compact_backbone, "ALKE" * 23)
    run_preprocess([directory / "inputs"], directory / "cache", workers=1, progress=False)
    return directory / "cache"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_train_writes_summary_checkpoint_and_export(signum, compact_backbone, tmp_path, single_thread):
    from multiflow_gm.config import load_config
    from multiflow_gm.training.protein.config import TrainConfig
    from multiflow_gm.training.protein.trainer import train

    cache = _compact_cache(compact_backbone, tmp_path)
    cfg = load_config(TrainConfig, TINY,
                      ["trainer.threads=1", "trainer.max_steps=500", "trainer.checkpoint_every=1000"])
    out = tmp_path / "run"
    # `train` installs its own GracefulInterrupt; the test only sends the signal.
    summary = train(cfg, cache, out, extra_callbacks=[_SignalAt(2, signum)], enable_progress_bar=False)
    assert summary["steps"] == 3
    assert summary["interrupted_by"] == signal.Signals(signum).name
    assert json.loads((out / "summary.json").read_text())["steps"] == 3
    assert (out / "model_ema.safetensors").stat().st_size > 0
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")
    assert checkpoint["global_step"] == 3
    assert not list(out.rglob(".*.tmp"))
    assert np.isfinite(summary["seconds"])
