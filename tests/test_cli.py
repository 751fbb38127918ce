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


def test_sampling_never_imports_the_training_framework(tmp_path):
    """Loading the shipped model and sampling with it needs only the protein package and the core."""
    code = ("import sys\nfrom multiflow_gm.cli.main import main\n"
            f"rc = main(['sample', '--lengths', '20', '--num', '1', '--steps', '2', '--out', {str(tmp_path)!r}, "
            "'--no-progress', '--no-gallery', '--threads', '1'])\n"
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"


def test_sample_gallery_draws_from_the_samplers_arrays(tmp_path):
    """The gallery is drawn from the CA arrays the sampler recorded, not by re-reading the PDB files."""
    code = ("import sys\nfrom multiflow_gm.cli.main import main\n"
            f"rc = main(['sample', '--lengths', '20', '--num', '2', '--steps', '2', '--out', {str(tmp_path)!r}, "
            "'--no-progress', '--threads', '1'])\n"
            "print(rc, 'multiflow_gm.protein.evaluation.samples' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 False"
    assert (tmp_path / "gallery.png").stat().st_size > 1000
