"""State spaces: R^d, SO(3) and finite token sets."""

from multiflow_gm.core.spaces import so3
from multiflow_gm.core.spaces.euclidean import EuclideanSpace
from multiflow_gm.core.spaces.rotations import SO3Space
from multiflow_gm.core.spaces.tokens import TokenSpace

__all__ = ["so3", "EuclideanSpace", "SO3Space", "TokenSpace"]
