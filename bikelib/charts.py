"""The app's Altair charts, built from plain data (lists of dicts, dicts, DataFrames).

Pure functions: no Streamlit, no Keras, so they are testable on their own and the
pages only decide where a chart goes. Long-form tables (one row per value) keep the
encodings simple and the tooltips honest.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

# Keras history keys and how the charts and the Compare control name them.
METRIC_NAMES = {
    "val_accuracy": "validation accuracy",
    "val_loss": "validation loss",
    "accuracy": "training accuracy",
    "loss": "training loss",
}
_EPOCH_AXIS = alt.Axis(tickMinStep=1, format="d")


def history_rows(history: dict[str, list[float]]) -> list[dict]:
    """A Keras history ({metric: [value per epoch]}) as one row per epoch, from epoch 1."""
    frame = pd.DataFrame(history)
    return frame.assign(epoch=frame.index + 1).to_dict("records")


def training_curves(rows: list[dict], metric: str, title: str) -> alt.Chart:
    """Training and validation curve of one metric (`loss`, `accuracy`) per epoch.

    `rows` have an `epoch` and any of `metric` and `val_<metric>`.
    """
    frame = pd.DataFrame(rows)
    columns = [c for c in (metric, f"val_{metric}") if c in frame]
    long = frame.melt("epoch", columns, var_name="split").replace(
        {metric: "training", f"val_{metric}": "validation"}
    )
    return (
        alt.Chart(long, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", axis=_EPOCH_AXIS),
            y=alt.Y("value:Q", title=metric),
            color=alt.Color("split:N", title=None),
            tooltip=["epoch", "split", alt.Tooltip("value:Q", format=".3f")],
        )
    )


def confusion_cells(classes: list[str], matrix: list[list[int]]) -> pd.DataFrame:
    """One row per (true, predicted) pair with its number of photos."""
    return pd.DataFrame(
        [
            {"true": classes[i], "predicted": classes[j], "photos": n}
            for i, row in enumerate(matrix)
            for j, n in enumerate(row)
        ]
    )


def confusion_matrix(classes: list[str], matrix: list[list[int]]) -> alt.LayerChart:
    """A heatmap of the confusion matrix (rows: true bike) with the counts written in."""
    cells = confusion_cells(classes, matrix)
    names = alt.Axis(labelLimit=240, labelAngle=-40, labelOverlap=False)
    base = alt.Chart(cells, title="Confusion matrix: rows are the true bike").encode(
        x=alt.X("predicted:N", sort=classes, axis=names),
        y=alt.Y("true:N", sort=classes, axis=alt.Axis(labelLimit=240)),
    )
    heat = base.mark_rect().encode(color=alt.Color("photos:Q", scale=alt.Scale(scheme="blues")))
    # White digits on the dark cells, black on the light ones.
    text = base.mark_text(fontSize=18).encode(
        text="photos:Q",
        color=alt.condition(
            alt.datum.photos > cells["photos"].max() / 2, alt.value("white"), alt.value("black")
        ),
    )
    return heat + text


def per_class_table(per_class: list[dict]) -> pd.DataFrame:
    """An evaluation's per-class rows as the Train page lists them (recall is 'accuracy')."""
    frame = pd.DataFrame(per_class).rename(columns={"recall": "accuracy", "support": "photos"})
    return frame[["class", "accuracy", "precision", "photos"]]


def probability_bars(probabilities: dict[str, float], label: str) -> alt.Chart:
    """Each bike's probability, most likely first, the predicted `label` highlighted."""
    frame = pd.DataFrame(probabilities.items(), columns=["bike", "probability"])
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            y=alt.Y("bike:N", sort="-x", title=None, axis=alt.Axis(labelLimit=240)),
            color=alt.condition(
                alt.datum.bike == label, alt.value("#1f5fbf"), alt.value("#9ca3af")
            ),
            tooltip=["bike", alt.Tooltip("probability:Q", format=".1%")],
        )
    )


# Room for every bike's name: bike names are up to 50 characters (sessions.py).
BAR_HEIGHT = 28  # pixels a bike's bar gets, so no name is ever crowded out
CHART_FRAME_PX = 140  # title, x axis and axis title of `photos_per_class`, in the browser
NAME_LABEL_LIMIT = 420  # pixels of label: a 50-character name at the axis' font size


def photos_per_class(per_class: list[dict]) -> alt.Chart:
    """Horizontal stacked bars of training and validation photos per bike
    (`summarize()`'s per_class), one named row per bike however many there are.

    The height is set from the number of bikes (a number, not an `alt.Step`, which
    makes Vega-Lite drop Streamlit's fit-y sizing and log it), and names are neither
    cut short nor hidden when they would overlap.
    """
    counts = pd.DataFrame(per_class).melt(
        id_vars="class", value_vars=["train", "validation"], var_name="split"
    )
    names = [row["class"] for row in per_class]
    axis = alt.Axis(labelLimit=NAME_LABEL_LIMIT, labelOverlap=False)
    return (
        alt.Chart(counts, title="Photos per bike")
        .mark_bar()
        .encode(
            x=alt.X("value:Q", title="photos"),
            y=alt.Y("class:N", title=None, sort=names, axis=axis),
            color=alt.Color("split:N", title="split"),
            tooltip=["class", "split", "value"],
        )
        .properties(height=BAR_HEIGHT * max(len(names), 1))
    )


def photos_per_class_height(bikes: int) -> int:
    """The pixels `photos_per_class` takes on a page for `bikes` bikes: its bars, title
    and axis. Given to `st.altair_chart` as the element's height, so Streamlit neither
    squeezes the chart nor leaves a gap below it. The title, the x axis and its title take
    about 135 px in the browser (measured 2026-12-02: with 80, three bikes' bars got 9 px
    each instead of 28, and their names overlapped)."""
    return BAR_HEIGHT * max(bikes, 1) + CHART_FRAME_PX


def runs_overlay(curve_rows: list[dict], metric: str) -> alt.Chart | None:
    """One metric's curve for every past run, overlaid; None when no run recorded it.

    `curve_rows` are `app_state.curve_rows(models)`: run, epoch, metric, value.
    """
    rows = [row for row in curve_rows if row["metric"] == metric]
    if not rows:
        return None
    name = METRIC_NAMES.get(metric, metric)
    return (
        alt.Chart(pd.DataFrame(rows), title=f"{name} per epoch, all runs")
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", axis=_EPOCH_AXIS),
            y=alt.Y("value:Q", title=name),
            color=alt.Color("run:N", legend=alt.Legend(labelLimit=300)),
            tooltip=["run", "epoch", alt.Tooltip("value:Q", format=".3f")],
        )
    )
