import subprocess
import sys

import pytest

from multiflow_gm import __version__
from multiflow_gm.cli.main import build_parser, main


def test_version_flag(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out


COMMANDS = ("demo", "preprocess", "split", "distill", "train", "sample", "evaluate", "benchmark", "bench-images")


def test_help_lists_every_command():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text, command


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: multiflow-gm {command}") and "options:" in out


def test_console_module_runs():
    out = subprocess.run([sys.executable, "-m", "multiflow_gm.cli.main", "--help"],
                         capture_output=True, text=True, check=True)
    assert "multiflow-gm" in out.stdout


def _sample_in_fresh_interpreter(out, extra: list[str], probe: str) -> str:
    """Run ``sample`` on the shipped model in a new interpreter; returns ``"<rc> <probe's value>"``,
    where ``probe`` is an expression evaluated after the run (e.g. on ``sys.modules``)."""
    code = ("import sys\nfrom multiflow_gm.cli.main import main\n"
            f"rc = main(['sample', '--lengths', '20', '--steps', '2', '--out', {str(out)!r}, "
            f"'--no-progress', '--threads', '1', *{extra!r}])\n"
            f"print(rc, {probe})")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return out.strip().splitlines()[-1]


def test_sampling_never_imports_the_training_framework(tmp_path):
    """Loading the shipped model and sampling with it needs only the protein package and the core."""
    probe = "sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning'))"
    assert _sample_in_fresh_interpreter(tmp_path, ["--num", "1", "--no-gallery"], probe) == "0 []"


def test_sample_gallery_draws_from_the_samplers_arrays(tmp_path):
    """The gallery is drawn from the CA arrays the sampler recorded, not by re-reading the PDB files."""
    probe = "'multiflow_gm.protein.evaluation.samples' in sys.modules"
    assert _sample_in_fresh_interpreter(tmp_path, ["--num", "2"], probe) == "0 False"
    assert (tmp_path / "gallery.png").stat().st_size > 1000
