"""What each command of `python -m bikelib` does; its parser and `main` are bikelib.cli's.

One `cmd_*` a command: it takes the parsed arguments, writes its results to stdout
(`--json` for machines) and its progress to stderr, and returns an exit code, EXIT_OK or
EXIT_SOME_FAILED when some images could not be read. What it cannot do at all it
raises (a BikeLibError or an OSError): `bikelib.cli.main` says it in one `error: ...`
line and exits with EXIT_ERROR. Apart from the parser so that each file stays one
concern: which options there are (cli) and what a command does with them (here).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .errors import BikeLibError

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn after every batch."""

    def __init__(self, stream=sys.stderr, width: int = 30) -> None:
        self.stream, self.width = stream, width

    def __call__(self, progress) -> None:
        filled = int(self.width * progress.step / max(progress.steps, 1))
        bar = "#" * filled + "." * (self.width - filled)
        left = progress.seconds_left
        eta = f" ~{left:.0f}s left" if left is not None else ""
        logs = progress.logs
        scores = " ".join(
            f"{key} {logs[key]:.3f}"
            for key in ("loss", "accuracy", "val_loss", "val_accuracy")
            if key in logs
        )
        line = f"\repoch {progress.epoch}/{progress.epochs} [{bar}] {scores}{eta}"
        self.stream.write(line.ljust(110))
        if progress.kind == "epoch":
            self.stream.write("\n")
        self.stream.flush()


def _config_from_args(args):
    from .config import TrainConfig

    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "image_size": args.image_size,
        "val_fraction": args.val_split,
        "seed": args.seed,
        "strangers": args.strangers,
        "contrastive": args.contrastive,
        "pretrained": args.pretrained,
        "frozen": None if args.fine_tune is None else not args.fine_tune,
        "second_opinion": args.second_opinion,
    }
    return TrainConfig.recommended(
        args.arch, **{k: v for k, v in overrides.items() if v is not None}
    )


def cmd_train(args) -> int:
    from .artifacts import save_model
    from .dataset import open_dataset
    from .training import train

    config = _config_from_args(args)
    dataset = open_dataset(args.data, val_fraction=config.val_fraction, seed=config.seed)
    line = (
        f"training '{config.arch}' on {len(dataset.train)} photos of {len(dataset.classes)} "
        f"bikes, validating on {len(dataset.validation)}"
    )
    if dataset.not_mine_train:
        line += f"; {len(dataset.not_mine_train)} photos of other people's bikes (not mine)"
        line += " trained against"
    print(line, file=sys.stderr)
    result = train(dataset, config, on_progress=_ProgressBar() if not args.quiet else None)
    out = save_model(result, args.out)
    metrics = {**result.metrics, "seconds": round(result.seconds, 1), "model": str(out)}
    metrics["not_mine"] = result.not_mine
    if args.json:
        print(json.dumps(metrics))
    else:
        accuracy = metrics.get("val_accuracy")
        score = f"validation accuracy {accuracy:.1%}, " if accuracy is not None else ""
        print(f"{score}trained in {result.seconds:.0f}s, saved to {out}")
    for skipped in result.skipped:
        print(f"skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    return EXIT_SOME_FAILED if result.skipped else EXIT_OK


def cmd_evaluate(args) -> int:
    from .classifier import load_model
    from .dataset import load_split, open_dataset
    from .errors import DatasetError
    from .evaluation import score

    classifier = load_model(args.model)
    dataset = open_dataset(args.data, val_fraction=0.0)
    samples = dataset.validation if dataset.given_split else dataset.samples
    unknown = sorted(set(dataset.classes) - set(classifier.classes))
    if unknown:
        raise DatasetError(
            f"The model does not know these classes of the data: {', '.join(unknown)}"
        )
    # Relabel by name: the data may have fewer classes than the model, in another order.
    remap = {i: classifier.classes.index(name) for i, name in enumerate(dataset.classes)}
    split = load_split(samples, classifier.image_size)
    labels = [remap[int(label)] for label in split.labels]
    probabilities = classifier.predict_arrays(split.images)
    evaluation = score(probabilities, labels, classifier.classes, split.paths)
    report = evaluation.to_dict()
    not_mine = _not_mine_rejected(classifier, dataset)
    failed = [*split.failed, *(not_mine.pop("failed") if not_mine else ())]
    report["not_mine"] = not_mine
    report["failed"] = [{"path": str(f.path), "reason": f.reason} for f in failed]
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"accuracy {evaluation.accuracy:.1%} ({evaluation.n} photos), "
            f"loss {evaluation.loss:.3f}"
        )
        for row in evaluation.per_class:
            print(
                f"  {row['class']:<24} precision {row['precision']:.0%}  "
                f"recall {row['recall']:.0%}  ({row['support']} photos)"
            )
        for miss in evaluation.misclassified:
            print(
                f"  wrong: {miss['path']} is {miss['true']}, "
                f"taken for {miss['predicted']} ({miss['confidence']:.0%})"
            )
        if not_mine and not_mine["rejected"] is not None:
            print(
                f"not mine: {not_mine['rejected']} of {not_mine['photos']} photos of other "
                f"people's bikes rejected at the threshold {classifier.threshold:.3f}"
            )
    for failure in failed:
        print(f"error: {failure.reason}", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _not_mine_rejected(classifier, dataset) -> dict | None:
    """How many of the data's not-mine photos (its validation ones if it has a split)
    score below the model's threshold; None without any. `rejected` is None for a model
    saved without a calibrated threshold."""
    from .dataset import load_split

    samples = dataset.not_mine_validation if dataset.given_split else dataset.not_mine
    if not samples:
        return None
    split = load_split(samples, classifier.image_size)
    rejected = None
    if classifier.embed is not None and len(split.images):
        scores = classifier.reference.scores(classifier.embed(split.images))
        rejected = int((scores < classifier.threshold).sum())
    return {"photos": len(split.images), "rejected": rejected, "failed": split.failed}


def cmd_crossval(args) -> int:
    from .dataset import open_dataset
    from .training import crossval

    config = _config_from_args(args)
    dataset = open_dataset(args.data, val_fraction=0.0)

    def on_fold(index, folds, evaluation):
        print(f"fold {index}/{folds}: accuracy {evaluation.accuracy:.1%}", file=sys.stderr)

    result = crossval(dataset, config, folds=args.folds, on_fold=on_fold)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        folds = ", ".join(f"{a:.0%}" for a in result.fold_accuracies)
        print(
            f"{result.folds}-fold accuracy {result.accuracy:.1%} (folds: {folds}) "
            f"in {result.seconds:.0f}s"
        )
    return EXIT_OK


def cmd_predict(args) -> int:
    from .classifier import load_model

    classifier = load_model(args.model)
    results = classifier.predict_many([Path(p) for p in args.images])
    rows = []
    for image, result in zip(args.images, results, strict=True):
        if isinstance(result, BikeLibError):
            rows.append({"image": image, "error": str(result)})
        else:
            rows.append({"image": image, **result.to_dict()})
    listing, said = None, "none of the photos could be read"
    if args.listing and any("error" not in row for row in rows):
        readable = [r for r in results if not isinstance(r, BikeLibError)]
        listing = classifier.judge_listing(readable)
        said = listing.sentence if listing else "this model has no calibrated verdicts"
    if args.json:
        together = {"listing": listing.to_dict() if listing else None}
        print(json.dumps({"photos": rows, **together} if args.listing else rows))
    else:
        for row in rows:
            if "error" in row:
                print(f"{row['image']}: error: {row['error']}")
            else:
                print(f"{row['image']}: {row['sentence']}")
        if args.listing:
            print(f"all {len(args.images)} as one listing: {said}")
    failed = [row for row in rows if "error" in row]
    for row in failed:
        print(f"error: {row['error']}", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_scan(args) -> int:
    from .classifier import load_model
    from .evaluation import near_chance
    from .scan import by_listing, listing_photos, scan, to_csv

    classifier = load_model(args.model)
    if near_chance(classifier.meta):  # as the Scan page: a ranking would be random
        accuracy = classifier.meta["metrics"]["val_accuracy"]
        raise BikeLibError(
            f"{args.model} guesses at about chance level ({accuracy:.0%} of its validation "
            f"photos right, {len(classifier.classes)} bikes), so it cannot rank listings: "
            "train it longer or scan with another model"
        )
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done = n
        print(f"\rscanned {n} photos", end="", file=sys.stderr, flush=True)

    rows = scan(classifier, args.bike, listing_photos(args.sources), on_progress=progress)
    if done:
        print(file=sys.stderr)
    if args.csv:
        Path(args.csv).write_text(to_csv(rows))
    listings = by_listing(rows, classifier.threshold) if args.by_folder else None
    if args.json:
        print(json.dumps([row.to_dict() for row in (rows if listings is None else listings)]))
    elif listings is not None:
        for rank, row in enumerate(listings, start=1):
            where = row.listing or row.best  # a photo given on its own is its own listing
            print(f"{rank:>5}  {row.score:.3f} {row.verdict}  {row.photos:>3} photos  {where}")
    else:
        for rank, row in enumerate(rows, start=1):
            shown = f"error: {row.error}" if row.error else f"{row.score:.3f} {row.verdict}"
            print(f"{rank:>5}  {shown}  {row.file}")
    failed = [row for row in rows if row.error]
    for row in failed:
        print(f"error: {row.error}", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def cmd_pretrain(args) -> int:
    from .backbone import (
        BIKES,
        CARD,
        cohort_folder,
        fit_backbone_whitening,
        image_size_of,
        pretrain,
    )

    chosen = {"bikes": args.bikes} if args.bikes else {}  # else the recipe's
    if args.whitening_only:  # the backbone in OUT stays; only its whitening is fitted
        card_path = Path(args.out) / CARD
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        first = args.bikes or card.get("bikes") or BIKES  # the cohort: the bikes after its own
        cohort = cohort_folder(args.photos)
        size = args.image_size or image_size_of(args.out)  # where it trained, by default
        card["whitening"] = fit_backbone_whitening(args.out, cohort, first=first, image_size=size)
        card_path.write_text(json.dumps(card, indent=2) + "\n")
    else:
        card = pretrain(
            args.out,
            args.photos,
            epochs=args.epochs,
            image_size=args.image_size,
            on_progress=_ProgressBar(),
            **chosen,
        )
    print(json.dumps(card, indent=2))
    return EXIT_OK


def cmd_export(args) -> int:
    from .portable import export_tflite

    path = export_tflite(args.model, args.out or args.model)
    print(f"wrote {path} and {path.name}.json (class names, image size)")
    return EXIT_OK
