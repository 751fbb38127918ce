"""Quality evaluation of generated proteins against a reference set and baselines.

Entry point: :func:`multiflow_gm.protein.evaluation.pipeline.run_evaluation`
(the ``multiflow-gm evaluate`` command). Metric functions work on numpy arrays
of backbone atoms ``[L, 4, 3]`` (N, CA, C, O; Angstrom) and one-letter sequences
and can be used on their own, e.g. from a training loop's validation step.
"""
