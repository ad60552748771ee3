"""Classify: is a photo one of my bikes, which one, and why? Upload one or many, or take one.

Each photo leads with its verdict (one of your bikes, not one of yours, no bicycle). The
match threshold starts at the model's calibrated value and can be moved per session;
the verdicts follow it. The model picker and the threshold live in app_ui (Scan shares them).
"""

import io

import streamlit as st

import app_models
import app_state
import app_ui
import bikelib
from bikelib import charts, images
from bikelib.sessions import Workspace

app_ui.through_the_entry(__file__)

CARDS = 12  # photos shown one by one; the table lists all of them
workspace = Workspace.for_session(st.session_state)

st.title(":material/image_search: Classify")
path, classifier = app_models.pick_model(workspace)
st.caption(f"Knows {len(classifier.classes)} bikes: {', '.join(classifier.classes)}.")
threshold = app_models.threshold_slider(classifier, path)

photos = st.file_uploader(
    "Photos", images.PHOTO_TYPES, accept_multiple_files=True, help=app_models.PHOTO_ADVICE
)
if st.toggle("Use the camera (a phone works too)"):
    shot = st.camera_input("Take a photo of a bike")
    photos = [*photos, *([shot] if shot else [])]
if not photos:
    st.info("Upload a photo of a bike, or take one, to see which bike it is.")
    st.stop()
photos, repeats = app_state.unique_photos(photos)
if repeats:
    st.caption(f"{repeats} photo(s) uploaded twice: each is shown once.")
show_why = st.toggle("Show why (heatmap)", help="Where in the photo the model found its answer")


def copies() -> list[io.BytesIO]:
    """The uploads as fresh files: decoding must not move the uploads' read positions."""
    files = [io.BytesIO(photo.getvalue()) for photo in photos]
    for file, photo in zip(files, photos, strict=True):
        file.name = photo.name
    return files


one_listing = (
    len(photos) > 1
    and threshold is not None
    and st.toggle(
        "These photos are one listing",
        help="Judge them together, as the photos of one bike: the mean match of those "
        "that show a bicycle says more than any one of them.",
    )
)
predictions = classifier.predict_many(copies())
if one_listing:
    readable = [p for p in predictions if isinstance(p, bikelib.Prediction)]
    with app_ui.sentence_on_error(stop=False), st.container(border=True):
        listing = classifier.judge_listing(readable, threshold)
        words = listing.label if listing.known else app_models.VERDICT_LOOKS[listing.verdict][2]
        app_models.verdict(st, listing, title=f"This listing: {words}")
rows = []
for number, (photo, prediction) in enumerate(zip(photos, predictions, strict=True)):
    if isinstance(prediction, bikelib.BikeLibError):
        st.error(str(prediction))
        continue
    if threshold is not None:
        prediction = prediction.decided(threshold, classifier.gate_threshold)
    rows.append(app_state.prediction_row(photo.name, photo.getvalue(), prediction))
    rows[-1]["verdict"] = app_models.VERDICT_LOOKS[prediction.verdict][2]
    if number >= CARDS:
        continue
    with st.container(border=True):
        columns = st.columns([1, 1, 2] if show_why else [1, 2])
        left, right = columns[0], columns[-1]
        left.image(images.thumbnail(photo.getvalue(), 360, square=False), caption=photo.name)
        if show_why:
            with app_ui.sentence_on_error(stop=False):
                named = classifier.classes.index(prediction.label)  # the bike it names
                why = classifier.explain(io.BytesIO(photo.getvalue()), bike=named)
                columns[1].image(why, caption=f"Why: where it saw {prediction.label}")
                # The photo of the matched bike most like it; like the score itself, not
                # shown for a model without verdicts (one that guesses, say).
                closest = threshold is not None and classifier.closest_photo(
                    io.BytesIO(photo.getvalue())
                )
                if closest:
                    columns[1].image(
                        closest.jpeg,
                        caption=f"Most like your photo {closest.name} of {closest.bike} "
                        f"(similarity {closest.similarity:.2f})",
                    )
        if threshold is None:
            right.markdown(f"### {prediction.label}  \n{prediction.confidence:.0%} sure")
        else:
            app_models.verdict(right, prediction)
        chart = charts.probability_bars(prediction.probabilities, prediction.label)
        right.altair_chart(chart, width="stretch", height=40 * len(classifier.classes) + 60)

if len(rows) > 1:
    st.subheader(f"All {len(rows)} photos")
    app_ui.table(
        rows,
        row_height=80,
        column_config={
            "photo": st.column_config.ImageColumn(width="small"),
            "confidence": st.column_config.ProgressColumn(format="percent", max_value=1),
            **{
                name: st.column_config.NumberColumn(format="percent") for name in classifier.classes
            },
        },
    )
