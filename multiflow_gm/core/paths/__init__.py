"""Conditional probability paths and the conditional generators they support."""

from multiflow_gm.core.paths.affine import AffineGaussianPath, CondOTPath
from multiflow_gm.core.paths.common import ConditionalPath, PathSample
from multiflow_gm.core.paths.gaussian_jump import GaussianJumpKernel
from multiflow_gm.core.paths.mixture import MixtureTokenPath
from multiflow_gm.core.paths.so3_geodesic import GeodesicSO3Path
from multiflow_gm.core.paths.so3_isotropic import IsotropicSO3Path

__all__ = ["AffineGaussianPath", "CondOTPath", "ConditionalPath", "GaussianJumpKernel", "MixtureTokenPath",
           "GeodesicSO3Path", "IsotropicSO3Path", "PathSample"]
