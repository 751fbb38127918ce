"""Per-example times in the atomic-target likelihoods: row n at time t[n] equals the scalar call."""

import pytest
import torch

from multiflow_gm.core import CondOTPath, GeodesicSO3Path, IsotropicSO3Path, MixtureTokenPath, so3

F64 = torch.float64


def _cases():
    g = torch.Generator().manual_seed(0)
    yield "affine", CondOTPath(), torch.randn(5, 4, dtype=F64, generator=g), torch.randn(3, 4, dtype=F64, generator=g)
    yield ("mixture", MixtureTokenPath(6, "mask"), torch.randint(0, 7, (5, 4), generator=g),
           torch.randint(0, 6, (3, 4), generator=g))
    yield ("geodesic", GeodesicSO3Path(), so3.uniform((5, 2), dtype=F64, generator=g),
           so3.uniform((3, 2), dtype=F64, generator=g))
    yield ("isotropic", IsotropicSO3Path(kappa_max=20.0), so3.uniform((5, 2), dtype=F64, generator=g),
           so3.uniform((3, 2), dtype=F64, generator=g))


@pytest.mark.parametrize("name,path,x,atoms", list(_cases()), ids=[c[0] for c in _cases()])
def test_per_example_time_matches_scalar_calls(name, path, x, atoms):
    t = torch.tensor([0.1, 0.4, 0.4, 0.7, 0.95], dtype=F64)
    table = path.atom_log_likelihood(x, atoms, t)
    assert table.shape == (5, 3)
    rows = torch.stack([path.atom_log_likelihood(x[n:n + 1], atoms, float(t[n]))[0] for n in range(5)])
    finite = torch.isfinite(rows)
    assert torch.equal(finite, torch.isfinite(table))
    assert torch.allclose(table[finite].double(), rows[finite].double(), rtol=1e-6, atol=1e-8)
    # Control: one shared time is a different table.
    shared = path.atom_log_likelihood(x, atoms, 0.4)
    assert not torch.allclose(torch.nan_to_num(shared.double(), neginf=-1e9),
                              torch.nan_to_num(table.double(), neginf=-1e9))
