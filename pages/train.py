"""Train: settings in a form, a background run with live progress, results, past runs.

The run is a `TrainingJob` (a child process watched by a thread) kept in session state;
a fragment redraws its progress every second, so reruns, other widgets and page switches
never interrupt it.
"""

import dataclasses
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

import bikelib
from bikelib import quality
from bikelib.config import ARCHITECTURE_LABELS
from bikelib.workspace import (
    QUEUED,
    SAVING,
    TrainingJob,
    Workspace,
    curve_rows,
    run_rows,
    source_stamp,
)

# Strengths a switched-on augmentation uses when the recipe has it off.
AUGMENTATION_ON = {
    "zoom": 0.2,
    "rotation": 10.0,
    "translation": 0.1,
    "brightness": 0.2,
    "contrast": 0.2,
}
# TrainConfig fields the form sets; the others come from the recipe as they are.
FORM_FIELDS = {
    "arch",
    "epochs",
    "batch_size",
    "learning_rate",
    "image_size",
    "augmentation",
    "val_fraction",
    "seed",
}
METRIC_NAMES = {
    "val_accuracy": "validation accuracy",
    "val_loss": "validation loss",
    "accuracy": "training accuracy",
    "loss": "training loss",
}
workspace = Workspace.for_session(st.session_state)


@st.cache_data(max_entries=2000, show_spinner=False)
def thumb(path: str, mtime: float) -> bytes | None:
    try:
        return quality.thumbnail(path, 140)
    except bikelib.BikeLibError:
        return None


@st.cache_data(max_entries=16, show_spinner=False)
def given_split(source: str, stamp: str) -> bool:
    """Whether the data's own train/ and validation/ folders decide the split."""
    return bikelib.open_dataset(source).given_split


def choices(default, options):
    return sorted({*options, default})


def curves(rows: list[dict], metric: str, title: str) -> alt.Chart:
    """Training and validation curve of one metric, per epoch."""
    frame = pd.DataFrame(rows)
    columns = [c for c in (metric, f"val_{metric}") if c in frame]
    long = frame.melt("epoch", columns, var_name="split").replace(
        {metric: "training", f"val_{metric}": "validation"}
    )
    return (
        alt.Chart(long, title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title=metric),
            color=alt.Color("split:N", title=None),
            tooltip=["epoch", "split", alt.Tooltip("value:Q", format=".3f")],
        )
    )


@st.fragment(run_every=1.0)
def live(job: TrainingJob) -> None:
    """Progress bar, time left and live curves of the running job, redrawn every second."""
    status = job.status()
    if status.finished:
        st.rerun()  # the whole page shows the results now
    if status.state == QUEUED:
        st.info(
            "Waiting for another training on this server to finish…",
            icon=":material/hourglass_top:",
        )
    elif not status.epoch:
        st.info("Preparing the photos…", icon=":material/hourglass_top:")
    if status.fraction >= 1 or status.state == SAVING:
        label = f"Epoch {status.epoch} of {status.epochs} done; checking and saving the model…"
    elif status.seconds_left is not None:
        label = f"Epoch {status.epoch} of {status.epochs}, about {status.seconds_left:.0f} s left"
    else:
        label = f"Epoch {status.epoch} of {status.epochs}"
    st.progress(status.fraction, label)
    if status.history:
        charts = st.columns(2)
        charts[0].altair_chart(curves(status.history, "loss", "Loss"), width="stretch")
        charts[1].altair_chart(curves(status.history, "accuracy", "Accuracy"), width="stretch")
    if status.stop_requested:
        st.caption("Stopping after this batch; the best model so far is kept…")
    elif st.button(
        "Stop training",
        icon=":material/stop_circle:",
        help="End now and keep the best model so far",
    ):
        job.stop()


def results(meta: dict) -> None:
    """What a saved model learned: metrics, confusion matrix, per-class, mistakes, download."""
    metrics, evaluation = meta.get("metrics", {}), meta.get("evaluation")
    numbers = st.columns(4)
    if "val_accuracy" in metrics:
        numbers[0].metric("Validation accuracy", f"{metrics['val_accuracy']:.0%}")
        numbers[1].metric("Validation loss", f"{metrics['val_loss']:.3f}")
    else:
        numbers[0].metric("Validation accuracy", "—", help="There were no validation photos")
    numbers[2].metric("Best epoch", f"{metrics.get('best_epoch')} of {metrics.get('epochs_run')}")
    numbers[3].metric("Training time", f"{metrics.get('train_seconds', 0):.0f} s")
    if meta.get("history"):
        charts = st.columns(2)
        rows = pd.DataFrame(meta["history"]).assign(epoch=lambda f: f.index + 1)
        charts[0].altair_chart(curves(rows.to_dict("records"), "loss", "Loss"), width="stretch")
        accuracy = curves(rows.to_dict("records"), "accuracy", "Accuracy")
        charts[1].altair_chart(accuracy, width="stretch")
    if evaluation:
        classes = evaluation["classes"]
        cells = pd.DataFrame(
            [
                {"true": classes[i], "predicted": classes[j], "photos": n}
                for i, row in enumerate(evaluation["confusion_matrix"])
                for j, n in enumerate(row)
            ]
        )
        names = alt.Axis(labelLimit=240, labelAngle=-40, labelOverlap=False)
        base = alt.Chart(cells, title="Confusion matrix: rows are the true bike").encode(
            x=alt.X("predicted:N", sort=classes, axis=names),
            y=alt.Y("true:N", sort=classes, axis=alt.Axis(labelLimit=240)),
        )
        heat = base.mark_rect().encode(color=alt.Color("photos:Q", scale=alt.Scale(scheme="blues")))
        text = base.mark_text(fontSize=18).encode(
            text="photos:Q",
            color=alt.condition(
                alt.datum.photos > cells["photos"].max() / 2, alt.value("white"), alt.value("black")
            ),
        )
        left, right = st.columns(2)
        left.altair_chart(heat + text, width="stretch", height=48 * len(classes) + 110)
        per_class = pd.DataFrame(evaluation["per_class"]).rename(
            columns={"recall": "accuracy", "support": "photos"}
        )[["class", "accuracy", "precision", "photos"]]
        right.markdown("**Per bike**: accuracy = share of its validation photos recognised")
        right.dataframe(
            per_class,
            hide_index=True,
            column_config={
                "accuracy": st.column_config.ProgressColumn(format="percent", max_value=1),
                "precision": st.column_config.NumberColumn(format="percent"),
            },
        )
        mistakes = evaluation["misclassified"]
        st.markdown(f"**Misclassified validation photos**: {len(mistakes)}")
        shown = [(m, thumb(m["path"], 0)) for m in mistakes[:24]]
        if any(image for _, image in shown):
            st.image(
                [image for _, image in shown if image],
                caption=[
                    f"{m['true']}, taken for {m['predicted']} ({m['confidence']:.0%})"
                    for m, image in shown
                    if image
                ],
                width=200,
            )
    st.download_button(
        "Download this model (.zip: model.keras + model.json)",
        data=lambda: bikelib.export_zip(meta["path"]),
        file_name=f"{Path(meta['path']).name}.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/download:",
    )


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
job: TrainingJob | None = st.session_state.get("job")
running = job is not None and job.status().active

arch = st.segmented_control(
    "Network",
    list(ARCHITECTURE_LABELS),
    format_func=ARCHITECTURE_LABELS.get,
    default="default",
    required=True,
    key="arch",
)
recipe = bikelib.TrainConfig.recommended(arch)
with st.form(f"settings-{arch}"):
    left, right = st.columns(2)
    epochs = left.slider("Epochs", 1, max(100, recipe.epochs), recipe.epochs)
    batch_size = left.select_slider(
        "Batch size", choices(recipe.batch_size, [4, 8, 16, 32, 64]), recipe.batch_size
    )
    learning_rate = left.select_slider(
        "Learning rate",
        choices(recipe.learning_rate, [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2]),
        recipe.learning_rate,
        format_func=lambda rate: f"{rate:g}",
    )
    image_size = left.select_slider(
        "Image size (pixels)",
        choices(recipe.image_size, [32, 64, 96, 128, 150, 160, 192, 224]),
        recipe.image_size,
    )
    right.markdown("**Augmentation** (training photos only)")
    augmentation = {"flip": right.checkbox("Horizontal flips", recipe.augmentation.flip)}
    for name, on in AUGMENTATION_ON.items():
        value = getattr(recipe.augmentation, name) or on
        shown = f"{value:g}°" if name == "rotation" else f"{value:.0%}"
        enabled = right.checkbox(
            f"{name.capitalize()} ±{shown}", bool(getattr(recipe.augmentation, name))
        )
        augmentation[name] = value if enabled else 0.0
    val_fraction = right.slider(
        "Validation fraction",
        0.0,
        0.5,
        recipe.val_fraction,
        0.05,
        help="Share of each bike's photos held out to measure accuracy",
        disabled=given,
    )
    if given:
        right.caption("This data has train/ and validation/ folders: they decide the split.")
    seed = right.number_input("Seed", 0, 2**31 - 1, recipe.seed, help="Same seed, same model")
    start = st.form_submit_button("Start training", type="primary", disabled=running)
others = {
    field.name.replace("_", " "): getattr(recipe, field.name)
    for field in dataclasses.fields(recipe)
    if field.name not in FORM_FIELDS and getattr(recipe, field.name) is not None
}
st.caption("Also from the recipe: " + ", ".join(f"{k}: {v}" for k, v in others.items()))

if start and not running:
    try:
        config = dataclasses.replace(
            recipe,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            image_size=image_size,
            augmentation=bikelib.Augmentation(**augmentation),
            val_fraction=val_fraction,
            seed=int(seed),
        )
        dataset = bikelib.open_dataset(source, val_fraction=val_fraction, seed=int(seed))
    except bikelib.BikeLibError as error:
        st.error(str(error))
        st.stop()
    st.session_state.update(
        train_config=config, split={"val_fraction": val_fraction, "seed": int(seed)}
    )
    workspace.prune_models()
    st.session_state["job"] = TrainingJob.start(dataset, config, workspace.new_model_dir(arch))
    st.rerun()  # redraw the form with its button disabled while this run lasts

if job is not None and job.status().active:
    live(job)
elif job is not None:
    status = job.status()
    if status.error:
        st.error(status.error)
    elif st.session_state.get("announced") is not job:
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
    default = st.session_state.get("model_path")
    picked = st.selectbox(
        "Model",
        paths,
        index=paths.index(default) if default in paths else 0,
        format_func=lambda p: next(
            f"{m['name']}{' (shipped)' if m['shipped'] else ''}" for m in models if m["path"] == p
        ),
    )
    results(next(m for m in models if m["path"] == picked))
    st.header("Past runs")
    runs = pd.DataFrame(run_rows(models))
    runs["name"] += runs.pop("shipped").map({True: " (shipped)", False: ""})
    st.dataframe(
        runs,
        hide_index=True,
        column_config={
            "val accuracy": st.column_config.NumberColumn(format="percent"),
            "seconds": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    metric = st.segmented_control(
        "Compare",
        list(METRIC_NAMES),
        format_func=METRIC_NAMES.get,
        default="val_accuracy",
        required=True,
    )
    rows = [r for r in curve_rows(models) if r["metric"] == metric]
    if rows:
        overlay = (
            alt.Chart(pd.DataFrame(rows), title=f"{METRIC_NAMES[metric]} per epoch, all runs")
            .mark_line(point=True)
            .encode(
                x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
                y=alt.Y("value:Q", title=METRIC_NAMES[metric]),
                color=alt.Color("run:N", legend=alt.Legend(labelLimit=300)),
                tooltip=["run", "epoch", alt.Tooltip("value:Q", format=".3f")],
            )
        )
        st.altair_chart(overlay, width="stretch")
