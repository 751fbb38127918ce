"""Training on top of the workloads: generic pieces here (EMA, checkpoints, interrupts, plots, step sampler),
protein co-design in :mod:`.protein` (Lightning), the image benchmark in :mod:`.images` (plain loop)."""
