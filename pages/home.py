"""Home: what the app does, the four steps, and where this session stands.

Reads only folders and model.json files: no TensorFlow, so the app opens fast.
"""

import streamlit as st

import app_state as state
import app_ui
from bikelib.sessions import Workspace

app_ui.through_the_entry(__file__)

workspace = Workspace.for_session(st.session_state)

STEPS = [
    (
        "pages/dataset.py",
        "**1 · Data**",
        ":material/photo_library:",
        "Look at the demo photos, or bring your own: a zip, a folder, or the camera.",
    ),
    (
        "pages/train.py",
        "**2 · Train**",
        ":material/model_training:",
        "Pick a network and settings, and watch it learn, epoch by epoch.",
    ),
    (
        "pages/classify.py",
        "**3 · Classify**",
        ":material/image_search:",
        "One photo: your bike, another bike or no bicycle, and why (a heatmap).",
    ),
    (
        "pages/scan.py",
        "**4 · Scan**",
        ":material/travel_explore:",
        "Many listing photos at once, the likeliest to be your bike first.",
    ),
]

st.title(":material/pedal_bike: Bike Recognition")
st.markdown(
    "Teach the computer your bikes from a few phone photos of each. Then show it a photo, "
    "say from a marketplace listing, and it tells you whether that is **one of your "
    "bikes** (and which), **somebody else's bike**, or **no bicycle** at all."
)

steps = st.columns(4)
for column, (page, label, icon, text) in zip(steps, STEPS, strict=True):
    with column.container(border=True):
        st.page_link(page, label=label, icon=icon)
        st.write(text)

st.subheader("This session")
source = st.session_state.get(state.DATASET_SOURCE) or workspace.default_source()
models = workspace.saved_models()
model = state.chosen_model(models, st.session_state.get(state.MODEL_PATH))
shipped = sum(m["shipped"] for m in models)
where = workspace.describe_source(source)
columns = st.columns(3)
columns[0].container(border=True).markdown(f"**Dataset**  \n{where[:1].upper()}{where[1:]}")
columns[1].container(border=True).markdown(f"**Model**  \n{state.model_line(model)}")
columns[2].container(border=True).markdown(
    f"**Models available**: {len(models)}  \n"
    f"{shipped} shipped, {len(models) - shipped} trained in this session"
)

if not source:
    st.info("No demo photos are installed: start with **Data** and upload your own.")
elif not models:
    st.info("No model yet: go to **Train** and train one on the demo photos.")
