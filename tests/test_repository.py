"""Repository hygiene: CI runs the README's commands; no data or pickles are tracked."""

import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    text = (REPO_ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)[:2]


def test_readme_opens_with_install_and_test_commands():
    install, test = _readme_commands()
    assert "pip install torch==2.13.0" in install and "multiflow-gm" in install
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    _, test = _readme_commands()
    ci_lines = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.strip().startswith("#")]
    assert ci_lines[-1] == test.strip()
    assert any("torch==2.13.0" in line for line in ci_lines)


def test_no_structure_files_or_pickles_are_tracked():
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    bad = [f for f in files if re.search(r"\.(pdb|ent|cif|bcif)(\.gz)?$|\.pkl$|\.pickle$", f)]
    assert not bad, bad
