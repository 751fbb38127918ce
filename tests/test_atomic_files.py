"""Atomic writers: a failed write leaves the old file and no temporary files behind."""

import json

import numpy as np
import pytest
import torch

from multiflow_gm.atomic_files import atomic_path, atomic_torch_save, atomic_write_json, atomic_write_text


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "table.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.json"]


def test_temporaries_are_hidden_and_never_match_the_destination_glob(tmp_path):
    with atomic_path(tmp_path / "record.json") as tmp:
        assert tmp.name.startswith(".") and tmp.suffix == ".tmp" and tmp.parent == tmp_path
        assert list(tmp_path.glob("*.json")) == []
        with open(tmp, "wb") as handle:
            np.savez(handle, x=np.arange(3))
    assert np.load(tmp_path / "record.json")["x"].tolist() == [0, 1, 2]


def test_figures_keep_their_format(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from multiflow_gm.atomic_files import atomic_save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1])
    path = atomic_save_figure(fig, tmp_path / "curve.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_round_trips_create_missing_directories(tmp_path):
    atomic_write_text(tmp_path / "a" / "b.txt", "hello")
    assert (tmp_path / "a" / "b.txt").read_text() == "hello"
    atomic_torch_save({"w": torch.ones(2)}, tmp_path / "c" / "w.pt")
    loaded = torch.load(tmp_path / "c" / "w.pt", weights_only=True)
    torch.testing.assert_close(loaded["w"], torch.ones(2))


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
