"""The command-line contract: outputs, JSON shapes and exit codes (0, 1, 2)."""

import contextlib
import errno
import io
import json
import os
import re
import subprocess
import sys

import pytest

from bikelib.cli import main

FAST = ["--epochs", "2", "--image-size", "32", "--batch-size", "8", "--strangers", "0"]
# Not the defaults, so the saved config shows they were read.
FAST += ["--contrastive", "0.25", "--no-pretrained"]
TRAIN_OUTPUT: dict[str, str] = {}  # what `train` printed in the model_dir fixture


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from helpers import write_dataset, write_not_mine

    data = write_dataset(tmp_path_factory.mktemp("cli") / "data", split=True)
    write_not_mine(data, count=6, split=True)  # other people's bikes: 4 train, 2 validation
    out = tmp_path_factory.mktemp("cli") / "model"
    stdout, stderr = io.StringIO(), io.StringIO()  # capsys is per test; this runs once
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        assert main(["train", str(data), "--out", str(out), "--quiet", *FAST]) == 0
    TRAIN_OUTPUT.update(stdout=stdout.getvalue(), stderr=stderr.getvalue())
    return data, out


def test_train_writes_a_model_and_reports(model_dir):
    _, out = model_dir
    assert (out / "model.keras").is_file() and (out / "model.json").is_file()
    expected = rf"validation accuracy \d+\.\d%, trained in \d+s, saved to {re.escape(str(out))}\n"
    assert re.fullmatch(expected, TRAIN_OUTPUT["stdout"])
    assert (
        "training 'default' on 12 photos of 3 bikes, validating on 6; 4 photos of other "
        "people's bikes (not mine) trained against"
    ) in TRAIN_OUTPUT["stderr"]
    saved = json.loads((out / "model.json").read_text())["config"]
    assert (saved["contrastive"], saved["pretrained"]) == (0.25, False)
    assert json.loads((out / "model.json").read_text())["not_mine"] == {
        "trained": 4,
        "calibration": 2,
    }


def test_evaluate_json_has_the_promised_fields(model_dir, capsys):
    data, out = model_dir
    assert main(["evaluate", str(out), str(data), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"accuracy", "loss", "n", "classes", "confusion_matrix", "per_class"} <= set(report)
    assert report["n"] == 6  # the given validation split only
    assert report["not_mine"]["photos"] == 2 and report["not_mine"]["rejected"] in (0, 1, 2)
    assert report["failed"] == []
    assert main(["evaluate", str(out), str(data)]) == 0
    assert re.search(
        r"not mine: [012] of 2 photos of other people's bikes rejected", capsys.readouterr().out
    )


def test_predict_json_gives_an_error_entry_for_a_bad_image_and_exit_1(model_dir, capsys):
    data, out = model_dir
    good = next((data / "validation" / "red-bike").iterdir())
    assert main(["predict", str(out), str(good), "missing.jpg", "--json"]) == 1
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert rows[0]["image"] == str(good) and rows[0]["label"] in rows[0]["probabilities"]
    assert set(rows[0]) == {
        *("image", "label", "confidence", "probabilities"),
        *("verdict", "known", "score", "threshold", "bicycle", "sentence", "matches"),
    }
    assert rows[0]["known"] == (rows[0]["verdict"] == "bike")
    assert set(rows[0]["matches"]) == set(rows[0]["probabilities"])  # every bike's match
    # A plain red picture with a dark block is no bicycle, whatever the model knows.
    assert rows[0]["verdict"] == "no_bicycle" and rows[0]["bicycle"] < 0.1
    assert rows[1]["image"] == "missing.jpg" and "file not found" in rows[1]["error"]
    assert "error: missing.jpg: file not found" in captured.err


def test_predict_listing_judges_the_readable_photos_together(model_dir, capsys):
    data, out = model_dir
    photos = sorted((data / "validation" / "red-bike").iterdir())[:2]
    args = ["predict", str(out), *map(str, photos), "missing.jpg", "--listing"]
    assert main(args) == 1  # one photo missing: said, and left out of the listing
    lines = capsys.readouterr().out.splitlines()
    # these drawings show no bicycle, so the listing is "no bicycle" too
    assert lines[-1] == "all 3 as one listing: No bicycle found in any of these 2 photos."
    assert main([*args, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [row["image"] for row in report["photos"]][-1] == "missing.jpg"
    assert report["listing"]["verdict"] == "no_bicycle" and report["listing"]["photos"] == 0
    assert set(report["listing"]) == {
        *("label", "verdict", "known", "score", "threshold", "photos", "sentence")
    }
    assert main(["predict", str(out), "missing.jpg", "--listing"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "all 1 as one listing: none of the photos could be read"
    )


def test_crossval_json(model_dir, capsys):
    data, _ = model_dir
    assert main(["crossval", str(data), "--folds", "2", "--json", *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["fold_accuracies"]) == 2 and report["n"] == 18


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "no-such-model", "x.jpg"], "error: No saved model at no-such-model"),
        (["train", "no-such-data", "--out", "m"], "error: Dataset not found: no-such-data"),
        (["evaluate", "no-such-model", "data"], "error: No saved model"),
    ],
)
def test_unusable_input_is_one_error_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and "Traceback" not in err


def test_bad_settings_exit_2_without_traceback(tiny_dataset, tmp_path, capsys):
    argv = ["train", str(tiny_dataset), "--out", str(tmp_path / "m"), "--epochs", "0"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        "error: Invalid setting: epochs must be between 1 and 1000"
    )


def test_module_entry_point_and_usage_errors():
    # A real `python -m bikelib` process: usage errors exit 2 with argparse's one line.
    run = subprocess.run(
        [sys.executable, "-m", "bikelib", "frobnicate"], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert "invalid choice: 'frobnicate'" in run.stderr and "Traceback" not in run.stderr


def out_under_a_file(tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    return tmp_path / "notes.txt" / "models" / "bikes", "Not a directory"


def out_in_a_read_only_folder(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders anyway")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    return locked / "bikes", "Permission denied"


@pytest.mark.parametrize("where", [out_under_a_file, out_in_a_read_only_folder])
def test_unwritable_out_is_one_error_line_and_exit_2(
    where, tiny_dataset, tmp_path, monkeypatch, capsys
):
    # Training is replaced (seconds of TensorFlow to reach the point of failure); the
    # dataset is read and the model saved by the real code, which meets the real OSError.
    monkeypatch.setattr("bikelib.training.train", lambda *args, **kwargs: object())
    out, reason = where(tmp_path)
    assert main(["train", str(tiny_dataset), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    *progress, line = err.strip().splitlines()  # "training ... on 15 photos", then the error
    assert not [p for p in progress if p.startswith("error")]
    assert line.startswith("error: ") and line.endswith(f": {reason}")
    assert str(tmp_path) in line  # the path it could not write


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/srv/models/bikes/model.keras"),
            "error: /srv/models/bikes/model.keras: No space left on device",
        ),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "photos/a.jpg"),
            "error: photos/a.jpg: No such file or directory",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/srv/a", None, "/srv/b"),
            "error: /srv/a -> /srv/b: Permission denied",
        ),
        (OSError("the disk went away"), "error: the disk went away"),
    ],
)
def test_any_os_error_is_one_error_line_and_exit_2(error, line, monkeypatch, capsys):
    def fail(args):
        raise error

    monkeypatch.setattr("bikelib.cli.cmd_predict", fail)  # read when main builds the parser
    assert main(["predict", "model", "a.jpg"]) == 2
    assert capsys.readouterr().err == line + "\n"
