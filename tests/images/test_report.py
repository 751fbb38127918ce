"""The benchmark table's paired differences are taken against the configured baseline row."""

from multiflow_gm.images.report import difference_rows, markdown_table, plot_sweep


def _cell(distance, minus=None, key="minus_baseline"):
    cell = {"distance": distance, "interval": [distance - 5, distance + 5], "nfe_used": 20}
    if minus is not None:
        cell[key] = {"estimate": minus, "low": minus - 2, "high": minus + 2}
    return cell


def _results(baseline=None, key="minus_baseline"):
    models = {
        "flow-head": {"model": "flow-head", "kinds": ["flow"], "cells": {"20": _cell(40.0)}},
        "jump-head": {"model": "jump-head", "kinds": ["jump"], "cells": {"20": _cell(90.0, 50.0, key)}},
        "superposition a=0.5": {"model": "superposition", "kinds": ["flow", "jump"], "alpha": 0.5,
                                "cells": {"20": _cell(30.0, -10.0, key)}},
    }
    results = {"dataset": "mnist", "metric": {"label": "classifier distance"}, "num_samples": 100,
               "train_images": 1000, "nfe": [20], "alpha": [0.5, 0.5], "models": models, "floor": 10.0,
               "floor_interval": [5.0, 15.0]}
    if baseline:
        results["baseline"] = baseline
    return results


def test_differences_are_against_the_baseline_row_and_marked_beyond_their_interval(tmp_path):
    header, rows = difference_rows(_results("flow-head"))
    assert header == ["model", "NFE 20"]
    assert rows == [["jump-head", "+50.0 [+48.0, +52.0] worse"],
                    ["superposition a=0.5", "**-10.0 [-12.0, -8.0] better**"]]
    md = markdown_table(_results("flow-head"))
    assert "## Difference to flow-head at the same NFE" in md and "better than flow-head" in md
    assert plot_sweep(_results("flow-head"), tmp_path / "sweep.png").stat().st_size > 1000


def test_tables_written_before_the_baseline_setting_read_as_against_flow():
    old = _results(key="minus_flow")
    assert difference_rows(old)[1] == []          # no flow row: no differences
    old["models"]["flow"] = old["models"].pop("flow-head")
    rows = difference_rows(old)[1]
    assert rows[1] == ["superposition a=0.5", "**-10.0 [-12.0, -8.0] better**"]
    assert "## Difference to flow at the same NFE" in markdown_table(old)
