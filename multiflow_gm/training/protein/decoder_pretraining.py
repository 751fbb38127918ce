"""Train the structure-conditioned sequence decoder alone, on native backbones of a cache's training split.

The task is inverse folding with part of the sequence revealed, as the masking path
corrupts it: each residue is revealed with probability u ~ U(0, 1), and the loss is
the cross-entropy of the masked residues. Backbones get small Gaussian noise on CA
positions (Angstrom) and rotations (radians), as ProteinMPNN trains, so that the
decoder does not read the sequence off crystallographic detail.

Every ``eval_every`` steps (and at step 0 when it starts from ``init_from``) the run measures
cross-entropy and argmax recovery of validation-split chains with the whole sequence masked,
appends to ``curve.csv``, and writes ``decoder.safetensors`` (the decoder's weights, for a
co-design config's ``decoder_init_from``), ``curve.png`` and ``state.pt`` (weights, optimiser,
step, random state; for ``resume``), each atomically.

With ``teacher_weight`` w > 0, chains with a teacher profile (``multiflow-gm profiles``:
ProteinMPNN's residue-type distribution given the backbone alone) are also fitted to it:
a masked residue's loss is (1 - w f) times the native cross-entropy plus w f times the
KL divergence from the teacher's distribution, where f is the fraction of its chain that is
masked, because the teacher's distribution is the right target only when little of the
sequence is revealed. ``init_from`` starts from a decoder's weights (a decoder.safetensors,
or a co-design export whose ``sequence_decoder.*`` tensors are taken); the new decoder may be
larger (more layers, the O distances), with its new parts starting at zero output.
"""

from __future__ import annotations

import csv
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from multiflow_gm.atomic_files import atomic_path, atomic_save_figure, atomic_torch_save, atomic_write_json
from multiflow_gm.core.spaces import so3
from multiflow_gm.errors import ConfigError
from multiflow_gm.protein.alphabet import MASK, NUM_AMINO_ACIDS
from multiflow_gm.protein.coordinates import angstrom_to_nm, frame_batch_from_collated
from multiflow_gm.protein.model.sequence_decoder import SequenceDecoder, load_grown
from multiflow_gm.protein.validation import native_sequence_scores
from multiflow_gm.training.protein.config import OptimConfig
from multiflow_gm.training.run_lock import exclusive_run_dir

CURVE_FILE, WEIGHTS_FILE, STATE_FILE, SETTINGS_FILE = "curve.csv", "decoder.safetensors", "state.pt", "settings.json"
PLOT_FILE = "curve.png"


@dataclass
class DecoderPretraining:
    steps: int = 3000
    eval_every: int = 200
    hidden: int = 128
    layers: int = 3
    knn: int = 30
    oxygen: bool = False  # distances to the carbonyl O as well (25 per pair instead of 16)
    context_width: int = 128  # model.c_s of the co-design network the decoder will join
    lr: float = 1e-3
    warmup_steps: int = 200
    # "cosine": lr from warm-up to decay_start, then a half cosine to lr * final_lr_fraction at
    # `steps`; set decay_start when resuming to decay over a final leg only.
    schedule: str = "constant"
    decay_start: int = 0
    final_lr_fraction: float = 0.1
    # Chains per batch: this budget / length^2 (as data.squared_residue_budget); 4 chains of 100.
    squared_residue_budget: int = 40_000
    noise_angstrom: float = 0.2
    rotation_noise: float = 0.05
    label_smoothing: float = 0.1
    min_length: int = 40
    max_length: int = 256
    val_chains: int = 64
    seed: int = 0
    teacher_weight: float = 0.0  # 0: native labels only; needs CACHE/profiles/ when positive
    init_from: str = ""  # decoder.safetensors or a co-design export; "" starts from scratch
    # "bf16-mixed": training steps under bfloat16 autocast (1.33x faster per step on CPUs with AMX);
    # validation always runs in float32, so curves of either precision compare.
    precision: str = "32-true"

    def __post_init__(self):
        for key in ("steps", "eval_every", "hidden", "layers", "knn", "context_width", "squared_residue_budget",
                    "val_chains"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1; got {getattr(self, key)}")
        if not 0.0 <= self.teacher_weight <= 1.0:
            raise ConfigError(f"teacher_weight must lie in [0, 1]; got {self.teacher_weight}")
        if self.precision not in ("32-true", "bf16-mixed"):
            raise ConfigError(f"precision must be 32-true or bf16-mixed; got {self.precision!r}")
        if self.init_from and not Path(self.init_from).is_file():
            raise ConfigError(f"init_from: no such file {self.init_from}")
        try:
            self.optim = OptimConfig(lr=self.lr, warmup_steps=self.warmup_steps, schedule=self.schedule,
                                     decay_start=self.decay_start, final_lr_fraction=self.final_lr_fraction)
        except ValueError as error:
            raise ConfigError(str(error).replace("optim.", "")) from None


def corrupt(frames, generator: torch.Generator, noise_angstrom: float, rotation_noise: float):
    """Noisy frames and a partly masked sequence of a :class:`FrameBatch` (nm).

    Returns ``aatype [B, L]`` (masked residues = MASK), ``rotations``, ``translations`` (nm)
    and the loss mask ``[B, L]``: masked residues of known type.
    """
    b, l = frames.aatype.shape
    noise = angstrom_to_nm(noise_angstrom) * torch.randn(frames.translations.shape, generator=generator)
    rotations = frames.rotations @ so3.exp(rotation_noise * torch.randn(b, l, 3, generator=generator))
    masked = torch.rand(b, l, generator=generator) >= torch.rand(b, 1, generator=generator)
    aatype = torch.where(masked, torch.full_like(frames.aatype, MASK), frames.aatype)
    known = frames.residue_mask & (frames.aatype < NUM_AMINO_ACIDS)
    return aatype, rotations, frames.translations + noise, masked & known


@torch.no_grad()
def masked_sequence_metrics(decoder: SequenceDecoder, batch: dict) -> dict[str, float]:
    """Cross-entropy (nats/residue) and argmax recovery of a collated batch's native sequences
    from their clean backbones with the whole sequence masked."""
    was_training = decoder.training
    decoder.eval()
    frames = frame_batch_from_collated(batch)
    logits = decoder(torch.full_like(frames.aatype, MASK), frames.rotations, frames.translations,
                     torch.ones(frames.aatype.shape[0]), frames.residue_index, frames.residue_mask)
    decoder.train(was_training)
    ce, recovery = native_sequence_scores(logits, frames.aatype, frames.residue_mask)
    return {"val_ce": ce, "val_recovery": recovery}


def _data(cache_dir: Path, s: DecoderPretraining):
    from multiflow_gm.protein.data.batching import LengthBatchSampler, collate_chains
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.data.dataset import ProteinChainDataset
    from multiflow_gm.protein.data.splits import split_of

    cache = ChainCache(cache_dir)
    train = split_of(cache, "train").filter_length(s.min_length, s.max_length)
    val = split_of(cache, "val").filter_length(s.min_length, s.max_length)
    if len(train) == 0 or len(val) == 0:
        raise ConfigError(f"{cache_dir}: no train or val chain of {s.min_length}-{s.max_length} residues")
    dataset = ProteinChainDataset(train, seed=s.seed, preload=True)
    val_set = ProteinChainDataset(val, seed=s.seed, random_rotation=False)
    chosen = np.random.default_rng(s.seed).permutation(len(val))[: s.val_chains]
    val_batch = collate_chains([val_set[int(i)] for i in sorted(chosen, key=lambda i: int(val.lengths[i]))])
    sampler = LengthBatchSampler(dataset.lengths, squared_residue_budget=s.squared_residue_budget,
                                 max_batch_size=64, mode="same_length", seed=s.seed)
    profiles = {}
    if s.teacher_weight > 0:
        from multiflow_gm.protein.data.teacher_profiles import load_profiles

        profiles = load_profiles(train)
        if not profiles:
            raise ConfigError(f"teacher_weight {s.teacher_weight}: no teacher profile in {cache_dir}; "
                              f"run `multiflow-gm profiles {cache_dir}` first")
    print(f"decoder pretraining: {len(train)} training chains ({len(profiles)} with a teacher profile), "
          f"{len(chosen)} of {len(val)} validation chains")
    return dataset, sampler, val_batch, collate_chains, profiles


def decoder_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A decoder's tensors from a decoder.safetensors or a co-design export (``sequence_decoder.*``)."""
    from safetensors.torch import load_file

    weights = load_file(str(path))
    prefix = "sequence_decoder."
    if any(key.startswith(prefix) for key in weights):
        weights = {key[len(prefix):]: value for key, value in weights.items() if key.startswith(prefix)}
    return weights


def teacher_batch(names: list[str], length: int, profiles: dict[str, np.ndarray]):
    """``(log_probs [B, L, 20], has [B, L] bool)`` of a batch's chains (zeros where a chain has none)."""
    log_probs = torch.zeros(len(names), length, NUM_AMINO_ACIDS)
    has = torch.zeros(len(names), length, dtype=torch.bool)
    for row, name in enumerate(names):
        profile = profiles.get(name)
        if profile is not None:
            log_probs[row, : len(profile)] = torch.from_numpy(profile)
            has[row, : len(profile)] = True
    return log_probs, has


def distillation_loss(logits, target, loss_mask, residue_mask, teacher_log_probs, has_teacher,
                      label_smoothing: float, teacher_weight: float):
    """Mean over masked residues of (1 - w f) CE(native) + w f KL(teacher || decoder); see the module docstring.

    ``logits [B, L, >=20]``, ``target [B, L]``, ``loss_mask`` / ``residue_mask`` / ``has_teacher``
    ``[B, L]`` bool, ``teacher_log_probs [B, L, 20]``; f is the masked share of each chain's residues
    (padding left out)."""
    log_probs = torch.log_softmax(logits[..., :NUM_AMINO_ACIDS].float(), dim=-1)
    ce = F.cross_entropy(log_probs.transpose(1, 2), target, label_smoothing=label_smoothing, reduction="none")
    kl = (teacher_log_probs.exp() * (teacher_log_probs - log_probs)).sum(-1)
    fraction = loss_mask.float().sum(-1, keepdim=True) / residue_mask.float().sum(-1, keepdim=True).clamp(min=1)
    weight = teacher_weight * fraction * has_teacher.float()
    per_residue = (1 - weight) * ce + weight * kl
    return per_residue[loss_mask].mean()


def _save(out: Path, decoder, optimiser, position: dict, generator: torch.Generator) -> None:
    from safetensors.torch import save_file

    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_file({k: v.contiguous() for k, v in decoder.state_dict().items()}, str(tmp))
    atomic_torch_save({"decoder": decoder.state_dict(), "optimiser": optimiser.state_dict(), **position,
                       "generator": generator.get_state()}, out / STATE_FILE)


def _append_curve(out: Path, row: dict) -> list[dict]:
    path = out / CURVE_FILE
    rows = list(csv.DictReader(path.open())) if path.is_file() else []
    rows = [r for r in rows if int(r["step"]) < row["step"]] + [row]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _training_step(decoder, optimiser, batch: dict, generator: torch.Generator, s: DecoderPretraining,
                   step: int, profiles: dict) -> float | None:
    """One optimiser step on a collated batch (learning rate of ``s.optim`` at ``step``); the loss,
    or None (no step) when the draw masked no residue of known type, whose mean loss is 0/0."""
    for group in optimiser.param_groups:
        group["lr"] = s.optim.lr_at(step, s.steps)
    frames = frame_batch_from_collated(batch)
    aatype, rotations, translations, loss_mask = corrupt(frames, generator, s.noise_angstrom, s.rotation_noise)
    if not loss_mask.any():
        return None
    device = frames.translations.device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=s.precision == "bf16-mixed"):
        logits = decoder(aatype, rotations, translations, torch.ones(aatype.shape[0]), frames.residue_index,
                         frames.residue_mask)
    logits = logits.float()
    target = frames.aatype.clamp(max=NUM_AMINO_ACIDS - 1)
    if profiles:
        teacher, has_teacher = teacher_batch(batch["name"], aatype.shape[1], profiles)
        loss = distillation_loss(logits, target, loss_mask, frames.residue_mask, teacher, has_teacher,
                                 s.label_smoothing, s.teacher_weight)
    else:  # native labels only: the same loss without building an unused teacher batch every step
        loss = F.cross_entropy(logits[..., :NUM_AMINO_ACIDS][loss_mask], target[loss_mask],
                               label_smoothing=s.label_smoothing)
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(decoder.parameters(), 1.0)
    optimiser.step()
    return loss.item()


def plot_curve(rows: list[dict], path: Path) -> None:
    """Training and validation cross-entropy, and validation recovery, against steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [int(r["step"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(steps, [float(r["train_ce"]) for r in rows], label="training batch (masked residues)")
    left.plot(steps, [float(r["val_ce"]) for r in rows], label="validation (all masked)")
    left.set(xlabel="step", ylabel="cross-entropy (nats/residue)")
    left.legend()
    right.plot(steps, [float(r["val_recovery"]) for r in rows])
    right.set(xlabel="step", ylabel="validation argmax recovery")
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=120)


def pretrain_decoder(cache_dir: str | Path, out: str | Path, s: DecoderPretraining, resume: bool = False,
                     progress: bool = True) -> dict:
    """Train (or resume) and return the final validation row; see the module docstring for the files."""
    out = Path(out)
    if (out / STATE_FILE).is_file() and not resume:
        raise ConfigError(f"{out} already holds a decoder run; pass --resume or choose another --out")
    if resume and not (out / STATE_FILE).is_file():
        raise ConfigError(f"--resume: {out / STATE_FILE} does not exist")
    with exclusive_run_dir(out) as out:
        return _train(cache_dir, out, s, resume, progress)


def _train(cache_dir: str | Path, out: Path, s: DecoderPretraining, resume: bool, progress: bool) -> dict:
    from tqdm import tqdm

    atomic_write_json(out / SETTINGS_FILE, asdict(s))
    torch.manual_seed(s.seed)
    dataset, sampler, val_batch, collate, profiles = _data(Path(cache_dir), s)
    decoder = SequenceDecoder(s.context_width, s.hidden, s.layers, s.knn, oxygen=s.oxygen)
    if s.init_from and not resume:
        try:
            for line in load_grown(decoder, decoder_weights(s.init_from)):
                print(f"init_from {s.init_from}: {line}")
        except ValueError as error:
            raise ConfigError(f"init_from {s.init_from}: weights do not fit --hidden/--layers/--oxygen/"
                              f"--context-width: {error}") from None
    optimiser = torch.optim.AdamW(decoder.parameters(), lr=s.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(s.seed)
    position = {"step": 0, "epoch": 0, "batch": 0}  # optimiser steps; epoch and batch within it
    if resume:
        state = torch.load(out / STATE_FILE, weights_only=True)
        decoder.load_state_dict(state["decoder"])
        optimiser.load_state_dict(state["optimiser"])
        position = {key: int(state[key]) for key in position}
        generator.set_state(state["generator"])
    start, row = time.time(), {}
    if s.init_from and not resume:  # the starting decoder's row, so a curve shows what training added
        _append_curve(out, {"step": 0, "train_ce": float("nan"), "wall_s": 0.0,
                            **masked_sequence_metrics(decoder, val_batch)})
    bar = tqdm(total=s.steps, initial=position["step"], disable=not progress, desc="decoder")
    while position["step"] < s.steps:
        sampler.set_epoch(position["epoch"])
        dataset.set_epoch(position["epoch"])
        sampler.set_start_batch(position["batch"])
        for indices in sampler:
            position["batch"] += 1
            loss = _training_step(decoder, optimiser, collate([dataset[i] for i in indices]), generator, s,
                                  position["step"], profiles)
            if loss is None:   # nothing masked: no step is taken or counted; the next batch follows
                continue
            position["step"] += 1
            bar.update(1)
            if position["step"] % s.eval_every == 0 or position["step"] == s.steps:
                row = {"step": position["step"], "train_ce": loss, "wall_s": round(time.time() - start, 1),
                       **masked_sequence_metrics(decoder, val_batch)}
                plot_curve(_append_curve(out, row), out / PLOT_FILE)
                _save(out, decoder, optimiser, position, generator)
                bar.set_postfix(val_ce=f"{row['val_ce']:.3f}", val_recovery=f"{row['val_recovery']:.3f}")
            if position["step"] >= s.steps:
                break
        else:
            position["epoch"], position["batch"] = position["epoch"] + 1, 0
    bar.close()
    return row
