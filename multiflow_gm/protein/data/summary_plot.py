"""One picture of a preprocessed cache: lengths, secondary structure, compactness, rejections."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from multiflow_gm.protein.data.filters import expected_radius_of_gyration
from multiflow_gm.atomic_files import atomic_write_bytes


def write_summary_plot(path: Path, metadata: list[dict], rejections: dict) -> Path:
    """Save a 4-panel PNG (Agg backend, atomic write) for the accepted chains and the rejection counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lengths = np.array([int(row["length"]) for row in metadata])
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    axes[0].hist(lengths, bins=40, color="tab:blue")
    axes[0].set(title=f"{len(lengths)} accepted chains", xlabel="length (residues)", ylabel="chains")
    for key, color in (("helix", "tab:red"), ("strand", "tab:orange"), ("coil", "tab:gray")):
        axes[1].hist([float(row[key]) for row in metadata], bins=30, range=(0, 1), histtype="step",
                     color=color, label=key)
    axes[1].set(title="secondary structure (P-SEA)", xlabel="fraction of residues")
    axes[1].legend()
    rg = np.array([float(row["radius_of_gyration"]) for row in metadata])
    axes[2].scatter(lengths, rg, s=4, alpha=0.5)
    if lengths.size:
        grid = np.linspace(lengths.min(), lengths.max(), 100)
        axes[2].plot(grid, expected_radius_of_gyration(grid), color="black", label="2.2 L^0.38")
        axes[2].legend()
    axes[2].set(title="compactness", xlabel="length (residues)", ylabel="radius of gyration (A)")
    ordered = sorted(rejections.items(), key=lambda kv: kv[1])
    axes[3].barh([reason for reason, _ in ordered], [count for _, count in ordered], color="tab:purple")
    axes[3].set(title=f"{sum(rejections.values())} rejections", xlabel="count")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return atomic_write_bytes(Path(path), buffer.getvalue())
