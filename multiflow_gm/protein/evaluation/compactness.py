"""Radius of gyration against length, judged against a power law fitted on the reference set.

Folded globular proteins follow ``Rg ~ a * L^b`` with b near 0.38 (a compact
sphere would give 1/3, a random coil 0.5-0.6); the band is the reference
residuals' central quantile range in log space, so "in band" means "as compact
as most native chains of that length".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from multiflow_gm.protein.coordinates import radius_of_gyration


@dataclass(frozen=True)
class RgLengthFit:
    """``log Rg = log(prefactor) + exponent * log L`` with a band of log residual quantiles.

    ``band_low`` / ``band_high`` are multiplicative factors on the fitted Rg
    (e.g. 0.88 and 1.20), covering ``coverage`` of the reference chains.
    """

    prefactor: float
    exponent: float
    band_low: float
    band_high: float
    coverage: float
    residual_std: float
    num_chains: int

    def expected(self, length) -> np.ndarray:
        """Fitted Rg (Angstrom) at ``length`` (scalar or array of residue counts)."""
        return self.prefactor * np.asarray(length, dtype=np.float64) ** self.exponent

    def band(self, length) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper Rg (Angstrom) of the reference band at ``length``."""
        centre = self.expected(length)
        return centre * self.band_low, centre * self.band_high

    def to_dict(self) -> dict:
        return asdict(self)


def fit_rg_vs_length(lengths, rgs, coverage: float = 0.95) -> RgLengthFit:
    """Least-squares power law of Rg on length in log space, band at ``coverage``.

    ``lengths`` and ``rgs`` are 1-D arrays over reference chains (Rg in Angstrom).
    """
    lengths = np.asarray(lengths, dtype=np.float64)
    rgs = np.asarray(rgs, dtype=np.float64)
    keep = np.isfinite(lengths) & np.isfinite(rgs) & (lengths > 1) & (rgs > 0)
    if keep.sum() < 3:
        raise ValueError(f"need at least 3 reference chains to fit Rg vs length, got {int(keep.sum())}")
    log_length, log_rg = np.log(lengths[keep]), np.log(rgs[keep])
    exponent, intercept = np.polyfit(log_length, log_rg, deg=1)
    residuals = log_rg - (intercept + exponent * log_length)
    tail = (1.0 - coverage) / 2.0
    low, high = np.quantile(residuals, [tail, 1.0 - tail])
    return RgLengthFit(
        prefactor=float(np.exp(intercept)),
        exponent=float(exponent),
        band_low=float(np.exp(low)),
        band_high=float(np.exp(high)),
        coverage=coverage,
        residual_std=float(residuals.std()),
        num_chains=int(keep.sum()),
    )


def compactness(ca: np.ndarray, fit: RgLengthFit | None) -> dict[str, float]:
    """Rg of one chain and, given a reference fit, its ratio to the fit and band membership."""
    rg = radius_of_gyration(ca)
    result = {"radius_of_gyration": rg}
    if fit is not None:
        length = len(ca)
        expected = float(fit.expected(length))
        low, high = fit.band(length)
        result.update({
            "rg_expected": expected,
            "rg_ratio": rg / expected,
            "rg_log_z": float(np.log(rg / expected) / fit.residual_std) if fit.residual_std > 0 else float("nan"),
            "rg_in_band": float(low <= rg <= high),
        })
    return result
