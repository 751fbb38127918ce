"""TM-align (tmtools) of CA traces, in parallel over worker processes.

Workers receive the two coordinate lists once (in the pool initialiser) and then
only index pairs, so a novelty search against thousands of references does not
re-send coordinates with every task.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence

import numpy as np

# tmtools refuses shorter chains ("Sequence is too short <3!").
TM_ALIGN_MIN_LENGTH = 3

_FIRST: Sequence[np.ndarray] = ()
_SECOND: Sequence[np.ndarray] = ()


def tm_align(first_ca: np.ndarray, second_ca: np.ndarray) -> tuple[float, float, float]:
    """TM-align two CA traces ``[L1, 3]``, ``[L2, 3]`` (Angstrom).

    Returns (TM-score normalised by the first length, by the second length, RMSD
    of the aligned residues in Angstrom); all NaN when a chain has fewer than
    :data:`TM_ALIGN_MIN_LENGTH` residues. Sequences do not enter the TM-align
    score, so a placeholder sequence is passed.
    """
    import tmtools

    if min(len(first_ca), len(second_ca)) < TM_ALIGN_MIN_LENGTH:
        return float("nan"), float("nan"), float("nan")
    first = np.ascontiguousarray(first_ca, dtype=np.float64)
    second = np.ascontiguousarray(second_ca, dtype=np.float64)
    result = tmtools.tm_align(first, second, "A" * len(first), "A" * len(second))
    return float(result.tm_norm_chain1), float(result.tm_norm_chain2), float(result.rmsd)


def _init_worker(first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> None:
    global _FIRST, _SECOND
    _FIRST, _SECOND = first, second


def _align_chunk(pairs: np.ndarray) -> np.ndarray:
    out = np.empty((len(pairs), 3), dtype=np.float64)
    for row, (i, j) in enumerate(pairs):
        out[row] = tm_align(_FIRST[i], _SECOND[j])
    return out


def align_pairs(
    first: Sequence[np.ndarray],
    second: Sequence[np.ndarray],
    pairs: np.ndarray,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """TM-align ``first[i]`` against ``second[j]`` for each row (i, j) of ``pairs`` ``[n, 2]``.

    Returns ``[n, 3]``: TM normalised by ``first[i]``, by ``second[j]``, RMSD (A).
    ``progress`` is called with the number of pairs finished after each chunk.
    With ``workers > 1`` the workers are spawned, so a calling script needs the
    usual ``if __name__ == "__main__":`` guard.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return np.zeros((0, 3))
    if workers <= 1 or len(pairs) < 8:
        _init_worker(first, second)
        results = []
        for chunk in np.array_split(pairs, max(1, len(pairs) // 16)):
            results.append(_align_chunk(chunk))
            if progress:
                progress(len(chunk))
        _init_worker((), ())
        return np.concatenate(results)
    chunks = np.array_split(pairs, min(len(pairs), workers * 16))
    # "spawn" keeps workers independent of any torch thread pool started in the parent.
    context = multiprocessing.get_context("spawn")
    results: list[np.ndarray] = []
    with context.Pool(workers, initializer=_init_worker, initargs=(list(first), list(second))) as pool:
        for chunk_result in pool.imap(_align_chunk, chunks):
            results.append(chunk_result)
            if progress:
                progress(len(chunk_result))
    return np.concatenate(results)
