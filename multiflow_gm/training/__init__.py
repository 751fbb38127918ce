"""Training loops (Lightning) shared by the workloads: EMA, checkpoints, logging, plots."""
