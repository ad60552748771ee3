"""Streamlit pieces of the pages that use a trained model (Classify, Scan listings).

The model picker, the match threshold with what it trades, how a verdict looks, and
Scan's cards of its best matches.

Beside app_ui.py for the same reasons (not a page, not bikelib); no TensorFlow at import:
models load on first use, cached for the whole process, and a served app loads the
shipped one in a background thread after its first page run (`warm_up`).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path

import numpy as np
import streamlit as st

import app_state
import app_ui
import bikelib
from bikelib import openset, scan
from bikelib.sessions import Workspace
from bikelib.settings import settings

log = logging.getLogger(__name__)
_warm_up_lock = threading.Lock()
_warm_up: threading.Thread | None = None  # once per process


@st.cache_resource(max_entries=4, show_spinner=False)  # no spinner: the warm-up calls it too
def _classifier(path: str, mtime: float) -> bikelib.Classifier:
    """A saved model ready to predict, shared read-only by every session."""
    return bikelib.load_model(path)


def _cached(path: str) -> bikelib.Classifier:
    """The model saved at `path`, loaded once per process (path + modification time)."""
    return _classifier(path, (Path(path) / "model.keras").stat().st_mtime)


def load_classifier(path: str) -> bikelib.Classifier:
    """`_cached`, with a spinner while the first load lasts."""
    with st.spinner("Loading the model…"):
        return _cached(path)


def warm_up() -> threading.Thread | None:
    """Start loading the shipped model in the background, once per process.

    A fresh server's first Classify or Scan otherwise waits for TensorFlow's import, the
    model and the bicycle gate (8-19 s on a busy 2-core machine, over a minute in an
    overloaded soak: bench/RESULTS.md); the entry point calls this after each page run
    (it starts once), so they load while the visitor reads another page. Never
    blocks the page: a page that needs the model meanwhile waits for the same load
    (`st.cache_resource` computes a key once), and a failure is only logged (that page
    then loads the model itself and says what went wrong). Off with
    BIKE_RECOGNITION_WARM_UP=0 (a small host that never classifies keeps its memory).
    """
    global _warm_up
    with _warm_up_lock:
        if _warm_up is None and settings().warm_up:
            _warm_up = threading.Thread(target=_load_shipped_model, name="warm-up", daemon=True)
            _warm_up.start()
        return _warm_up


def _load_shipped_model() -> None:
    path = settings().demo_model
    if not (path / "model.keras").is_file():
        return  # no shipped model: nothing to warm
    began = time.monotonic()
    try:
        classifier = _cached(str(path))
        blank = io.BytesIO()
        from PIL import Image

        Image.new("RGB", (64, 64), "grey").save(blank, "PNG")
        classifier.predict(blank)  # the first prediction builds the model's functions
    except Exception:  # a warm-up must never take the server down; the page will say why
        log.warning("warming up %s failed", path, exc_info=True)
        return
    log.info("warmed up %s in %.1f s", path.name, time.monotonic() - began)


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
        classifier = load_classifier(path)
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


# Which photos to match, measured (bench/RESULTS.md, "Which photos at new places fail").
PHOTO_ADVICE = (
    "The whole bike tells most. A close-up of one wheel or the saddle looks like many other "
    "bikes': on rendered bikes at new places, 98% of whole-bike photos of the bike matched it, "
    "57-69% of such close-ups. Several photos of one listing say more together."
)

MATCH_HELP = {  # what the match number is, by the model's score
    "nearest": " The match is the cosine similarity to your closest photo of the bike (1: "
    "the same photo).",
    "nearest+plda": " The match is the cosine similarity to your closest photo of the bike "
    "(1: the same photo), plus a hundredth of a log-likelihood ratio: how much likelier the "
    "photo is of that bike than of another, judged from all your photos of it.",
    "plda": " The match is a log-likelihood ratio: above 0, the photo is likelier of that "
    "bike than of another, judged from all your photos of it.",
}

SECOND_HELP = (
    " Two networks judge each photo, the app's bike backbone and a second one (Lite0): the "
    "match is the mean of their two."
)


def threshold_slider(classifier: bikelib.Classifier, path: str) -> float | None:
    """The match threshold, adjustable per session, and what it trades; None without one.

    The slider starts at the model's calibrated threshold (rounded to its step; left
    there, the exact calibrated value is used, so the page agrees with the library).
    """
    if app_state.near_chance(classifier.meta):
        # Its threshold (often 1.000: every photo alike to it) would call anything "yours".
        st.caption("No verdicts from a model that guesses: only the closest bike is named.")
        return None
    if classifier.reference is None:
        st.caption(
            "This model was saved before verdicts were calibrated: it names the closest "
            "bike and how sure it is, but cannot say “not one of yours”. Train it again "
            "to get verdicts."
        )
        return None
    reference = classifier.reference
    scores = (*reference.known_scores, *reference.other_scores, *reference.not_mine_scores)
    # Cosine similarities lie in [-1, 1], with the PLDA's ratio added a little outside it;
    # the ratio alone spreads over a hundred or more either side of zero.
    ratio = reference.score == "plda"
    decimals, unit = (1, 10.0) if ratio else (3, 0.1)
    default = round(classifier.threshold, decimals)
    lowest = min(0.0, default, *scores)
    highest = max(default, *scores, *(() if ratio else (1.0,)))
    value = st.slider(
        "Match threshold",
        min_value=float(np.floor(lowest / unit) * unit),
        max_value=float(np.ceil(highest / unit) * unit),
        value=default,
        step=10.0**-decimals,
        format=f"%.{decimals}f",
        key=f"threshold:{path}",
        help="A photo whose match reaches the threshold counts as your bike. Higher: fewer "
        "strangers taken for yours, but more of your own photos missed."
        + MATCH_HELP.get(reference.score, "")
        + (SECOND_HELP if reference.second is not None else ""),
    )
    threshold = classifier.threshold if value == default else value
    accepted, rejected = classifier.trade_off(threshold)
    not_mine = classifier.not_mine_rejected(threshold)
    crops = bool(reference.crops)
    caption = app_state.trade_off_caption(
        accepted, rejected, not_mine, classifier.threshold, crops=crops
    )
    st.caption(caption)
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


def match_cards(classifier, bike: str, rows: list, photos: dict, why: dict, *, show_why: bool):
    """Scan's best matches as cards, three to a row, in rank order: each listing photo with
    its verdict and match; with `show_why`, its heatmap and the owner's photo of `bike`
    it matched best (computed once per photo, kept in `why`)."""
    index = classifier.classes.index(bike)
    # A row of 3 columns at a time: phones stack them row by row, so rank order holds.
    cells = [c for _ in range(0, len(rows), 3) for c in st.columns(3)]
    for rank, (cell, row) in enumerate(zip(cells, rows, strict=False), start=1):
        with cell.container(border=True):
            photo = photos.get(row.file)
            pictures = st.columns(2) if show_why and photo else [st]
            if photo:
                pictures[0].image(photo)
            if show_why and photo and row.file not in why:
                with app_ui.sentence_on_error(stop=False):
                    why[row.file] = (
                        classifier.explain(io.BytesIO(photo), bike=index),
                        # The photo of `bike` the match score compared it with.
                        classifier.closest_photo(io.BytesIO(photo), bike=index),
                    )
            if show_why and row.file in why:
                heatmap, closest = why[row.file]
                # The listing photo beside the owner's photo it matched best; the heatmap
                # under the listing photo (beside it for a model saved without its photos).
                pictures[0 if closest else 1].image(heatmap)
                if closest:
                    pictures[1].image(closest.jpeg, caption=f"Most like your {closest.name}")
            colour, icon, _ = VERDICT_LOOKS[row.verdict]
            st.markdown(
                f"**#{rank}** {row.file.rsplit('/', 1)[-1]}  \n"
                f":{colour}-badge[{icon} {scan.WORDS[row.verdict]}] match {row.score:.3f}"
            )
