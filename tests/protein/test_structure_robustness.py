"""Every command survives every structure a user has: awkward real-world cases and fuzzed
files through ``evaluate``, ``sample --mode inverse-fold`` / ``--mode fold`` and ``preprocess``,
with a clear message or a counted skip and the documented exit status, never a traceback."""

import functools
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from multiflow_gm.cli.main import main
from multiflow_gm.protein.chain_selection import select_protein_chains
from multiflow_gm.protein.evaluation.secondary_structure import dssp_available, dssp_problem, dssp_states
from multiflow_gm.protein.structure_io import read_chains
from structure_cases import cif_text, chain_lines, fuzzed_files, helix, protein_with, write_cases

EVALUATE = ["--no-mpnn", "--compare", "none", "--no-progress"]


@pytest.fixture(scope="module")
def cases(compact_backbone, tmp_path_factory):
    return write_cases(tmp_path_factory.mktemp("cases"), compact_backbone)


@pytest.fixture
def fast_model(monkeypatch):
    """The shipped model loaded once for all in-process ``sample`` calls of a test."""
    from multiflow_gm.protein import model_file

    monkeypatch.setattr(model_file, "load_codesign", functools.lru_cache(maxsize=2)(model_file.load_codesign))


def _sample(args, capsys):
    code = main(["sample", "--num", "1", "--steps", "2", "--no-gallery", "--no-progress", "--threads", "1", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.skipif(not dssp_available(), reason="pydssp is not installed")
@pytest.mark.parametrize("length", range(1, 8))
def test_dssp_refuses_short_chains_with_a_reason(length):
    atoms = helix(length)
    if length < 6:
        assert "at least 6 residues" in dssp_problem(atoms)
        with pytest.raises(ValueError, match="at least 6"):
            dssp_states(atoms)
    else:
        assert dssp_problem(atoms) is None and len(dssp_states(atoms)) == length


def test_evaluate_lists_every_awkward_case(cases, tmp_path, capsys):
    directory = next(iter(cases.values())).parent
    code = main(["evaluate", str(directory), "--out", str(tmp_path / "report"), *EVALUATE])
    out = capsys.readouterr().out
    assert code == 3, out  # the report is written and something was skipped
    document = json.loads((tmp_path / "report" / "metrics.json").read_text())
    skipped = {(Path(s["source"]).stem.split(".")[0], s["chain"]): s["reason"] for s in document["skipped"]}
    for length in range(1, 7):
        assert skipped[(f"peptide_{length}", "P")] == "too_short"
    assert skipped[("missing_ca", "A")] == "incomplete_residues_dropped"
    assert skipped[("empty", "")] == "empty_file"
    assert skipped[("truncated_gzip", "")] == "truncated_file"
    assert skipped[("cif_with_binary_junk", "")] == "binary_garbage"
    lengths = {r["name"]: int(r["length"]) for r in _rows(tmp_path / "report")}
    assert lengths["missing_ca"] == 91 and lengths["insertion_codes"] == 92 and lengths["nmr_two_models"] == 92
    assert lengths["two_proteins_A"] == lengths["two_proteins_B"] == 92 and lengths["hetero_ligand_chain"] == 92
    assert lengths["cif_with_junk"] == 92  # text junk after the atom_site loop is ignored by the CIF reader
    counts = document["counts"]
    assert counts["file_problems"] == 3 and counts["chain_problems"] == 7 and counts["metrics_not_computed"] == 0
    assert "3 file-level and 7 chain-level input problem(s)" in out
    assert "Skipped inputs" in (tmp_path / "report" / "report.md").read_text()


def _rows(report: Path) -> list[dict]:
    import csv

    with open(report / "per_sample.csv") as handle:
        return list(csv.DictReader(handle))


def test_evaluate_peptides_as_samples_marks_metrics_not_computed(cases, tmp_path, capsys):
    directory = tmp_path / "peptides"
    directory.mkdir()
    for length in range(1, 7):
        (directory / cases[f"peptide_{length}"].name).write_bytes(cases[f"peptide_{length}"].read_bytes())
    code = main(["evaluate", str(directory), "--out", str(tmp_path / "report"), "--min-length", "1", *EVALUATE])
    assert code == 3
    document = json.loads((tmp_path / "report" / "metrics.json").read_text())
    missing = {(r["sample"], r["metric"]): r["reason"] for r in document["not_computed"]}
    if dssp_available():
        for length in range(1, 6):
            assert "at least 6 residues" in missing[(f"peptide_{length}_P", "dssp")]
        assert ("peptide_6_P", "dssp") not in missing
    assert "TM-align needs at least 3" in missing[("peptide_2_P", "diversity")]
    assert document["counts"]["samples"] == 12 and document["counts"]["metrics_not_computed"] == len(missing)
    assert "per-chain metric value(s) not computed" in capsys.readouterr().out
    assert "Metrics not computed" in (tmp_path / "report" / "report.md").read_text()


def test_evaluate_chain_option_picks_one_chain(cases, tmp_path):
    directory = tmp_path / "two"
    directory.mkdir()
    (directory / "two_proteins.pdb").write_bytes(cases["two_proteins"].read_bytes())
    assert main(["evaluate", str(directory), "--out", str(tmp_path / "r"), "--chain", "B", *EVALUATE]) == 0
    assert [r["name"] for r in _rows(tmp_path / "r")] == ["two_proteins"]
    assert main(["evaluate", str(directory), "--out", str(tmp_path / "r2"), "--chain", "Z", *EVALUATE]) == 1
    document = json.loads((tmp_path / "r2" / "metrics.json").read_text())
    assert document["skipped"][0]["reason"] == "chain_not_found" and "A (92 residues)" in document["skipped"][0]["detail"]


def test_inverse_fold_on_every_case(cases, tmp_path, capsys, fast_model):
    expected = {"empty": (2, "empty_file"), "truncated_gzip": (2, "truncated_file"),
                "cif_with_binary_junk": (2, "binary_garbage"), "two_proteins": (2, "choose the one to design with --chain"),
                "missing_ca": (3, "incomplete_residues_dropped"), "peptide_3": (3, "too_short (chain P)")}
    for name, path in cases.items():
        code, out, err = _sample(["--mode", "inverse-fold", "--pdb", str(path), "--out", str(tmp_path / name)], capsys)
        want_code, want_text = expected.get(name, (3 if name.startswith("peptide") else 0, "designing chain A"))
        assert code == want_code, (name, out, err)
        assert want_text in (err if code == 2 else out), (name, out, err)
        assert "Traceback" not in err
        if code != 2:
            pdb = (tmp_path / name / "samples" / "len92_000.pdb") if name != "missing_ca" else \
                (tmp_path / name / "samples" / "len91_000.pdb")
            assert pdb.is_file(), name
    code, out, _ = _sample(["--mode", "inverse-fold", "--pdb", str(cases["two_proteins"]), "--chain", "B",
                            "--out", str(tmp_path / "chain_b")], capsys)
    assert code == 0 and "designing chain B" in out
    code, _, err = _sample(["--mode", "inverse-fold", "--pdb", str(cases["peptide_4"]), "--chain", "P",
                            "--out", str(tmp_path / "pep")], capsys)
    assert code == 2 and "--chain P cannot be used" in err and "4 residues" in err
    code, _, err = _sample(["--mode", "inverse-fold", "--pdb", str(tmp_path / "absent.pdb"), "--out", str(tmp_path / "x")],
                           capsys)
    assert code == 2 and "no such file" in err


@pytest.mark.parametrize("sequence, message", [("", "needs --sequence"), ("MK1LV", "'1' at 3"),
                                                ("A", "at least 2"), ("MKXLV", "'X' at 3")])
def test_fold_input_checks(sequence, message, tmp_path, capsys):
    code, _, err = _sample(["--mode", "fold", "--sequence", sequence, "--out", str(tmp_path)], capsys)
    assert code == 2 and message in err


def test_the_three_commands_read_a_chain_the_same_way(cases, tmp_path, capsys, fast_model):
    """MSE, altlocs, insertion codes and NMR models give one chain A, the same in preprocess,
    evaluate and inverse-fold: same length, same sequence (MSE -> M), first altloc and model."""
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.evaluation.samples import load_sample_directory

    for name in ("mse", "altloc", "insertion_codes", "nmr_two_models", "hetero_ligand_chain", "peptide_5"):
        path = cases[name]
        assert main(["preprocess", str(path), "--out", str(tmp_path / f"cache_{name}"), "--workers", "1",
                     "--no-progress"]) == 0
        cached = ChainCache(tmp_path / f"cache_{name}")
        assert len(cached) == 1, name
        chain = cached.load(0)
        directory = tmp_path / f"eval_{name}"
        directory.mkdir()
        (directory / path.name).write_bytes(path.read_bytes())
        evaluated, _ = load_sample_directory(directory)
        assert len(evaluated) == 1 and evaluated[0].sequence == chain.sequence, name
        assert np.allclose(evaluated[0].atoms, chain.atoms, atol=1e-3), name
        code, out, _ = _sample(["--mode", "inverse-fold", "--pdb", str(path), "--out", str(tmp_path / f"s_{name}")],
                               capsys)
        assert code in (0, 3) and f"({len(chain.sequence)} residues)" in out, name
    selected, _ = select_protein_chains(read_chains(cases["mse"]))
    assert selected[0].raw.res_name[5] == "MSE" and ChainCache(tmp_path / "cache_mse").load(0).sequence[5] == "M"


def test_preprocess_reports_bad_files_and_exits_cleanly(cases, tmp_path, capsys):
    bad = [cases[name] for name in ("empty", "truncated_gzip", "cif_with_binary_junk")]
    assert main(["preprocess", *map(str, bad), "--out", str(tmp_path / "cache"), "--workers", "1",
                 "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "accepted 0 chains" in out and "empty_file 1" in out and "truncated_file 1" in out


def _fuzz_bases(protein: np.ndarray) -> list[bytes]:
    """Small valid files: a one-chain PDB, a two-chain PDB with a peptide, an mmCIF, a gzipped PDB."""
    small = protein[:24]
    two = protein_with(small, chain_lines("P", helix(4, (0, 30, 0)), "KKKK", serial=900))
    return [(protein_with(small).encode(), ".pdb"), (two.encode(), ".pdb"), (cif_text(small).encode(), ".cif"),
            (gzip.compress(protein_with(small).encode()), ".pdb.gz")]


def test_fuzzed_files_through_evaluate_and_inverse_fold(compact_backbone, tmp_path, capsys, fast_model):
    """300 seeded fuzzed files: evaluate accounts for every file (a sample or a listed skip) with
    the documented exit status, and inverse-fold agrees with it file by file: one usable chain
    is designed (exit 0 or 3), none or several give one error line (exit 2)."""
    files = fuzzed_files(tmp_path / "fuzz", _fuzz_bases(compact_backbone), count=300, seed=14)
    outcomes = {0: 0, 2: 0, 3: 0}
    # Evaluate in six directories of 50, so diversity stays a few hundred TM-align pairs.
    for batch in range(6):
        directory = tmp_path / f"batch_{batch}"
        directory.mkdir()
        for path in files[batch * 50:(batch + 1) * 50]:
            path.rename(directory / path.name)
        code = main(["evaluate", str(directory), "--out", str(tmp_path / f"report_{batch}"), *EVALUATE])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        document = json.loads((tmp_path / f"report_{batch}" / "metrics.json").read_text())
        samples_per_file: dict[str, int] = {}
        for row in _rows(tmp_path / f"report_{batch}"):
            samples_per_file[Path(row["source"]).name] = samples_per_file.get(Path(row["source"]).name, 0) + 1
        accounted = set(samples_per_file) | {Path(s["source"]).name for s in document["skipped"]}
        assert accounted == {p.name for p in directory.iterdir()}  # every file is a sample or a listed skip
        counts = document["counts"]
        skipped = counts["file_problems"] + counts["chain_problems"] + counts["metrics_not_computed"]
        assert code == (1 if counts["samples"] == 0 else 3 if skipped else 0), out
        assert "evaluated " in out and "skipped:" in out
        for path in sorted(directory.iterdir()):
            code, out, err = _sample(["--mode", "inverse-fold", "--pdb", str(path), "--out", str(tmp_path / "inv")],
                                     capsys)
            assert "Traceback" not in err, (path.name, err)
            usable = samples_per_file.get(path.name, 0)
            if usable == 1:
                assert code in (0, 3) and "designing chain" in out, (path.name, out, err)
            else:
                assert code == 2 and err.startswith("multiflow-gm sample: error:") and len(err.splitlines()) == 1
            outcomes[code] += 1
    assert sum(outcomes.values()) == 300 and outcomes[2] > 100 and outcomes[0] + outcomes[3] > 15
