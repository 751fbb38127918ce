"""Training resumes exactly; the bench-images command runs end to end on digits and resumes."""

import json

import pytest
import torch

from multiflow_gm.cli.main import main
from multiflow_gm.config import from_dict, to_dict
from multiflow_gm.errors import UserError
from multiflow_gm.images.config import ImageBenchConfig, preset
from multiflow_gm.images.datasets import load_dataset
from multiflow_gm.training.images.trainer import ImageTrainer

pytest.importorskip("sklearn")

TINY_MODEL = ["model.base_channels=8", "model.channel_mults=[1, 2]", "model.attention_heads=2",
              "model.groups=4", "jump.bins=8"]


def _tiny_config(**train):
    data = to_dict(preset("digits"))
    data["model"].update(base_channels=8, channel_mults=[1, 2], attention_heads=2, groups=4)
    data["jump"]["bins"] = 8
    data["train"].update(batch_size=16, warmup_steps=2, **train)
    return from_dict(ImageBenchConfig, data)


def test_training_in_two_pieces_equals_training_at_once(tmp_path):
    config = _tiny_config()
    data = load_dataset(config.data)
    whole = ImageTrainer(config, "flow_jump", data, tmp_path / "whole.pt", progress=False)
    whole.train_to(4)
    first = ImageTrainer(config, "flow_jump", data, tmp_path / "pieces.pt", progress=False)
    first.train_to(2)
    resumed = ImageTrainer(config, "flow_jump", data, tmp_path / "pieces.pt", progress=False)
    assert resumed.step == 2
    resumed.train_to(4)
    for (name, a), b in zip(whole.net.state_dict().items(), resumed.net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    for name in whole.ema.shadow:
        torch.testing.assert_close(whole.ema.shadow[name], resumed.ema.shadow[name], rtol=0, atol=0)
    # A checkpoint never silently meets other settings.
    with pytest.raises(UserError, match="model.base_channels"):
        other = _tiny_config()
        other.model.base_channels = 16
        ImageTrainer(other, "flow_jump", data, tmp_path / "pieces.pt", progress=False)


def test_cosine_schedule_sets_each_step_rate_and_guards_resume(tmp_path):
    config = _tiny_config(schedule="cosine", decay_start=2, decay_end=6, final_lr_fraction=0.1, lr=1e-3)
    data = load_dataset(config.data)
    trainer = ImageTrainer(config, "flow", data, tmp_path / "cosine.pt", progress=False)
    rates = [trainer._lr(step) for step in range(9)]
    assert rates[0] == pytest.approx(5e-4)                      # warm-up over 2 steps
    assert rates[1] == rates[2] == pytest.approx(1e-3)          # held until decay_start
    assert rates[4] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # halfway down the half cosine
    assert rates[6] == rates[8] == pytest.approx(1e-4)          # the floor, then held
    trainer.train_to(3)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(rates[2])
    # A checkpoint of one schedule does not resume under another.
    other = _tiny_config(schedule="cosine", decay_start=2, decay_end=8, final_lr_fraction=0.1, lr=1e-3)
    with pytest.raises(UserError, match="train.decay_end"):
        ImageTrainer(other, "flow", data, tmp_path / "cosine.pt", progress=False)


def test_constant_schedule_keeps_the_fingerprint_of_earlier_networks():
    from multiflow_gm.images.config import network_fingerprint

    assert "schedule" not in network_fingerprint(_tiny_config())["train"]
    assert network_fingerprint(_tiny_config(schedule="cosine", decay_end=10))["train"]["decay_end"] == 10


@pytest.mark.parametrize("train,key", [({"schedule": "cosine", "decay_start": 5, "decay_end": 5}, "train.decay_end"),
                                       ({"schedule": "linear"}, "train.schedule"),
                                       ({"final_lr_fraction": 2.0}, "train.final_lr_fraction")])
def test_bad_schedule_settings_name_the_key(train, key):
    with pytest.raises(Exception, match=key):
        _tiny_config(**train)


def test_networks_train_side_by_side_but_an_evaluation_waits_for_them(tmp_path):
    from multiflow_gm.training.images.benchmark import run_benchmark
    from multiflow_gm.training.run_lock import RunDirectoryBusy, exclusive_run_dir

    config = _tiny_config(steps=2)
    run = tmp_path / "run"
    with exclusive_run_dir(run, ".lock-jump"):  # as if another process trained the jump network
        result = run_benchmark(config, ["flow"], [2], run, log=lambda _: None, progress=False, train_only=True)
        assert result["networks"]["flow"]["steps"] == 2
        with pytest.raises(RunDirectoryBusy, match="lock-jump"):
            run_benchmark(config, ["jump"], [2], run, log=lambda _: None, progress=False)
    assert not (run / "checkpoints" / "jump.pt").exists()


def _command(out, *extra):
    return ["bench-images", "--dataset", "digits", "--models", "flow", "jump", "superposition", "mixed",
            "superposition-2net",
            "--nfe", "3", "6", "--out", str(out), "--train-steps", "12", "--num-samples", "40",
            "--threads", "1", "--no-progress", "--set", "eval.classifier_steps=60",
            "--set", "train.snapshot_every=6", "--set", "eval.curve_samples=20", "--set", "eval.curve_nfe=3",
            "--set", "train.batch_size=16", *[a for o in TINY_MODEL for a in ("--set", o)], *extra]


def test_bench_images_end_to_end_on_digits_and_resume(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(_command(out)) == 0
    printed = capsys.readouterr().out
    assert "held-out real images (floor)" in printed and "not FID" in printed
    results = json.loads((out / "results.json").read_text())
    assert list(results["models"]) == ["flow", "jump", "superposition", "mixed", "superposition-2net"]
    two_nets = results["models"]["superposition-2net"]
    assert two_nets["network_step"] == [12, 12] and two_nets["cells"]["3"]["network_calls"] == 6
    for name, model in results["models"].items():
        for cell in model["cells"].values():
            low, high = cell["interval"]
            assert low <= high and (name == "flow") != ("minus_baseline" in cell)
    assert results["floor_interval"][0] <= results["floor"] <= results["floor_interval"][1] * 1.5
    assert results["metric"]["kind"] == "classifier_fd" and 0 <= results["metric"]["classifier_test_accuracy"] <= 1
    for name, model in results["models"].items():
        assert set(model["cells"]) == {"3", "6"}
        for nfe, cell in model["cells"].items():
            assert cell["distance"] >= 0 and cell["nfe_used"] <= int(nfe)
        assert (out / f"samples_{name}.png").stat().st_size > 1000
    assert results["models"]["mixed"]["cells"]["6"]["nfe_used"] == 5     # 3 Heun steps
    assert results["floor"] > 0 and results["networks"]["flow_jump"]["steps"] == 12
    md = (out / "results.md").read_text()
    assert "| model | NFE 3 | NFE 6 |" in md and "| superposition |" in md
    assert "## Difference to flow at the same NFE" in md
    for network in ("flow", "jump", "flow_jump"):
        state = torch.load(out / "checkpoints" / f"{network}.pt", weights_only=True)
        assert state["step"] == 12

    # A rerun loads everything and recomputes nothing.
    assert main(_command(out)) == 0
    log = capsys.readouterr().out
    assert "loaded checkpoint at step 12" in log and "classifier loaded from cache" in log
    assert " NFE 3: " not in log
    assert json.loads((out / "results.json").read_text())["models"] == results["models"]

    # More steps continue training; only the changed networks' cells are redone.
    assert main(_command(out, "--train-steps", "14", "--models", "flow", "--nfe", "3")) == 0
    rerun = json.loads((out / "results.json").read_text())
    assert rerun["models"]["flow"]["network_step"] == 14 and list(rerun["models"]) == ["flow"]

    # One row per constant flow weight; rows of unchanged networks reuse nothing stale.
    assert main(_command(out, "--models", "flow", "superposition", "--alpha", "0.3", "0.7", "--nfe", "3")) == 0
    swept = json.loads((out / "results.json").read_text())
    assert list(swept["models"]) == ["flow", "superposition a=0.3", "superposition a=0.7"]
    assert swept["models"]["superposition a=0.3"]["alpha"] == 0.3
    assert (out / "features" / "superposition_a0.3_nfe3.npz").is_file() and (out / "alpha_sweep.png").is_file()

    # Training curves from the EMA snapshots (steps 6 and 12; flow also 14 is not a multiple).
    assert main(_command(out, "--curves", "--models", "flow", "superposition")) == 0
    curves = json.loads((out / "curves.json").read_text())
    assert [p["step"] for p in curves["curves"]["flow"]] == [6, 12]
    assert [p["step"] for p in curves["curves"]["flow_jump"]] == [6, 12]
    assert set(curves["curves"]["flow_jump"][0]["held_out_loss"]) == {"flow", "jump", "total"}
    assert (out / "curves.png").stat().st_size > 1000 and curves["summary"]["flow"]["snapshots"] == 2
    assert (out / "curve_features" / "flow_0000012.npz").is_file()   # kept for paired flatness tests


def test_bad_command_input_is_one_line_error(tmp_path, capsys):
    assert main(_command(tmp_path / "x", "--set", "sampling.alpha=[1.5, 0.0]")) == 2
    assert "alpha values must lie in [0, 1]" in capsys.readouterr().err
    assert main(_command(tmp_path / "x", "--set", "model.widht=3")) == 2
    assert "unknown config key 'model.widht'" in capsys.readouterr().err
    assert main(_command(tmp_path / "x", "--set", "eval.baseline=flw")) == 2
    assert "eval.baseline must be one of" in capsys.readouterr().err
    assert not (tmp_path / "x" / "checkpoints").exists()      # it failed before training anything
    assert main(["bench-images", "--dataset", "cifar10", "--out", str(tmp_path / "c"),
                 "--data-dir", str(tmp_path)]) == 2
    assert "data_batch_1" in capsys.readouterr().err


def test_train_only_keeps_snapshots_and_evaluates_nothing(tmp_path, capsys):
    out = tmp_path / "train"
    assert main(_command(out, "--models", "jump", "--train-only", "--set", "train.snapshot_every=4")) == 0
    assert sorted(p.name for p in (out / "checkpoints" / "snapshots").iterdir()) == \
        ["jump_0000004.pt", "jump_0000008.pt", "jump_0000012.pt"]
    assert not (out / "results.json").exists() and "trained" in capsys.readouterr().out
