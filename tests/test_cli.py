import subprocess
import sys

from multiflow_gm import __version__
from multiflow_gm.cli.main import build_parser, main


def test_version_flag(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_commands():
    text = build_parser().format_help()
    assert "demo" in text


def test_console_module_runs():
    out = subprocess.run([sys.executable, "-m", "multiflow_gm.cli.main", "--help"],
                         capture_output=True, text=True, check=True)
    assert "multiflow-gm" in out.stdout
