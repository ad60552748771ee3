"""Dataset: choose the photos, look at them, and hear what a careful teacher would warn about.

No TensorFlow here unless the augmentation preview is asked for (a button), so the
page opens fast. Datasets, warnings and thumbnails are cached (app_ui) by path and a
stamp of the files, so a second visitor of the demo set pays nothing, and Train
reuses the dataset opened here.
"""

import streamlit as st

import app_state as state
import app_ui
from bikelib import charts, quality
from bikelib.sessions import Workspace
from bikelib.settings import settings

app_ui.through_the_entry(__file__)

workspace = Workspace.for_session(st.session_state)


def use(source) -> None:
    """Make `source` this session's dataset, if it opens."""
    with app_ui.sentence_on_error(stop=False):
        app_ui.open_dataset(source, st.session_state.get(state.SPLIT))
        st.session_state[state.DATASET_SOURCE] = str(source)


st.title(":material/photo_library: Dataset")
current = st.session_state.get(state.DATASET_SOURCE) or workspace.default_source()
choices = {"demo": "Demo bikes", "zip": "Upload a .zip", "photos": "Add photos here"}
offered = state.server_folders_offered(
    settings().server_folders, st.context.ip_address, st.context.headers
)
if offered:
    choices["folder"] = "A folder on the server"
kind = workspace.source_kind(current)
how = st.segmented_control(
    "Where do the photos come from?",
    list(choices),
    format_func=choices.get,
    default=kind if kind in choices else "demo",
    required=True,
)
if how == "demo" and not workspace.default_source():
    st.info("The demo photos are not installed here; upload a zip or add photos instead.")
elif how == "demo" and current != str(workspace.default_source()):
    use(workspace.default_source())
elif how == "zip":
    upload = st.file_uploader(
        "A .zip with one folder per bike (or train/ and validation/ folders of them)", "zip"
    )
    if upload and st.session_state.get("zip_id") != upload.file_id:
        st.session_state["zip_id"] = upload.file_id
        with app_ui.sentence_on_error(stop=False):
            use(workspace.save_upload(upload.name, upload.getvalue()))
elif how == "folder":
    with st.form("folder"):
        folder = st.text_input("Folder path", placeholder="/home/me/bike-photos")
        if st.form_submit_button("Use this folder") and folder:
            with app_ui.sentence_on_error(stop=False):
                use(workspace.server_folder(folder))
elif how == "photos":
    app_ui.photo_set_builder(workspace, use)

current = st.session_state.get(state.DATASET_SOURCE) or workspace.default_source()
if not current:
    st.info("No dataset yet: upload a zip or add photos of at least two bikes.")
    st.stop()
with app_ui.sentence_on_error():
    dataset = app_ui.open_dataset(current, st.session_state.get(state.SPLIT))
    summary, findings = app_ui.dataset_report(current, st.session_state.get(state.SPLIT))

st.subheader(f"Showing {workspace.describe_source(current)}")
app_ui.dataset_numbers(dataset)

photos, statistics, warnings, augmentation = st.tabs(
    ["Photos", "Statistics", f"Warnings ({len(findings)})", "Augmentation preview"],
    key="dataset_tab",
    on_change="rerun",
)
if photos.open:
    with photos:
        app_ui.gallery(dataset)
if statistics.open:
    with statistics:
        per_class = summary["per_class"]
        height = charts.photos_per_class_height(len(per_class))
        st.altair_chart(charts.photos_per_class(per_class), width="stretch", height=height)
        st.markdown(f"**Split**: {state.split_note(dataset)}.")
        left, right = st.columns(2)
        left.markdown("**Photos per bike and split**")
        app_ui.table(summary["per_class"], left)
        right.markdown("**Image sizes** (width × height, before resizing)")
        app_ui.table(quality.size_counts(dataset), right)
if warnings.open:
    with warnings:
        app_ui.findings(findings)
if augmentation.open:
    with augmentation:
        app_ui.augmentation_preview(dataset, st.session_state.get(state.TRAIN_CONFIG))
