"""Greedy clustering of chains by sequence identity, for cluster-weighted sampling.

Sequences are visited longest first; each joins the first existing cluster whose
representative it matches at ``identity`` or more (global alignment with
BLOSUM62, identity over the shorter sequence), else founds a new cluster. A 3-mer
prefilter (sparse matrix product) limits the alignments to plausible pairs, so the
whole shared subset clusters in seconds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import sparse

from multiflow_gm.protein import alphabet

_KMER = 3
_ALPHABET = len(alphabet.FILE_ALPHABET)  # 20 standard + unknown


def _kmer_matrix(sequences: list[str]) -> sparse.csr_matrix:
    """Binary presence matrix [N, len(FILE_ALPHABET)^3] of the 3-mers of each sequence."""
    rows, cols = [], []
    for i, sequence in enumerate(sequences):
        codes = np.array(alphabet.sequence_to_indices(sequence), dtype=np.int64)
        if codes.size < _KMER:
            continue
        kmers = codes[:-2] * _ALPHABET**2 + codes[1:-1] * _ALPHABET + codes[2:]
        kmers = np.unique(kmers)
        rows.append(np.full(kmers.size, i))
        cols.append(kmers)
    shape = (len(sequences), _ALPHABET**_KMER)
    if not rows:
        return sparse.csr_matrix(shape, dtype=np.float32)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    return sparse.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=shape)


@lru_cache(maxsize=1)
def _blosum62():
    import biotite.sequence.align as align

    return align.SubstitutionMatrix.std_protein_matrix()


def sequence_identity(a: str, b: str) -> float:
    """Identity of the best global alignment (free end gaps) over the shorter sequence's length."""
    import biotite.sequence as bseq
    import biotite.sequence.align as align

    if not a or not b:
        return 0.0
    alignment = align.align_optimal(bseq.ProteinSequence(a), bseq.ProteinSequence(b), _blosum62(),
                                    gap_penalty=(-10, -1), terminal_penalty=False, max_number=1)[0]
    return float(align.get_sequence_identity(alignment, mode="shortest"))


def cluster_sequences(sequences: list[str], identity: float = 0.5, kmer_prefilter: float = 0.2) -> np.ndarray:
    """Cluster ids int64 [N] (0..K-1, numbered in order of first appearance in ``sequences``)."""
    n = len(sequences)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    kmers = _kmer_matrix(sequences)
    shared = (kmers @ kmers.T).tocsr()
    counts = np.asarray(kmers.sum(axis=1)).ravel()
    order = sorted(range(n), key=lambda i: (-len(sequences[i]), i))
    representative_of = np.full(n, -1, dtype=np.int64)
    is_representative = np.zeros(n, dtype=bool)
    exact: dict[str, int] = {}
    for i in order:
        if sequences[i] in exact:
            representative_of[i] = exact[sequences[i]]
            continue
        representative_of[i] = _best_representative(i, sequences, shared, counts, is_representative,
                                                     identity, kmer_prefilter)
        if representative_of[i] == i:
            is_representative[i] = True
            exact[sequences[i]] = i
    # Renumber by first appearance so ids do not depend on the visiting order.
    _, first, inverse = np.unique(representative_of, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[inverse]


def _best_representative(i, sequences, shared, counts, is_representative, identity, kmer_prefilter) -> int:
    row = shared.getrow(i)
    candidates, overlap = row.indices, row.data
    keep = is_representative[candidates]
    candidates, overlap = candidates[keep], overlap[keep]
    if candidates.size:
        shorter = np.minimum(counts[candidates], counts[i]).clip(min=1)
        ratio = overlap / shorter
        keep = ratio >= kmer_prefilter
        candidates, ratio = candidates[keep], ratio[keep]
        for j in candidates[np.argsort(-ratio, kind="stable")]:
            if sequence_identity(sequences[i], sequences[j]) >= identity:
                return int(j)
    return i


def cluster_sizes(cluster_ids: np.ndarray) -> np.ndarray:
    """Size of each chain's cluster, [N]."""
    _, inverse, sizes = np.unique(cluster_ids, return_inverse=True, return_counts=True)
    return sizes[inverse]
