"""Outcome validation: the clash metric against the evaluator's, determinism, and the
training hook (rows in validation.csv, the curve, init_from measured at step 0)."""


import numpy as np
import pytest
import torch

from multiflow_gm.config import load_config
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.splits import split_of
from multiflow_gm.protein.evaluation.geometry_metrics import backbone_geometry
from multiflow_gm.protein.model.network import CoDesignNetwork
from multiflow_gm.protein.process import CoDesignProcess
from multiflow_gm.protein.validation import (ValidationSet, clash_fraction, inverse_folding_metrics, strand_fraction,
                                            validate)
from multiflow_gm.training.protein.config import TrainConfig
from multiflow_gm.training.protein.trainer import train
from multiflow_gm.training.protein.validation_callback import read_validation

from pathlib import Path

TINY = Path(__file__).resolve().parents[2] / "configs" / "protein" / "tiny.yaml"

QUICK = ["trainer.threads=1", "validation.num_chains=4", "validation.heldout_chains=1", "validation.num_steps=3",
         "validation.codesign_samples=1", "validation.codesign_length=40", "validation.mpnn=false"]


def test_clash_fraction_matches_the_evaluator():
    rng = np.random.default_rng(0)
    for _ in range(5):
        ca = np.cumsum(rng.normal(size=(50, 3)) * 2.2, axis=0)
        atoms = np.repeat(ca[:, None, :], 3, axis=1)
        expected = backbone_geometry(atoms)["clash_residue_fraction"]
        got = clash_fraction(torch.tensor(ca)[None], torch.ones(1, 50, dtype=torch.bool)).item()
        assert got == pytest.approx(expected, abs=1e-6)


def test_strand_fraction_from_frames_matches_dssp_of_the_real_atoms():
    """A real chain rich in strands: DSSP on its frames' ideal atoms agrees with DSSP on the file's atoms."""
    import os

    from multiflow_gm.protein.evaluation.secondary_structure import dssp_available, dssp_states
    from multiflow_gm.protein.geometry import frames_from_backbone
    from multiflow_gm.protein.structure_io import read_chains

    if not dssp_available():
        pytest.skip("pydssp is not installed")
    shared = Path(os.environ.get("MULTIFLOW_GM_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
    files = sorted((shared / "pdb_subset").glob("*.pdb.gz"))[:40]
    if not files:
        pytest.skip(f"real structures not found at {shared / 'pdb_subset'} (set MULTIFLOW_GM_SHARED_DATA)")
    checked = 0
    for path in files:
        for chain in read_chains(path).chains:
            atoms = chain.atoms.astype(np.float64)
            native = float(np.mean(dssp_states(atoms) == "E"))
            if native < 0.2 or len(chain) > 300:
                continue
            frames = frames_from_backbone(*(torch.tensor(atoms[:, k]) for k in range(3)))
            got = strand_fraction(frames[0][None], frames[1][None] * 0.1, torch.ones(1, len(chain), dtype=torch.bool), 0.1)
            assert got == pytest.approx(native, abs=0.05), chain.name
            checked += 1
        if checked >= 3:
            break
    assert checked > 0, "no strand-rich chain among the first files"


def test_validation_is_deterministic_and_finite(split_cache, single_thread):
    cfg = load_config(TrainConfig, TINY, QUICK)
    chains = split_of(ChainCache(split_cache), "val").filter_length(cfg.data.min_length, cfg.data.max_length)
    if len(chains) == 0:
        pytest.skip("no validation chain in the tiny cache's length window")
    data = ValidationSet.from_cache(chains, cfg.validation)
    network, process = CoDesignNetwork(cfg.model), CoDesignProcess(cfg.process)
    first = validate(network, process, data, cfg.validation, cfg.loss, cfg.sampling)
    second = validate(network, process, data, cfg.validation, cfg.loss, cfg.sampling)
    first.pop("seconds"), second.pop("seconds")
    assert first == second
    for key in ("pred_clash_t0.5", "translation_t0.95", "fold_tm", "inverse_fold_recovery", "codesign_clash"):
        assert np.isfinite(first[key]), key
    strands = [value for key, value in first.items() if key.startswith("pred_strand_t")]
    assert all(0.0 <= value <= 1.0 for value in strands)
    assert 0.0 <= first["inverse_fold_recovery"] <= 1.0
    assert 0.0 <= first["codesign_strand_paired"] <= 1.0


def test_structure_blind_logits_score_the_composition_entropy(split_cache, single_thread):
    """Logits fixed at the log-composition of the chains: the cross-entropy is the composition's
    entropy and the argmax recovers exactly the most common residue type's share."""
    from multiflow_gm.protein.alphabet import NUM_AMINO_ACIDS

    cfg = load_config(TrainConfig, TINY, QUICK)
    chains = split_of(ChainCache(split_cache), "val").filter_length(cfg.data.min_length, cfg.data.max_length)
    if len(chains) == 0:
        pytest.skip("no validation chain in the tiny cache's length window")
    data = ValidationSet.from_cache(chains, cfg.validation)
    aatype, mask = data.batch["aatype"], data.batch["residue_mask"].bool()
    native = aatype[mask & (aatype < NUM_AMINO_ACIDS)]
    counts = torch.bincount(native, minlength=NUM_AMINO_ACIDS)[:NUM_AMINO_ACIDS].double() + 1e-12
    network, process = CoDesignNetwork(cfg.model).double(), CoDesignProcess(cfg.process)
    last = network.aatype_head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-1e9)
        last.bias[:NUM_AMINO_ACIDS] = (counts / counts.sum()).log()
    data.batch = {k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in data.batch.items()}
    metrics = inverse_folding_metrics(network.eval(), process, data)
    assert metrics["invfold_ce"] == pytest.approx(metrics["composition_entropy"], abs=1e-6)
    assert metrics["invfold_argmax_recovery"] == pytest.approx(float(counts.max() / counts.sum()), abs=1e-6)


def test_training_validates_on_schedule_and_from_initial_weights(split_cache, tmp_path):
    base = tmp_path / "base"
    cfg = load_config(TrainConfig, TINY, [*QUICK, "trainer.max_steps=2", "validation.every_steps=0"])
    train(cfg, split_cache, base, enable_progress_bar=False)
    cfg = load_config(TrainConfig, TINY, [*QUICK, "trainer.max_steps=5", "validation.every_steps=2",
                                          f"init_from={base / 'model_ema.safetensors'}"])
    summary = train(cfg, split_cache, tmp_path / "run", enable_progress_bar=False)
    rows = read_validation(tmp_path / "run" / "validation.csv")
    assert [row["step"] for row in rows] == [0, 2, 4, 5]
    assert [row["step"] for row in summary["validation"]] == [0, 2, 4, 5]
    assert (tmp_path / "run" / "validation_curve.png").is_file()
    # Step 0 measures the exported weights the run started from.
    from multiflow_gm.protein.model_file import load_codesign

    network, process, _, _ = load_codesign(base / "model_ema.safetensors")
    chains = split_of(ChainCache(split_cache), "val").filter_length(cfg.data.min_length, cfg.data.max_length)
    direct = validate(network, process, ValidationSet.from_cache(chains, cfg.validation), cfg.validation,
                      cfg.loss, cfg.sampling)
    assert rows[0]["translation_t0.5"] == pytest.approx(direct["translation_t0.5"], rel=1e-5)
