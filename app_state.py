"""The pages' plain-Python half: what they show, computed without Streamlit or TensorFlow.

Lives beside app_ui.py (which draws with Streamlit); this file only turns bikelib's
data into labels, rows and settings, so it is unit-tested without a browser
(tests/test_app_state.py). It owns:

- the `st.session_state` keys more than one page reads or writes;
- labels and table rows for saved models (pickers, "past runs", overlaid curves);
- the Train form: the choices its sliders offer and the mapping to a `TrainConfig`;
- captions for the Dataset gallery and the Classify results table;
- whether this visitor may read folders of the server (Dataset page).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from bikelib import Augmentation, Dataset, TrainConfig
from bikelib.config import FILL_MODES, SEED_MIN_IMAGE_SIZE
from bikelib.dataset import NOT_MINE_LABEL
from bikelib.evaluation import near_chance
from bikelib.images import thumbnail

# -- session state shared between pages -------------------------------------------------

DATASET_SOURCE = "dataset_source"  # str path of the dataset chosen on the Dataset page
SPLIT = "split"  # {"val_fraction", "seed"} of the last training, so Dataset shows its split
TRAIN_CONFIG = "train_config"  # the last TrainConfig started, for the augmentation preview
MODEL_PATH = "model_path"  # str path of the model picked last (Train, Classify, Home)
JOB = "job"  # the session's TrainingJob, running or finished
LAST_RUN = "last_run"  # str path of the model the last finished training saved (Train)


# -- server folders ---------------------------------------------------------------------

# Headers a reverse proxy adds: with one in between, the peer address is the proxy's.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")


def server_folders_offered(
    setting: bool | None, ip_address: object, headers: Mapping[str, str]
) -> bool:
    """Whether the Dataset page offers "a folder on the server" to this browser.

    `setting` is `Settings.server_folders`: True or False decides; None (unset) offers it
    only to a browser on the server's own machine. Streamlit's `st.context.ip_address` is
    None for a loopback peer (127.0.0.1, ::1) and also when it knows no peer at all, so a
    connection counts as local only when it also has handshake headers (a real browser)
    and none a proxy adds. A reverse proxy on the same machine that adds none of them
    looks local: such a server sets BIKE_RECOGNITION_SERVER_FOLDERS=0.
    """
    if setting is not None:
        return setting
    names = {name.lower() for name in headers}
    return ip_address is None and bool(names) and not names & set(PROXY_HEADERS)


# -- saved models -----------------------------------------------------------------------


def model_name(meta: dict) -> str:
    """A saved model's name, marked "(shipped)" for the read-only demo model."""
    name = meta.get("name", Path(meta["path"]).name)
    return f"{name} (shipped)" if meta.get("shipped") else name


def model_line(meta: dict | None) -> str:
    """The Home page's words for the chosen model: bold name and accuracy, or "none yet"."""
    if not meta:
        return "none yet"
    accuracy = meta.get("metrics", {}).get("val_accuracy")
    name = meta.get("name", Path(meta["path"]).name)
    return f"**{name}**" + (f", {accuracy:.0%} validation accuracy" if accuracy is not None else "")


def model_summary(meta: dict) -> str:
    """One line to pick a model by: name, architecture, validation accuracy, data, shipped."""
    accuracy = meta.get("metrics", {}).get("val_accuracy", 0)
    name = meta.get("name", Path(meta["path"]).name)
    data = meta.get("dataset") or ""
    return (
        f"{name} · {meta.get('architecture')} · {accuracy:.0%} validation accuracy"
        + (f" · {data}" if data and data not in name and not meta.get("shipped") else "")
        + (" · shipped" if meta.get("shipped") else "")
    )


CHANCE_PICKED_NOTE = (
    "This model guesses at about chance level, so its answers below mean nothing, "
    'including "one of your bikes". Pick another model, or train longer.'
)
CHANCE_NOTE = (
    "This model guesses at about chance level: its validation accuracy is no better "
    "than picking a bike at random. Train longer (more epochs) or with more photos; "
    "it is not used as this session's model unless you pick it."
)


def chosen_model(models: list[dict], path: str | None) -> dict | None:
    """The model saved at `path`, else the newest one that does better than chance
    (else the newest; None when there are none)."""
    fallback = next((m for m in models if not near_chance(m)), models[0] if models else None)
    return next((m for m in models if m["path"] == path), fallback)


def run_rows(models: list[dict]) -> list[dict]:
    """One row per saved model for a "past runs" table: when, what, how well, how long."""
    rows = []
    for meta in models:
        config = meta.get("config", {})
        augmentation = config.get("augmentation", {})
        metrics = meta.get("metrics", {})
        rows.append(
            {
                "created": meta.get("created", "")[:16].replace("T", " "),
                "name": meta.get("name", Path(meta["path"]).name),
                "dataset": trained_on(meta),
                "val accuracy": metrics.get("val_accuracy"),
                "architecture": meta.get("architecture"),
                "epochs": metrics.get("epochs_run", config.get("epochs")),
                "seconds": metrics.get("train_seconds"),
                "image size": meta.get("image_size"),
                "batch size": config.get("batch_size"),
                "learning rate": config.get("learning_rate"),
                "augmentation": ", ".join(
                    k for k, v in augmentation.items() if k in AUGMENTATION_NAMES and v
                )
                or "none",
                "shipped": meta.get("shipped", False),
            }
        )
    return rows


def trained_on(meta: dict) -> str:
    """What a model was trained on, in words ("" for models saved before this was kept)."""
    if meta.get("shipped"):
        return meta.get("dataset") or "the built-in demo bikes"
    return meta.get("dataset") or ""


def run_name(dataset: str, arch: str, when: float) -> str:
    """The default name of a run: its data, its network and when it started."""
    return f"{dataset} · {arch} · {time.strftime('%d %b %H:%M', time.localtime(when))}"


def same_data(models: list[dict], chosen: dict | None) -> list[dict]:
    """The models trained on the same photos as `chosen` (same dataset fingerprint)."""
    if not chosen or not chosen.get("dataset_fingerprint"):
        return models
    return [m for m in models if m.get("dataset_fingerprint") == chosen["dataset_fingerprint"]]


def past_runs(models: list[dict]) -> list[dict]:
    """`run_rows` as the Train page lists them: "(shipped)" in the name, not a column."""
    rows = []
    for row in run_rows(models):
        shipped = row.pop("shipped")
        rows.append({**row, "name": row["name"] + (" (shipped)" if shipped else "")})
    return rows


def curve_rows(models: list[dict]) -> list[dict]:
    """Long-form training curves of saved models, for one overlaid chart."""
    rows = []
    for meta in models:
        name = meta.get("name", Path(meta["path"]).name)
        for metric, values in meta.get("history", {}).items():
            for epoch, value in enumerate(values, start=1):
                rows.append({"run": name, "epoch": epoch, "metric": metric, "value": value})
    return rows


def queue_note(place: int | None, wait_s: float | None = None) -> str:
    """What a run waiting for a training slot says: its place in the server's queue, and
    about how long until it starts when the server can tell (`jobs.expected_wait`)."""
    waiting = "Waiting for another training on this server to finish"
    when = f", starting in about {wait_text(wait_s)}" if wait_s is not None else ""
    if place is None or place <= 1:
        return f"{waiting}: this run is next{when}."
    ahead = place - 1
    return (
        f"{waiting}: place {place} in the queue ({ahead} more run{'s' * (ahead > 1)} first){when}."
    )


def wait_text(seconds: float) -> str:
    """20 s, 1 min, 4 min: a wait as a person says it."""
    if seconds < 60:
        return f"{max(round(seconds / 5) * 5, 5):.0f} s"
    return f"{round(seconds / 60):.0f} min"


# -- tables -----------------------------------------------------------------------------

WHOLE_TABLE_ROWS = 12  # a table of up to this many rows is shown whole, without scrolling
TABLE_ROW_PX = 35  # Streamlit's default row height (and its header's)
TABLE_WINDOW_PX = 420  # the scroll window of a longer table: about 11 rows of text


def table_height(rows: int, row_height: int = TABLE_ROW_PX) -> str | int:
    """`st.dataframe`'s height for a table of `rows` rows: "content" (the whole table, no
    inner scroll bar) up to WHOLE_TABLE_ROWS, else a scroll window of a fixed height
    (at most TABLE_WINDOW_PX below the header, ending half-way through a row so that
    the cut shows there is more)."""
    if rows <= WHOLE_TABLE_ROWS:
        return "content"
    shown = min(TABLE_WINDOW_PX // row_height, WHOLE_TABLE_ROWS) + 0.5
    return TABLE_ROW_PX + round(shown * row_height) + 2  # + the frame's two borders


# -- the Train form ---------------------------------------------------------------------

# The choices the form's sliders offer (each recipe's own value is added to them).
FORM_CHOICES = {
    "batch_size": (4, 8, 16, 32, 64),
    "learning_rate": (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2),
    "image_size": (32, 64, 96, 128, 150, 160, 192, 224),
}
# TrainConfig fields the form sets; the others come from the recipe as they are.
FORM_FIELDS = {*FORM_CHOICES, "arch", "epochs", "augmentation", "val_fraction", "seed"}
FORM_FIELDS |= {"pretrained", "second_opinion"}  # checkboxes, for the one network with
# pretrained weights (and so a frozen backbone the second opinion can stand beside)
AUGMENTATION_STRENGTHS = ("zoom", "rotation", "translation", "brightness", "contrast")
AUGMENTATION_NAMES = ("flip", *AUGMENTATION_STRENGTHS)  # the switches, not `fill`


def form_choices(recipe: TrainConfig, name: str) -> list:
    """The values a slider for the TrainConfig field `name` offers, the recipe's included.

    Image sizes the architecture cannot take (the seed CNN's minimum) are not offered.
    """
    values = {*FORM_CHOICES[name], getattr(recipe, name)}
    if name == "image_size" and recipe.arch == "seed":
        values = {v for v in values if v >= SEED_MIN_IMAGE_SIZE}
    return sorted(values)


def augmentation_switches(recipe: TrainConfig) -> list[tuple[str, str, bool]]:
    """(field, label, on in the recipe) for each augmentation that has a strength.

    A switch the recipe has off still shows the strength it would get: `Augmentation()`'s
    default, so there is one place that decides strengths.
    """
    switches = []
    for name in AUGMENTATION_STRENGTHS:
        value = augmentation_strength(recipe, name)
        shown = f"{value:g}°" if name == "rotation" else f"{value:.0%}"
        switches.append(
            (name, f"{name.capitalize()} ±{shown}", bool(getattr(recipe.augmentation, name)))
        )
    return switches


def augmentation_strength(recipe: TrainConfig, name: str) -> float:
    """The strength a switched-on augmentation gets: the recipe's, else the default."""
    return getattr(recipe.augmentation, name) or getattr(Augmentation(), name)


def config_from_form(
    recipe: TrainConfig, *, flip: bool, switched_on: Iterable[str], seed: int, **values: Any
) -> TrainConfig:
    """The recipe with the form's settings: `values` are TrainConfig fields (epochs, ...),
    `switched_on` the augmentations ticked. Raises ConfigError for an invalid setting."""
    switched_on = set(switched_on)
    strengths = {
        name: augmentation_strength(recipe, name) if name in switched_on else 0.0
        for name in AUGMENTATION_STRENGTHS
    }
    augmentation = Augmentation(flip=flip, fill=recipe.augmentation.fill, **strengths)
    if not values.get("pretrained", recipe.pretrained):  # random weights: all layers train
        values["frozen"] = False
    if not values.get("frozen", recipe.frozen):  # the second backbone matches frozen features
        values["second_opinion"] = False
    return replace(recipe, augmentation=augmentation, seed=int(seed), **values)


# The recipe's settings the form does not show, each in words (None: say nothing).
RECIPE_WORDS = {
    "schedule": lambda v: {
        "cosine": "learning rate warms up, then eases off to zero (cosine)",
        "constant": "constant learning rate",
    }.get(v, f"{v} learning-rate schedule"),
    "weight_decay": lambda v: f"AdamW, weight decay {v:g}" if v else "Adam (no weight decay)",
    "label_smoothing": lambda v: f"label smoothing {v:g} (less over-confident)" if v else None,
    "restore_best": lambda v: (
        "keeps the best epoch's weights" if v else "keeps the last epoch's weights"
    ),
    "steps_per_epoch": lambda v: f"{v} batches an epoch" if v else None,
    "strangers": lambda v: f"{v} photos of other bikes taught to match none" if v else None,
    "frozen": lambda v: (
        "only the last layer trains (the backbone stays as pretrained)" if v else None
    ),
    "contrastive": lambda v: (
        f"each bike's photos pulled together, other bikes' pushed away (contrastive {v:g})"
        if v
        else None
    ),
}


def recipe_extras(recipe: TrainConfig) -> str:
    """The recipe's settings the form does not show, in words: "keeps the best epoch's
    weights", never raw Python values such as "restore best: True"."""
    words = []
    for f in fields(recipe):
        value = getattr(recipe, f.name)
        if f.name in FORM_FIELDS or value is None:
            continue
        say = RECIPE_WORDS.get(f.name)
        words.append(say(value) if say else f"{f.name.replace('_', ' ')} {value}")
    return ", ".join(w for w in words if w)


# -- Dataset and Classify captions --------------------------------------------------------


NOT_MINE_TITLE = "Other people's bikes (not mine)"


def gallery(dataset: Dataset, bike: str | None = None) -> list[tuple[str, Path]]:
    """(caption, path) of every bike's photo, training photos first; only `bike`'s if
    given, and only the not-mine group's for `NOT_MINE_TITLE`."""
    if bike == NOT_MINE_TITLE:
        parts = (("train", dataset.not_mine_train), ("validation", dataset.not_mine_validation))
    else:
        parts = (("train", dataset.train), ("validation", dataset.validation))

    def name(sample) -> str:
        return "not mine" if sample.label == NOT_MINE_LABEL else dataset.classes[sample.label]

    return [
        (f"{name(sample)} · {part}", sample.path)
        for part, samples in parts
        for sample in samples
        if bike in (None, NOT_MINE_TITLE) or name(sample) == bike
    ]


def not_mine_note(dataset: Dataset) -> str:
    """The not-mine group in words (Dataset and Train pages); "" when there is none."""
    n_train, n_val = len(dataset.not_mine_train), len(dataset.not_mine_validation)
    if not n_train + n_val:
        return ""
    return (
        f"{NOT_MINE_TITLE}: {n_train + n_val} photos, not a bike. {n_train} are trained to "
        f"match none of yours, {n_val} kept aside to show what the match threshold rejects."
    )


def trained_not_mine(meta: dict) -> str:
    """A saved model's not-mine photos in words (Train results); "" for none."""
    counts = meta.get("not_mine") or {}
    trained, kept = counts.get("trained", 0), counts.get("calibration", 0)
    if not trained + kept:
        return ""
    text = f"{NOT_MINE_TITLE}: {trained} trained to match none of your bikes"
    rejected = (meta.get("openset") or {}).get("not_mine_rejected")
    if kept and rejected is not None:
        text += f"; the calibrated threshold rejects {round(rejected * kept)} of {kept} kept aside"
    return text + "."


def trade_off_caption(
    accepted: float,
    rejected: float,
    not_mine: tuple[int, int] | None,
    calibrated: float,
    *,
    crops: bool = False,
) -> str:
    """What a match threshold trades (Classify): the share of the validation photos
    (`crops`: and of their crops, which the threshold was also set on) accepted, of
    rendered other bikes rejected, and how many of the user's own not-mine photos
    (`(rejected, of)`, None without any) it rejects."""
    others = (
        f"{rejected:.0%} of other bikes rejected"
        if rejected == rejected  # not NaN
        else "no other bikes were scored for this model"
    )
    if not_mine:
        others += f", and {not_mine[0]} of {not_mine[1]} of your not-mine photos"
    return (
        f"At this threshold: {accepted:.0%} of your validation photos "
        f"{'and their corners ' if crops else ''}accepted, {others}. "
        f"Calibrated: {calibrated:.3f}."
    )


def split_note(dataset: Dataset) -> str:
    """Who decided the train/validation split, in words."""
    if dataset.given_split:
        return "given by the train/ and validation/ folders"
    return "chosen here: a seeded share of each bike's photos held out for validation"


def augmentation_names(augmentation) -> str:
    """The augmentations switched on, as "flip, zoom, ...", or "no augmentation"."""
    on = [name for name in AUGMENTATION_NAMES if getattr(augmentation, name)]
    return ", ".join(on) or "no augmentation"


def preview_captions(n: int) -> list[str]:
    """The augmentation preview's captions: the photo itself, then its `n` variants."""
    return ["original", *(f"variant {i}" for i in range(1, n + 1))]


def fill_note(augmentation) -> str:
    """One line on what fills the edges a rotation, zoom-out or shift uncovers."""
    moves = [n for n in ("rotation", "zoom", "translation") if getattr(augmentation, n)]
    if not moves:
        return "Nothing moves the photo, so no edges need filling."
    listed = " and ".join([", ".join(moves[:-1]), moves[-1]] if len(moves) > 1 else moves)
    what = FILL_MODES.get(augmentation.fill, augmentation.fill)
    return f"Edges uncovered by {listed} show {what} (fill: {augmentation.fill})."


def unique_photos(photos: list) -> tuple[list, int]:
    """Uploads without repeats (same bytes, whatever the name), and how many were dropped."""
    seen, unique = set(), []
    for photo in photos:
        digest = hashlib.sha256(photo.getvalue()).digest()
        if digest not in seen:
            seen.add(digest)
            unique.append(photo)
    return unique, len(photos) - len(unique)


def prediction_row(name: str, data: bytes, prediction) -> dict:
    """One classified photo for a results table: inline thumbnail, file, bike, confidence,
    and every bike's probability (`prediction` is a `bikelib.Prediction`)."""
    small = base64.b64encode(thumbnail(data, 96)).decode()
    return {
        "photo": f"data:image/jpeg;base64,{small}",
        "file": name,
        "bike": prediction.label,
        "confidence": prediction.confidence,
        **prediction.probabilities,
    }
