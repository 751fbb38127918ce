"""Typed YAML configs: dataclasses in, clear errors out.

A config is a (nested) dataclass. :func:`load_config` reads YAML, applies
``key.sub=value`` overrides (the ``--set`` of every command) and builds the
dataclass, failing at start with the dotted name of any unknown key or value of
the wrong type. No dead keys: every key in a file must exist in the schema.

A config class may define ``migrate_retired_keys(data: dict) -> dict``: files keep
loading after a key is retired or moved, because :func:`load_config` passes the
file's data through it before the overrides (which name only current keys).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from multiflow_gm.errors import ConfigError, MissingConfigFileError

T = TypeVar("T")


def _describe(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp, key: str):
    """Check ``value`` against the annotation ``tp`` (converting int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"config key '{key}' must be {_describe(tp)}; got {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"config key '{key}' must be one of {list(args)}; got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping; got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' must be a list; got {value!r}")
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}' must be a mapping; got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' must be a number; got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer; got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}' must be true or false; got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}' must be a string; got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"config key '{key}' must be {_describe(tp)}; got {value!r}")
    return value


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}' must be a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}'; "
                          f"expected one of: {', '.join(sorted(fields))}")
    kwargs = {name: _coerce(value, hints[name], f"{prefix}{name}") for name, value in data.items()}
    try:
        instance = cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<root>'}': {err}") from None
    return instance


def to_dict(config) -> dict:
    """Plain, YAML-serialisable dict of a config dataclass."""
    def convert(v):
        if isinstance(v, tuple):
            return [convert(x) for x in v]
        if isinstance(v, list):
            return [convert(x) for x in v]
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        return v
    return convert(dataclasses.asdict(config))


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a nested dict in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


BASE_KEY = "base"


def merge_dicts(base: dict, update: dict) -> dict:
    """``update`` laid over ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge_dicts(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_layered_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML config as a dict, laid over the file its ``base:`` key names (relative to it).

    Derived configs name only what differs from their base, so two configs never repeat
    the same model by copy.
    """
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"config files include each other: {' -> '.join(str(p) for p in (*_seen, path))}")
    if not path.is_file():
        raise MissingConfigFileError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping")
    if BASE_KEY in data:
        base = data.pop(BASE_KEY)
        if not isinstance(base, str):
            raise ConfigError(f"config key '{BASE_KEY}' in {path} must be a file name; got {base!r}")
        data = merge_dicts(read_layered_yaml(path.parent / base, (*_seen, path)), data)
    return data


def migrate(cls: type, data: dict) -> dict:
    """``data`` with the retired keys of ``cls`` rewritten (unchanged when it retires none)."""
    hook = getattr(cls, "migrate_retired_keys", None)
    return hook(data) if hook is not None else data


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Read YAML at ``path`` (laid over its ``base:``, or the defaults), migrate, apply overrides, validate."""
    data = migrate(cls, read_layered_yaml(path)) if path is not None else {}
    apply_overrides(data, overrides or [])
    return from_dict(cls, data)


def with_overrides(config: T, overrides: list[str], prefixes: tuple[str, ...] | None = None) -> T:
    """A validated copy of ``config`` with ``key.sub=value`` overrides applied.

    ``prefixes`` limits the keys that may change (e.g. ``("sampling.",)``); any other key
    raises ConfigError naming it.
    """
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if prefixes is not None and not key.startswith(prefixes):
            raise ConfigError(f"config key '{key}' cannot be set here; only {', '.join(p + '*' for p in prefixes)}")
    return from_dict(type(config), apply_overrides(to_dict(config), overrides))


def save_config(config, path: str | Path) -> None:
    """Write ``config`` as YAML atomically (a killed run leaves the old file or the new one)."""
    from multiflow_gm.atomic_files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
