"""Dataset: choose the photos, look at them, and hear what a careful teacher would warn about.

No TensorFlow here unless the augmentation preview is asked for (a button), so the
page opens fast. Datasets, warnings and thumbnails are cached by path and a stamp of
the files, so a second visitor of the demo set pays nothing.
"""

from pathlib import Path

import pandas as pd
import streamlit as st

import app_state
import app_ui
import bikelib
from bikelib import charts, images, quality
from bikelib.sessions import Workspace, source_stamp
from bikelib.settings import settings

PER_PAGE = 20
workspace = Workspace.for_session(st.session_state)


@st.cache_data(max_entries=16, show_spinner="Reading the photos…")
def load(source: str, stamp: str, split: tuple) -> tuple[bikelib.Dataset, dict, list]:
    dataset = bikelib.open_dataset(source, **dict(split))
    return dataset, bikelib.summarize(dataset), quality.check(dataset)


def use(source) -> None:
    """Make `source` this session's dataset, if it opens."""
    try:
        load(str(source), source_stamp(source), tuple(st.session_state.get("split", {}).items()))
    except bikelib.BikeLibError as error:
        st.error(str(error))
    else:
        st.session_state["dataset_source"] = str(source)


st.title(":material/photo_library: Dataset")
current = st.session_state.get("dataset_source") or workspace.default_source()
choices = {"demo": "Demo bikes", "zip": "Upload a .zip", "photos": "Add photos here"}
if settings().server_folders:
    choices["folder"] = "Folder on this computer"
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
        use(workspace.save_upload(upload.name, upload.getvalue()))
elif how == "folder":
    with st.form("folder"):
        folder = st.text_input("Folder path", placeholder="/home/me/bike-photos")
        if st.form_submit_button("Use this folder") and folder:
            use(Path(folder).expanduser())
elif how == "photos":
    bike = st.text_input("Bike name", key="bike_name", placeholder="e.g. red-commuter")
    camera = st.toggle("Use the camera (a phone works too)")
    with st.form("add", clear_on_submit=True):
        files = st.file_uploader("Photos of this bike", list(images.PHOTO_TYPES), True)
        shot = st.camera_input("Take a photo") if camera else None
        if st.form_submit_button("Add to this bike", type="primary"):
            try:
                photos = [(f.name, f.getvalue()) for f in [*files, *([shot] if shot else [])]]
                st.toast(f"Added {workspace.add_photos(bike, photos)} new photo(s) of {bike}")
            except bikelib.BikeLibError as error:
                st.error(str(error))
    counts = workspace.photo_set_counts()
    if counts:
        st.write(" · ".join(f"**{name}**: {n} photos" for name, n in counts.items()))
        left, right = st.columns(2)
        if left.button("Use these photos", disabled=len(counts) < 2, help="Needs two bikes"):
            use(workspace.photo_set)
        gone = right.selectbox("Remove a bike", ["—", *counts], label_visibility="collapsed")
        if gone != "—" and right.button(f"Remove {gone}"):
            workspace.remove_bike(gone)
            st.rerun()
current = st.session_state.get("dataset_source") or workspace.default_source()
if not current:
    st.info("No dataset yet: upload a zip or add photos of at least two bikes.")
    st.stop()
try:
    split = tuple(st.session_state.get("split", {}).items())
    dataset, summary, findings = load(str(current), source_stamp(current), split)
except bikelib.BikeLibError as error:
    st.error(str(error))
    st.stop()

st.subheader(f"Showing {workspace.describe_source(current)}")
numbers = st.columns(4)
numbers[0].metric("Bikes", len(dataset.classes))
numbers[1].metric("Photos", len(dataset.samples))
numbers[2].metric("Training", len(dataset.train))
numbers[3].metric("Validation", len(dataset.validation))

photos, statistics, warnings, augmentation = st.tabs(
    ["Photos", "Statistics", f"Warnings ({len(findings)})", "Augmentation preview"],
    key="dataset_tab",
    on_change="rerun",
)
if photos.open:
    with photos:
        shown = st.selectbox("Bike", ["All bikes", *dataset.classes])
        chosen = app_state.gallery(dataset, None if shown == "All bikes" else shown)
        pages = max(1, -(-len(chosen) // PER_PAGE))
        page = st.pagination(pages, key=f"page-{shown}") if pages > 1 else 1
        window = chosen[(page - 1) * PER_PAGE : page * PER_PAGE]
        images = app_ui.thumbnails(path for _, path in window)
        shown_images = [(i, c) for i, (c, _) in zip(images, window, strict=True) if i]
        if shown_images:
            st.image([i for i, _ in shown_images], caption=[c for _, c in shown_images], width=160)
        st.caption(f"{len(chosen)} photos, page {page} of {pages}; thumbnails are upright.")
if statistics.open:
    with statistics:
        st.altair_chart(charts.photos_per_class(summary["per_class"]), width="stretch")
        st.markdown(f"**Split**: {app_state.split_note(dataset)}.")
        left, right = st.columns(2)
        left.markdown("**Photos per bike and split**")
        left.dataframe(pd.DataFrame(summary["per_class"]), hide_index=True)
        right.markdown("**Image sizes** (width × height, before resizing)")
        right.dataframe(pd.DataFrame(quality.size_counts(dataset)), hide_index=True)
if warnings.open:
    with warnings:
        if not findings:
            st.success("No problems found: enough photos, balanced, no duplicates.")
        for finding in findings:
            st.warning(finding.message, icon=":material/warning:")
            if finding.paths:
                with st.expander(f"Show the {len(finding.paths)} file(s)"):
                    for line in finding.details:
                        st.text(line)
                    images = [i for i in app_ui.thumbnails(finding.paths[:12]) if i]
                    if images:
                        st.image(images, width=120)
if augmentation.open:
    with augmentation:
        names = {str(s.path.relative_to(dataset.root)): s.path for s in dataset.train}
        name = st.selectbox("Photo", list(names))
        if st.button("Show augmented versions", help="Loads TensorFlow the first time"):
            config = st.session_state.get("train_config")
            settings = config.augmentation if config else bikelib.Augmentation()
            with st.spinner("Augmenting…"):
                versions = images.augment_preview(names[name], settings, n=7, seed=len(name))
            st.image([bikelib.decode(names[name], 192), *versions], width=160)
            used = app_state.augmentation_names(settings)
            st.caption(f"The original, then seven versions as training sees them: {used}")
