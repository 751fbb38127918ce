"""Copy a co-design export with its sequence decoder replaced by a separately trained one.

    python scripts/replace_decoder.py MODEL.safetensors runs/decoder/decoder.safetensors OUT.safetensors

The trunk and the sampling defaults are untouched; the decoder's size (layers, neighbours,
the O distances) is read from its run's settings.json beside it, so a larger decoder than the
export's fits; the decoder's source is recorded in the export's ``extra`` metadata.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from multiflow_gm.protein.model_file import decoder_shape_beside, with_decoder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="co-design export with a sequence decoder")
    parser.add_argument("decoder", type=Path, help="decoder.safetensors of `multiflow-gm pretrain-decoder`")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    with_decoder(args.model, args.decoder, args.out, decoder_shape_beside(args.decoder))
    print(f"wrote {args.out}: {args.model} with the decoder of {args.decoder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
