"""The command line, `python -m bikelib.render`: render the demo set again, the
strangers (other people's bikes), or draw the contact sheet of a data set folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .dataset import DEFAULT_DATASET_SEED, contact_sheet, render_dataset


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bikelib.render OUT_DIR` renders the demo set;
    `--contact-sheet PNG DATASET_DIR` draws the contact sheet of an existing set."""
    parser = argparse.ArgumentParser(
        prog="python -m bikelib.render",
        description="Render the built-in demo bicycles, or a contact sheet of a data set.",
    )
    parser.add_argument(
        "directory", help="data set folder to write (or to read, with --contact-sheet)"
    )
    parser.add_argument("--contact-sheet", metavar="PNG", help="draw a contact sheet of DIRECTORY")
    parser.add_argument(
        "--strangers",
        action="store_true",
        help="write the random other bikes that training and calibration use (data/strangers)",
    )
    parser.add_argument("--train", type=int, default=16, help="training photos per bike")
    parser.add_argument("--validation", type=int, default=4, help="validation photos per bike")
    parser.add_argument("--seed", type=int, default=DEFAULT_DATASET_SEED)
    args = parser.parse_args(argv)
    if args.contact_sheet:
        try:
            path = contact_sheet(args.directory, args.contact_sheet)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"wrote {path}")
        return 0
    started = time.perf_counter()
    if args.strangers:
        from ..strangers import write_strangers  # the strangers' seeds and layout live there

        paths = write_strangers(args.directory)
        print(f"wrote {len(paths)} photos to {args.directory}")
        return 0

    def report(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"rendered {done}/{total}", file=sys.stderr, flush=True)

    paths = render_dataset(args.directory, args.train, args.validation, args.seed, progress=report)
    elapsed = time.perf_counter() - started
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    print(f"wrote {len(paths)} photos ({size_mb:.1f} MB) to {args.directory} in {elapsed:.0f} s")
    return 0
