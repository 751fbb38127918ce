"""Baselines that give every metric a scale: native chains and a trivial random-walk generator.

- ``native``: reference chains matched to the requested lengths (nearest length,
  each chain used once). Its novelty is computed without the chain's own entry
  and sequence cluster, i.e. how close native chains come to *unrelated* references.
- ``random-walk``: a CA trace of 3.8 A steps whose bend angles stay in the range
  seen in proteins and that never comes within 4 A of itself, an ideal backbone
  built on it, and a sequence drawn from the reference composition. Its local
  geometry is perfect; it has no secondary structure, no compactness and no
  sequence-structure relationship.
"""

from __future__ import annotations

import numpy as np

from multiflow_gm.protein.evaluation.reference import ReferenceSet
from multiflow_gm.protein.evaluation.samples import EvaluationChain
from multiflow_gm.protein.alphabet import AA_ORDER, NUM_AMINO_ACIDS
from multiflow_gm.protein.residue_constants import CA_CA_DISTANCE

BASELINES = ("native", "random-walk")
# Virtual CA(i-1)-CA(i)-CA(i+1) angles in proteins lie between ~80 (helix, 90) and
# ~150 degrees (extended strand, 120-145).
BEND_ANGLE_RANGE_DEG = (80.0, 150.0)
MIN_NONBONDED_CA_DISTANCE = 4.0


def lengths_from_reference(reference: ReferenceSet, count: int, min_length: int, max_length: int,
                           rng: np.random.Generator) -> list[int]:
    """``count`` lengths of random reference chains within [min_length, max_length]."""
    window = np.nonzero((reference.lengths >= min_length) & (reference.lengths <= max_length))[0]
    if len(window) == 0:
        raise ValueError(f"no reference chain has a length in [{min_length}, {max_length}]")
    picked = rng.choice(window, size=count, replace=count > len(window))
    return [int(reference.lengths[i]) for i in picked]


def native_baseline(reference: ReferenceSet, lengths: list[int],
                    rng: np.random.Generator) -> tuple[list[EvaluationChain], list[int]]:
    """Reference chains with the nearest lengths (without replacement while possible).

    Returns the chains (named ``native_<reference name>``) and their reference indices.
    """
    available = np.ones(len(reference), dtype=bool)
    chains, indices = [], []
    for length in lengths:
        if not available.any():
            available[:] = True
        candidates = np.nonzero(available)[0]
        gaps = np.abs(reference.lengths[candidates] - length)
        nearest = candidates[gaps == gaps.min()]
        index = int(rng.choice(nearest))
        available[index] = False
        source = reference.chains[index]
        chains.append(EvaluationChain(name=f"native_{source.name}", atoms=source.atoms.copy(),
                                      sequence=source.sequence, source=f"reference:{source.name}"))
        indices.append(index)
    return chains, indices


def _random_unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.normal(size=(count, 3))
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def random_walk_ca_trace(length: int, rng: np.random.Generator, max_tries: int = 200) -> np.ndarray:
    """Self-avoiding CA trace ``[length, 3]`` (Angstrom) with 3.8 A steps and protein-like bends.

    Each step is drawn uniformly on the sphere among directions whose bend angle is
    in :data:`BEND_ANGLE_RANGE_DEG` and that keep every earlier non-adjacent CA at
    least :data:`MIN_NONBONDED_CA_DISTANCE` away; if no such direction turns up in
    ``max_tries`` draws, the one with the largest clearance is taken.
    """
    ca = np.zeros((length, 3))
    if length < 2:
        return ca
    ca[1] = _random_unit_vectors(rng, 1)[0] * CA_CA_DISTANCE
    # Bend angle theta at CA(i) <=> cos(angle between bond vectors) = -cos(theta),
    # so theta in [80, 150] degrees <=> the cosine lies in [-cos 80, -cos 150].
    cos_low = -np.cos(np.radians(BEND_ANGLE_RANGE_DEG[0]))
    cos_high = -np.cos(np.radians(BEND_ANGLE_RANGE_DEG[1]))
    for i in range(2, length):
        previous = (ca[i - 1] - ca[i - 2]) / CA_CA_DISTANCE
        directions = _random_unit_vectors(rng, max_tries)
        cosines = directions @ previous
        bends_ok = (cosines >= cos_low) & (cosines <= cos_high)
        candidates = ca[i - 1] + directions * CA_CA_DISTANCE
        if i >= 3:
            earlier = ca[: i - 1]
            clearance = np.linalg.norm(candidates[:, None, :] - earlier[None, :, :], axis=-1).min(axis=1)
        else:
            clearance = np.full(max_tries, np.inf)
        good = bends_ok & (clearance >= MIN_NONBONDED_CA_DISTANCE)
        if good.any():
            choice = int(np.nonzero(good)[0][0])
        else:
            choice = int(np.argmax(np.where(bends_ok, clearance, -np.inf)))
        ca[i] = candidates[choice]
    return ca


def random_walk_baseline(lengths: list[int], rng: np.random.Generator,
                         aa_composition: np.ndarray | None = None) -> list[EvaluationChain]:
    """Random-walk chains (ideal N, CA, C, O on the trace) with i.i.d. residue types."""
    import torch

    from multiflow_gm.protein.geometry import ideal_backbone_from_ca_trace

    probabilities = np.full(NUM_AMINO_ACIDS, 1.0 / NUM_AMINO_ACIDS)
    if aa_composition is not None and np.all(np.isfinite(aa_composition)):
        probabilities = np.asarray(aa_composition, np.float64) / np.sum(aa_composition)
    chains = []
    for number, length in enumerate(lengths):
        ca = random_walk_ca_trace(length, rng)
        atoms = ideal_backbone_from_ca_trace(torch.as_tensor(ca, dtype=torch.float64)).numpy()[:, :4]
        sequence = "".join(AA_ORDER[k] for k in rng.choice(NUM_AMINO_ACIDS, size=length, p=probabilities))
        chains.append(EvaluationChain(name=f"random_walk_{number:03d}", atoms=atoms.astype(np.float64),
                                      sequence=sequence, source="random-walk"))
    return chains
