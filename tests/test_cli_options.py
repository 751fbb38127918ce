"""Options shared by the commands: one ``--set`` syntax and one default for threads and workers."""

import argparse
from pathlib import Path

import pytest

from multiflow_gm.cli import common
from multiflow_gm.cli.commands.sample import DEFAULT_MODEL
from multiflow_gm.cli.main import build_parser, main

THREADED = {"sample": "--threads", "benchmark": "--threads", "bench-images": "--threads", "distill": "--threads",
            "evaluate": "--mpnn-threads"}
WORKERS = ("preprocess", "benchmark", "evaluate", "distill")
# Commands that load a typed config take --set; the others have only flags.
WITH_SET = ("train", "preprocess", "sample", "benchmark", "bench-images")
TINY = Path(__file__).resolve().parents[1] / "configs" / "protein" / "tiny.yaml"


def _parse(command: str, *extra: str) -> argparse.Namespace:
    required = {"preprocess": ["x", "--out", "o"], "benchmark": ["--out", "o"], "evaluate": ["--out", "o"],
                "distill": ["cache"], "sample": ["--out", "o"], "bench-images": ["--out", "o"],
                "train": ["--config", "c", "--out", "o"], "demo": ["--out", "o"], "split": ["cache"]}
    return build_parser().parse_args([command, *required[command], *extra])


def test_default_rule(monkeypatch):
    monkeypatch.setattr(common, "available_cores", lambda: 16)
    assert common.default_workers() == 16
    assert common.default_threads() == common.MAX_DEFAULT_THREADS == 4
    assert common.default_threads(processes=8) == 2 and common.default_threads(processes=32) == 1
    monkeypatch.setattr(common, "available_cores", lambda: 2)
    assert (common.default_workers(), common.default_threads(), common.default_threads(2)) == (2, 2, 1)


@pytest.mark.parametrize("command,flag", THREADED.items())
def test_threads_share_one_definition(command, flag):
    dest = flag.lstrip("-").replace("-", "_")
    assert getattr(_parse(command), dest) is None          # resolved by the shared rule at run time
    assert getattr(_parse(command, flag, "3"), dest) == 3
    with pytest.raises(SystemExit) as exit_:
        _parse(command, flag, "0")
    assert exit_.value.code == 2


@pytest.mark.parametrize("command", WORKERS)
def test_workers_share_one_definition(command):
    assert _parse(command).workers is None
    assert _parse(command, "--workers", "2").workers == 2
    with pytest.raises(SystemExit):
        _parse(command, "--workers", "-1")


def test_no_command_keeps_its_own_thread_or_worker_default():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, sub in commands.items():
        for action in sub._actions:
            if action.dest in ("threads", "workers", "num_workers", "mpnn_threads"):
                assert action.default is None and action.type is common.positive_int, (name, action.dest)


@pytest.mark.parametrize("command", WITH_SET)
def test_set_is_repeatable(command):
    assert _parse(command, "--set", "a.b=1", "--set", "c=[1,2]").overrides == ["a.b=1", "c=[1,2]"]


def test_set_only_where_a_config_is_loaded():
    for command in ("demo", "split", "evaluate", "distill"):
        with pytest.raises(SystemExit):
            _parse(command, "--set", "a=1")


def _needs_model():
    if not DEFAULT_MODEL.is_file():
        pytest.skip(f"the shipped model is missing at {DEFAULT_MODEL}")


def test_unknown_set_key_stops_train(tmp_path, capsys):
    tiny = str(TINY)
    rc = main(["train", "--config", tiny, "--set", "trainer.max_stepz=3", "--data", str(tmp_path),
               "--out", str(tmp_path / "run")])
    assert rc == 2 and "trainer.max_stepz" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    # The former positional form names its replacement.
    rc = main(["train", "--config", tiny, "trainer.max_steps=3", "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert rc == 2 and "--set trainer.max_steps=3" in capsys.readouterr().err


def test_unknown_set_key_stops_preprocess(tmp_path, capsys):
    rc = main(["preprocess", str(tmp_path), "--out", str(tmp_path / "cache"), "--set", "filters.max_lenght=9"])
    assert rc == 2 and "filters.max_lenght" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("command", ["sample", "benchmark"])
def test_unknown_set_key_stops_sampling_commands(command, tmp_path, capsys):
    _needs_model()
    extra = ["--pdb", str(tmp_path / "none.pdb")] if command == "benchmark" else []
    rc = main([command, "--out", str(tmp_path / "o"), "--set", "sampling.temprature=0.5", "--threads", "1", *extra])
    assert rc == 2 and "sampling.temprature" in capsys.readouterr().err
    # Only the sampling section can change: the rest is fixed by the weights.
    rc = main([command, "--out", str(tmp_path / "o"), "--set", "model.c_s=8", "--threads", "1", *extra])
    assert rc == 2 and "model.c_s" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_sample_set_changes_the_sampling_settings(tmp_path, capsys):
    _needs_model()
    rc = main(["sample", "--out", str(tmp_path / "o"), "--set", "sampling.num_steps=2", "--lengths", "12",
               "--num", "1", "--threads", "1", "--no-progress", "--no-gallery"])
    assert rc == 0 and "| 2 steps" in capsys.readouterr().out


def test_explicit_temperature_is_the_temperature_of_every_mode():
    from multiflow_gm.cli.commands.sample import _sampling_config
    from multiflow_gm.protein.sampling import SamplingConfig

    base = SamplingConfig(temperature=0.4, inverse_fold_temperature=0.1)
    args = build_parser().parse_args(["sample", "--out", "o", "--mode", "inverse-fold", "--temperature", "0.7"])
    chosen = _sampling_config(base, args)
    assert chosen.temperature_for("inverse-fold") == chosen.temperature_for("codesign") == 0.7
    kept = _sampling_config(base, build_parser().parse_args(["sample", "--out", "o", "--mode", "inverse-fold"]))
    assert (kept.temperature_for("inverse-fold"), kept.temperature_for("codesign")) == (0.1, 0.4)


def test_unknown_set_key_stops_bench_images(tmp_path, capsys):
    rc = main(["bench-images", "--out", str(tmp_path / "o"), "--set", "sampling.alfa=0.5", "--threads", "1"])
    assert rc == 2 and "sampling.alfa" in capsys.readouterr().err
