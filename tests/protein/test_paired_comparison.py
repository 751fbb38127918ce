"""scripts/paired_comparison.py: held-out chains paired by name, with '-' for a missing co-design report."""

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("paired_comparison", REPO / "scripts" / "paired_comparison.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _benchmark(path: Path, recoveries: dict) -> Path:
    path.write_text(json.dumps({"rows": [{"name": n, "recovery": r} for n, r in recoveries.items()]}))
    return path


def test_held_out_rows_pair_by_name_and_a_missing_report_reads_not_computed(tmp_path):
    base = _benchmark(tmp_path / "base.json", {"a": 0.2, "b": 0.3, "c": 0.4})
    model = _benchmark(tmp_path / "model.json", {"c": 0.5, "a": 0.3, "b": 0.3, "extra": 0.9})
    assert _script().main(["--base", "base", "-", str(base), "--model", "new", "-", str(model),
                           "--out", str(tmp_path / "paired")]) == 0
    cells = json.loads((tmp_path / "paired.json").read_text())["models"]["new"]
    assert cells["recovery"]["n"] == 3                              # "extra" has no partner
    assert cells["recovery"]["difference"] == pytest.approx(0.2 / 3)  # (0.1 + 0 + 0.1) / 3
    assert cells["recovery"]["se"] == pytest.approx((0.1 / 3 ** 0.5) / 3 ** 0.5)
    assert cells["mpnn_nll"] is None and cells["fold_tm"] is None
    assert "| ProteinMPNN NLL | n/c | n/c |" in (tmp_path / "paired.md").read_text()
