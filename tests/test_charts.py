"""bikelib.charts: each chart's data and encodings, and that Vega-Lite accepts it."""

from __future__ import annotations

import subprocess
import sys

import altair as alt
from helpers import ROOT

from bikelib import charts

HISTORY = {"loss": [1.2, 0.8, 0.5], "val_loss": [1.3, 1.0, 0.9], "accuracy": [0.3, 0.6, 0.8]}


def fields(spec: dict) -> set[str]:
    """The data fields a (single-view) Vega-Lite spec's encodings refer to."""
    found = set()
    for channel in spec["encoding"].values():
        for item in channel if isinstance(channel, list) else [channel]:
            if "field" in item:
                found.add(item["field"])
    return found


def rows(spec: dict) -> list[dict]:
    return spec["datasets"][spec["data"]["name"]]


def test_history_rows_number_epochs_from_one():
    got = charts.history_rows(HISTORY)
    assert [r["epoch"] for r in got] == [1, 2, 3]
    assert got[2] == {"loss": 0.5, "val_loss": 0.9, "accuracy": 0.8, "epoch": 3}


def test_training_curves_have_a_line_per_split_and_only_what_was_recorded():
    spec = charts.training_curves(charts.history_rows(HISTORY), "loss", "Loss").to_dict()
    data = rows(spec)
    assert len(data) == 6 and {r["split"] for r in data} == {"training", "validation"}
    assert fields(spec) <= {"epoch", "value", "split"} and fields(spec) >= {"epoch", "value"}
    accuracy = rows(charts.training_curves(charts.history_rows(HISTORY), "accuracy", "A").to_dict())
    assert {r["split"] for r in accuracy} == {"training"}  # no val_accuracy recorded
    assert [r["value"] for r in accuracy] == HISTORY["accuracy"]


def test_confusion_matrix_has_a_cell_per_pair_with_its_count():
    classes, matrix = ["a", "b"], [[3, 1], [0, 4]]
    cells = charts.confusion_cells(classes, matrix)
    assert len(cells) == 4 and list(cells.columns) == ["true", "predicted", "photos"]
    assert cells.query("true == 'a' and predicted == 'b'")["photos"].item() == 1
    spec = charts.confusion_matrix(classes, matrix).to_dict()
    assert len(spec["layer"]) == 2 and len(rows(spec)) == 4
    for layer in spec["layer"]:
        assert fields({"encoding": {**spec.get("encoding", {}), **layer["encoding"]}}) <= {
            "true",
            "predicted",
            "photos",
        }


def test_per_class_table_renames_recall_and_support():
    table = charts.per_class_table(
        [{"class": "a", "precision": 0.5, "recall": 1.0, "f1": 0.67, "support": 2}]
    )
    assert list(table.columns) == ["class", "accuracy", "precision", "photos"]
    assert table.iloc[0].tolist() == ["a", 1.0, 0.5, 2]


def test_probability_bars_highlight_the_predicted_bike():
    spec = charts.probability_bars({"a": 0.7, "b": 0.2, "c": 0.1}, "a").to_dict()
    assert rows(spec) == [
        {"bike": "a", "probability": 0.7},
        {"bike": "b", "probability": 0.2},
        {"bike": "c", "probability": 0.1},
    ]
    assert fields(spec) == {"bike", "probability"}
    assert "'a'" in spec["encoding"]["color"]["condition"]["test"]


def test_photos_per_class_stacks_train_and_validation():
    per_class = [{"class": "a", "train": 5, "validation": 2, "total": 7}]
    spec = charts.photos_per_class(per_class).to_dict()
    assert sorted((r["split"], r["value"]) for r in rows(spec)) == [
        ("train", 5),
        ("validation", 2),
    ]
    assert fields(spec) == {"class", "split", "value"}


def test_photos_per_class_names_every_bike_however_many_and_long():
    names = [f"bike {i}" for i in range(14)] + ["a very long bike name of fifty characters, nearly"]
    per_class = [{"class": n, "train": 8, "validation": 2, "total": 10} for n in names]
    spec = charts.photos_per_class(per_class).to_dict()
    axis = spec["encoding"]["y"]["axis"]
    assert axis["labelOverlap"] is False  # never drop a name to avoid overlap
    assert axis["labelLimit"] * 1.0 >= 7 * 50  # room for a 50-character name
    assert spec["encoding"]["y"]["sort"] == names
    assert spec["height"] == charts.BAR_HEIGHT * len(names)  # a bar's room per bike
    # The page's element gets the bars plus room for the title and the axis, never less.
    assert charts.photos_per_class_height(len(names)) >= spec["height"] + 135


def test_runs_overlay_keeps_one_metric_and_is_none_without_it():
    curve = [
        {"run": "r1", "epoch": 1, "metric": "val_accuracy", "value": 0.5},
        {"run": "r1", "epoch": 1, "metric": "loss", "value": 1.0},
        {"run": "r2", "epoch": 1, "metric": "val_accuracy", "value": 0.7},
    ]
    chart = charts.runs_overlay(curve, "val_accuracy")
    assert isinstance(chart, alt.Chart)
    spec = chart.to_dict()
    assert [r["run"] for r in rows(spec)] == ["r1", "r2"]
    assert spec["title"] == "validation accuracy per epoch, all runs"
    assert fields(spec) == {"run", "epoch", "value"}
    assert charts.runs_overlay(curve, "accuracy") is None


def test_charts_import_neither_streamlit_nor_keras():
    code = (
        "import sys, bikelib.charts; print([m for m in ('streamlit', 'keras') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
