"""Protein co-design training on Lightning: config, DataModule, module, validation callback, ``train``.

Generic pieces (EMA and its callback, the batch counter and step-indexed sampler,
checkpoint IO, interrupts, loss plots) live one level up in :mod:`multiflow_gm.training`.
"""
