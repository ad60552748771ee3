"""Train: settings in a form, a background run with live progress, results, past runs.

The run is a `TrainingJob` (a child process watched by a thread) kept in session state;
a fragment redraws its progress every second, so reruns, other widgets and page switches
never interrupt it. Nothing here loads TensorFlow: only the child process does.
"""

import pandas as pd
import streamlit as st

import app_state
import app_ui
import bikelib
from bikelib import charts, jobs
from bikelib.sessions import Workspace, source_stamp

workspace = Workspace.for_session(st.session_state)


@st.cache_data(max_entries=16, show_spinner=False)
def given_split(source: str, stamp: str) -> bool:
    """Whether the data's own train/ and validation/ folders decide the split."""
    return bikelib.open_dataset(source).given_split


@st.fragment(run_every=1.0)
def live(job: jobs.TrainingJob) -> None:
    """Progress bar, time left and live curves of the running job, redrawn every second."""
    status = job.status()
    if status.finished:
        st.rerun()  # the whole page shows the results now
    if status.state == jobs.QUEUED:
        st.info(
            "Waiting for another training on this server to finish…",
            icon=":material/hourglass_top:",
        )
    elif not status.epoch:
        st.info("Preparing the photos…", icon=":material/hourglass_top:")
    st.progress(status.fraction, status.label)
    if status.history:
        app_ui.learning_curves(list(status.history))
    if status.stop_requested:
        st.caption("Stopping after this batch; the best model so far is kept…")
    elif st.button(
        "Stop training",
        icon=":material/stop_circle:",
        help="End now and keep the best model so far",
    ):
        job.stop()


st.title(":material/model_training: Train")
source = st.session_state.get("dataset_source") or workspace.default_source()
if not source:
    st.info("Choose a dataset first.")
    st.page_link("pages/dataset.py", label="Go to Dataset", icon=":material/photo_library:")
    st.stop()
st.caption(f"Dataset: {workspace.describe_source(source)}")
try:
    given = given_split(str(source), source_stamp(source))
except bikelib.BikeLibError as error:
    st.error(str(error))
    st.stop()
job: jobs.TrainingJob | None = st.session_state.get("job")
running = job is not None and job.status().active

labels = bikelib.ARCHITECTURE_LABELS
arch = st.segmented_control(
    "Network", list(labels), format_func=labels.get, default="default", required=True, key="arch"
)
recipe = bikelib.TrainConfig.recommended(arch)
with st.form(f"settings-{arch}"):
    left, right = st.columns(2)
    form = {"epochs": left.slider("Epochs", 1, max(100, recipe.epochs), recipe.epochs)}
    for name, label, extra in [
        ("batch_size", "Batch size", {}),
        ("learning_rate", "Learning rate", {"format_func": lambda rate: f"{rate:g}"}),
        ("image_size", "Image size (pixels)", {}),
    ]:
        options = app_state.form_choices(recipe, name)
        form[name] = left.select_slider(label, options, getattr(recipe, name), **extra)
    right.markdown("**Augmentation** (training photos only)")
    flip = right.checkbox("Horizontal flips", recipe.augmentation.flip)
    switches = app_state.augmentation_switches(recipe)
    ticked = [name for name, label, on in switches if right.checkbox(label, on)]
    form["val_fraction"] = right.slider(
        "Validation fraction",
        0.0,
        0.5,
        recipe.val_fraction,
        0.05,
        disabled=given,
        help="Share of each bike's photos held out to measure accuracy",
    )
    if given:
        right.caption("This data has train/ and validation/ folders: they decide the split.")
    seed = right.number_input("Seed", 0, 2**31 - 1, recipe.seed, help="Same seed, same model")
    start = st.form_submit_button("Start training", type="primary", disabled=running)
st.caption(f"Also from the recipe: {app_state.recipe_extras(recipe)}")

if start and not running:
    try:
        config = app_state.config_from_form(
            recipe, flip=flip, switched_on=ticked, seed=seed, **form
        )
        dataset = bikelib.open_dataset(source, val_fraction=config.val_fraction, seed=config.seed)
    except bikelib.BikeLibError as error:
        st.error(str(error))
        st.stop()
    st.session_state.update(
        train_config=config, split={"val_fraction": config.val_fraction, "seed": config.seed}
    )
    workspace.prune_models()
    st.session_state["job"] = jobs.TrainingJob.start(dataset, config, workspace.new_model_dir(arch))
    st.rerun()  # redraw the form with its button disabled while this run lasts

if job is not None and job.status().active:
    live(job)
elif job is not None and job.status().error:
    st.error(job.status().error)
elif job is not None and st.session_state.get("announced") is not job:
    status = job.status()
    st.session_state.update(announced=job, model_path=str(status.model_dir))
    stopped = (
        " (stopped early; the best epoch so far was kept)" if status.state == "stopped" else ""
    )
    st.success(
        f"Model saved as **{status.model_dir.name}**{stopped}.", icon=":material/check_circle:"
    )

models = workspace.saved_models()
if models:
    st.header("Results")
    paths = [m["path"] for m in models]
    picked = app_state.chosen_model(models, st.session_state.get("model_path"))
    path = st.selectbox(
        "Model",
        paths,
        paths.index(picked["path"]),
        format_func=lambda p: app_state.model_name(app_state.chosen_model(models, p)),
    )
    app_ui.model_results(app_state.chosen_model(models, path))
    st.header("Past runs")
    st.dataframe(
        pd.DataFrame(app_state.past_runs(models)),
        hide_index=True,
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
