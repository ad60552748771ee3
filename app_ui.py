"""Streamlit pieces more than one page draws, or too long to leave in a thin page.

Lives beside streamlit_app.py, not in pages/ (Streamlit would list it as a page) and
not in bikelib (which never imports Streamlit). No TensorFlow here either.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import streamlit as st

import bikelib
from bikelib import charts, images


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
        return images.thumbnail(path, size)
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
