"""The MNIST study script's landing-bins table: rows matched by snapshot step."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "images_study.py"


def _study():
    spec = importlib.util.spec_from_file_location("images_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _point(step, distance):
    return {"step": step, "distance": distance, "interval": [distance - 1.0, distance + 1.0]}


def test_bins_table_matches_steps_and_marks_missing_ones():
    base = {"flow": [_point(1000, 90.0), _point(2000, 50.0)], "jump": [_point(1000, 180.0)]}
    other = [_point(1000, 170.0), _point(2000, 120.0)]
    rows = [line for line in _study()._bins_check_md(base, other, 128).splitlines() if line.startswith("| ")]
    assert rows[0] == "| step | flow | jump, 64 bins | jump, 128 bins |"
    assert rows[1] == "| 1,000 | 90.0 [89.0, 91.0] | 180.0 [179.0, 181.0] | 170.0 [169.0, 171.0] |"
    assert rows[2] == "| 2,000 | 50.0 [49.0, 51.0] | - | 120.0 [119.0, 121.0] |"


def test_sweep_workers_get_whole_models_balanced_by_network_evaluations():
    jobs = _study().sweep_jobs(["jump", "superposition-2net", "mixed-2net"], 2)
    # Two-network rows over five alphas cost 10 each, the jump row 1: one two-network model per worker.
    assert sorted(map(sorted, jobs)) == [["jump", "superposition-2net"], ["mixed-2net"]] or \
        sorted(map(sorted, jobs)) == [["jump", "mixed-2net"], ["superposition-2net"]]
    assert sorted(m for job in _study().sweep_jobs(["flow", "jump"], 3) for m in job) == ["flow", "jump"]
    assert len(_study().sweep_jobs(["flow", "jump"], 3)) == 2  # no idle worker directories
