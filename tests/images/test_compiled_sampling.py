"""``eval.compile``: sampling through compiled networks gives the eager images, and its cells
are cached apart from eager ones."""

import pytest
import torch

from multiflow_gm.config import from_dict, to_dict
from multiflow_gm.images.benchmark import _eval_key, benchmark_rows
from multiflow_gm.images.config import ImageBenchConfig, preset
from multiflow_gm.images.networks import build_network
from multiflow_gm.images.sampling import model_spec, sample_images


def _tiny(compile_: bool) -> ImageBenchConfig:
    data = to_dict(preset("digits"))
    data["model"].update(base_channels=8, channel_mults=[1, 2], attention_heads=2, groups=4)
    data["jump"]["bins"] = 8
    data["eval"]["compile"] = compile_
    return from_dict(ImageBenchConfig, data)


def test_compiled_cells_are_cached_apart_from_eager_ones():
    row = benchmark_rows(["flow"], None, (0.5, 0.5))[0]
    eager, compiled = _eval_key(_tiny(False), "m", 10, row), _eval_key(_tiny(True), "m", 10, row)
    assert "compiled" not in eager and compiled == {**eager, "compiled": True}


@pytest.mark.slow
def test_compiled_superposition_of_two_networks_draws_the_eager_images():
    config = _tiny(True)
    torch.manual_seed(0)
    nets = {kind: build_network(config, kind, (1, 8, 8)).eval() for kind in ("flow", "jump")}
    spec = model_spec("superposition-2net")
    eager = sample_images(nets, spec, 16, 6, alpha=0.5, batch_size=8, seed=3)
    for net in nets.values():
        net.compile()
    compiled = sample_images(nets, spec, 16, 6, alpha=0.5, batch_size=8, seed=3)
    assert compiled.evaluations == eager.evaluations == 6
    torch.testing.assert_close(compiled.images, eager.images, rtol=0, atol=1e-4)
