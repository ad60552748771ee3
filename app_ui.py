"""Streamlit pieces more than one page draws, or too long to leave in a thin page.

Lives beside streamlit_app.py, not in pages/ (Streamlit would list it as a page) and
not in bikelib (which never imports Streamlit). No TensorFlow here either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import streamlit as st

import bikelib
from bikelib import charts, openset, quality
from bikelib import workspace as ws


@contextlib.contextmanager
def sentence_on_error(*, stop: bool = True) -> Iterator[None]:
    """Turn a library error or an OS error into one red sentence (and stop the page).

    Every page wraps its calls into bikelib in this, so no visitor ever sees a traceback
    for a bad photo, a damaged zip or a full disk; anything else is a bug and shows as one.
    """
    try:
        yield
    except bikelib.BikeLibError as error:
        st.error(str(error), icon=":material/error:")
        if stop:
            st.stop()
    except OSError as error:  # the server's own files: say why, never which server path
        reason = error.strerror or type(error).__name__
        st.error(f"The server could not read or write a file: {reason}.", icon=":material/error:")
        if stop:
            st.stop()


@st.cache_data(max_entries=4000, show_spinner=False)
def _thumbnail(path: str, mtime: float, size: int) -> bytes | None:
    try:
        return quality.thumbnail(path, size)
    except bikelib.BikeLibError:
        return None


def thumbnails(paths, size: int = 160) -> list[bytes | None]:
    """Square thumbnails (None for a photo that cannot be read), cached by path + mtime."""
    return [
        _thumbnail(str(p), Path(p).stat().st_mtime if Path(p).exists() else 0, size)
        for p in map(Path, paths)
    ]


def model_results(meta: dict) -> None:
    """What a saved model learned: metrics, curves, confusion matrix, mistakes, download."""
    metrics, evaluation = meta.get("metrics", {}), meta.get("evaluation")
    numbers = st.columns(4)
    if "val_accuracy" in metrics:
        numbers[0].metric("Validation accuracy", f"{metrics['val_accuracy']:.0%}")
        numbers[1].metric("Validation loss", f"{metrics['val_loss']:.3f}")
    else:
        numbers[0].metric("Validation accuracy", "—", help="There were no validation photos")
    numbers[2].metric("Best epoch", f"{metrics.get('best_epoch')} of {metrics.get('epochs_run')}")
    numbers[3].metric("Training time", f"{metrics.get('train_seconds', 0):.0f} s")
    if meta.get("history"):
        learning_curves(charts.history_rows(meta["history"]))
    if evaluation:
        classes = evaluation["classes"]
        left, right = st.columns(2)
        heatmap = charts.confusion_matrix(classes, evaluation["confusion_matrix"])
        left.altair_chart(heatmap, width="stretch", height=48 * len(classes) + 110)
        right.markdown("**Per bike**: accuracy = share of its validation photos recognised")
        right.dataframe(
            charts.per_class_table(evaluation["per_class"]),
            hide_index=True,
            column_config={
                "accuracy": st.column_config.ProgressColumn(format="percent", max_value=1),
                "precision": st.column_config.NumberColumn(format="percent"),
            },
        )
        mistakes = evaluation["misclassified"][:24]
        st.markdown(f"**Misclassified validation photos**: {len(evaluation['misclassified'])}")
        shown = [
            (image, f"{m['true']}, taken for {m['predicted']} ({m['confidence']:.0%})")
            for m, image in zip(
                mistakes, thumbnails([m["path"] for m in mistakes], 140), strict=True
            )
            if image
        ]
        if shown:
            st.image([i for i, _ in shown], caption=[c for _, c in shown], width=200)
    st.download_button(
        "Download this model (.zip: model.keras + model.json)",
        data=lambda: bikelib.export_zip(meta["path"]),
        file_name=f"{Path(meta['path']).name}.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/download:",
    )


def learning_curves(rows: list[dict]) -> None:
    """Loss and accuracy per epoch, side by side."""
    left, right = st.columns(2)
    left.altair_chart(charts.training_curves(rows, "loss", "Loss"), width="stretch")
    right.altair_chart(charts.training_curves(rows, "accuracy", "Accuracy"), width="stretch")


# --- Classify and Scan: the model picker, the threshold, the verdict ----------------------


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _classifier(path: str, mtime: float) -> bikelib.Classifier:
    """A saved model ready to predict, shared read-only by every session."""
    return bikelib.load_model(path)


def pick_model(workspace: ws.Workspace) -> tuple[str, bikelib.Classifier]:
    """The model picker (newest first, remembered for the session) and the loaded model.

    Loaded models are cached for the whole process by path and modification time: one
    copy however many visitors use it, only ever used for prediction. Stops the page
    with a pointer to Train when there is no model yet.
    """
    models = workspace.saved_models()
    if not models:
        st.info("There is no model yet: train a model first.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        st.stop()
    paths = [m["path"] for m in models]
    chosen = ws.chosen_model(models, st.session_state.get("model_path"))
    path = st.selectbox(
        "Model (newest first)",
        paths,
        index=paths.index(chosen["path"]),
        format_func=lambda p: ws.model_summary(ws.chosen_model(models, p)),
    )
    st.session_state["model_path"] = path
    with sentence_on_error():
        classifier = _classifier(path, (Path(path) / "model.keras").stat().st_mtime)
    return path, classifier


def threshold_slider(classifier: bikelib.Classifier, path: str) -> float | None:
    """The match threshold, adjustable per session, and what it trades; None without one.

    The slider starts at the model's calibrated threshold (rounded to its step; left
    there, the exact calibrated value is used, so the page agrees with the library).
    """
    if classifier.reference is None:
        st.caption(
            "This model was saved before verdicts were calibrated: it names the closest "
            "bike and how sure it is, but cannot say “not one of yours”. Train it again "
            "to get verdicts."
        )
        return None
    reference = classifier.reference
    default = round(classifier.threshold, 3)
    lowest = min(0.0, default, *reference.known_scores, *reference.other_scores)
    value = st.slider(
        "Match threshold",
        min_value=float(np.floor(lowest * 10) / 10),
        max_value=1.0,
        value=default,
        step=0.001,
        format="%.3f",
        key=f"threshold:{path}",
        help="A photo whose match reaches the threshold counts as your bike. Higher: fewer "
        "strangers taken for yours, but more of your own photos missed.",
    )
    threshold = classifier.threshold if value == default else value
    accepted, rejected = classifier.trade_off(threshold)
    others = (
        f"{rejected:.0%} of other bikes rejected"
        if not np.isnan(rejected)
        else "no other bikes were scored for this model"
    )
    st.caption(
        f"At this threshold: {accepted:.0%} of your validation photos accepted, {others}. "
        f"Calibrated: {classifier.threshold:.3f}."
    )
    return threshold


VERDICT_LOOKS = {  # verdict: (badge colour, icon, words)
    openset.BIKE: ("green", ":material/check_circle:", "one of your bikes"),
    openset.NOT_MINE: ("orange", ":material/help:", "not one of yours"),
    openset.NO_BICYCLE: ("gray", ":material/hide_image:", "no bicycle"),
}


def verdict(place, prediction, title: str | None = None) -> None:
    """A verdict as a heading (the bike, or what it is instead), badge and sentence."""
    colour, icon, words = VERDICT_LOOKS[prediction.verdict]
    if title is None:
        title = prediction.label if prediction.known else words.capitalize()
    place.markdown(f"### {title}")
    place.markdown(
        f":{colour}-badge[{icon} {words}] match {prediction.score:.3f} · "
        f"threshold {prediction.threshold:.3f}"
    )
    place.caption(prediction.sentence)
