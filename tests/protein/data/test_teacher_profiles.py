"""Teacher profiles: ProteinMPNN's structure-only distribution, the files, resume and bad chains."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multiflow_gm.cli.main import main
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.teacher_profiles import (PROFILES_DIR, load_profile, load_profiles, profile_path,
                                                        run_profiles, to_file_alphabet)
from multiflow_gm.protein.evaluation.mpnn import MPNN_ALPHABET, mpnn_status

needs_mpnn = pytest.mark.skipif(not mpnn_status()[0], reason=f"ProteinMPNN unavailable: {mpnn_status()[1]}")


def test_file_alphabet_order_and_renormalisation():
    raw = np.full((2, 21), -30.0)
    raw[0, MPNN_ALPHABET.index("W")] = 0.0
    raw[1, MPNN_ALPHABET.index("X")] = 0.0   # all mass on the unknown letter: spread evenly
    raw[1, :20] = np.log(0.5 / 20)
    out = to_file_alphabet(raw)
    assert out.shape == (2, 20)
    assert np.allclose(np.exp(out).sum(-1), 1.0)
    assert alphabet.AA_ORDER[int(out[0].argmax())] == "W"
    assert np.allclose(out[1], np.log(1 / 20))


@needs_mpnn
def test_structure_only_log_probs_are_the_wheels_unconditional_probabilities(compact_backbone, single_thread):
    from multiflow_gm.protein.evaluation.mpnn import ProteinMPNNScorer

    scorer = ProteinMPNNScorer()
    backbones = [compact_backbone[:70].astype(np.float32), compact_backbone[:50].astype(np.float32)]
    ours = scorer.structure_only_log_probs(backbones)
    coords, _, mask, residue_index, chain_encoding = scorer._featurize(backbones, ["X" * 70, "X" * 50])
    with torch.inference_mode():
        reference = scorer.model.unconditional_probs(coords, mask, residue_index, chain_encoding)
    for row, profile in enumerate(ours):
        assert np.allclose(profile, reference[row, : len(profile)].numpy(), atol=1e-4)


@needs_mpnn
def test_profiles_are_written_resumed_and_a_broken_chain_is_skipped(split_cache, tmp_path, single_thread, capsys):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(split_cache, cache)
    records = ChainCache(cache).records
    broken = records[0].name
    (cache / "chains" / f"{broken}.npz").write_bytes(b"not an npz")
    report = run_profiles(cache, split=None, min_length=None, max_length=None, progress=False)
    assert report.skipped == {"unreadable_chain_file": 1}
    assert report.profiled == len(records) - 1 and 0.0 <= report.native_recovery <= 1.0
    profile = load_profile(profile_path(cache, records[1].name))
    assert profile["log_probs"].shape == (records[1].length, 20) and profile["sequence"] == records[1].sequence
    assert np.allclose(np.exp(profile["log_probs"]).sum(-1), 1.0, atol=1e-2)  # float16 storage
    assert set(load_profiles(ChainCache(cache))) == {r.name for r in records[1:]}
    assert main(["profiles", str(cache), "--split", "train", "--min-length", "1", "--threads", "1", "--no-progress"]) == 0
    assert "0 profiled" in capsys.readouterr().out  # every train chain was already done
    assert not list((cache / PROFILES_DIR).glob(".*.tmp"))
    assert main(["profiles", str(cache), "--shard", "2/2", "--no-progress"]) == 2
