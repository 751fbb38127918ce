"""Download PDB entries from the RCSB, e.g. the entries of ``data/pdb_subset_entries.txt``.

For users with network access who do not have ``../shared/data/pdb_subset``:
this fetches the same entries (current versions from the archive, so a few
coordinates may differ from the shared snapshot), which ``multiflow-gm
preprocess`` then turns into a training cache::

    python scripts/download_rcsb.py --ids data/pdb_subset_entries.txt --out downloads/pdb_subset
    multiflow-gm preprocess downloads/pdb_subset --out cache/pdb_subset

Files are written as ``<id>.pdb.gz`` (or ``.cif.gz`` / ``.bcif.gz`` with
``--format``), each through a temporary name and a rename, so an interrupted
download is resumed by running the command again (existing files are skipped).
Entries too large for the legacy PDB format fall back to mmCIF. Failures are
listed at the end and in ``<out>/download_failures.txt``; the exit status is 1
if any remain. Uses only the Python standard library. Not run by the tests.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
URLS = {
    "pdb": "https://files.rcsb.org/download/{id}.pdb.gz",
    "cif": "https://files.rcsb.org/download/{id}.cif.gz",
    "bcif": "https://models.rcsb.org/{id}.bcif.gz",
}
ENTRY_ID = re.compile(r"^[0-9][a-z0-9]{3}$")


def read_ids(path: Path) -> list[str]:
    """PDB ids, one per line (case-insensitive; '#' comments and blank lines ignored)."""
    ids, bad = [], []
    for line in path.read_text().splitlines():
        token = line.split("#", 1)[0].strip().lower()
        if not token:
            continue
        (ids if ENTRY_ID.match(token) else bad).append(token)
    if bad:
        raise SystemExit(f"{path}: not PDB ids: {', '.join(bad[:5])}")
    return sorted(set(ids))


def fetch(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "multiflow-gm download_rcsb.py"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def download_one(entry: str, out: Path, fmt: str, retries: int, timeout: float) -> str | None:
    """Download one entry; returns None on success or a short error."""
    formats = [fmt] + (["cif"] if fmt == "pdb" else [])
    if any((out / f"{entry}.{f}.gz").is_file() for f in formats):
        return None
    error = "no attempt"
    for current in formats:
        for attempt in range(retries):
            try:
                data = fetch(URLS[current].format(id=entry), timeout)
            except urllib.error.HTTPError as err:
                error = f"HTTP {err.code} for {current}"
                if err.code == 404:
                    break  # not available in this format: try the next one
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                error = f"{type(err).__name__}: {err}"
            else:
                if data[:2] != b"\x1f\x8b":
                    error = f"{current}: response is not gzip"
                    break
                fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{entry}.", suffix=".tmp")
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, out / f"{entry}.{current}.gz")
                return None
            time.sleep(min(30.0, 2.0 ** attempt))
    return error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", default=str(REPO / "data" / "pdb_subset_entries.txt"),
                        help="text file of PDB ids, one per line")
    parser.add_argument("--out", required=True, help="folder for the downloaded files")
    parser.add_argument("--format", choices=sorted(URLS), default="pdb")
    parser.add_argument("--workers", type=int, default=4, help="parallel downloads (be polite: <= 8)")
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--dry-run", action="store_true", help="print the URLs, download nothing")
    args = parser.parse_args()

    ids = read_ids(Path(args.ids))
    if args.dry_run:
        for entry in ids:
            print(URLS[args.format].format(id=entry))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = {}
    with ThreadPoolExecutor(max_workers=max(1, min(args.workers, 8))) as pool:
        futures = {pool.submit(download_one, entry, out, args.format, args.retries, args.timeout): entry
                   for entry in ids}
        for done, future in enumerate(as_completed(futures), start=1):
            error = future.result()
            if error:
                failures[futures[future]] = error
            if done % 100 == 0 or done == len(ids):
                print(f"{done}/{len(ids)} entries, {len(failures)} failed", flush=True)
    report = out / "download_failures.txt"
    if failures:
        # Written to a temporary name and renamed, so an interrupted run never leaves half a report.
        partial = report.with_name(f".{report.name}.tmp")
        partial.write_text("".join(f"{entry}\t{error}\n" for entry, error in sorted(failures.items())))
        os.replace(partial, report)
        print(f"{len(failures)} entries failed (listed in {report}); rerun to retry", file=sys.stderr)
        return 1
    report.unlink(missing_ok=True)
    print(f"all {len(ids)} entries in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
