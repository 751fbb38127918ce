"""Copy a co-design export with new default sampling settings (weights unchanged).

    python scripts/set_sampling_defaults.py MODEL.safetensors OUT.safetensors temperature=0.3 purity=true

``multiflow-gm sample --ckpt OUT.safetensors`` then samples with those settings unless its
flags say otherwise; the settings are recorded in the export's ``extra`` metadata.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from multiflow_gm.protein.model_file import load_codesign, with_sampling_defaults

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("overrides", nargs="+", metavar="KEY=VALUE", help="keys of the sampling section")
    args = parser.parse_args(argv)
    with_sampling_defaults(args.source, args.target, args.overrides)
    print(f"wrote {args.target}: sampling {load_codesign(args.target)[2].sampling}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
