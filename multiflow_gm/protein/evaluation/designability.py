"""Designability plug-in: refold each sample's sequence with a local folding model and compare.

Self-consistency (Trippe et al. 2023; MultiFlow): the sample's own sequence is
folded, the prediction superposed on the sample; ``sc_rmsd`` (CA, Angstrom) and
``sc_tm`` are reported and a sample with ``sc_rmsd < 2 A`` counts as designable.
This is only computed when a folding model is configured with weights on disk;
otherwise the report says "not computed" with the reason. Nothing is estimated.

Backends: ``esmfold:DIR`` loads ESMFold from a local Hugging Face directory with
``transformers`` (``EsmForProteinFolding``); nothing is downloaded. The
environment variable ``MULTIFLOW_GM_FOLDING_MODEL`` may hold the same spec.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from multiflow_gm.errors import ConfigError
from multiflow_gm.protein.evaluation.alignment import tm_align

DESIGNABLE_SC_RMSD = 2.0  # Angstrom
FOLDING_MODEL_ENV = "MULTIFLOW_GM_FOLDING_MODEL"


class FoldingModel(Protocol):
    """Predicts backbones ``[L, >=2, 3]`` (N, CA, ... Angstrom) for one-letter sequences."""

    name: str

    def fold(self, sequences: Sequence[str]) -> list[np.ndarray]: ...


class EsmFoldModel:
    """ESMFold through ``transformers``, from a local directory (config.json + weights)."""

    def __init__(self, directory: Path, device: str = "cpu"):
        from transformers import AutoTokenizer, EsmForProteinFolding

        self.name = f"ESMFold ({directory})"
        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        self.model = EsmForProteinFolding.from_pretrained(str(directory), local_files_only=True).to(device).eval()

    def fold(self, sequences: Sequence[str]) -> list[np.ndarray]:
        import torch

        predictions = []
        with torch.inference_mode():
            for sequence in sequences:
                tokens = self.tokenizer([sequence], return_tensors="pt", add_special_tokens=False)
                output = self.model(**{k: v.to(self.device) for k, v in tokens.items()})
                # positions: [structure-module blocks, batch, L, 14 atoms (atom14), 3]; N, CA, C, O first.
                predictions.append(output["positions"][-1, 0, :, :4].float().cpu().numpy())
        return predictions


def resolve_folding_model(spec: str | None) -> tuple[FoldingModel | None, str]:
    """The configured folding model, or None and the reason designability is not computed."""
    spec = spec or os.environ.get(FOLDING_MODEL_ENV)
    if not spec:
        return None, ("not computed: no local folding model configured "
                      f"(pass --folding-model esmfold:DIR or set {FOLDING_MODEL_ENV})")
    kind, _, location = spec.partition(":")
    if kind != "esmfold" or not location:
        raise ConfigError(f"--folding-model must look like 'esmfold:DIR', got {spec!r}")
    directory = Path(location).expanduser()
    if not (directory / "config.json").is_file():
        return None, f"not computed: no ESMFold weights at {directory} (expected a config.json there)"
    if importlib.util.find_spec("transformers") is None:
        return None, "not computed: ESMFold needs the 'transformers' package, which is not installed"
    return EsmFoldModel(directory), f"computed with ESMFold from {directory}"


def kabsch_rmsd(mobile: np.ndarray, target: np.ndarray) -> float:
    """RMSD (A) of two ``[L, 3]`` point sets after optimal superposition (Kabsch)."""
    mobile = np.asarray(mobile, np.float64) - np.mean(mobile, axis=0)
    target = np.asarray(target, np.float64) - np.mean(target, axis=0)
    u, _, vt = np.linalg.svd(mobile.T @ target)
    sign = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, sign]) @ vt
    return float(np.sqrt(np.mean(np.sum((mobile @ rotation - target) ** 2, axis=-1))))


def self_consistency(sample_atoms: np.ndarray, predicted_atoms: np.ndarray) -> dict[str, float]:
    """``sc_rmsd`` (CA, A), ``sc_tm`` (normalised by the sample) and ``designable`` (0/1)."""
    sample_ca = np.asarray(sample_atoms)[:, 1]
    predicted_ca = np.asarray(predicted_atoms)[:, 1]
    if len(sample_ca) != len(predicted_ca):
        raise ValueError(f"prediction has {len(predicted_ca)} residues, sample {len(sample_ca)}")
    rmsd = kabsch_rmsd(predicted_ca, sample_ca)
    return {"sc_rmsd": rmsd, "sc_tm": tm_align(sample_ca, predicted_ca)[0],
            "designable": float(rmsd < DESIGNABLE_SC_RMSD)}


def designability(model: FoldingModel, atoms: Sequence[np.ndarray], sequences: Sequence[str]) -> list[dict]:
    """Self-consistency of each (backbone, sequence) pair under ``model``."""
    predictions = model.fold(list(sequences))
    return [self_consistency(a, p) for a, p in zip(atoms, predictions)]


def designability_summary(rows: Sequence[dict]) -> dict[str, float]:
    """Designable fraction and mean scRMSD / scTM of per-sample rows (NaN for none)."""
    if not rows:
        return {"designable_fraction": float("nan"), "sc_rmsd_mean": float("nan"), "sc_tm_mean": float("nan")}
    return {
        "designable_fraction": float(np.mean([r["designable"] for r in rows])),
        "sc_rmsd_mean": float(np.mean([r["sc_rmsd"] for r in rows])),
        "sc_tm_mean": float(np.mean([r["sc_tm"] for r in rows])),
    }
