"""Secondary structure of backbones: P-SEA (biotite) always, DSSP (pydssp) where installed.

Both return one letter per residue in a shared three-state alphabet:
``H`` helix, ``E`` strand, ``C`` coil. P-SEA needs only CA atoms; DSSP needs
N, CA, C and O because it works from backbone hydrogen bonds.
"""

from __future__ import annotations

import functools

import numpy as np

SS_STATES = ("helix", "strand", "coil")
_PSEA_TO_STATE = {"a": "H", "b": "E", "c": "C", "": "C"}
_DSSP_TO_STATE = {"H": "H", "E": "E", "-": "C"}
# pydssp's helix and bridge masks assume at least 6 residues; shorter chains fail
# inside pydssp with a broadcasting error, so they are refused up front.
DSSP_MIN_LENGTH = 6
# Neighbouring strands of a sheet hold their CAs 4.4-5.5 A apart; an extended residue with no
# other extended residue that close (at least MIN_PAIR_SEPARATION positions away) is unpaired.
PAIR_DISTANCE = 5.5
MIN_PAIR_SEPARATION = 3


def psea_states(ca: np.ndarray) -> np.ndarray:
    """P-SEA secondary structure (biotite ``annotate_sse``) of CA ``[L, 3]`` A -> ``[L]`` of H/E/C."""
    import biotite.structure as struc

    ca = np.asarray(ca, dtype=np.float32)
    length = len(ca)
    array = struc.AtomArray(length)
    array.coord = ca
    array.atom_name = np.full(length, "CA")
    array.element = np.full(length, "C")
    array.res_name = np.full(length, "ALA")
    array.res_id = np.arange(1, length + 1)
    array.chain_id = np.full(length, "A")
    array.hetero = np.zeros(length, dtype=bool)
    sse = struc.annotate_sse(array)
    return np.array([_PSEA_TO_STATE.get(str(s), "C") for s in sse])


@functools.lru_cache(maxsize=1)
def dssp_available() -> bool:
    """True where pydssp can be imported (it is an optional dependency)."""
    try:
        import pydssp  # noqa: F401
    except ImportError:
        return False
    return True


def dssp_problem(atoms: np.ndarray) -> str | None:
    """Why DSSP cannot assign ``atoms`` ``[L, >=4, 3]`` (None when it can)."""
    atoms = np.asarray(atoms)
    if atoms.ndim != 3 or atoms.shape[1] < 4:
        return "DSSP needs N, CA, C and O of every residue"
    if len(atoms) < DSSP_MIN_LENGTH:
        return f"DSSP needs at least {DSSP_MIN_LENGTH} residues; the chain has {len(atoms)}"
    if not np.isfinite(atoms[:, :4]).all():
        return "DSSP needs finite coordinates for N, CA, C and O"
    return None


def dssp_states(atoms: np.ndarray) -> np.ndarray:
    """DSSP three-state assignment (pydssp) of ``atoms`` ``[L, >=4, 3]`` (N, CA, C, O) A.

    Raises ``ValueError`` with the reason of :func:`dssp_problem` for chains DSSP
    cannot handle (fewer than :data:`DSSP_MIN_LENGTH` residues, missing atoms).
    """
    import pydssp

    problem = dssp_problem(atoms)
    if problem is not None:
        raise ValueError(problem)
    coords = np.asarray(atoms, dtype=np.float64)[:, :4]
    labels = pydssp.assign(coords, out_type="c3")
    return np.array([_DSSP_TO_STATE.get(str(s), "C") for s in labels])


def state_fractions(states: np.ndarray) -> dict[str, float]:
    """Helix / strand / coil fractions of a ``[L]`` H/E/C array (they sum to 1)."""
    states = np.asarray(states)
    if states.size == 0:
        return {name: float("nan") for name in SS_STATES}
    return {
        "helix": float(np.mean(states == "H")),
        "strand": float(np.mean(states == "E")),
        "coil": float(np.mean(states == "C")),
    }


def secondary_structure(atoms: np.ndarray, use_dssp: bool = True) -> tuple[dict[str, float], np.ndarray]:
    """Fractions ``psea_helix`` ... and (if available) ``dssp_helix`` ... of one chain.

    Returns the fractions and the P-SEA per-residue states (for plots). The DSSP
    keys are left out for a chain :func:`dssp_problem` refuses.
    """
    atoms = np.asarray(atoms, dtype=np.float64)
    psea = psea_states(atoms[:, 1])
    fractions = {f"psea_{key}": value for key, value in state_fractions(psea).items()}
    if use_dssp and dssp_available() and dssp_problem(atoms) is None:
        dssp = state_fractions(dssp_states(atoms))
        fractions.update({f"dssp_{key}": value for key, value in dssp.items()})
    return fractions, psea


def strand_pairing(ca: np.ndarray, states: np.ndarray) -> dict[str, float]:
    """Whether a chain's extended residues pair into sheets, from CA ``[L, 3]`` (Angstrom) and its
    P-SEA states ``[L]``.

    ``strand_paired``: fraction of residues that are P-SEA strand and have another P-SEA strand
    residue, at least :data:`MIN_PAIR_SEPARATION` positions away, within :data:`PAIR_DISTANCE`.
    ``strand_partner_distance``: median over P-SEA strand residues of the distance to the nearest
    such residue (NaN without two strand residues). DSSP calls a residue a strand only when it
    is hydrogen-bonded to a partner, so extended residues without partners show up as P-SEA
    strand and DSSP coil; these two numbers say how far the partners are.
    """
    ca = np.asarray(ca, dtype=np.float64)
    extended = np.asarray(states) == "E"
    index = np.arange(len(ca))
    candidate = (np.abs(index[:, None] - index[None]) >= MIN_PAIR_SEPARATION) & extended[None] & extended[:, None]
    distances = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    nearest = np.where(candidate, distances, np.inf).min(axis=1)[extended]
    nearest = nearest[np.isfinite(nearest)]
    return {"strand_paired": float(np.sum(nearest < PAIR_DISTANCE) / max(len(ca), 1)),
            "strand_partner_distance": float(np.median(nearest)) if nearest.size else float("nan")}
