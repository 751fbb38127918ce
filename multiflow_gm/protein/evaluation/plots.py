"""PNG figures of the evaluation report (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from multiflow_gm.atomic_files import atomic_save_figure
from multiflow_gm.protein.coordinates import center_positions

SS_COLOURS = {"H": "#d62728", "E": "#1f77b4", "C": "#b0b0b0"}
SET_COLOURS = {"samples": "#2ca02c", "native": "#1f77b4", "random-walk": "#ff7f0e"}
GALLERY_SIZE = 16


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    return atomic_save_figure(fig, path, dpi=110, bbox_inches="tight")


def ss_composition_bars(set_summaries: dict[str, dict], reference_ss_mean: Sequence[float] | None,
                        path: Path) -> Path:
    """Stacked helix/strand/coil bars per set (P-SEA, and DSSP where computed) and the reference."""
    plt = _pyplot()
    methods = ["psea"] + (["dssp"] if any(np.isfinite(s["secondary_structure"]["dssp_helix"])
                                          for s in set_summaries.values()) else [])
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 3.6), squeeze=False)
    for ax, method in zip(axes[0], methods):
        labels, columns = [], []
        for label, summary in set_summaries.items():
            ss = summary["secondary_structure"]
            labels.append(label)
            columns.append([ss[f"{method}_{state}"] for state in ("helix", "strand", "coil")])
        if method == "psea" and reference_ss_mean is not None:
            labels.append("reference")
            columns.append(list(reference_ss_mean))
        values = np.nan_to_num(np.array(columns, dtype=np.float64))
        bottom = np.zeros(len(labels))
        for column, (state, colour) in enumerate(zip(("helix", "strand", "coil"), SS_COLOURS.values())):
            ax.bar(labels, values[:, column], bottom=bottom, color=colour, label=state)
            bottom += values[:, column]
        ax.set_ylim(0, 1)
        ax.set_ylabel("fraction of residues")
        ax.set_title("P-SEA (biotite)" if method == "psea" else "DSSP (pydssp)")
        ax.tick_params(axis="x", rotation=20)
    axes[0][-1].legend(loc="upper right", fontsize=8)
    fig.suptitle("Secondary-structure composition")
    return _save(fig, path)


def rg_vs_length(sets, reference, path: Path) -> Path:
    """Rg against length: reference chains, the fitted power law with its band, and each set."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    all_lengths = [len(c) for s in sets for c in s.chains]
    if reference is not None:
        ax.scatter(reference.lengths, reference.rg, s=4, color="#999999", alpha=0.4, label="reference chains")
        all_lengths += list(reference.lengths)
        grid = np.linspace(max(2, min(all_lengths)), max(all_lengths), 200)
        low, high = reference.rg_fit.band(grid)
        fit = reference.rg_fit
        ax.fill_between(grid, low, high, color="#999999", alpha=0.25,
                        label=f"reference {fit.coverage:.0%} band")
        ax.plot(grid, fit.expected(grid), color="black", lw=1.2,
                label=f"fit {fit.prefactor:.2f} L^{fit.exponent:.3f}")
    for result in sets:
        lengths = [row["length"] for row in result.rows]
        rgs = [row["radius_of_gyration"] for row in result.rows]
        ax.scatter(lengths, rgs, s=14, color=SET_COLOURS.get(result.label, "#9467bd"), label=result.label,
                   edgecolors="white", linewidths=0.3)
    ax.set_xlabel("length (residues)")
    ax.set_ylabel("radius of gyration (A)")
    ax.set_title("Compactness")
    ax.legend(fontsize=7)
    return _save(fig, path)


def tm_heatmap(tm_matrix: np.ndarray, names: Sequence[str], path: Path, title: str) -> Path:
    """Pairwise TM-score matrix, rows ordered by average-linkage clustering."""
    from multiflow_gm.protein.evaluation.diversity import cluster_labels

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    if len(tm_matrix) == 0:
        ax.text(0.5, 0.5, "no samples", ha="center", va="center")
        ax.axis("off")
        return _save(fig, path)
    order = np.argsort(cluster_labels(tm_matrix), kind="stable") if len(tm_matrix) > 1 else np.arange(len(tm_matrix))
    image = ax.imshow(tm_matrix[np.ix_(order, order)], vmin=0, vmax=1, cmap="viridis")
    fig.colorbar(image, ax=ax, label="TM-score")
    if len(names) <= 24:
        ax.set_xticks(range(len(order)), [names[i] for i in order], rotation=90, fontsize=6)
        ax.set_yticks(range(len(order)), [names[i] for i in order], fontsize=6)
    else:
        ax.set_xlabel("sample (clustered order)")
    ax.set_title(title)
    return _save(fig, path)


def _principal_projection(ca: np.ndarray) -> np.ndarray:
    """CA ``[L, 3]`` projected on its two principal axes ``[L, 2]`` (zeros where L < 2 leaves no axis)."""
    centred = center_positions(ca)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    return np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))


def ca_trace_gallery(traces: Sequence[tuple[str, np.ndarray]], states: Sequence[np.ndarray], path: Path,
                     title: str) -> Path:
    """Up to 16 CA traces ``(name, ca [L, 3] in Angstrom)`` projected on their two principal axes,
    segments coloured by P-SEA state (``states[i]``: one letter per residue)."""
    from matplotlib.collections import LineCollection

    plt = _pyplot()
    count = min(GALLERY_SIZE, len(traces))
    columns = 4 if count > 4 else max(count, 1)
    rows = max(1, int(np.ceil(count / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, ca), state in zip(axes.flat, traces[:count], states[:count]):
        xy = _principal_projection(ca)
        segments = np.stack([xy[:-1], xy[1:]], axis=1)
        colours = [SS_COLOURS.get(str(s), "#b0b0b0") for s in state[:-1]]
        ax.add_collection(LineCollection(segments, colors=colours, linewidths=1.6))
        ax.scatter(*xy[0], s=10, color="black")
        ax.set_xlim(xy[:, 0].min() - 2, xy[:, 0].max() + 2)
        ax.set_ylim(xy[:, 1].min() - 2, xy[:, 1].max() + 2)
        ax.set_aspect("equal")
        ax.set_title(f"{name[:18]} (L={len(ca)})", fontsize=7)
    fig.suptitle(f"{title}: helix red, strand blue, coil grey; dot = N-terminus", fontsize=9)
    return _save(fig, path)
