"""Exact marginal generators for data distributions with finitely many atoms.

For ``p_data = sum_k pi_k delta_{z_k}`` the posterior ``p(z_k | x_t)`` is computable,
so the marginal generator parameter ``F_t(x) = E[F_t^z(x) | X_t = x]`` (the
conditional-to-marginal identity of Generator Matching)
is exact. Atoms may have several components (a product space), each with its
own path and its own time; the posterior multiplies the components'
likelihoods, so each component's marginal parameter depends on the whole
joint state. This is the ground truth of the core's tests and of ``demo``.

Any path providing ``atom_log_likelihood`` and the conditional parameter methods
(``velocity``, ``diffusion_drift``, ``jump_intensity`` + ``sample_landing``, ``rates``) works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
import torch.nn.functional as F

from multiflow_gm.core.landing import JumpParams, MixtureLanding


@dataclass
class AtomicTarget:
    """Atoms ``{name: [K, ...]}`` with probabilities ``probs [K]`` and a path per component.

    States are ``{name: [N, ...]}`` and times ``{name: float or 0-dim tensor}``.
    """

    atoms: Mapping[str, torch.Tensor]
    probs: torch.Tensor
    paths: Mapping[str, object]

    def __post_init__(self):
        k = self.probs.shape[0]
        if set(self.atoms) != set(self.paths):
            raise ValueError(f"atoms are for {sorted(self.atoms)} but paths for {sorted(self.paths)}")
        for name, a in self.atoms.items():
            if a.shape[0] != k:
                raise ValueError(f"atoms[{name!r}] has {a.shape[0]} atoms; probs has {k}")

    def sample(self, n: int, generator=None) -> dict[str, torch.Tensor]:
        """``n`` draws from the target."""
        idx = torch.multinomial(self.probs.float(), n, replacement=True, generator=generator)
        return {name: a[idx] for name, a in self.atoms.items()}

    def posterior(self, x: Mapping[str, torch.Tensor], t: Mapping[str, object]) -> torch.Tensor:
        """``p(z_k | x_t)`` ``[N, K]`` from every component's likelihood at its own time."""
        logits = torch.log(self.probs.clamp_min(1e-300)).to(torch.float64)
        for name, path in self.paths.items():
            logits = logits + path.atom_log_likelihood(x[name], self.atoms[name], t[name]).to(torch.float64)
        # Every atom can be excluded (-inf) by a path with bounded support; keep rows finite.
        logits = torch.nan_to_num(logits, neginf=-1e300)
        return torch.softmax(logits, dim=-1)

    def _per_atom(self, name, x, fn):
        """Evaluate ``fn(x_b, z_b)`` with x ``[N, ...]`` against every atom -> ``[N, K, ...]``."""
        xs, zs = x[name], self.atoms[name].to(x[name].dtype)
        n, k = xs.shape[0], zs.shape[0]
        x_b = xs[:, None].expand(n, k, *xs.shape[1:])
        z_b = zs[None].expand(n, k, *zs.shape[1:])
        return fn(x_b.reshape(n * k, *xs.shape[1:]), z_b.reshape(n * k, *zs.shape[1:])).reshape(n, k, -1)

    def velocity(self, name, x, t, weights=None):
        """Marginal flow velocity of component ``name`` (same shape as its tangent vectors)."""
        w = self.posterior(x, t) if weights is None else weights
        path = self.paths[name]
        per_atom = self._per_atom(name, x, lambda xb, zb: path.velocity(xb, zb, t[name]))
        return self._tangent_average(w, per_atom, x[name], path)

    def diffusion_drift(self, name, x, t, diffusion, weights=None):
        w = self.posterior(x, t) if weights is None else weights
        path = self.paths[name]
        per_atom = self._per_atom(name, x, lambda xb, zb: path.diffusion_drift(xb, zb, t[name], diffusion))
        return self._tangent_average(w, per_atom, x[name], path)

    @staticmethod
    def _tangent_average(w, per_atom, x, path):
        avg = torch.einsum("nk,nkf->nf", w.to(per_atom.dtype), per_atom)
        # Rotations [N, ..., 3, 3] have body-frame tangents [N, ..., 3].
        shape = x.shape[1:-2] + (3,) if path.event_dims == 2 else x.shape[1:]
        return avg.reshape(x.shape[0], *shape)

    def jump(self, name, x, t, weights=None) -> JumpParams:
        """Marginal jump: ``lambda = sum_k w_k lambda^k`` per entry, landing law the mixture of
        the atoms' landing laws with weights ``w_k lambda^k``."""
        w = self.posterior(x, t) if weights is None else weights
        path, atoms = self.paths[name], self.atoms[name]
        xs = x[name]
        entries = xs.shape[: xs.dim() - path.event_dims]
        lam = self._per_atom(name, x, lambda xb, zb: path.jump_intensity(xb, zb, t[name]))
        lam = lam.reshape(entries[0], atoms.shape[0], *entries[1:])       # [N, K, *E]
        mix = w.to(lam.dtype).reshape(*w.shape, *([1] * (len(entries) - 1))) * lam
        intensity = mix.sum(1)
        mix_last = mix.movedim(1, -1)                                      # [N, *E, K]

        def draw(where, component, generator):
            rest = tuple(where.nonzero()[:, 1:].T)
            return path.sample_landing(atoms[(component,) + rest], t[name], generator)

        return JumpParams(intensity, MixtureLanding(mix_last, draw))

    def token_posterior(self, name, x, t, weights=None) -> torch.Tensor:
        """``p(x1_i = j | x_t)`` ``[N, n, num_tokens]`` for a token component."""
        w = self.posterior(x, t) if weights is None else weights
        path = self.paths[name]
        onehot = F.one_hot(self.atoms[name], path.num_tokens).to(torch.float64)   # [K, n, V]
        return torch.einsum("nk,kiv->niv", w, onehot)

    def rates(self, name, x, t, eta: float = 0.0, weights=None) -> torch.Tensor:
        """Marginal CTMC rates of a token component ``[N, n, S]``."""
        probs = self.token_posterior(name, x, t, weights)
        return self.paths[name].rates(x[name], probs, t[name], eta)
