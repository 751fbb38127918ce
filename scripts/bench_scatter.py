"""Sparse IPA attention: the blocked dense kernel against edge-list scatter formulations.

Times attention restricted to ``K`` neighbours per residue (the pattern of
``InvariantPointAttention._sparse``) for three implementations, forward and
forward + backward, float32:

- ``blocked`` (a): ``InvariantPointAttention._sparse`` as shipped: row blocks of the dense
  q.k product, ``gather`` of the K neighbour logits, a softmax over the K axis, and
  ``scatter`` of the weights into a dense row block times the values.
- ``edges_native`` (b): an edge list (destination = query residue, source = neighbour):
  per-edge logits from gathered keys, a softmax over each node's edges with
  ``scatter_reduce(..., "amax")`` and ``index_add_`` of the exponentials, outputs by
  ``index_add_``.
- ``edges_scatter`` / ``edges_csr`` (c): the same edge list with ``torch_scatter``
  (``scatter_softmax`` + ``scatter_add``, and the sorted-segment ``segment_csr`` kernels).
  Recorded as missing, with the import error, when ``torch_scatter`` cannot be imported.

Each cell also times the reduction stage alone (softmax over each node's edges and the
aggregation, on precomputed per-edge logits ``[E, H]`` and gathered values ``[E, H, d]``,
``E = B L K``): ``native`` against ``scatter`` and ``csr``, the only part torch_scatter replaces.

Inputs are the augmented queries/keys ``[B, H, L, d]``, values ``[B, H, L, d]``, pair bias
``[B, H, L, K]`` and ``neighbours [B, L, K]`` (the K nearest residues of a random-walk chain
with 0.38 nm steps). Before timing, every variant's weights, outputs and input gradients must
match ``blocked`` (reduction stages: ``native``) to 1e-5. Each cell is the median of
``--repeats`` runs after one warm-up.

    python scripts/bench_scatter.py --threads 1 --repeats 9 --out results/bench_scatter.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TOLERANCE = 1e-5


def _inputs(batch: int, length: int, heads: int, k: int, dim: int, seed: int):
    """Random attention inputs; ``neighbours [B, L, K]`` are spatial nearest neighbours (self first)."""
    import torch

    from multiflow_gm.core import seeded_generator

    g = seeded_generator(seed)
    steps = torch.randn(batch, length, 3, generator=g)
    ca = torch.cumsum(0.38 * steps / steps.norm(dim=-1, keepdim=True), dim=1)
    neighbours = torch.cdist(ca, ca).topk(k, dim=-1, largest=False).indices                  # [B, L, K]
    # Scaled so logits are O(1) as in a trained network: the softmax is neither flat nor one-hot.
    q = torch.randn(batch, heads, length, dim, generator=g) * dim ** -0.5
    key = torch.randn(batch, heads, length, dim, generator=g)
    v = torch.randn(batch, heads, length, dim, generator=g)
    bias = torch.randn(batch, heads, length, k, generator=g)
    return q, key, v, bias, neighbours


def _edges(neighbours):
    """Flat edge list: ``dst, src [B * L * K]`` node ids in ``[0, B * L)``, sorted by ``dst``."""
    import torch

    b, l, k = neighbours.shape
    offsets = torch.arange(b, device=neighbours.device)[:, None, None] * l
    dst = torch.arange(b * l, device=neighbours.device).repeat_interleave(k)
    return dst, (neighbours + offsets).reshape(-1)


def _edge_logits(q, key, bias, dst, src):
    """Per-edge logits ``[E, H]`` from node-major queries/keys ``[N, H, d]`` and bias ``[B, H, L, K]``."""
    # The bias is stored per (query, slot): edge e = (node, slot) in dst-sorted order is row e of
    # the [B, L, K, H] layout, so no index is needed for it.
    edge_bias = bias.permute(0, 2, 3, 1).reshape(-1, q.shape[1])
    return (q.index_select(0, dst) * key.index_select(0, src)).sum(-1) + edge_bias


def _node_major(x):
    """``[B, H, L, d]`` -> ``[B * L, H, d]``: edge-list kernels index the leading axis."""
    return x.permute(0, 2, 1, 3).reshape(-1, x.shape[1], x.shape[3])


def _to_heads_first(attn_e, out_n, shape, k):
    """Edge weights ``[E, H]`` and node outputs ``[N, H, d]`` back to ``[B, H, L, K]``, ``[B, H, L, d]``."""
    b, h, l, d = shape
    return attn_e.reshape(b, l, k, h).permute(0, 3, 1, 2), out_n.reshape(b, l, h, d).transpose(1, 2)


def reduce_native(logits, values, dst, n, k):
    """Softmax of ``logits [E, H]`` over each destination's edges and ``sum_e a_e values_e [E, H, d]``
    per destination, with native scatter ops: ``[E, H]``, ``[N, H, d]``."""
    import torch

    index = dst[:, None].expand_as(logits)
    # The max only stabilises exp (the softmax does not depend on it), so it carries no gradient.
    peak = logits.new_zeros(n, logits.shape[1]).scatter_reduce(0, index, logits.detach(), "amax", include_self=False)
    ex = torch.exp(logits - peak.index_select(0, dst))
    total = logits.new_zeros(n, logits.shape[1]).index_add_(0, dst, ex)
    attn = ex / total.index_select(0, dst)
    return attn, values.new_zeros(n, *values.shape[1:]).index_add_(0, dst, attn[..., None] * values)


def reduce_scatter(logits, values, dst, n, k):
    """``reduce_native`` with ``torch_scatter.scatter_softmax`` and ``scatter_add`` (any edge order)."""
    import torch_scatter

    attn = torch_scatter.scatter_softmax(logits, dst, dim=0, dim_size=n)
    return attn, torch_scatter.scatter_add(attn[..., None] * values, dst, dim=0, dim_size=n)


def reduce_csr(logits, values, dst, n, k):
    """``reduce_native`` with ``torch_scatter.segment_csr`` (edges sorted by destination, K per node)."""
    import torch
    import torch_scatter

    ptr = torch.arange(0, n * k + 1, k, device=dst.device)                                    # [N + 1]
    peak = torch_scatter.segment_csr(logits.detach(), ptr, reduce="max")
    ex = torch.exp(logits - peak.index_select(0, dst))
    attn = ex / torch_scatter.segment_csr(ex, ptr, reduce="sum").index_select(0, dst)
    return attn, torch_scatter.segment_csr(attn[..., None] * values, ptr, reduce="sum")


def _edge_attention(reduce):
    """Edge-list sparse attention ``(q, key, v, bias, neighbours) -> [B, H, L, K], [B, H, L, d]``:
    per-edge logits and values from gathered node rows, then ``reduce``."""
    def attend(q, key, v, bias, neighbours):
        k = neighbours.shape[-1]
        dst, src = _edges(neighbours)
        qn, kn, vn = _node_major(q), _node_major(key), _node_major(v)
        logits = _edge_logits(qn, kn, bias, dst, src)                                          # [E, H]
        attn, out = reduce(logits, vn.index_select(0, src), dst, qn.shape[0], k)
        return _to_heads_first(attn, out, v.shape, k)
    return attend


edges_native = _edge_attention(reduce_native)
edges_scatter = _edge_attention(reduce_scatter)
edges_csr = _edge_attention(reduce_csr)


def _reduce_only(reduce, dst, k):
    """The reduction stage alone, as ``(logits [E, H], values [E, H, d], ...) -> (attn, out)``."""
    def run(logits, values, *_):
        return reduce(logits, values, dst, dst.shape[0] // k, k)
    return run


def blocked(q, key, v, bias, neighbours):
    """The shipped kernel, called as the network calls it."""
    from multiflow_gm.protein.model.ipa import InvariantPointAttention

    return InvariantPointAttention._sparse(q, key, v, bias, neighbours)


def _run(fn, inputs, backward: bool, weights):
    """One call; with ``backward``, back-propagates a fixed linear functional of both outputs."""
    import torch

    leaves = [x.detach().requires_grad_(backward) for x in inputs[:-1]]
    with torch.set_grad_enabled(backward):
        attn, out = fn(*leaves, inputs[-1])
        if backward:
            ((attn * weights[0]).sum() + (out * weights[1]).sum()).backward()
    return attn.detach(), out.detach(), [x.grad for x in leaves] if backward else []


def _check(reference, variants, inputs, weights):
    """Largest absolute difference to ``reference`` over weights, outputs and gradients, per variant."""
    ref = _run(reference, inputs, True, weights)
    diffs = {}
    for name, fn in variants.items():
        got = _run(fn, inputs, True, weights)
        pairs = [(ref[0], got[0]), (ref[1], got[1])] + list(zip(ref[2], got[2]))
        diffs[name] = max(float((a - b).abs().max()) for a, b in pairs)
        if diffs[name] >= TOLERANCE:
            raise AssertionError(f"{name} differs from the reference by {diffs[name]:.2e} (tolerance {TOLERANCE})")
    return diffs


def _time(fn, inputs, backward, weights, repeats):
    _run(fn, inputs, backward, weights)                                                        # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _run(fn, inputs, backward, weights)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "all_s": times}


def main(argv=None) -> int:
    import torch

    from multiflow_gm.atomic_files import atomic_write_bytes
    from multiflow_gm.core import seeded_generator

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--neighbours", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--dim", type=int, default=48, help="query/key and value width per head")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_scatter.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    variants = {"edges_native": edges_native}
    reductions = {"native": reduce_native}
    try:
        import torch_scatter
        variants.update(edges_scatter=edges_scatter, edges_csr=edges_csr)
        reductions.update(scatter=reduce_scatter, csr=reduce_csr)
        scatter_status = {"available": True, "version": torch_scatter.__version__}
    except Exception as error:  # an ImportError, or an OSError from a build against another torch
        scatter_status = {"available": False, "error": f"{type(error).__name__}: {error}"}
    cells = []
    for length in args.lengths:
        for k in args.neighbours:
            inputs = _inputs(args.batch, length, args.heads, k, args.dim, seed=length * 1000 + k)
            g = seeded_generator(1)
            # Scaled so the input gradients are O(1) like the outputs: an absolute 1e-5 then bounds
            # the relative error on every checked tensor alike (float32 rounding is ~1e-7 relative).
            weights = (0.1 * torch.randn(inputs[3].shape, generator=g), 0.1 * torch.randn(inputs[2].shape, generator=g))
            # The reduction stage alone (softmax over edges + aggregation), on precomputed per-edge
            # logits and gathered values: the only part torch_scatter could replace.
            dst, src = _edges(inputs[4])
            stage_inputs = (_edge_logits(_node_major(inputs[0]), _node_major(inputs[1]), inputs[3], dst, src),
                            _node_major(inputs[2]).index_select(0, src), dst)
            stage_weights = (weights[0].permute(0, 2, 3, 1).reshape(-1, args.heads), _node_major(weights[1]))
            stages = {name: _reduce_only(fn, dst, k) for name, fn in reductions.items()}
            cell = {"length": length, "k": k, "edges": int(dst.shape[0]),
                    "max_abs_diff": _check(blocked, variants, inputs, weights),
                    "reduction_max_abs_diff": _check(stages["native"], stages, stage_inputs, stage_weights)}
            groups = (("attention", {"blocked": blocked, **variants}, inputs, weights),
                      ("reduction", stages, stage_inputs, stage_weights))
            for group, fns, group_inputs, group_weights in groups:
                base_name = next(iter(fns))
                for mode, backward in (("forward", False), ("forward_backward", True)):
                    timed = {name: _time(fn, group_inputs, backward, group_weights, args.repeats)
                             for name, fn in fns.items()}
                    base = timed[base_name]["median_s"]
                    cell[f"{group}_{mode}"] = timed
                    cell[f"{group}_{mode}_ratio_to_{base_name}"] = {n: t["median_s"] / base for n, t in timed.items()}
                    print(f"L={length:4d} K={k:3d} {group:9s} {mode:16s} "
                          + "  ".join(f"{n} {1000 * t['median_s']:7.2f} ms (x{t['median_s'] / base:.2f})"
                                      for n, t in timed.items()), flush=True)
            cells.append(cell)
    result = {"batch": args.batch, "heads": args.heads, "dim": args.dim, "repeats": args.repeats,
              "threads": args.threads, "torch": torch.__version__, "torch_scatter": scatter_status,
              "machine": platform.machine(), "platform": platform.platform(),
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()],
              "tolerance": TOLERANCE, "cells": cells}
    if not scatter_status["available"]:
        print(f"torch_scatter missing: {scatter_status['error']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, (json.dumps(result, indent=1) + "\n").encode())
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
