"""The modality-agnostic Generator Matching core.

State spaces, schedulers, conditional paths with their conditional generators,
Bregman losses, one simulation loop for superposed and product generators, and
exact marginal generators for finite targets. Nothing here knows about
proteins or images.
"""

from multiflow_gm.core.dynamics import (CTMCStep, DiffusionStep, FlowStep, JumpStep, PlugInFlowStep,
                                       PosteriorCTMCStep, X1FlowStep)
from multiflow_gm.core.landing import BinnedLanding, JumpParams, MixtureLanding, PredictionLanding
from multiflow_gm.core.paths import (AffineGaussianPath, CondOTPath, ConditionalPath, GeodesicSO3Path,
                                     IsotropicSO3Path, MixtureTokenPath, PathSample)
from multiflow_gm.core.sampler import Component, SimulationResult, simulate
from multiflow_gm.core.schedulers import (CosineScheduler, ExponentialRateScheduler,
                                          LinearScheduler, PolynomialScheduler, VPScheduler,
                                          make_scheduler, time_grid)
from multiflow_gm.core.seeding import seeded_generator
from multiflow_gm.core.spaces import EuclideanSpace, SO3Space, TokenSpace, so3

__all__ = [
    "AffineGaussianPath", "BinnedLanding", "CTMCStep", "Component", "CondOTPath", "ConditionalPath",
    "CosineScheduler", "DiffusionStep", "EuclideanSpace", "ExponentialRateScheduler", "FlowStep",
    "GeodesicSO3Path", "IsotropicSO3Path", "JumpParams", "JumpStep",
    "LinearScheduler", "MixtureLanding", "MixtureTokenPath", "PathSample", "PlugInFlowStep",
    "PolynomialScheduler", "PosteriorCTMCStep", "PredictionLanding",
    "SO3Space", "SimulationResult", "TokenSpace", "VPScheduler", "X1FlowStep",
    "make_scheduler", "seeded_generator", "simulate", "so3", "time_grid",
]
