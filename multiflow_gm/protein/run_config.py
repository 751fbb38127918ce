"""Keys a co-design run config shares between training and sampling, and their retired forms.

A run config (the YAML of ``configs/protein/``, a run's ``config.yaml``, the JSON stored in
an export or a checkpoint) names each setting once:

* ``self_condition`` (top level): the network is trained with its previous prediction as
  input. ``sampling.self_condition`` is null (as trained) unless a run asks to sample
  without it (false); asking for it on a network trained without it is an error.
* ``process.min_t``: the earliest time of training and the start of the sampling grid.

:func:`migrate_run_config` rewrites the keys older files carry so that they load with the
same effective settings as before.
"""

from __future__ import annotations

from typing import Optional

from multiflow_gm.errors import ConfigError

# Keys that exported models may still carry but that no longer mean anything: the SO(3)
# jump head once landed on a grid of this many relative rotations.
RETIRED_MODEL_KEYS = ("so3_jump_grid",)


def migrate_run_config(config: dict, sampling_only: bool = False) -> dict:
    """``config`` (a plain run-config dict) with its retired keys rewritten; the input is not changed.

    * ``model.so3_jump_grid``: dropped.
    * ``sampling.min_t``: the sampling grid now starts at ``process.min_t``. Equal values
      are dropped. A different value is moved to ``process.min_t`` when the config is only
      sampled (``sampling_only``: the training-time bound plays no part in sampling), and
      raises ConfigError for training, which would otherwise change.
    * ``sampling.self_condition: true`` next to ``self_condition: false``: every file written
      before the two were separated holds it (the default was written out) and it sampled
      without self-conditioning (the two were AND-ed), so it becomes null (as trained).
    """
    config = dict(config)
    if isinstance(config.get("model"), dict):
        config["model"] = {k: v for k, v in config["model"].items() if k not in RETIRED_MODEL_KEYS}
    sampling = config.get("sampling")
    if not isinstance(sampling, dict):
        return config
    sampling = dict(sampling)
    process = dict(config.get("process") or {})
    if "min_t" in sampling:
        min_t = sampling.pop("min_t")
        from multiflow_gm.protein.process import ProcessConfig

        trained = process.get("min_t", ProcessConfig.min_t)
        if min_t != trained:
            if not sampling_only:
                raise ConfigError(f"config key 'sampling.min_t' ({min_t}) was retired: sampling starts at "
                                  f"'process.min_t' ({trained}); set process.min_t instead")
            process["min_t"] = min_t
            config["process"] = process
    if sampling.get("self_condition") is True and config.get("self_condition") is False:
        sampling["self_condition"] = None
    config["sampling"] = sampling
    return config


def resolve_self_condition(trained: bool, requested: Optional[bool]) -> bool:
    """Whether sampling feeds the network its previous prediction.

    ``requested`` None follows ``trained``; True with a network trained without
    self-conditioning raises ConfigError (its inputs would be ones it never saw).
    """
    if requested is None:
        return trained
    if requested and not trained:
        raise ConfigError("config key 'sampling.self_condition' is true but the network was trained without "
                          "self-conditioning (self_condition: false); leave it null (as trained) or false")
    return requested
