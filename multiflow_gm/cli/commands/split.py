"""`multiflow-gm split`: train / validation / test split of a chain cache by sequence cluster."""

from __future__ import annotations

NAME = "split"
HELP = "split a chain cache into train / val / test by sequence cluster (writes CACHE/splits.csv)"


def add_arguments(parser) -> None:
    parser.add_argument("cache", metavar="CACHE_DIR", help="preprocessed cache directory")
    parser.add_argument("--val", type=float, default=0.03, help="fraction of chains held out for validation")
    parser.add_argument("--test", type=float, default=0.03, help="fraction of chains held out for testing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cluster order")
    parser.add_argument("--force", action="store_true", help="replace an existing split")


def run(args) -> int:
    import json

    from multiflow_gm.errors import UserError
    from multiflow_gm.protein.data.cache import ChainCache
    from multiflow_gm.protein.data.splits import SPLIT_FILE, SPLIT_SETTINGS_FILE, SplitSettings, write_splits

    cache = ChainCache(args.cache)
    if (cache.path / SPLIT_FILE).is_file() and not args.force:
        raise UserError(f"{cache.path / SPLIT_FILE} exists (models may have been trained on it); "
                        "pass --force to replace it")
    counts = write_splits(cache, SplitSettings(args.val, args.test, args.seed))
    document = json.loads((cache.path / SPLIT_SETTINGS_FILE).read_text())
    for split in ("train", "val", "test"):
        print(f"{split:5s}: {counts[split]:6d} chains, {document['clusters'][split]:6d} clusters, "
              f"{document['residues'][split]:8d} residues")
    print(f"wrote {cache.path / SPLIT_FILE}")
    return 0
