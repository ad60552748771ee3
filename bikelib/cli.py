"""The command line: train, evaluate, crossval, predict, scan (`python -m bikelib ...`).

This is the contract other tools script against. Results go to stdout (`--json` for
machines), progress to stderr. Exit codes: 0 success, 1 some images could not be
read (the rest still processed), 2 nothing could be done (bad usage, unreadable data,
missing or broken model, a file that cannot be written or read), always with one
`error: ...` line and never a traceback.

Here: the options (`build_parser`) and `main`, which runs a command and turns what it
raises into that one line. What each command does is bikelib.commands'.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from .commands import (
    EXIT_ERROR,
    cmd_crossval,
    cmd_evaluate,
    cmd_export,
    cmd_predict,
    cmd_pretrain,
    cmd_scan,
    cmd_train,
)
from .errors import BikeLibError
from .quiet import load_tensorflow


def _quiet_tensorflow() -> None:
    # absl's own warnings while a command runs would drown the one line a user needs;
    # TensorFlow's start-up lines are load_tensorflow's (bikelib/quiet.py).
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    # No `choices=` from the model registry: that would import TensorFlow for `--help`.
    parser.add_argument(
        "--arch",
        default="default",
        help="default (recommended), seed (2018) or lite0 (pretrained; weaker here)",
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--val-split", type=float, help="validation fraction if DATA has no split")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--strangers",
        type=int,
        help="rendered other bikes trained to match none of yours (default 40; 0: off)",
    )
    parser.add_argument(
        "--contrastive",
        type=float,
        help="weight of the loss that pulls each bike's photos together (0: off)",
    )
    parser.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        help="start from the bike backbone pretrained on rendered bikes (default network only)",
    )
    parser.add_argument(
        "--fine-tune",
        action=argparse.BooleanOptionalAction,
        help="train the backbone's layers too (default: only the last layer trains)",
    )
    parser.add_argument(
        "--second-opinion",
        action=argparse.BooleanOptionalAction,
        help="match photos with the second backbone too (default: with a frozen backbone)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bikelib", description="Learn to recognise specific bicycles from photos."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model on a folder or zip of photos")
    train.add_argument("data")
    train.add_argument("--out", required=True, help="model directory to write")
    _add_training_options(train)
    train.add_argument("--json", action="store_true")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=cmd_train)

    evaluate = commands.add_parser("evaluate", help="score a saved model on labelled photos")
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=cmd_evaluate)

    cv = commands.add_parser("crossval", help="k-fold cross-validation of a training recipe")
    cv.add_argument("data")
    cv.add_argument("--folds", type=int, default=5)
    _add_training_options(cv)
    cv.add_argument("--json", action="store_true")
    cv.set_defaults(run=cmd_crossval)

    predict = commands.add_parser("predict", help="which bike is in each photo")
    predict.add_argument("model")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--json", action="store_true")
    predict.add_argument(
        "--listing",
        action="store_true",
        help="also judge the photos together, as one listing's photos of one bike",
    )
    predict.set_defaults(run=cmd_predict)

    scan = commands.add_parser("scan", help="rank listing photos by how likely each is one bike")
    scan.add_argument("model")
    scan.add_argument("sources", nargs="+", metavar="IMAGE_OR_ZIP_OR_FOLDER")
    scan.add_argument("--bike", required=True, help="the known bike to look for")
    scan.add_argument("--json", action="store_true", help="one JSON list, best match first")
    scan.add_argument("--csv", help="also write the ranking to this CSV file")
    scan.add_argument(
        "--by-folder",
        action="store_true",
        help="each folder is one listing: rank listings by their photos' pooled match",
    )
    scan.set_defaults(run=cmd_scan)

    pretrain = commands.add_parser(
        "pretrain", help="render many bikes and pretrain the bike backbone on them (slow)"
    )
    pretrain.add_argument(
        "out", help="folder to write backbone.keras, whitening.npz and backbone.json to"
    )
    pretrain.add_argument(
        "--photos", required=True, help="folder for the rendered photos (kept: a rerun resumes)"
    )
    pretrain.add_argument("--bikes", type=int, help="instead of the recipe's 300")
    pretrain.add_argument("--epochs", type=int, help="instead of the recipe's 60")
    pretrain.add_argument(
        "--image-size", type=int, help="instead of the recipe's 96 (the whitening's too)"
    )
    pretrain.add_argument(
        "--whitening-only",
        action="store_true",
        help="keep the backbone in OUT; only fit its whitening (on the bikes after its own)",
    )
    pretrain.set_defaults(run=cmd_pretrain)

    export = commands.add_parser("export", help="write a model for phones (TensorFlow Lite)")
    export.add_argument("model")
    export.add_argument("--format", choices=["tflite"], default="tflite")
    export.add_argument("--out", help="folder to write to (default: the model's own folder)")
    export.set_defaults(run=cmd_export)
    return parser


def describe_os_error(error: OSError) -> str:
    """An OSError as one line: the path(s) it is about, then the system's reason."""
    reason = error.strerror or str(error) or type(error).__name__
    if error.filename is None:
        return reason
    where = os.fsdecode(error.filename)
    if error.filename2 is not None:
        where += f" -> {os.fsdecode(error.filename2)}"
    return f"{where}: {reason}"


def main(argv: list[str] | None = None) -> int:
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    load_tensorflow()  # every command needs it; without absl's and oneDNN's start-up lines
    started = time.perf_counter()
    try:
        code = args.run(args)
    except BikeLibError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except OSError as error:  # an unwritable --out, a full disk, a file gone meanwhile
        if isinstance(error, BrokenPipeError):  # stdout closed early (`| head`): no more
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print(f"error: {describe_os_error(error)}", file=sys.stderr)
        return EXIT_ERROR
    if args.command in ("train", "crossval", "pretrain"):
        print(f"done in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return code
