"""Classify: which of the known bikes is in a photo? Upload one or many, or take one.

Loaded models are cached for the whole process by path and modification time (one copy
however many visitors use it) and only ever used for prediction.
"""

import io
from pathlib import Path

import pandas as pd
import streamlit as st

import app_state
import bikelib
from bikelib import charts, images
from bikelib.sessions import Workspace

CARDS = 12  # photos shown one by one; the table lists all of them
workspace = Workspace.for_session(st.session_state)


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def load(path: str, mtime: float) -> bikelib.Classifier:
    """A saved model ready to predict, shared read-only by every session."""
    return bikelib.load_model(path)


st.title(":material/image_search: Classify")
models = workspace.saved_models()
if not models:
    st.info("There is no model yet: train a model first.")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()
paths = [m["path"] for m in models]
chosen = app_state.chosen_model(models, st.session_state.get("model_path"))
path = st.selectbox(
    "Model (newest first)",
    paths,
    index=paths.index(chosen["path"]),
    format_func=lambda p: app_state.model_summary(app_state.chosen_model(models, p)),
)
st.session_state["model_path"] = path
try:
    classifier = load(path, (Path(path) / "model.keras").stat().st_mtime)
except (bikelib.BikeLibError, OSError) as error:
    st.error(str(error))
    st.stop()
st.caption(f"Knows {len(classifier.classes)} bikes: {', '.join(classifier.classes)}.")

photos = st.file_uploader("Photos", images.PHOTO_TYPES, accept_multiple_files=True)
if st.toggle("Use the camera (a phone works too)"):
    shot = st.camera_input("Take a photo of a bike")
    photos = [*photos, *([shot] if shot else [])]
if not photos:
    st.info("Upload a photo of a bike, or take one, to see which bike it is.")
    st.stop()

# Copies, not the uploads themselves: decoding must not move the uploads' read positions.
copies = []
for photo in photos:
    copies.append(io.BytesIO(photo.getvalue()))
    copies[-1].name = photo.name
predictions = classifier.predict_many(copies)
rows = []
for number, (photo, prediction) in enumerate(zip(photos, predictions, strict=True)):
    if isinstance(prediction, bikelib.BikeLibError):
        st.error(str(prediction))
        continue
    rows.append(app_state.prediction_row(photo.name, photo.getvalue(), prediction))
    if number < CARDS:
        with st.container(border=True):
            left, right = st.columns([1, 2])
            left.image(images.thumbnail(photo.getvalue(), 360, square=False), caption=photo.name)
            right.markdown(f"### {prediction.label}  \n{prediction.confidence:.0%} sure")
            if prediction.confidence < 0.5:
                right.caption("Not sure: it may be none of the bikes this model knows.")
            chart = charts.probability_bars(prediction.probabilities, prediction.label)
            right.altair_chart(chart, width="stretch", height=40 * len(classifier.classes) + 60)

if len(rows) > 1:
    st.subheader(f"All {len(rows)} photos")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        row_height=80,
        column_config={
            "photo": st.column_config.ImageColumn(width="small"),
            "confidence": st.column_config.ProgressColumn(format="percent", max_value=1),
            **{
                name: st.column_config.NumberColumn(format="percent") for name in classifier.classes
            },
        },
    )
