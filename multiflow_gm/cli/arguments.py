"""Argument types shared by several commands."""

from __future__ import annotations

import argparse


def length_range(text: str) -> tuple[int, int]:
    """``"60-128"`` (or ``"100"``) -> ``(60, 128)`` residues; argparse error otherwise."""
    low, _, high = text.partition("-")
    try:
        bounds = (int(low), int(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX, e.g. 60-128, got {text!r}") from None
    if bounds[0] < 2 or bounds[1] < bounds[0]:
        raise argparse.ArgumentTypeError(f"invalid length range {text!r}")
    return bounds
