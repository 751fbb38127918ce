"""The reference (training) set as the evaluation sees it: per-chain descriptors computed
with the same code as for samples, the Rg-vs-length fit and the amino-acid composition.

Built from a preprocessed cache (``multiflow-gm preprocess``) or from chains in memory.
Secondary structure of the reference is P-SEA (cheap); DSSP is computed only for
the length-matched native baseline, which stands for the reference in DSSP columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from multiflow_gm.errors import MissingResourceError, UserError
from multiflow_gm.protein.evaluation.compactness import RgLengthFit, fit_rg_vs_length
from multiflow_gm.protein.coordinates import radius_of_gyration
from multiflow_gm.protein.evaluation.novelty import shape_descriptor
from multiflow_gm.protein.evaluation.samples import EvaluationChain
from multiflow_gm.protein.evaluation.secondary_structure import psea_states, state_fractions
from multiflow_gm.protein.evaluation.sequence_metrics import composition


@dataclass
class ReferenceSet:
    """Reference chains and their summaries.

    ``chains`` hold coordinates (needed for novelty and the native baseline);
    ``lengths`` ``[M]``, ``ss`` ``[M, 3]`` P-SEA helix/strand/coil fractions,
    ``rg`` ``[M]`` Angstrom, ``descriptors`` ``[M, D]`` (see :mod:`novelty`).
    """

    source: str
    chains: list[EvaluationChain]
    lengths: np.ndarray
    ss: np.ndarray
    rg: np.ndarray
    descriptors: np.ndarray
    rg_fit: RgLengthFit
    composition: np.ndarray
    problems: list[str] = field(default_factory=list)
    # PDB entry and sequence cluster per chain (cluster -1: unknown); chains of one
    # entry or cluster are redundant with each other.
    entries: np.ndarray | None = None
    clusters: np.ndarray | None = None

    def redundant_with(self, index: int) -> np.ndarray:
        """Boolean ``[M]``: the chain ``index`` and those of its entry or sequence cluster."""
        mask = np.zeros(len(self), dtype=bool)
        mask[index] = True
        if self.entries is not None:
            mask |= self.entries == self.entries[index]
        if self.clusters is not None and self.clusters[index] >= 0:
            mask |= self.clusters == self.clusters[index]
        return mask

    def __len__(self) -> int:
        return len(self.chains)

    @property
    def names(self) -> list[str]:
        return [chain.name for chain in self.chains]

    @property
    def cas(self) -> list[np.ndarray]:
        return [chain.ca for chain in self.chains]

    def summary(self) -> dict:
        """JSON-ready statistics of the reference set (shown in the report)."""
        return {
            "source": self.source,
            "num_chains": len(self),
            "length_min": int(self.lengths.min()),
            "length_median": float(np.median(self.lengths)),
            "length_max": int(self.lengths.max()),
            "psea_helix_mean": float(self.ss[:, 0].mean()),
            "psea_strand_mean": float(self.ss[:, 1].mean()),
            "psea_coil_mean": float(self.ss[:, 2].mean()),
            "rg_fit": self.rg_fit.to_dict(),
            "aa_composition": {letter: float(p) for letter, p in zip("ARNDCQEGHILKMFPSTWYV", self.composition)},
            "problems": list(self.problems),
        }

    @classmethod
    def from_chains(cls, chains: list[EvaluationChain], source: str = "in-memory",
                    problems: list[str] | None = None, progress: bool = False,
                    entries=None, clusters=None, ss=None) -> "ReferenceSet":
        """Compute descriptors for ``chains`` (at least 3, for the Rg fit).

        ``ss`` ``[M, 3]`` optionally gives P-SEA helix/strand/coil fractions already
        known (the cache metadata holds them); rows with NaN are recomputed.
        """
        if len(chains) < 3:
            raise UserError(f"the reference set {source} has {len(chains)} usable chains; at least 3 are needed")
        iterator = chains
        if progress:
            from tqdm import tqdm

            iterator = tqdm(chains, desc="reference descriptors", unit="chain", leave=False)
        known_ss = np.full((len(chains), 3), np.nan) if ss is None else np.asarray(ss, dtype=np.float64)
        ss, rg, descriptors = [], [], []
        for index, chain in enumerate(iterator):
            if np.all(np.isfinite(known_ss[index])):
                fractions = dict(zip(("helix", "strand", "coil"), known_ss[index]))
            else:
                fractions = state_fractions(psea_states(chain.ca))
            ss.append([fractions["helix"], fractions["strand"], fractions["coil"]])
            rg.append(radius_of_gyration(chain.ca))
            descriptors.append(shape_descriptor(chain.ca, fractions["helix"], fractions["strand"]))
        lengths = np.array([len(chain) for chain in chains])
        rg_array = np.array(rg)
        return cls(
            source=source, chains=list(chains), lengths=lengths, ss=np.array(ss), rg=rg_array,
            descriptors=np.array(descriptors), rg_fit=fit_rg_vs_length(lengths, rg_array),
            composition=composition(chain.sequence for chain in chains), problems=list(problems or []),
            entries=None if entries is None else np.asarray(entries),
            clusters=None if clusters is None else np.asarray(clusters, dtype=np.int64),
        )

    @classmethod
    def from_cache(cls, cache_dir: str | Path, progress: bool = True) -> "ReferenceSet":
        """Load every chain of a preprocessed cache (``CACHE_DIR/metadata.csv`` + ``chains/``).

        Raises :class:`MissingResourceError` when the directory or its metadata is missing;
        chains that fail to load are listed in ``problems`` and left out.
        """
        cache_dir = Path(cache_dir)
        if not cache_dir.is_dir():
            raise MissingResourceError(f"reference cache {cache_dir} does not exist "
                                       "(build one with 'multiflow-gm preprocess INPUT --out CACHE_DIR')")
        if not (cache_dir / "metadata.csv").is_file():
            raise MissingResourceError(f"reference cache {cache_dir} has no metadata.csv; "
                                       "is it the output directory of 'multiflow-gm preprocess'?")
        from multiflow_gm.protein.data.cache import ChainCache

        cache = ChainCache(cache_dir)
        chains, problems, entries, clusters, ss = [], [], [], [], []
        for index in range(len(cache)):
            try:
                chain = cache.load(index)
            except Exception as err:  # a damaged entry must not stop the evaluation
                problems.append(f"cache entry {index}: {type(err).__name__}: {err}")
                continue
            atoms = np.asarray(chain.atoms, dtype=np.float64)[:, :4]
            if len(atoms) < 3 or not np.isfinite(atoms).all():
                problems.append(f"{chain.name}: unusable coordinates")
                continue
            chains.append(EvaluationChain(name=chain.name, atoms=atoms, sequence=chain.sequence,
                                          source=str(getattr(chain, "source", ""))))
            record = cache.records[index]
            entries.append(str(record.entry))
            clusters.append(int(record.cluster))
            # The cache's fractions come from the same P-SEA annotation (biotite annotate_sse).
            ss.append([getattr(record, key, np.nan) for key in ("helix", "strand", "coil")])
        return cls.from_chains(chains, source=str(cache_dir), problems=problems, progress=progress,
                               entries=entries, clusters=clusters, ss=ss)
