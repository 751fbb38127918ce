"""Exact marginal generators for data distributions with finitely many atoms.

For ``p_data = sum_k pi_k delta_{z_k}`` the posterior ``p(z_k | x_t)`` is computable,
so the marginal generator parameter ``F_t(x) = E[F_t^z(x) | X_t = x]`` (SPEC §1) is
exact. This is the ground truth the core's tests and the ``demo`` command use;
it is also a memorising "model" of a small training set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from multiflow_gm.core.landing import GaussianKernelLanding, JumpParams, MixtureLanding
from multiflow_gm.core.paths.affine import AffineGaussianPath
from multiflow_gm.core.paths.gaussian_jump import GaussianJumpKernel


def posterior(log_likelihood: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """``p(z_k | x)`` ``[N, K]`` from ``log p(x | z_k)`` ``[N, K]`` and prior ``probs`` ``[K]``."""
    logits = log_likelihood + torch.log(probs.clamp_min(1e-300))
    return torch.softmax(logits, dim=-1)


@dataclass
class AtomicGaussianMarginal:
    """Marginal generators of an affine Gaussian path for atoms ``[K, d]`` with ``probs [K]``.

    States are ``[N, d]``. Every method returns the exact marginal parameter at
    time ``t`` (a float in [0, 1)).
    """

    path: AffineGaussianPath
    atoms: torch.Tensor
    probs: torch.Tensor

    def __post_init__(self):
        if self.atoms.dim() != 2 or self.probs.shape != self.atoms.shape[:1]:
            raise ValueError("atoms must be [K, d] and probs [K]")

    def weights(self, x: torch.Tensor, t) -> torch.Tensor:
        """Posterior ``[N, K]``."""
        s = self.path.scheduler(torch.as_tensor(t, dtype=torch.float64))
        alpha, sigma = s.alpha.to(x.dtype), s.sigma.to(x.dtype)
        # log N(x; alpha z, sigma^2 I) up to terms free of z, as one matrix product.
        loglik = (alpha * (x @ self.atoms.T) - 0.5 * alpha ** 2 * (self.atoms ** 2).sum(-1)) / sigma ** 2
        return posterior(loglik, self.probs)

    def posterior_mean(self, x, t):
        return self.weights(x, t) @ self.atoms

    def velocity(self, x, t):
        # The conditional velocity is affine in z, so averaging z first is exact.
        return self.path.velocity(x, self.posterior_mean(x, t), t)

    def score(self, x, t):
        return self.path.score(x, self.posterior_mean(x, t), t)

    def diffusion_drift(self, x, t, diffusion):
        return self.path.diffusion_drift(x, self.posterior_mean(x, t), t, diffusion)

    def jump(self, x, t) -> JumpParams:
        """Per-coordinate marginal jump: ``lambda_i = sum_k w_k lambda_i^k`` and the landing
        law mixing the atoms' kernels with weights ``w_k lambda_i^k``."""
        w = self.weights(x, t)                                     # [N, K]
        z = self.atoms[None].expand(x.shape[0], -1, -1)            # [N, K, d]
        lam_k = self.path.jump_intensity(x[:, None, :].expand_as(z), z, t)  # [N, K, d]
        mix = w[..., None] * lam_k                                 # [N, K, d]
        intensity = mix.sum(1)
        kernel = self.path.jump_kernel(self.atoms, t)              # fields [K, d]
        mean, scale, beta = torch.broadcast_tensors(kernel.mean, kernel.scale, kernel.beta)

        def draw(where, component, generator):
            coord = where.nonzero()[:, 1]
            chosen = GaussianJumpKernel(mean[component, coord], scale[component, coord],
                                        beta[component, coord])
            return chosen.sample(generator)

        return JumpParams(intensity, MixtureLanding(mix.transpose(1, 2), draw))

    def conditional_jump(self, x, z, t) -> JumpParams:
        """Jump parameter of the conditional generator for data point(s) ``z`` (shape of x)."""
        return JumpParams(self.path.jump_intensity(x, z, t),
                          GaussianKernelLanding(self.path.jump_kernel(z, t)))
