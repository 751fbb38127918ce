"""Keep a run's CSV metrics across resumes.

Lightning's CSV logger starts ``metrics.csv`` afresh in a directory that already holds one, so
a resumed run would lose every row logged before the resume (and its loss curve with them).
Before a resume the old file is set aside as ``metrics_part{k}.csv``; after training the parts
and the new file are merged back into ``metrics.csv`` (columns united, and rows of an earlier
part dropped from the first step the next part logged, since a resume from an older
checkpoint logs those steps again).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from multiflow_gm.atomic_files import atomic_write_bytes

METRICS = "metrics.csv"
_PART = re.compile(r"metrics_part(\d+)\.csv$")


def _parts(log_dir: Path) -> list[Path]:
    found = [(int(m.group(1)), p) for p in log_dir.glob("metrics_part*.csv") if (m := _PART.search(p.name))]
    return [p for _, p in sorted(found)]


def set_aside_metrics(log_dir: str | Path) -> Path | None:
    """Move ``log_dir/metrics.csv`` to the next free ``metrics_part{k}.csv``; None when there is none."""
    log_dir = Path(log_dir)
    current = log_dir / METRICS
    if not current.is_file():
        return None
    parts = _parts(log_dir)
    index = int(_PART.search(parts[-1].name).group(1)) + 1 if parts else 0
    target = log_dir / f"metrics_part{index}.csv"
    current.replace(target)
    return target


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _first_step(rows: list[dict]) -> float | None:
    steps = [float(r["step"]) for r in rows if r.get("step") not in (None, "")]
    return min(steps) if steps else None


def merge_metrics(log_dir: str | Path) -> Path | None:
    """Merge the set-aside parts and the current ``metrics.csv`` into ``metrics.csv``; the parts go."""
    log_dir = Path(log_dir)
    parts = _parts(log_dir)
    if not parts:
        return log_dir / METRICS if (log_dir / METRICS).is_file() else None
    files = [*parts, *([log_dir / METRICS] if (log_dir / METRICS).is_file() else [])]
    tables = [_read(path) for path in files]
    columns: list[str] = []
    for names, _ in tables:
        columns += [name for name in names if name not in columns]
    merged: list[dict] = []
    for k, (_, rows) in enumerate(tables):
        later = [s for s in (_first_step(r) for _, r in tables[k + 1:]) if s is not None]
        cut = min(later) if later else None
        merged += [r for r in rows if cut is None or r.get("step") in (None, "") or float(r["step"]) < cut]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(merged)
    atomic_write_bytes(log_dir / METRICS, text.getvalue().encode())
    for part in parts:
        part.unlink()
    return log_dir / METRICS
