"""Home: what the app does, the three steps, and where this session stands.

Reads only folders and model.json files: no TensorFlow, so the app opens fast.
"""

import streamlit as st

import app_state as state
import app_ui
from bikelib.sessions import Workspace

app_ui.through_the_entry(__file__)

workspace = Workspace.for_session(st.session_state)

st.title(":material/pedal_bike: Bike Recognition")
st.markdown(
    "Teach the computer to tell **your** bikes apart from a few phone photos of each. "
    "Then show it a new photo, say from a marketplace listing, and it says which bike it is."
)

steps = st.columns(3)
with steps[0].container(border=True):
    st.page_link("pages/dataset.py", label="**1 · Data**", icon=":material/photo_library:")
    st.write("Look at the demo photos, or bring your own: a zip, a folder, or the camera.")
with steps[1].container(border=True):
    st.page_link("pages/train.py", label="**2 · Train**", icon=":material/model_training:")
    st.write("Pick a network and settings, and watch it learn, epoch by epoch.")
with steps[2].container(border=True):
    st.page_link("pages/classify.py", label="**3 · Classify**", icon=":material/image_search:")
    st.write("Upload a photo or take one: the model names the bike and how sure it is.")

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
