#!/usr/bin/env python3
"""Train or fine-tune a 4x BasicVSR++ model: the same as ``vsvsrpp train``.

Usage: python scripts/train.py TRAIN_DIR WORK_DIR [options]   (see --help)
"""

import sys

from vsvsrpp.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
