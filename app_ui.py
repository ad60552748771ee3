"""Streamlit pieces more than one page draws, or too long to leave in a thin page.

Lives beside streamlit_app.py, not in pages/ (Streamlit would list it as a page) and
not in bikelib (which never imports Streamlit). No TensorFlow here either. What is
plain Python (labels, rows, the form's mapping) is in app_state.py; this file draws.
The datasets the pages open are cached here, so Dataset and Train share one copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import streamlit as st

import app_state
import bikelib
from bikelib import charts, images, quality, scan
from bikelib.dataset import is_not_mine
from bikelib.jobs import QUEUED, TrainingJob, expected_wait
from bikelib.sessions import Workspace
from bikelib.stamps import source_stamp

VIA_ENTRY = "via_entry"  # set by streamlit_app.py on every run of this session
WANTED_PAGE = "wanted_page"  # the page a direct first visit asked for


def through_the_entry(page_file: str) -> None:
    """Every page's first line: run through streamlit_app.py, whatever the first URL.

    Streamlit runs a page by itself (its older pages/ folder mode, with that folder's
    menu and without the page config) when a session's very first visit is a direct
    link such as /train before any session has run `st.navigation`. Such a run goes to
    the entry script, which then switches to the page that was asked for.
    """
    if not st.session_state.get(VIA_ENTRY):
        st.session_state[WANTED_PAGE] = f"pages/{Path(page_file).name}"
        st.switch_page("streamlit_app.py")


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


def table(data, where=st, *, row_height: int | None = None, **kwargs) -> None:
    """Every page's table: `st.dataframe` without the index, shown whole up to
    `app_state.WHOLE_TABLE_ROWS` rows and in a scroll window of fixed height beyond
    (`app_state.table_height`). `where` is a column or container; `kwargs` go on to
    `st.dataframe` (column_config, ...)."""
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    height = app_state.table_height(len(frame), row_height or app_state.TABLE_ROW_PX)
    where.dataframe(frame, hide_index=True, height=height, row_height=row_height, **kwargs)


@st.cache_data(max_entries=16, show_spinner="Reading the photos…")
def _open_dataset(source: str, stamp: str, split: tuple) -> bikelib.Dataset:
    return bikelib.open_dataset(source, **dict(split))


@st.cache_data(max_entries=16, show_spinner="Checking the photos…")
def _dataset_report(source: str, stamp: str, split: tuple) -> tuple[dict, list]:
    dataset = _open_dataset(source, stamp, split)
    return bikelib.summarize(dataset), quality.check(dataset)


def _key(source, split: dict | None) -> tuple[str, str, tuple]:
    return str(source), source_stamp(source), tuple(sorted((split or {}).items()))


def open_dataset(source, split: dict | None = None) -> bikelib.Dataset:
    """The dataset at `source` with `split` (val_fraction, seed), opened once per version
    of its files (`source_stamp`) for every page and visitor."""
    return _open_dataset(*_key(source, split))


def dataset_report(source, split: dict | None = None) -> tuple[dict, list]:
    """`bikelib.summarize` and `quality.check` of `open_dataset(source, split)`, cached."""
    return _dataset_report(*_key(source, split))


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
    if app_state.near_chance(meta):
        st.warning(app_state.CHANCE_NOTE, icon=":material/warning:")
    numbers = st.columns(4)
    if "val_accuracy" in metrics:
        numbers[0].metric("Validation accuracy", f"{metrics['val_accuracy']:.0%}")
        numbers[1].metric("Validation loss", f"{metrics['val_loss']:.3f}")
    else:
        numbers[0].metric("Validation accuracy", "—", help="There were no validation photos")
    numbers[2].metric("Best epoch", f"{metrics.get('best_epoch')} of {metrics.get('epochs_run')}")
    numbers[3].metric("Training time", f"{metrics.get('train_seconds', 0):.0f} s")
    if note := app_state.trained_not_mine(meta):
        st.caption(note)
    if meta.get("history"):
        learning_curves(charts.history_rows(meta["history"]))
    if evaluation:
        classes = evaluation["classes"]
        left, right = st.columns(2)
        heatmap = charts.confusion_matrix(classes, evaluation["confusion_matrix"])
        left.altair_chart(heatmap, width="stretch", height=48 * len(classes) + 110)
        right.markdown("**Per bike**: accuracy = share of its validation photos recognised")
        table(
            charts.per_class_table(evaluation["per_class"]),
            right,
            # Narrow numbers (pixels), so a bike's name and all four columns fit a phone's
            # 358 px (75 px "small" columns pushed "photos" out of sight there).
            column_config={
                "accuracy": st.column_config.ProgressColumn(
                    format="percent", max_value=1, width=68
                ),
                "precision": st.column_config.NumberColumn(format="percent", width=68),
                "photos": st.column_config.NumberColumn(width=58),
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
    left, right = st.columns(2)
    left.download_button(
        "Download this model (.zip: model.keras + model.json)",
        data=lambda: bikelib.export_zip(meta["path"]),
        file_name=f"{Path(meta['path']).name}.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/download:",
    )
    right.download_button(  # converted on click only: TensorFlow is not loaded before
        "For phones (.zip: TensorFlow Lite + class names)",
        data=lambda: bikelib.tflite_zip(meta["path"]),
        file_name=f"{Path(meta['path']).name}-tflite.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/smartphone:",
    )


def learning_curves(rows: list[dict]) -> None:
    """Loss and accuracy per epoch, side by side."""
    left, right = st.columns(2)
    left.altair_chart(charts.training_curves(rows, "loss", "Loss"), width="stretch")
    right.altair_chart(charts.training_curves(rows, "accuracy", "Accuracy"), width="stretch")


# -- Dataset page -------------------------------------------------------------------------


def photo_set_builder(workspace: Workspace, use: Callable[[Path], None]) -> None:
    """Name a bike, add its photos (upload or camera), use or prune the session's set.

    The photos are added in the button's callback, and the uploader and camera get
    fresh keys only when they were: a refused add (no name, a bad name) keeps the
    photos chosen, where the form's clear_on_submit would have dropped them.
    """
    camera = st.toggle("Use the camera (a phone works too)")
    others = st.toggle(
        app_state.NOT_MINE_TITLE,
        key="not_mine_photos",
        help="Photos of bikes that are not yours, as a listing might show: the model is "
        "taught to match none of your bikes on them.",
    )
    st.text_input("Bike name", key="bike_name", placeholder="e.g. red-commuter", disabled=others)
    round_ = st.session_state.setdefault("photo_round", 0)

    def add() -> None:
        files = st.session_state.get(f"photos-{round_}") or []
        shot = st.session_state.get(f"shot-{round_}")
        photos = [(f.name, f.getvalue()) for f in [*files, *([shot] if shot else [])]]
        try:
            name = st.session_state.get("bike_name", "")
            added = workspace.add_photos(name, photos, not_mine=others)
        except bikelib.BikeLibError as error:
            st.session_state["photo_note"] = ("error", str(error))
        except OSError as error:
            reason = error.strerror or type(error).__name__
            note = f"The server could not read or write a file: {reason}."
            st.session_state["photo_note"] = ("error", note)
        else:
            name = "other people's bikes" if others else " ".join(name.split())
            st.session_state["photo_round"] = round_ + 1  # an empty uploader and camera
            st.session_state["photo_note"] = ("toast", f"Added {added} new photo(s) of {name}")

    with st.form("add"):
        st.file_uploader(
            "Photos of this bike", list(images.PHOTO_TYPES), True, key=f"photos-{round_}"
        )
        if camera:
            st.camera_input("Take a photo", key=f"shot-{round_}")
        st.form_submit_button("Add to this bike", type="primary", on_click=add)
    kind, note = st.session_state.pop("photo_note", (None, None))
    if kind == "error":
        st.error(note, icon=":material/error:")
    elif kind == "toast":
        st.toast(note)
    counts = workspace.photo_set_counts()
    if counts:
        bikes = [name for name in counts if not is_not_mine(name)]
        words = [f"**{name}**: {counts[name]} photos" for name in bikes]
        group = app_state.NOT_MINE_TITLE
        words += [f"**{group}**: {n} photos" for name, n in counts.items() if is_not_mine(name)]
        st.write(" · ".join(words))
        left, right = st.columns(2, vertical_alignment="bottom")
        if left.button("Use these photos", disabled=len(bikes) < 2, help="Needs two bikes"):
            use(workspace.photo_set)
        gone = right.selectbox(
            "Remove a bike",
            list(counts),
            index=None,
            placeholder="Choose…",
            format_func=lambda name: group if is_not_mine(name) else name,
        )
        if gone and right.button(f"Remove {group if is_not_mine(gone) else gone}"):
            workspace.remove_bike(gone)
            st.rerun()


def dataset_numbers(dataset: bikelib.Dataset) -> None:
    """The dataset in four numbers (bikes only), and the not-mine group apart."""
    numbers = st.columns(4)
    numbers[0].metric("Bikes", len(dataset.classes))
    numbers[1].metric("Photos", len(dataset.samples))
    numbers[2].metric("Training", len(dataset.train))
    numbers[3].metric("Validation", len(dataset.validation))
    if note := app_state.not_mine_note(dataset):
        st.markdown(f":material/do_not_disturb_on: {note}")


def gallery(dataset: bikelib.Dataset, per_page: int = 20) -> None:
    """The dataset's photos, one bike, all bikes or the not-mine group, a page at a time."""
    group = [app_state.NOT_MINE_TITLE] if dataset.not_mine else []
    shown = st.selectbox("Bike", ["All bikes", *dataset.classes, *group])
    chosen = app_state.gallery(dataset, None if shown == "All bikes" else shown)
    pages = max(1, -(-len(chosen) // per_page))
    page = st.pagination(pages, key=f"page-{shown}") if pages > 1 else 1
    window = chosen[(page - 1) * per_page : page * per_page]
    pictures = thumbnails(path for _, path in window)
    shown_images = [(i, c) for i, (c, _) in zip(pictures, window, strict=True) if i]
    if shown_images:
        st.image([i for i, _ in shown_images], caption=[c for _, c in shown_images], width=160)
    st.caption(f"{len(chosen)} photos, page {page} of {pages}; thumbnails are upright.")


def findings(found: list[quality.Finding]) -> None:
    """Each warning about the dataset, with its files (reasons and thumbnails) folded."""
    if not found:
        st.success("No problems found: enough photos, balanced, no duplicates.")
    for finding in found:
        st.warning(finding.message, icon=":material/warning:")
        if finding.paths:
            with st.expander(f"Show the {len(finding.paths)} file(s)"):
                for line in finding.details:
                    st.text(line)
                pictures = [i for i in thumbnails(finding.paths[:12]) if i]
                if pictures:
                    st.image(pictures, width=120)


def augmentation_preview(dataset: bikelib.Dataset, config: bikelib.TrainConfig | None) -> None:
    """One training photo and seven augmented versions, computed when asked (loads Keras)."""
    names = {str(s.path.relative_to(dataset.root)): s.path for s in dataset.train}
    name = st.selectbox("Photo", list(names))
    if st.button("Show augmented versions", help="Loads TensorFlow the first time"):
        settings = config.augmentation if config else bikelib.Augmentation()
        with st.spinner("Augmenting…"):
            versions = images.augment_preview(names[name], settings, n=7, seed=len(name))
        pictures = [bikelib.decode(names[name], 192), *versions]
        # One image each in a wrapping row, with gaps: a grid of touching pictures
        # reads as one mirrored mosaic, and the original would not stand apart.
        row = st.container(horizontal=True, gap="medium")
        for picture, caption in zip(pictures, app_state.preview_captions(7), strict=True):
            row.image(picture, caption=caption, width=150)
        used = app_state.augmentation_names(settings)
        st.caption(f"The original, then seven variants as training sees them: {used}.")
        st.caption(app_state.fill_note(settings))


# -- Train page ---------------------------------------------------------------------------


def train_form(recipe: bikelib.TrainConfig, *, given_split: bool, running: bool) -> dict | None:
    """The settings form, filled from `recipe`; `app_state.config_from_form`'s keywords
    when "Start training" was pressed, else None."""
    with st.form(f"settings-{recipe.arch}"):
        left, right = st.columns(2)
        form = {"epochs": left.slider("Epochs", 1, max(100, recipe.epochs), recipe.epochs)}
        for name, label, extra in [
            ("batch_size", "Batch size", {}),
            ("learning_rate", "Learning rate", {"format_func": lambda rate: f"{rate:g}"}),
            ("image_size", "Image size (pixels)", {}),
        ]:
            options = app_state.form_choices(recipe, name)
            form[name] = left.select_slider(label, options, getattr(recipe, name), **extra)
        if recipe.arch == "default":  # the one network with pretrained bike weights
            form["pretrained"] = left.checkbox(
                "Start from the bike backbone",
                recipe.pretrained,
                help="Weights pretrained to tell 300 rendered bikes apart: better at telling "
                "your bike from a stranger's, and useful after a few epochs. Off: random weights.",
            )
            form["second_opinion"] = left.checkbox(
                "Second opinion",
                recipe.second_opinion,
                help="Photos are also matched by a second network (ImageNet's EfficientNet-"
                "Lite0, taught the same rendered bikes), the two scores averaged: better at "
                "telling your bike from a stranger's at a new place, at several times the "
                "computing per photo. Needs the bike backbone.",
            )
        right.markdown("**Augmentation** (training photos only)")
        form["flip"] = right.checkbox("Horizontal flips", recipe.augmentation.flip)
        switches = app_state.augmentation_switches(recipe)
        form["switched_on"] = [name for name, label, on in switches if right.checkbox(label, on)]
        form["val_fraction"] = right.slider(
            "Validation fraction", 0.0, 0.5, recipe.val_fraction, 0.05, disabled=given_split,
            help="Share of each bike's photos held out to measure accuracy",
        )  # fmt: skip
        if given_split:
            right.caption("This data has train/ and validation/ folders: they decide the split.")
        form["seed"] = right.number_input(
            "Seed", 0, 2**31 - 1, recipe.seed, help="Same seed, same model"
        )
        st.caption(f"Also from the recipe: {app_state.recipe_extras(recipe)}")
        start = st.form_submit_button("Start training", type="primary", disabled=running)
    return form if start and not running else None


@st.fragment(run_every=1.0)
def live(job: TrainingJob) -> None:
    """Progress bar, time left and live curves of the running job, redrawn every second."""
    status = job.status()
    if status.finished:
        st.rerun()  # the whole page shows the results now
    if status.state == QUEUED:
        place, wait_s = job.queue_position(), expected_wait(job)
        st.info(app_state.queue_note(place, wait_s), icon=":material/hourglass_top:")
    else:
        if not status.epoch:
            st.info("Preparing the photos…", icon=":material/hourglass_top:")
        st.progress(status.fraction, status.label)
    if status.history:
        learning_curves(list(status.history))
    if status.stop_requested:
        st.caption("Stopping after this batch; the best model so far is kept…")
    elif st.button(
        "Stop training",
        icon=":material/stop_circle:",
        help="End now and keep the best model so far",
    ):
        job.stop()


def past_runs(models: list[dict], chosen: dict | None = None) -> None:
    """The saved models in one table, and one metric of them on one chart: by default
    only the runs on the same photos as `chosen` (other data makes other numbers)."""
    same = app_state.same_data(models, chosen)
    if len(same) < len(models) and not st.toggle(
        f"Also runs on other data ({len(models) - len(same)})",
        help="Accuracy on other photos is not comparable",
    ):
        models = same
    table(
        app_state.past_runs(models),
        column_config={
            "val accuracy": st.column_config.NumberColumn(format="percent"),
            "seconds": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    metric = st.segmented_control(
        "Compare",
        list(charts.METRIC_NAMES),
        format_func=charts.METRIC_NAMES.get,
        default="val_accuracy",
        required=True,
    )
    overlay = charts.runs_overlay(app_state.curve_rows(models), metric)
    if overlay is not None:
        st.altair_chart(overlay, width="stretch")


# The Scan page's two rankings; both fit a desktop's 1280 px beside the sidebar, and a
# phone scrolls them sideways.
def scan_table(rows: list[scan.ScanRow], thumbs: dict[str, bytes]) -> None:
    """Every readable listing photo, best match first."""
    folder = scan.common_folder(rows)
    table(
        scan.table_rows(rows, thumbs),
        row_height=64,
        column_config={
            "rank": st.column_config.NumberColumn("#", width=36),
            "photo": st.column_config.ImageColumn(width=64),
            "file": st.column_config.TextColumn(width=216, help=f"In {folder}" if folder else None),
            "verdict": st.column_config.TextColumn(width=124),
            "score": st.column_config.NumberColumn("match", format="%.3f", width=56),
            "closest": st.column_config.TextColumn(width=128),
            "bicycle": st.column_config.ProgressColumn(format="percent", max_value=1, width=80),
        },
    )


def listing_table(listings: list[scan.ListingRow], thumbs: dict[str, bytes]) -> None:
    """Every listing (folder), best pooled match first, shown by its best photo."""
    table(
        scan.listing_table_rows(listings, thumbs),
        row_height=64,
        column_config={
            "rank": st.column_config.NumberColumn("#", width=36),
            "photo": st.column_config.ImageColumn("best photo", width=80),
            "listing": st.column_config.TextColumn(width=216),
            "photos": st.column_config.NumberColumn(width=56),
            "verdict": st.column_config.TextColumn(width=124),
            "score": st.column_config.NumberColumn("match", format="%.3f", width=56),
        },
    )
