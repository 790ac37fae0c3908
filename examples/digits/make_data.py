"""Write scikit-learn's handwritten digits as an image folder that ``zoo train`` reads.

The 1,797 8x8 grayscale digits (the UCI "optdigits" test set, shipped inside scikit-learn, so no
download) become ``OUT/train/<digit>/<n>.png`` and ``OUT/val/<digit>/<n>.png``: a stratified split
holding out ``--val`` of each class, the same for a given ``--seed``. Pixel values 0..16 are scaled
to 0..255. Needs ``pip install scikit-learn`` (only for this script)::

    python examples/digits/make_data.py data/digits
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def write_digits(out: Path, val: float = 0.2, seed: int = 0) -> dict[str, int]:
    """Write the split under ``out``; return how many images each split got."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "val": 0}
    for label in range(10):
        members = rng.permutation(np.flatnonzero(digits.target == label))
        held = round(len(members) * val)
        for split, chosen in (("val", members[:held]), ("train", members[held:])):
            folder = out / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for index in chosen:
                Image.fromarray(images[index], mode="L").save(folder / f"{index:04d}.png")
            counts[split] += len(chosen)
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder to write (train/ and val/ inside)")
    parser.add_argument("--val", type=float, default=0.2, help="share held out per class")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    args = parser.parse_args()
    if (args.out / "train").exists() or (args.out / "val").exists():
        sys.exit(f"{args.out}: already holds train/ or val/; give an empty folder")
    try:
        counts = write_digits(args.out, args.val, args.seed)
    except ImportError:
        sys.exit("this script reads the digits from scikit-learn: pip install scikit-learn")
    print(f"{args.out}: {counts['train']} training and {counts['val']} validation images")
