"""Per-set summaries of per-sample metric rows, grouped by report section.

Every key here appears in ``metrics.json`` under ``sets.<set>.summary.<section>``
and the report's tables are rendered from exactly these keys (see
:data:`REPORT_TABLE`), so the report can never show a number the JSON lacks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multiflow_gm.protein.evaluation.designability import designability_summary
from multiflow_gm.protein.evaluation.diversity import diversity_summary
from multiflow_gm.protein.evaluation.novelty import novelty_summary
from multiflow_gm.protein.evaluation.sequence_metrics import composition_divergence

# (section, key, label, format) rows of the report's comparison table.
REPORT_TABLE: tuple[tuple[str, str, str, str], ...] = (
    ("overview", "num_samples", "samples evaluated", "{:.0f}"),
    ("overview", "length_mean", "mean length", "{:.1f}"),
    ("geometry", "ca_ca_mean", "CA-CA distance, mean (A; native 3.80)", "{:.3f}"),
    ("geometry", "ca_ca_std", "CA-CA distance, std within a chain (A)", "{:.3f}"),
    ("geometry", "ca_ca_outside_fraction", "CA-CA bonds outside 3.6-4.0 A", "{:.3f}"),
    ("geometry", "n_ca_c_angle_mean", "N-CA-C angle, mean (deg; ideal 111)", "{:.1f}"),
    ("geometry", "clashes_per_sample", "CA clashes (< 3.0 A) per sample", "{:.2f}"),
    ("geometry", "clash_residue_fraction", "residues in a CA clash (fraction)", "{:.3f}"),
    ("geometry", "clash_free_fraction", "clash-free samples", "{:.3f}"),
    ("secondary_structure", "psea_helix", "helix fraction (P-SEA)", "{:.3f}"),
    ("secondary_structure", "psea_strand", "strand fraction (P-SEA)", "{:.3f}"),
    ("secondary_structure", "psea_coil", "coil fraction (P-SEA)", "{:.3f}"),
    ("secondary_structure", "dssp_helix", "helix fraction (DSSP)", "{:.3f}"),
    ("secondary_structure", "dssp_strand", "strand fraction (DSSP)", "{:.3f}"),
    ("secondary_structure", "dssp_coil", "coil fraction (DSSP)", "{:.3f}"),
    ("secondary_structure", "strand_paired", "strand residues with a strand partner < 5.5 A (P-SEA)", "{:.3f}"),
    ("secondary_structure", "strand_partner_distance_median", "nearest strand partner, median (A)", "{:.2f}"),
    ("secondary_structure", "psea_w1_to_reference", "SS distance to reference (W1, P-SEA)", "{:.3f}"),
    ("compactness", "rg_ratio_median", "Rg / reference fit, median", "{:.3f}"),
    ("compactness", "rg_in_band_fraction", "Rg inside the reference 95% band", "{:.3f}"),
    ("diversity", "pairwise_tm_mean", "pairwise TM-score, mean", "{:.3f}"),
    ("diversity", "cluster_fraction", "clusters (TM 0.5) / samples", "{:.3f}"),
    ("novelty", "max_tm_mean", "max TM-score to reference, mean", "{:.3f}"),
    ("novelty", "memorised_fraction", "max TM to reference > 0.9", "{:.3f}"),
    ("sequence", "aa_composition_js", "AA composition JS divergence (nats)", "{:.4f}"),
    ("sequence", "low_complexity_fraction", "low-complexity sequences (one type > 30%)", "{:.3f}"),
    ("sequence", "aa_entropy_mean", "sequence entropy (nats; max 3.00)", "{:.3f}"),
    ("mpnn", "mpnn_nll_mean", "ProteinMPNN NLL of the sequence (nats/res)", "{:.3f}"),
    ("mpnn", "mpnn_recovery_mean", "ProteinMPNN recovery of the sequence", "{:.3f}"),
    ("designability", "designable_fraction", "designable (scRMSD < 2 A)", "{:.3f}"),
    ("designability", "sc_rmsd_mean", "scRMSD, mean (A)", "{:.2f}"),
)


def _column(rows: Sequence[dict], key: str) -> np.ndarray:
    return np.array([row.get(key, np.nan) for row in rows], dtype=np.float64)


def _mean(rows: Sequence[dict], key: str) -> float:
    values = _column(rows, key)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _median(rows: Sequence[dict], key: str) -> float:
    values = _column(rows, key)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def wasserstein_ss(rows: Sequence[dict], reference_ss: np.ndarray | None) -> float:
    """Sum over helix/strand/coil of the 1-D Wasserstein distance between the samples'
    P-SEA fractions and the reference chains' (0 = same distributions)."""
    from scipy.stats import wasserstein_distance

    if reference_ss is None or len(rows) == 0:
        return float("nan")
    total = 0.0
    for column, state in enumerate(("helix", "strand", "coil")):
        values = _column(rows, f"psea_{state}")
        total += wasserstein_distance(values[np.isfinite(values)], reference_ss[:, column])
    return float(total)


def summarise_set(rows: Sequence[dict], tm_matrix: np.ndarray | None, sequences: Sequence[str],
                  reference_ss: np.ndarray | None, reference_composition: np.ndarray | None,
                  designability_rows: Sequence[dict] | None) -> dict[str, dict[str, float]]:
    """Section -> key -> value summary of one set of evaluated chains (NaN where not computed)."""
    lengths = _column(rows, "length")
    clashes = _column(rows, "clashes")
    summary = {
        "overview": {
            "num_samples": float(len(rows)),
            "length_mean": float(lengths.mean()) if len(rows) else float("nan"),
            "length_min": float(lengths.min()) if len(rows) else float("nan"),
            "length_max": float(lengths.max()) if len(rows) else float("nan"),
        },
        "geometry": {
            "ca_ca_mean": _mean(rows, "ca_ca_mean"),
            "ca_ca_std": _mean(rows, "ca_ca_std"),
            "ca_ca_outside_fraction": _mean(rows, "ca_ca_outside_fraction"),
            "chain_breaks_per_sample": _mean(rows, "chain_breaks"),
            "n_ca_c_angle_mean": _mean(rows, "n_ca_c_angle_mean"),
            "clashes_per_sample": _mean(rows, "clashes"),
            "clash_residue_fraction": _mean(rows, "clash_residue_fraction"),
            "clash_free_fraction": float(np.mean(clashes == 0)) if len(rows) else float("nan"),
        },
        "secondary_structure": {
            **{f"{method}_{state}": _mean(rows, f"{method}_{state}")
               for method in ("psea", "dssp") for state in ("helix", "strand", "coil")},
            "strand_paired": _mean(rows, "strand_paired"),
            "strand_partner_distance_median": _median(rows, "strand_partner_distance"),
            "psea_w1_to_reference": wasserstein_ss(rows, reference_ss),
        },
        "compactness": {
            "radius_of_gyration_mean": _mean(rows, "radius_of_gyration"),
            "rg_ratio_median": _median(rows, "rg_ratio"),
            "rg_in_band_fraction": _mean(rows, "rg_in_band"),
        },
        "diversity": diversity_summary(tm_matrix if tm_matrix is not None else np.eye(len(rows))),
        "novelty": novelty_summary(_column(rows, "max_tm_to_reference")),
        "sequence": {
            **composition_divergence(list(sequences), reference_composition),
            "low_complexity_fraction": _mean(rows, "low_complexity"),
            "aa_entropy_mean": _mean(rows, "aa_entropy"),
            "aa_max_fraction_mean": _mean(rows, "aa_max_fraction"),
        },
        "mpnn": {
            "mpnn_nll_mean": _mean(rows, "mpnn_nll"),
            "mpnn_recovery_mean": _mean(rows, "mpnn_recovery"),
        },
        "designability": designability_summary(list(designability_rows or [])),
    }
    if tm_matrix is None:
        summary["diversity"] = {key: float("nan") for key in summary["diversity"]}
    return summary
