"""Tables (console and Markdown, laid out like the paper's: rows model, columns NFE) and sample grids.

The results dict is the benchmark's JSON: ``models[row]["cells"][str(nfe)]`` holds
``distance``, its jackknife ``interval`` and ``nfe_used``, and for rows other than the
baseline ``minus_baseline`` (the paired interval of the difference to the ``baseline`` row,
flow unless set; older tables call it ``minus_flow``);
``metric["label"]`` names the distance and ``floor`` is the held-out real images' distance.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from multiflow_gm.atomic_files import atomic_save_figure


def _cell(cell: dict | None, nominal: int) -> str:
    if not cell:
        return "-"
    text = f"{cell['distance']:.1f}"
    if cell.get("interval"):
        low, high = cell["interval"]
        text += f" [{low:.1f}, {high:.1f}]"
    if cell.get("nfe_used", nominal) != nominal:
        text += f" ({cell['nfe_used']})"
    return text


def _difference(cell: dict | None) -> str:
    """``-12.3 [-20.1, -4.0] better`` when the interval excludes zero, else the numbers alone."""
    d = cell and cell.get("minus_baseline", cell.get("minus_flow"))  # minus_flow: tables before eval.baseline
    if not d:
        return "-"
    text = f"{d['estimate']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]"
    if d["high"] < 0:
        return f"**{text} better**"
    if d["low"] > 0:
        return f"{text} worse"
    return text


def baseline_of(results: dict) -> str:
    """The row the paired differences are taken against (tables before ``eval.baseline``: flow)."""
    return results.get("baseline", "flow")


def difference_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the paired differences to the baseline row (empty without it)."""
    nfes, baseline = results["nfe"], baseline_of(results)
    header = ["model"] + [f"NFE {n}" for n in nfes]
    if baseline not in results["models"]:
        return header, []
    rows = [[name] + [_difference(model["cells"].get(str(n))) for n in nfes]
            for name, model in results["models"].items() if name != baseline]
    return header, rows


def table_rows(results: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table (the floor is the last row)."""
    nfes = results["nfe"]
    header = ["model"] + [f"NFE {n}" for n in nfes]
    rows = []
    for name, model in results["models"].items():
        rows.append([name] + [_cell(model["cells"].get(str(n)), n) for n in nfes])
    if results.get("floor") is not None:
        floor = f"{results['floor']:.1f}"
        if results.get("floor_interval"):
            floor += " [{:.1f}, {:.1f}]".format(*results["floor_interval"])
        rows.append(["held-out real images (floor)"] + [floor] * len(nfes))
    return header, rows


def _notes(results: dict) -> list[str]:
    metric = results["metric"]
    notes = [f"Cells: {metric['label']}, {results['num_samples']} generated images vs the "
             f"{results['train_images']} training images; lower is better."]
    if "interval_level" in results:
        notes.append(f"Brackets: {100 * results['interval_level']:.0f}% jackknife interval over the generated "
                     f"set (sampling noise at a fixed network, not the spread over training seeds).")
    if any(m.get("method") == "heun" for m in results["models"].values()):
        notes.append("Heun rows use 2 network evaluations per step except the last; a number in "
                     "parentheses is the NFE actually used (at most the column's).")
    if any(len(m.get("kinds", [])) == 2 for m in results["models"].values()):
        notes.append("Superposition rows: flow weight alpha (the row's `a=`, else the config's schedule "
                     f"{results.get('alpha')} at t=0 and t=1, linear), jump weight 1 - alpha.")
    return notes


def console_table(results: dict) -> str:
    header, rows = table_rows(results)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    out = [f"{results['dataset']}: {results['metric']['label']}", line(header),
           "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    out += [""] + _notes(results)
    return "\n".join(out)


def markdown_table(results: dict) -> str:
    header, rows = table_rows(results)
    md = [f"# Image benchmark: {results['dataset']}", "", f"Distance: **{results['metric']['label']}**", "",
          "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md += [""] + [f"- {n}" for n in _notes(results)]
    header, diffs = difference_rows(results)
    baseline = baseline_of(results)
    if diffs:
        md += ["", f"## Difference to {baseline} at the same NFE", "",
               f"Distance of the row minus that of the {baseline} row, with a paired jackknife interval "
               f"(every row starts image i from the same noise). **Bold**: better than {baseline} beyond "
               "the interval; 'worse': worse beyond it.", "",
               "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        md += ["| " + " | ".join(r) + " |" for r in diffs]
    nets = results.get("networks", {})
    if nets:
        md += ["", "| network | parameters | training steps | training images/s |", "|---|---:|---:|---:|"]
        for name, info in nets.items():
            ips = info.get("train_images_per_second")
            ips_text = f"{ips:.1f}" if ips else "-"
            md.append(f"| {name} | {info.get('parameters', 0):,} | {info.get('steps', 0)} | {ips_text} |")
    md += ["", "| model | sampler |", "|---|---|"]
    md += [f"| {name} | {m.get('description', '')} |" for name, m in results["models"].items()]
    return "\n".join(md) + "\n"


def save_sample_grid(images: torch.Tensor, path: Path, title: str | None = None) -> Path:
    """A square-ish grid PNG of ``images [N, C, H, W]`` in [-1, 1]."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, c, h, w = images.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1, c), dtype=np.float32)
    pix = ((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
    for i in range(n):
        r, col = divmod(i, cols)
        grid[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + col * (w + 1): 1 + col * (w + 1) + w] = pix[i]
    scale = max(1.0, 256 / max(grid.shape[:2]))
    fig = plt.figure(figsize=(grid.shape[1] * scale / 100 + 0.2, grid.shape[0] * scale / 100 + 0.5), dpi=100)
    ax = fig.add_axes([0, 0, 1, 0.92 if title else 1])
    ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=8)
    return atomic_save_figure(fig, path, dpi=100)


# The jump row drawn beside each baseline in the alpha-sweep figure.
JUMP_COUNTERPART = {"flow": "jump", "flow-head": "jump-head"}


def plot_sweep(results: dict, path: Path) -> Path | None:
    """Distance against the flow weight alpha, one panel per superposition sampler and one line
    per NFE (bars: intervals); the baseline row (flow, or the two-head network's flow head) at
    each NFE is the dashed line of the same colour (alpha = 1 is the flow alone), its jump
    counterpart the dotted one (alpha = 0)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families: dict[str, list[tuple[float, dict]]] = {}
    for model in results["models"].values():
        if len(model.get("kinds", [])) == 2 and isinstance(model.get("alpha"), (int, float)):
            families.setdefault(model["model"], []).append((float(model["alpha"]), model))
    if not families:
        return None
    nfes, baseline = results["nfe"], baseline_of(results)
    parts = ((baseline, "--"), (JUMP_COUNTERPART.get(baseline, "jump"), ":"))
    fig, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families), 3.8), sharey=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (family, members) in zip(axes[0], families.items()):
        members.sort(key=lambda m: m[0])
        for i, nfe in enumerate(nfes):
            pts = [(a, m["cells"].get(str(nfe))) for a, m in members if m["cells"].get(str(nfe))]
            if not pts:
                continue
            colour = colours[i % len(colours)]
            a = np.array([p[0] for p in pts])
            d = np.array([p[1]["distance"] for p in pts])
            lo = np.array([p[1].get("interval", [p[1]["distance"]] * 2)[0] for p in pts])
            hi = np.array([p[1].get("interval", [p[1]["distance"]] * 2)[1] for p in pts])
            ax.errorbar(a, d, yerr=[d - lo, hi - d], marker="o", ms=3, capsize=2, color=colour, label=f"NFE {nfe}")
            for name, style in parts:
                cell = results["models"].get(name, {}).get("cells", {}).get(str(nfe))
                if cell:
                    ax.axhline(cell["distance"], color=colour, ls=style, lw=1)
        if results.get("floor") is not None:
            ax.axhline(results["floor"], color="k", lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("flow weight alpha")
        ax.set_title(family, fontsize=9)
    axes[0][0].set_ylabel("distance (log)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.text(0.5, 0.01, f"dashed: {parts[0][0]} at the same NFE (colour); dotted: {parts[1][0]}; black: held-out floor",
             ha="center", fontsize=8)
    return atomic_save_figure(fig, path, dpi=110)
