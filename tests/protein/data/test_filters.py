"""Chain filters, preprocess configuration and sequence clustering."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from multiflow_gm.protein.coordinates import radius_of_gyration
import pytest

from multiflow_gm.errors import ConfigError, MissingResourceError
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.data.clustering import cluster_sequences, sequence_identity
from multiflow_gm.protein.data.config import FilterConfig, PreprocessConfig, load_preprocess_config
from multiflow_gm.protein.data.filters import (
    expected_radius_of_gyration,
    filter_chain,
)
from multiflow_gm.protein.geometry import backbone_from_torsions
from multiflow_gm.protein.structure_io import RawChain

REPO_ROOT = Path(__file__).resolve().parents[3]


def torsion_chain(phi, psi, length) -> np.ndarray:
    return backbone_from_torsions(np.full(length, float(phi)), np.full(length, float(psi))).numpy()


def helix(length):
    return torsion_chain(-57.0, -47.0, length)


def raw_chain(atoms, aatype=None, chain_id="A") -> RawChain:
    length = len(atoms)
    aatype = np.zeros(length, dtype=np.int64) if aatype is None else np.asarray(aatype)
    return RawChain(entry="1abc", chain_id=chain_id, atoms=atoms.astype(np.float32), aatype=aatype,
                    res_id=np.arange(1, length + 1, dtype=np.int32), ins_code=np.array([""] * length),
                    res_name=np.array(["ALA"] * length), bfactor=np.zeros(length, dtype=np.float32),
                    source="test.pdb")


def reasons(problems):
    return [p.reason for p in problems]


def test_compact_helical_protein_is_accepted_with_its_annotations(compact_backbone):
    accepted, problems = filter_chain(raw_chain(compact_backbone), FilterConfig())
    assert not problems
    (item,) = accepted
    assert item.chain.name == "1abc_A" and item.segment == 0 and len(item.chain) == 92
    assert 0.8 < item.helix < 1.0 and item.coil < 0.2 and item.strand < 0.1
    assert item.helix + item.strand + item.coil == pytest.approx(1.0)
    assert item.radius_of_gyration == pytest.approx(radius_of_gyration(compact_backbone[:, 1]), rel=1e-5)
    assert item.metadata()["sequence"] == "A" * 92


def test_long_single_helix_is_an_rg_outlier():
    atoms = helix(80)
    # An alpha helix rises 1.5 A per residue: Rg of a rod 80 * 1.5 A long around the 2.3 A helix radius.
    rod = 80 * 1.5 / np.sqrt(12)
    assert radius_of_gyration(atoms[:, 1]) == pytest.approx(np.hypot(rod, 2.3), rel=0.05)
    _, problems = filter_chain(raw_chain(atoms), FilterConfig())
    assert reasons(problems) == ["rg_outlier"]
    accepted, _ = filter_chain(raw_chain(atoms), FilterConfig(max_rg_ratio=4.0))
    assert accepted[0].helix > 0.9


@pytest.mark.parametrize("length,reason", [(40, "too_short"), (400, "too_long")])
def test_length_limits(length, reason):
    accepted, problems = filter_chain(raw_chain(helix(length)), FilterConfig())
    assert not accepted and reasons(problems) == [reason]


def _broken_chain():
    first, second = helix(50), helix(50)
    # Second half shifted so the CA-CA step across the junction is about 10 A.
    second = second - second[0, 1] + first[-1, 1] + np.array([10.0, 0.0, 0.0])
    return np.concatenate([first, second])


def test_chain_break_is_dropped_or_split():
    raw = raw_chain(_broken_chain())
    accepted, problems = filter_chain(raw, FilterConfig())
    assert not accepted and reasons(problems) == ["chain_break"]
    assert "10.0 A" in problems[0].detail
    accepted, problems = filter_chain(raw, FilterConfig(break_policy="split", min_length=40, max_rg_ratio=5.0))
    assert not problems
    assert [item.chain.name for item in accepted] == ["1abc_A-1", "1abc_A-2"]
    assert [item.chain.residue_index[0] for item in accepted] == [1, 51]
    accepted, problems = filter_chain(raw, FilterConfig(break_policy="split", min_length=60))
    assert not accepted and reasons(problems) == ["too_short", "too_short"]
    assert [p.chain for p in problems] == ["A-1", "A-2"]


def test_missing_residue_is_a_break():
    atoms = helix(90)
    atoms[45] = np.nan  # a residue without coordinates leaves a 5-6 A CA-CA gap
    accepted, problems = filter_chain(raw_chain(atoms), FilterConfig())
    assert reasons(problems) == ["chain_break"]


def test_incomplete_backbone_interior_rejected_terminal_trimmed():
    atoms = helix(90)
    atoms[30, 3] = np.nan
    _, problems = filter_chain(raw_chain(atoms), FilterConfig())
    assert reasons(problems) == ["incomplete_backbone"]
    accepted, problems = filter_chain(raw_chain(atoms), FilterConfig(break_policy="split", min_length=20,
                                                                     max_rg_ratio=5.0))
    assert [len(item.chain) for item in accepted] == [30, 59] and not problems
    atoms = helix(90)
    atoms[-1, 3] = np.nan
    atoms[0, 0] = np.nan
    (item,), problems = filter_chain(raw_chain(atoms), FilterConfig(max_rg_ratio=5.0))
    assert len(item.chain) == 88 and item.chain.residue_index.tolist() == list(range(2, 90))


def test_bad_geometry_unknown_residues_coil_and_rg(compact_backbone):
    atoms = compact_backbone.copy()
    atoms[10, 0] = atoms[10, 1] + 1.6 * (atoms[10, 0] - atoms[10, 1])  # N-CA stretched to 2.3 A
    _, problems = filter_chain(raw_chain(atoms), FilterConfig())
    assert reasons(problems) == ["bad_backbone_geometry"] and "N-CA" in problems[0].detail

    aatype = np.zeros(92, dtype=np.int64)
    aatype[::4] = alphabet.UNKNOWN
    _, problems = filter_chain(raw_chain(compact_backbone, aatype), FilterConfig())
    assert reasons(problems) == ["unknown_residues"]

    rng = np.random.default_rng(0)
    coil = backbone_from_torsions(rng.uniform(-180, 180, 80), rng.uniform(-180, 180, 80)).numpy()
    _, problems = filter_chain(raw_chain(coil), FilterConfig())
    assert reasons(problems) == ["too_much_coil"]

    strand = torsion_chain(-120.0, 130.0, 100)  # a single extended strand: far from compact
    assert radius_of_gyration(strand[:, 1]) > 4 * expected_radius_of_gyration(100)
    _, problems = filter_chain(raw_chain(strand), FilterConfig())
    assert reasons(problems) == ["rg_outlier"]
    accepted, _ = filter_chain(raw_chain(strand), FilterConfig(max_rg_ratio=100.0))
    assert accepted and accepted[0].strand > 0.9


def test_shipped_config_equals_builtin_defaults():
    assert load_preprocess_config(REPO_ROOT / "configs" / "data" / "preprocess.yaml") == PreprocessConfig()
    assert load_preprocess_config(None) == PreprocessConfig()


@pytest.mark.parametrize("text,match", [
    ("filters: {min_lenght: 10}", "filters.min_lenght"),
    ("filterz: {}", "filterz"),
    ("filters: {max_length: 'long'}", "filters.max_length"),
    ("filters: {break_policy: keep}", "break_policy"),
    ("filters: {min_length: 2.5}", "integer"),
    ("reading: {first_chain_only: 1}", "true or false"),
    ("filters: [1, 2", "YAML"),
])
def test_config_errors_name_the_key(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_preprocess_config(path)


def test_config_partial_override_and_missing_file(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("filters:\n  min_length: 40\n  break_policy: split\nclustering:\n  identity: null\n")
    config = load_preprocess_config(path)
    assert config.filters.min_length == 40 and config.filters.break_policy == "split"
    assert config.filters.max_length == 384 and config.clustering.identity is None
    with pytest.raises(MissingResourceError):
        load_preprocess_config(tmp_path / "absent.yaml")


def test_sequence_clustering():
    rng = np.random.default_rng(0)
    letters = np.array(list(alphabet.AA_ORDER))
    base = "".join(rng.choice(letters, 120))
    mutant = list(base)
    for i in rng.choice(120, 24, replace=False):  # 80% identity
        mutant[i] = alphabet.AA_ORDER[(alphabet.AA_ORDER.index(mutant[i]) + 1) % alphabet.NUM_AMINO_ACIDS]
    mutant = "".join(mutant)
    unrelated = "".join(rng.choice(letters, 110))
    assert sequence_identity(base, base) == 1.0
    assert sequence_identity(base, mutant) == pytest.approx(0.8, abs=0.02)
    assert sequence_identity(base, unrelated) < 0.3
    ids = cluster_sequences([unrelated, base, mutant, base[10:100], unrelated], identity=0.5)
    assert ids.tolist() == [0, 1, 1, 1, 0]
    assert cluster_sequences([base, mutant], identity=0.9).tolist() == [0, 1]
    assert cluster_sequences([]).size == 0
