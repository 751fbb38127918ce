"""``multiflow-gm evaluate`` end to end: load inputs, evaluate samples and baselines, write outputs.

Bad inputs never stop the report: unreadable sample files, absent or short chains
and dropped residues are listed as skipped, a metric that cannot handle a chain is
"not computed" for that chain with the reason, a missing reference turns the
reference-based metrics into "not computed", and an empty sample directory still
yields a report that says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from multiflow_gm.errors import MissingResourceError, UserError
from multiflow_gm.protein.evaluation.reference import ReferenceSet
from multiflow_gm.protein.evaluation.runner import (
    EvaluationSettings,
    MetricServices,
    SetResult,
    Timer,
    build_baseline,
    evaluate_chains,
)
from multiflow_gm.protein.evaluation.samples import MIN_SAMPLE_LENGTH, SkippedInput, load_sample_directory
from multiflow_gm.protein.seeding import seeded_rng


@dataclass
class EvaluationRun:
    """Everything one evaluation produced; ``sets[0]`` is the primary set."""

    sets: list[SetResult]
    reference: ReferenceSet | None
    reference_status: dict
    skipped: list[SkippedInput]
    messages: list[str]
    status: dict
    timings: dict[str, float]
    samples_dir: str | None
    settings: EvaluationSettings
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def primary(self) -> SetResult:
        return self.sets[0]

    @property
    def not_computed(self) -> list[dict]:
        """Per-chain metrics not computed, over every set (baselines included)."""
        return [record for result in self.sets for record in result.not_computed]

    def counts(self) -> dict[str, int]:
        """What the summary line and the exit status report: files read, samples, what was skipped."""
        return {
            "samples": len(self.primary.chains),
            "files": len({c.source for c in self.primary.chains}),
            "file_problems": sum(1 for s in self.skipped if not s.chain),
            "chain_problems": sum(1 for s in self.skipped if s.chain),
            "metrics_not_computed": len(self.primary.not_computed),
        }

    @property
    def anything_skipped(self) -> bool:
        counts = self.counts()
        return bool(counts["file_problems"] or counts["chain_problems"]
                    or counts["metrics_not_computed"])


def load_reference(reference_dir: str | Path | None, progress: bool) -> tuple[ReferenceSet | None, dict]:
    """The reference set, or None and a status saying why it is not used."""
    if reference_dir is None:
        return None, {"available": False, "detail": "no --reference given: reference-based metrics not computed"}
    try:
        reference = ReferenceSet.from_cache(reference_dir, progress=progress)
    except (MissingResourceError, UserError) as err:
        return None, {"available": False, "detail": f"{err}; reference-based metrics not computed"}
    return reference, {"available": True, "detail": f"{len(reference)} chains from {reference_dir}"}


def _baseline_lengths(primary_lengths: list[int], count: int, rng: np.random.Generator) -> list[int]:
    if len(primary_lengths) <= count:
        return sorted(primary_lengths)
    return sorted(int(x) for x in rng.choice(primary_lengths, size=count, replace=False))


def run_evaluation(
    samples_dir: str | Path | None,
    reference_dir: str | Path | None,
    out_dir: str | Path,
    settings: EvaluationSettings | None = None,
    baseline_only: str | None = None,
    num_baseline_samples: int = 64,
    baseline_length_range: tuple[int, int] = (60, 128),
    chain_ids: list[str] | None = None,
    min_length: int = MIN_SAMPLE_LENGTH,
) -> EvaluationRun:
    """Evaluate ``samples_dir`` (or, with ``baseline_only``, a generated baseline) and write
    ``metrics.json``, ``per_sample.csv``, ``report.md`` and plots into ``out_dir``.

    With samples, the baselines in ``settings.baselines`` are evaluated at the samples'
    lengths (at most ``settings.baseline_count`` of them) for comparison. Without samples
    and with ``baseline_only`` ("native" or "random-walk"), ``num_baseline_samples``
    chains are drawn with reference lengths in ``baseline_length_range``. ``chain_ids``
    and ``min_length`` choose the chains of each sample file
    (:func:`~multiflow_gm.protein.chain_selection.select_protein_chains`).
    """
    from multiflow_gm.protein.evaluation.report import write_outputs

    settings = settings or EvaluationSettings()
    rng = seeded_rng(settings.seed)
    timer = Timer()
    messages: list[str] = []
    skipped: list[SkippedInput] = []
    with timer("load_reference"):
        reference, reference_status = load_reference(reference_dir, settings.progress)
    if not reference_status["available"]:
        messages.append(reference_status["detail"])
    services = MetricServices(settings)
    sets: list[SetResult] = []

    if baseline_only is not None:
        if baseline_only == "native" and reference is None:
            raise UserError(f"--baseline native needs a usable --reference ({reference_status['detail']})")
        if reference is not None:
            lengths = _lengths_from_reference(reference, num_baseline_samples, baseline_length_range, rng)
        else:
            lengths = sorted(int(x) for x in rng.integers(baseline_length_range[0], baseline_length_range[1] + 1,
                                                          size=num_baseline_samples))
        with timer("baselines"):
            chains, exclusions = build_baseline(baseline_only, reference, lengths, rng)
        sets.append(evaluate_chains(baseline_only, chains, reference, services, timer, exclusions))
    else:
        with timer("load_samples"):
            chains, skipped = load_sample_directory(samples_dir, chain_ids, min_length)
        if not chains:
            messages.append(f"no usable samples in {samples_dir}: {len(skipped)} file(s) or chain(s) skipped"
                            if skipped else f"no structure files found in {samples_dir}")
        sets.append(evaluate_chains("samples", chains, reference, services, timer))
        lengths = _baseline_lengths([len(c) for c in chains], settings.baseline_count, rng)
        for name in settings.baselines if lengths else ():
            if name == "native" and reference is None:
                messages.append("native baseline not computed: no reference set")
                continue
            try:
                with timer("baselines"):
                    baseline_chains, exclusions = build_baseline(name, reference, lengths, rng)
            except ValueError as err:  # e.g. no reference chain near a sample's length
                messages.append(f"{name} baseline not computed: {err}")
                continue
            sets.append(evaluate_chains(name, baseline_chains, reference, services, timer, exclusions))

    status = {"mpnn": services.mpnn_status, "dssp": services.dssp_status,
              "designability": services.designability_status,
              "novelty": _novelty_status(settings, reference_status)}
    run = EvaluationRun(sets=sets, reference=reference, reference_status=reference_status, skipped=skipped,
                        messages=messages, status=status, timings={}, settings=settings,
                        samples_dir=str(samples_dir) if samples_dir is not None else None)
    start = time.perf_counter()
    run.outputs = write_outputs(run, Path(out_dir), timer)
    timer.seconds["write_outputs"] += time.perf_counter() - start
    run.timings = dict(timer.seconds)
    return run


def _lengths_from_reference(reference, count, length_range, rng):
    from multiflow_gm.protein.evaluation.baselines import lengths_from_reference

    try:
        return sorted(lengths_from_reference(reference, count, length_range[0], length_range[1], rng))
    except ValueError as err:
        raise UserError(str(err)) from None


def _novelty_status(settings: EvaluationSettings, reference_status: dict) -> dict:
    if not reference_status["available"]:
        return {"computed": False, "detail": "not computed: no reference set"}
    n = settings.novelty
    return {"computed": True,
            "detail": (f"max TM-score (normalised by the sample length) over the top {n.top_k} references by "
                       f"shape descriptor among those with length {n.min_length_ratio}-{n.max_length_ratio} x "
                       "the sample's; a lower bound on the exact maximum")}
