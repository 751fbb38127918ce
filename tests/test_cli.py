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


def test_sampling_never_imports_the_training_framework(tmp_path):
    """Loading the shipped model and sampling with it needs only the protein package and the core."""
    import subprocess
    import sys

    code = ("import sys\nfrom multiflow_gm.cli.main import main\n"
            f"rc = main(['sample', '--lengths', '20', '--num', '1', '--steps', '2', '--out', {str(tmp_path)!r}, "
            "'--no-progress', '--no-gallery', '--threads', '1'])\n"
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"
