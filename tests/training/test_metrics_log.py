"""Metrics kept across resumes: parts set aside and merged back, overlapping steps logged once."""

import csv

from multiflow_gm.training.metrics_log import merge_metrics, set_aside_metrics


def _write(path, columns, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_two_resumes_merge_in_order_and_drop_steps_logged_again(tmp_path):
    _write(tmp_path / "metrics.csv", ["epoch", "step", "train/total"],
           [{"epoch": 0, "step": s, "train/total": 10 - s} for s in range(0, 6)])
    assert set_aside_metrics(tmp_path).name == "metrics_part0.csv"
    # Resumed from a checkpoint at step 4: steps 4-5 are logged again, with a new column.
    _write(tmp_path / "metrics.csv", ["epoch", "step", "train/total", "val/x"],
           [{"epoch": 0, "step": s, "train/total": 100 + s, "val/x": 1} for s in range(4, 8)])
    assert set_aside_metrics(tmp_path).name == "metrics_part1.csv"
    _write(tmp_path / "metrics.csv", ["epoch", "step", "train/total"],
           [{"epoch": 0, "step": s, "train/total": 200 + s} for s in range(8, 10)])
    merged = _rows(merge_metrics(tmp_path))
    assert [int(r["step"]) for r in merged] == list(range(10))
    assert [float(r["train/total"]) for r in merged[3:6]] == [7.0, 104.0, 105.0]
    assert merged[0]["val/x"] == "" and merged[4]["val/x"] == "1"
    assert not list(tmp_path.glob("metrics_part*.csv"))


def test_nothing_to_set_aside_or_merge(tmp_path):
    assert set_aside_metrics(tmp_path) is None
    assert merge_metrics(tmp_path) is None
    _write(tmp_path / "metrics.csv", ["step", "train/total"], [{"step": 0, "train/total": 1}])
    assert merge_metrics(tmp_path) == tmp_path / "metrics.csv"
    assert _rows(tmp_path / "metrics.csv") == [{"step": "0", "train/total": "1"}]
