"""Runs every metric on a set of chains and collects per-sample rows, summaries and timings.

One chain a metric cannot handle never ends the run: the metric is "not computed"
for that chain (NaN in its row) and the reason goes into ``SetResult.not_computed``,
which the report lists and counts. Chains too short for a tool are excluded from it
up front (DSSP below 6 residues, TM-align below 3); any other failure of a metric on
a chain is caught and recorded the same way.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from multiflow_gm.protein.evaluation.aggregate import summarise_set
from multiflow_gm.protein.evaluation.alignment import TM_ALIGN_MIN_LENGTH
from multiflow_gm.protein.evaluation.compactness import compactness
from multiflow_gm.protein.evaluation.designability import designability, resolve_folding_model
from multiflow_gm.protein.evaluation.diversity import mean_tm_to_others, pairwise_tm_matrix
from multiflow_gm.protein.evaluation.geometry_metrics import backbone_geometry
from multiflow_gm.protein.evaluation.mpnn import mpnn_status
from multiflow_gm.protein.evaluation.novelty import NoveltySettings, novelty_search, shape_descriptor
from multiflow_gm.protein.evaluation.reference import ReferenceSet
from multiflow_gm.protein.evaluation.samples import EvaluationChain
from multiflow_gm.protein.evaluation.secondary_structure import (
    dssp_available,
    dssp_problem,
    dssp_states,
    psea_states,
    state_fractions,
    strand_pairing,
)
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
    the pairwise TM matrix over the chains named ``tm_names``, P-SEA states (for
    plots) and the metrics ``not_computed`` for a chain, each with its reason."""

    label: str
    chains: list[EvaluationChain]
    rows: list[dict]
    summary: dict[str, dict[str, float]]
    tm_matrix: np.ndarray | None
    psea_states: list[np.ndarray]
    not_computed: list[dict] = field(default_factory=list)
    tm_names: list[str] | None = None


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


class _Failures:
    """Collects "not computed" records of one set: (sample, metric, reason)."""

    def __init__(self, label: str):
        self.label, self.records = label, []

    def add(self, chain: EvaluationChain, metric: str, reason: str) -> None:
        self.records.append({"set": self.label, "sample": chain.name, "source": chain.source,
                             "metric": metric, "reason": reason})

    def run(self, chain: EvaluationChain, metric: str, compute):
        """``compute()``, or None after recording why it failed on ``chain``."""
        try:
            return compute()
        except Exception as err:  # any metric failure on one chain must not end the run
            self.add(chain, metric, f"{type(err).__name__}: {' '.join(str(err).split())[:200]}")
            return None

    def run_set(self, chains, metric: str, compute):
        """``compute()`` over a whole set, or None after recording the failure for every chain."""
        try:
            return compute()
        except Exception as err:  # e.g. a worker process dying; the other metrics still run
            for chain in chains:
                self.add(chain, metric, f"{type(err).__name__}: {' '.join(str(err).split())[:200]}")
            return None


def _local_metrics(chains, reference, services, rows, states, timer, failures: _Failures):
    use_dssp = services.dssp_status["computed"]
    for chain, row in zip(chains, rows):
        with timer("geometry"):
            row.update(failures.run(chain, "geometry", lambda: backbone_geometry(chain.atoms)) or {})
        with timer("secondary_structure"):
            psea = failures.run(chain, "psea", lambda: psea_states(chain.ca))
            states.append(psea if psea is not None else np.full(len(chain), "C"))
            if psea is not None:
                row.update({f"psea_{k}": v for k, v in state_fractions(psea).items()})
                row.update(strand_pairing(chain.ca, psea))
            if use_dssp:
                problem = dssp_problem(chain.atoms)
                dssp = (failures.add(chain, "dssp", problem) if problem else
                        failures.run(chain, "dssp", lambda: state_fractions(dssp_states(chain.atoms))))
                row.update({f"dssp_{k}": v for k, v in (dssp or {}).items()})
        with timer("compactness"):
            row.update(failures.run(chain, "compactness",
                                    lambda: compactness(chain.ca, reference.rg_fit if reference else None)) or {})
        with timer("sequence"):
            row.update(failures.run(chain, "sequence", lambda: sequence_metrics(chain.sequence)) or {})


def _tm_eligible(chains, failures: _Failures, metric: str) -> list[int]:
    """Indices of chains TM-align can handle; the others are recorded as not computed."""
    keep = []
    for index, chain in enumerate(chains):
        if len(chain) < TM_ALIGN_MIN_LENGTH:
            failures.add(chain, metric, f"TM-align needs at least {TM_ALIGN_MIN_LENGTH} residues; "
                                        f"the chain has {len(chain)}")
        else:
            keep.append(index)
    return keep


def _diversity(label, chains, rows, settings, timer, failures: _Failures):
    """Pairwise TM matrix over the eligible chains and their names (None, None if it failed)."""
    keep = _tm_eligible(chains, failures, "diversity")
    subset = [chains[i] for i in keep]
    with timer("diversity"):
        pairs = len(subset) * (len(subset) - 1) // 2
        with _progress_bar(pairs, f"diversity {label}", settings.progress) as bar:
            matrix = failures.run_set(subset, "diversity", lambda: pairwise_tm_matrix(
                [c.ca for c in subset], workers=settings.workers, progress=bar.update))
    if matrix is None:
        return None, None
    for index, value in zip(keep, mean_tm_to_others(matrix)):
        rows[index]["mean_tm_to_other_samples"] = float(value)
    return matrix, [c.name for c in subset]


def _novelty(label, chains, rows, reference, exclusions, settings, timer, failures: _Failures):
    keep = []
    for index in _tm_eligible(chains, failures, "novelty"):
        if np.isfinite(rows[index].get("psea_helix", np.nan)):
            keep.append(index)
        else:  # the shape descriptor that preselects references is built from them
            failures.add(chains[index], "novelty", "needs the P-SEA fractions, which were not computed")
    if not keep:
        return
    with timer("novelty"):
        descriptors = np.array([shape_descriptor(chains[i].ca, rows[i]["psea_helix"], rows[i]["psea_strand"])
                                for i in keep])
        subset_exclusions = [exclusions[i] for i in keep] if exclusions is not None else None
        with _progress_bar(None, f"novelty {label}", settings.progress) as bar:
            results = failures.run_set([chains[i] for i in keep], "novelty", lambda: novelty_search(
                [chains[i].ca for i in keep], descriptors, reference.cas, reference.lengths,
                reference.descriptors, settings.novelty, exclusions=subset_exclusions, workers=settings.workers,
                progress=bar.update,
            ))
    for index, result in zip(keep, results or []):
        reference_index = result.pop("nearest_reference_index")
        rows[index].update(result)
        rows[index]["nearest_reference"] = reference.names[reference_index] if reference_index >= 0 else ""


def _mpnn(label, chains, rows, services, timer, failures: _Failures):
    scorer = services.scorer()
    if scorer is None:
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, services.settings.mpnn_threads))
    try:
        with timer("mpnn"), _progress_bar(len(chains), f"ProteinMPNN {label}", services.settings.progress,
                                          unit="chain") as bar:
            try:
                results = scorer.score([c.atoms for c in chains], [c.sequence for c in chains], progress=bar.update)
            except Exception:  # one chain broke a batch: score one by one to find it
                results = [failures.run(c, "mpnn", lambda c=c: scorer.score([c.atoms], [c.sequence])[0])
                           for c in chains]
    finally:
        torch.set_num_threads(threads)
    for row, result in zip(rows, results):
        row.update(result or {})


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
    failures = _Failures(label)
    _local_metrics(chains, reference, services, rows, states, timer, failures)
    tm_matrix = tm_names = None
    if chains:
        tm_matrix, tm_names = _diversity(label, chains, rows, settings, timer, failures)
    if reference is not None and chains:
        _novelty(label, chains, rows, reference, exclusions, settings, timer, failures)
    if chains:
        _mpnn(label, chains, rows, services, timer, failures)
    design_rows = None
    if services.folding_model is not None and chains:
        with timer("designability"):
            design_rows = failures.run_set(chains, "designability", lambda: designability(
                services.folding_model, [c.atoms for c in chains], [c.sequence for c in chains]))
        for row, result in zip(rows, design_rows or []):
            row.update(result)
    with timer("summary"):
        summary = summarise_set(rows, tm_matrix, [c.sequence for c in chains],
                                reference.ss if reference else None,
                                reference.composition if reference else None, design_rows)
    return SetResult(label, chains, rows, summary, tm_matrix, states, failures.records, tm_names)


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
