"""Scan: which of many listing photos may show my bike? Best match first, and why.

Upload listing photos and zips of them, pick the bike to look for, scan: a ranked table
(with a CSV download), the photos that could not be read, and the best matches as
cards with their heatmap. A scan's result is kept in the session, keyed by model, bike
and uploads, so moving a toggle never scans again.
"""

import streamlit as st

import app_models
import app_state
import app_ui
from bikelib import images, openset, scan
from bikelib.sessions import Workspace

app_ui.through_the_entry(__file__)

TOP = 6  # best matches shown as cards
TABLE_THUMBNAILS = 500  # rows with a thumbnail; beyond them the table lists names only
workspace = Workspace.for_session(st.session_state)


def run(classifier, bike: str, uploads: list[tuple[str, bytes]]) -> dict:
    """Scan with a progress bar; thumbnails for the table and photos for the cards."""
    total = max(scan.count_uploads(uploads), 1)
    bar = st.progress(0.0, text=f"Scanning {total} photos…")

    def progress(done: int) -> None:
        bar.progress(min(done / total, 1.0), text=f"Scanned {done} of {total} photos…")

    rows = scan.scan(classifier, bike, scan.listing_uploads(uploads), on_progress=progress)
    bar.empty()
    readable = [r.file for r in rows if not r.error]
    thumbs = scan.thumbnails(scan.listing_uploads(uploads), readable[:TABLE_THUMBNAILS])
    cards = scan.thumbnails(scan.listing_uploads(uploads), readable[:TOP], size=480)
    return {"rows": rows, "thumbs": thumbs, "cards": cards, "why": {}}


st.title(":material/travel_explore: Scan listings")
path, classifier = app_models.pick_model(workspace)
if app_state.near_chance(classifier.meta):
    # Its match scores tell nothing apart: a ranking would order listings at random.
    st.info("A model that guesses cannot rank listings. Pick another model above.")
    st.stop()
bike = st.selectbox("My bike: the one to look for", classifier.classes)
files = st.file_uploader(
    "Listing photos, or zips of them",
    [*images.PHOTO_TYPES, "zip"],
    accept_multiple_files=True,
    help="Save the photos of the listings you want to check; a zip may hold thousands. "
    + app_models.PHOTO_ADVICE,
)
if not files:
    st.info(
        f"Upload listing photos (or zips of them) to rank them by how much each looks like {bike}."
    )
    st.stop()
key = (path, classifier.directory.stat().st_mtime, bike, tuple(f.file_id for f in files))
clicked = st.button("Scan", type="primary", icon=":material/travel_explore:")
result = st.session_state.get("scan")
if clicked and (result is None or result["key"] != key):
    with app_ui.sentence_on_error():
        result = {"key": key, **run(classifier, bike, [(f.name, f.getvalue()) for f in files])}
    st.session_state["scan"] = result
if result is None or result["key"] != key:
    st.stop()

rows = result["rows"]
grouped = scan.can_group(rows) and st.toggle(
    "Each folder is one listing",
    help=f"Pool each folder's photos into one match (the {openset.POOL} of those showing a "
    "bicycle): a seller's several photos of one bike say more together than any one.",
)
if grouped:
    listings = scan.by_listing(rows, classifier.threshold)
    st.subheader(scan.listing_lead(listings, bike))
    if scan.none_passed(listings):
        st.caption(scan.NONE_PASSED)
    app_ui.listing_table(listings, result["thumbs"])
st.subheader(scan.lead(rows, bike))
if scan.none_passed(rows):
    st.caption(scan.NONE_PASSED)
st.download_button(
    "Download the ranking (CSV)",
    data=scan.to_csv(rows),
    file_name=f"scan-{bike}.csv",
    mime="text/csv",
    on_click="ignore",
    icon=":material/download:",
)
best = [r for r in rows if not r.error][:TOP]
show_why = st.toggle(
    "Show why (heatmap)",
    help=f"Where in each photo the model saw your bike, and which of your photos of {bike} "
    "it matches best",
)
app_models.match_cards(classifier, bike, best, result["cards"], result["why"], show_why=show_why)

app_ui.scan_table(rows, result["thumbs"])
unreadable = [{"file": r.file, "why": r.error} for r in rows if r.error]
if unreadable:
    files_word = "file" if len(unreadable) == 1 else "files"
    st.warning(f"{len(unreadable)} {files_word} could not be read (left out of the ranking):")
    app_ui.table(unreadable)
