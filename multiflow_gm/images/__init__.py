"""Image workload: flow, jump and flow+jump superposition models on R^d images.

Built only from the core's objects (CondOT path, its closed-form jump generator,
Bregman losses, one simulation loop):

* :mod:`.unet`, :mod:`.heads`: a U-Net whose output serves a flow head, a jump head
  (per pixel channel: intensity and bin logits over [-1, 1]) or both;
* :mod:`.objective`: the GM losses; :mod:`.sampling`: Euler flow, Euler jump,
  superposition and the mixed (Heun flow + Euler jump) sampler at an NFE budget;
* :mod:`.datasets`, :mod:`.official_formats`: MNIST, digits, CIFAR-10, ImageNet32;
* :mod:`.metric`: FID (local Inception-v3 weights) or a labelled classifier-feature
  Frechet distance, with the held-out floor; :mod:`.report`: tables and sample grids.

* :mod:`.networks`: the benchmark's networks by name and their EMA snapshots; :mod:`.benchmark`:
  the table (every sampler x alpha x NFE cell with intervals); :mod:`.curves`: training curves;
  :mod:`.intervals`: jackknife intervals; :mod:`.dither`: the landing-bin metric check.

The training loop and the end-to-end run live in ``multiflow_gm.training.images``.
"""

from multiflow_gm.images.config import ImageBenchConfig, preset
from multiflow_gm.images.heads import NETWORK_KINDS, HeadOutput, ImageGeneratorNet, bin_edges
from multiflow_gm.images.objective import jump_loss, jump_targets, training_losses
from multiflow_gm.images.sampling import MODELS, ModelSpec, component_for, sample_images, steps_for_nfe
from multiflow_gm.images.unet import UNet, UNetConfig

__all__ = [
    "HeadOutput", "ImageBenchConfig", "ImageGeneratorNet", "MODELS", "ModelSpec", "NETWORK_KINDS", "UNet",
    "UNetConfig", "bin_edges", "component_for", "jump_loss", "jump_targets", "preset", "sample_images",
    "steps_for_nfe", "training_losses",
]
