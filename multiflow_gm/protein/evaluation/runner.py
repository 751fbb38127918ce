"""Runs every metric on a set of chains and collects per-sample rows, summaries and timings."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from multiflow_gm.protein.evaluation.aggregate import summarise_set
from multiflow_gm.protein.evaluation.compactness import compactness
from multiflow_gm.protein.evaluation.designability import designability, resolve_folding_model
from multiflow_gm.protein.evaluation.diversity import mean_tm_to_others, pairwise_tm_matrix
from multiflow_gm.protein.evaluation.geometry_metrics import backbone_geometry
from multiflow_gm.protein.evaluation.mpnn import mpnn_status
from multiflow_gm.protein.evaluation.novelty import NoveltySettings, novelty_search, shape_descriptor
from multiflow_gm.protein.evaluation.reference import ReferenceSet
from multiflow_gm.protein.evaluation.samples import EvaluationChain
from multiflow_gm.protein.evaluation.secondary_structure import dssp_available, secondary_structure
from multiflow_gm.protein.evaluation.sequence_metrics import sequence_metrics


@dataclass
class EvaluationSettings:
    """What to compute. ``baseline_count`` caps the baseline sets inside a samples report."""

    workers: int = 1
    use_mpnn: bool = True
    use_dssp: bool = True
    mpnn_num_orders: int = 1
    # One intra-op thread: on a machine shared with other jobs, more threads made
    # ProteinMPNN several times slower (OpenMP threads waiting on busy cores).
    mpnn_threads: int = 1
    novelty: NoveltySettings = field(default_factory=NoveltySettings)
    baselines: tuple[str, ...] = ("native", "random-walk")
    baseline_count: int = 32
    seed: int = 0
    folding_model: str | None = None
    progress: bool = True


@dataclass
class SetResult:
    """One evaluated set: per-sample ``rows``, ``summary`` (section -> key -> value),
    the pairwise TM matrix and P-SEA states (for plots)."""

    label: str
    chains: list[EvaluationChain]
    rows: list[dict]
    summary: dict[str, dict[str, float]]
    tm_matrix: np.ndarray | None
    psea_states: list[np.ndarray]


class Timer:
    """Wall time per metric, summed over sets (seconds)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


class MetricServices:
    """Models shared by all sets of one evaluation (loaded once) and their status lines."""

    def __init__(self, settings: EvaluationSettings):
        self.settings = settings
        self.mpnn_scorer = None
        available, detail = mpnn_status()
        if not settings.use_mpnn:
            available, detail = False, "not computed: disabled with --no-mpnn"
        elif not available:
            detail = f"not computed: {detail}"
        self.mpnn_status = {"computed": available, "detail": detail}
        self.dssp_status = {"computed": bool(settings.use_dssp and dssp_available()),
                            "detail": ("computed with pydssp (three-state DSSP)" if dssp_available()
                                       else "not computed: pydssp is not installed")}
        if not settings.use_dssp:
            self.dssp_status = {"computed": False, "detail": "not computed: disabled with --no-dssp"}
        self.folding_model, reason = resolve_folding_model(settings.folding_model)
        self.designability_status = {"computed": self.folding_model is not None, "detail": reason}

    def scorer(self):
        if self.mpnn_scorer is None and self.mpnn_status["computed"]:
            from multiflow_gm.protein.evaluation.mpnn import ProteinMPNNScorer

            self.mpnn_scorer = ProteinMPNNScorer(seed=self.settings.seed, num_orders=self.settings.mpnn_num_orders)
        return self.mpnn_scorer


def _progress_bar(total: int | None, desc: str, enabled: bool, unit: str = "pair"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=not enabled or total == 0)


def _local_metrics(chains, reference, services, rows, states, timer):
    for chain, row in zip(chains, rows):
        with timer("geometry"):
            row.update(backbone_geometry(chain.atoms))
        with timer("secondary_structure"):
            fractions, psea = secondary_structure(chain.atoms, use_dssp=services.dssp_status["computed"])
            row.update(fractions)
            states.append(psea)
        with timer("compactness"):
            row.update(compactness(chain.ca, reference.rg_fit if reference else None))
        with timer("sequence"):
            row.update(sequence_metrics(chain.sequence))


def _novelty(label, chains, rows, reference, exclusions, settings, timer):
    with timer("novelty"):
        descriptors = np.array([shape_descriptor(c.ca, r["psea_helix"], r["psea_strand"])
                                for c, r in zip(chains, rows)])
        with _progress_bar(None, f"novelty {label}", settings.progress) as bar:
            results = novelty_search(
                [c.ca for c in chains], descriptors, reference.cas, reference.lengths,
                reference.descriptors, settings.novelty, exclusions=exclusions, workers=settings.workers,
                progress=bar.update,
            )
        for row, result in zip(rows, results):
            index = result.pop("nearest_reference_index")
            row.update(result)
            row["nearest_reference"] = reference.names[index] if index >= 0 else ""


def _mpnn(label, chains, rows, services, timer):
    scorer = services.scorer()
    if scorer is None:
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, services.settings.mpnn_threads))
    try:
        with timer("mpnn"), _progress_bar(len(chains), f"ProteinMPNN {label}", services.settings.progress,
                                          unit="chain") as bar:
            results = scorer.score([c.atoms for c in chains], [c.sequence for c in chains], progress=bar.update)
    finally:
        torch.set_num_threads(threads)
    for row, result in zip(rows, results):
        row.update(result)


def evaluate_chains(label: str, chains: Sequence[EvaluationChain], reference: ReferenceSet | None,
                    services: MetricServices, timer: Timer,
                    exclusions: Sequence[np.ndarray | None] | None = None) -> SetResult:
    """Every metric on ``chains``; reference-based ones are NaN without a ``reference``.

    ``exclusions[i]`` (boolean over the reference) hides references from sample i's
    novelty search, e.g. the chain itself for the native baseline.
    """
    settings = services.settings
    chains = list(chains)
    rows = [{"set": label, "name": c.name, "length": len(c), "source": c.source} for c in chains]
    states: list[np.ndarray] = []
    _local_metrics(chains, reference, services, rows, states, timer)
    tm_matrix = None
    if chains:
        with timer("diversity"):
            pairs = len(chains) * (len(chains) - 1) // 2
            with _progress_bar(pairs, f"diversity {label}", settings.progress) as bar:
                tm_matrix = pairwise_tm_matrix([c.ca for c in chains], workers=settings.workers,
                                               progress=bar.update)
        for row, value in zip(rows, mean_tm_to_others(tm_matrix)):
            row["mean_tm_to_other_samples"] = float(value)
    if reference is not None and chains:
        _novelty(label, chains, rows, reference, exclusions, settings, timer)
    if chains:
        _mpnn(label, chains, rows, services, timer)
    design_rows = None
    if services.folding_model is not None and chains:
        with timer("designability"):
            design_rows = designability(services.folding_model, [c.atoms for c in chains],
                                        [c.sequence for c in chains])
        for row, result in zip(rows, design_rows):
            row.update(result)
    with timer("summary"):
        summary = summarise_set(rows, tm_matrix, [c.sequence for c in chains],
                                reference.ss if reference else None,
                                reference.composition if reference else None, design_rows)
    return SetResult(label, chains, rows, summary, tm_matrix, states)


def build_baseline(name: str, reference: ReferenceSet | None, lengths: Sequence[int],
                   rng: np.random.Generator) -> tuple[list[EvaluationChain], list[np.ndarray | None] | None]:
    """Chains of baseline ``name`` at ``lengths`` and their novelty exclusions."""
    from multiflow_gm.protein.evaluation.baselines import native_baseline, random_walk_baseline

    if name == "native":
        if reference is None:
            raise ValueError("the native baseline needs a reference set")
        chains, indices = native_baseline(reference, list(lengths), rng)
        return chains, [reference.redundant_with(index) for index in indices]
    if name == "random-walk":
        composition = reference.composition if reference is not None else None
        return random_walk_baseline(list(lengths), rng, composition), None
    raise ValueError(f"unknown baseline {name!r}")
