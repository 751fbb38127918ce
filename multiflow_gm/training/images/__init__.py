"""Training of the image benchmark's networks (a plain PyTorch loop) and the benchmark run."""
