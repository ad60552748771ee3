"""Streamlit pieces of the pages that use a trained model (Classify, Scan listings).

The model picker, the match threshold with what it trades, and how a verdict looks.
Beside app_ui.py for the same reasons (not a page, not bikelib); no TensorFlow at import:
models load on first use, cached for the whole process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

import app_state
import app_ui
import bikelib
from bikelib import openset
from bikelib.sessions import Workspace


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _classifier(path: str, mtime: float) -> bikelib.Classifier:
    """A saved model ready to predict, shared read-only by every session."""
    return bikelib.load_model(path)


def pick_model(workspace: Workspace) -> tuple[str, bikelib.Classifier]:
    """The model picker (newest first, remembered for the session) and the loaded model.

    Loaded models are cached for the whole process by path and modification time: one
    copy however many visitors use it, only ever used for prediction. Stops the page
    with a pointer to Train when there is no model yet.
    """
    open_saved_model(workspace)
    models = workspace.saved_models()
    if not models:
        st.info("There is no model yet: train a model first, or open one you saved.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        st.stop()
    paths = [m["path"] for m in models]
    chosen = app_state.chosen_model(models, st.session_state.get(app_state.MODEL_PATH))
    path = st.selectbox(
        "Model (newest first)",
        paths,
        index=paths.index(chosen["path"]),
        format_func=lambda p: app_state.model_summary(app_state.chosen_model(models, p)),
    )
    st.session_state[app_state.MODEL_PATH] = path
    if app_state.near_chance(app_state.chosen_model(models, path)):
        # Its features tell nothing apart either: every photo would "match" (threshold 1.00).
        st.warning(app_state.CHANCE_PICKED_NOTE, icon=":material/warning:")
    with app_ui.sentence_on_error():
        classifier = _classifier(path, (Path(path) / "model.keras").stat().st_mtime)
    return path, classifier


def open_saved_model(workspace: Workspace) -> None:
    """Upload a model zip this app offered for download; it becomes the chosen model.

    In the sidebar, under the pages that choose a model: a reload of the tab starts a new
    session, and this is how the models downloaded before come back.
    """
    with st.sidebar.expander("Open a saved model", icon=":material/upload_file:"):
        upload = st.file_uploader(
            "A model .zip downloaded from this app",
            type=["zip"],
            key="open_model",
            help="Checked before it is loaded, and loaded so that no code inside it can run.",
        )
    opened = st.session_state.setdefault("opened_models", {})
    if upload is None or upload.file_id in opened:
        return
    with app_ui.sentence_on_error(), st.spinner("Checking the model…"):
        directory = workspace.open_model_zip(upload.getvalue())
    opened[upload.file_id] = str(directory)
    st.session_state[app_state.MODEL_PATH] = str(directory)
    st.toast(f"Opened {upload.name}", icon=":material/check_circle:")


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
    scores = (*reference.known_scores, *reference.other_scores, *reference.not_mine_scores)
    lowest = min(0.0, default, *scores)
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
    not_mine = classifier.not_mine_rejected(threshold)
    st.caption(app_state.trade_off_caption(accepted, rejected, not_mine, classifier.threshold))
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
