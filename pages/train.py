"""Train: settings in a form, a background run with live progress, results, past runs.

While a run lasts the page shows only it; results and past runs come back after.

The run is a `TrainingJob` (a child process watched by a thread) kept in session state;
a fragment (`app_ui.live`) redraws its progress every second, so reruns, other widgets
and page switches never interrupt it. Nothing here loads TensorFlow: only the child
process does. The dataset comes from the cache the Dataset page filled (`app_ui`).
"""

import time

import streamlit as st

import app_state as state
import app_ui
import bikelib
from bikelib.config import OFFERED_ARCHITECTURES
from bikelib.jobs import STOPPED, TrainingJob
from bikelib.sessions import Workspace

app_ui.through_the_entry(__file__)

workspace = Workspace.for_session(st.session_state)

st.title(":material/model_training: Train")
source = st.session_state.get(state.DATASET_SOURCE) or workspace.default_source()
if not source:
    st.info("Choose a dataset first.")
    st.page_link("pages/dataset.py", label="Go to Dataset", icon=":material/photo_library:")
    st.stop()
st.caption(f"Dataset: {workspace.describe_source(source)}")
with app_ui.sentence_on_error():
    opened = app_ui.open_dataset(source, st.session_state.get(state.SPLIT))
if note := state.not_mine_note(opened):
    st.caption(note)
given = opened.given_split
job: TrainingJob | None = st.session_state.get(state.JOB)
running = job is not None and job.status().active

labels = bikelib.ARCHITECTURE_LABELS
arch = st.segmented_control(
    "Network",
    OFFERED_ARCHITECTURES,
    format_func=labels.get,
    default="default",
    required=True,
    key="arch",
)
recipe = bikelib.TrainConfig.recommended(arch)
label = workspace.describe_source(source)
default_name = state.run_name(label, arch, time.time())
# A key of its own: unkeyed, the widget's identity includes the placeholder, which shows
# the minute, so a name typed just before the minute turned was silently dropped.
run_name = st.text_input(
    "Run name", placeholder=default_name, max_chars=80, disabled=running, key="run_name"
)
form = app_ui.train_form(recipe, given_split=given, running=running)

if form is not None:
    with app_ui.sentence_on_error():
        config = state.config_from_form(recipe, **form)
        split = {"val_fraction": config.val_fraction, "seed": config.seed}
        dataset = app_ui.open_dataset(source, split)
        workspace.prune_models()
        name = run_name.strip() or default_name
        job = TrainingJob.start(  # or ServerBusyError: one sentence
            dataset, config, workspace.new_model_dir(arch), name=name, label=label,
            session=workspace.session_id,  # a closed tab ends its run (bikelib.presence)
        )  # fmt: skip
    st.session_state.update({state.TRAIN_CONFIG: config, state.SPLIT: split, state.JOB: job})
    st.rerun()  # redraw the form with its button disabled while this run lasts

active = job is not None and job.status().active
if active:
    app_ui.live(job)
    # Only this run while it lasts: the models below would read as its results.
    st.caption("Results and past runs come back when this training has finished.")
elif job is not None and job.status().reason:  # ended because its page was closed
    st.warning(job.status().reason, icon=":material/info:")
elif job is not None and job.status().error:
    st.error(job.status().error)
elif job is not None and job.status().model_dir is None:
    st.info("The training was stopped before a model was saved.")
elif job is not None and st.session_state.get("announced") is not job:
    status = job.status()
    st.session_state["announced"] = job
    saved = {m["path"]: m for m in workspace.saved_models()}.get(str(status.model_dir), {})
    st.session_state[state.LAST_RUN] = str(status.model_dir)  # its results show below
    if not state.near_chance(saved):  # a model that only guesses is not made the default
        st.session_state[state.MODEL_PATH] = str(status.model_dir)
    stopped = " (stopped early; the best epoch so far was kept)" if status.state == STOPPED else ""
    st.success(
        f"Model saved as **{saved.get('name', status.model_dir.name)}**{stopped}.",
        icon=":material/check_circle:",
    )

models = [] if active else workspace.saved_models()
if models:
    st.header("Results")
    paths = [m["path"] for m in models]
    # The run just finished first, even one that only guesses (its results warn so).
    last = st.session_state.get(state.LAST_RUN) or st.session_state.get(state.MODEL_PATH)
    picked = state.chosen_model(models, last)
    path = st.selectbox(
        "Model",
        paths,
        paths.index(picked["path"]),
        format_func=lambda p: state.model_name(state.chosen_model(models, p)),
    )
    chosen = state.chosen_model(models, path)
    app_ui.model_results(chosen)
    st.header("Past runs")
    app_ui.past_runs(models, chosen)
