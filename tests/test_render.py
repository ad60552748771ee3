"""The demo-photo renderer: deterministic pixels, the data set layout, the committed set."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bikelib import render
from bikelib.render import photo as photo_module
from bikelib.render.scene import _usual_spot

ROOT = Path(__file__).resolve().parents[1]
COMMITTED_SET = ROOT / "data" / "demo-bikes"
SMALL = (96, 72)  # small photos keep these tests fast; the renderer scales to any size


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_same_seed_same_pixels_different_seed_different():
    bike = render.DEMO_BIKES[0]
    first = render.render_photo(bike, seed=7, size=SMALL)
    again = render.render_photo(bike, seed=7, size=SMALL)
    other = render.render_photo(bike, seed=8, size=SMALL)
    assert np.array_equal(pixels(first), pixels(again))
    assert np.abs(pixels(first) - pixels(other)).mean() > 5


def test_photo_size_and_mode():
    bike = render.DEMO_BIKES[1]
    for photo in (
        render.render_photo(bike, seed=3, size=(120, 90)),
        render.render_photo(bike, seed=3, size=(120, 90), place="new"),
        render.render_scene(seed=3, size=(120, 90)),
    ):
        assert photo.mode == "RGB"
        assert photo.size == (120, 90)


@pytest.mark.skipif(not COMMITTED_SET.is_dir(), reason="data/demo-bikes is not in this checkout")
def test_demo_bikes_have_stable_distinct_names_and_traits():
    """Renaming a bike must go with new demo photos and a new demo model (their folders and
    classes are these names, in this order)."""
    names = [bike.name for bike in render.DEMO_BIKES]
    assert names == sorted(names)
    for part in ("train", "validation"):
        assert sorted(p.name for p in (COMMITTED_SET / part).iterdir() if p.is_dir()) == names
    shipped = ROOT / "data" / "demo-model" / "model.json"
    if shipped.is_file():
        assert json.loads(shipped.read_text())["classes"] == names
    traits = [bike.traits() for bike in render.DEMO_BIKES]
    assert all(a != b for i, a in enumerate(traits) for b in traits[i + 1 :])


def test_random_bike_is_repeatable_and_none_of_the_demo_bikes():
    assert render.random_bike(5) == render.random_bike(5)
    demo_traits = [bike.traits() for bike in render.DEMO_BIKES]
    bikes = [render.random_bike(seed) for seed in range(30)]
    assert all(bike.traits() not in demo_traits for bike in bikes)
    assert len({bike.frame_color for bike in bikes}) > 3  # strangers vary
    photo = render.render_photo(bikes[0], seed=1, size=SMALL)
    assert photo.size == SMALL


class _SceneDrawn(Exception):
    """Stops a render once its scene is drawn: the scene is all these tests need."""


def drawn_scenes(monkeypatch, bike, seeds, place):
    """The scene `render_photo(bike, seed, place=place)` draws for each seed."""
    real = photo_module._random_scene
    scenes = []

    def capture(*args, **kwargs):
        scenes.append(real(*args, **kwargs))
        raise _SceneDrawn

    monkeypatch.setattr(photo_module, "_random_scene", capture)
    for seed in seeds:
        with pytest.raises(_SceneDrawn):
            render.render_photo(bike, seed, size=SMALL, place=place)
    monkeypatch.setattr(photo_module, "_random_scene", real)
    return scenes


def test_a_new_place_is_not_the_usual_spot(monkeypatch):
    bike = render.DEMO_BIKES[0]
    usual = _usual_spot(bike)[:3]  # ground, backdrop, sunny
    seeds = range(40)
    planned = [
        (s.ground, s.backdrop, s.sunny) for s in drawn_scenes(monkeypatch, bike, seeds, "planned")
    ]
    new = [(s.ground, s.backdrop, s.sunny) for s in drawn_scenes(monkeypatch, bike, seeds, "new")]
    # planned: all three usual in 0.8^3 of the photos; new: by chance only (1/5 * 1/4 * 1/2)
    assert planned.count(usual) >= 15
    assert new.count(usual) <= 4
    assert len(set(new)) > 10  # drawn at random, not one other fixed place
    # a seed whose planned photo is at the usual spot: the new place gives other pixels
    seed = planned.index(usual)
    at_home = render.render_photo(bike, seed, size=SMALL)
    elsewhere = render.render_photo(bike, seed, size=SMALL, place="new")
    assert np.abs(pixels(at_home) - pixels(elsewhere)).mean() > 5
    again = render.render_photo(bike, seed, size=SMALL, place="new")
    assert np.array_equal(pixels(elsewhere), pixels(again))
    explicit = render.render_photo(bike, seed, size=SMALL, place="planned")
    assert np.array_equal(pixels(at_home), pixels(explicit))


def test_one_place_seed_is_one_place_whatever_the_shot(monkeypatch):
    bike = render.DEMO_BIKES[2]
    real = photo_module._random_scene
    scenes = []

    def capture(*args, **kwargs):
        scenes.append(real(*args, **kwargs))
        return scenes[-1]

    monkeypatch.setattr(photo_module, "_random_scene", capture)

    def place(scene):
        return scene.ground, scene.backdrop, scene.sunny, tuple(scene.tint.round(6))

    one = [render.render_photo(bike, s, SMALL, place="new", place_seed=5) for s in range(6)]
    assert len({place(s) for s in scenes}) == 1  # six shots, one place
    assert len({pixels(p).tobytes() for p in one}) == 6  # but six different photos
    scenes.clear()
    for place_seed in range(12):
        render.render_photo(bike, 0, SMALL, place="new", place_seed=place_seed)
    assert len({place(s) for s in scenes}) > 6  # one shot, many places


def test_shot_kind_and_close_up_part_are_the_shot_render_photo_takes(monkeypatch):
    taken = []
    frame_shot = photo_module._frame_shot

    def recording(*args):
        camera, kind, part = frame_shot(*args)
        taken.append((kind, part))
        return camera, kind, part

    bike, seeds = render.DEMO_BIKES[3], range(30)
    told = [(render.shot_kind(bike, s, SMALL), render.close_up_part(bike, s, SMALL)) for s in seeds]
    monkeypatch.setattr(photo_module, "_frame_shot", recording)
    for s in seeds:
        render.render_photo(bike, s, size=SMALL, place="new")
    assert taken == told
    assert {kind for kind, _ in told} == set(render.SHOT_KINDS)  # 30 seeds show every kind
    parts = {part for kind, part in told if kind == "close-up"}
    assert len(parts) > 2 and parts <= set(render.CLOSE_UP_PARTS)
    assert {part for kind, part in told if kind != "close-up"} == {None}


def test_unknown_place_is_refused():
    with pytest.raises(ValueError, match="place"):
        render.render_photo(render.DEMO_BIKES[0], seed=1, size=SMALL, place="home")


def test_a_scene_is_repeatable_and_has_no_bicycle(monkeypatch):
    first = render.render_scene(5, size=SMALL)
    assert np.array_equal(pixels(first), pixels(render.render_scene(5, size=SMALL)))
    assert np.abs(pixels(first) - pixels(render.render_scene(6, size=SMALL))).mean() > 5
    # every bike (and its shadow) is drawn by the painter: count what it is given
    painted, crowds = [], []
    real_paint, real_scene = photo_module._paint, photo_module._random_scene

    def paint(canvases, shapes, *args, **kwargs):
        painted.append(len(shapes))
        real_paint(canvases, shapes, *args, **kwargs)

    def scene(*args, **kwargs):
        drawn = real_scene(*args, **kwargs)
        crowds.append(len(drawn.crowd))
        return drawn

    monkeypatch.setattr(photo_module, "_paint", paint)
    monkeypatch.setattr(photo_module, "_random_scene", scene)
    render.render_photo(render.DEMO_BIKES[0], seed=5, size=SMALL)
    assert sum(painted) > 0  # the spy sees a bike when there is one
    painted.clear()
    crowds.clear()
    for seed in range(8):
        render.render_scene(seed, size=SMALL)
    assert sum(painted) == 0
    assert any(crowds)  # some of these places had other people's bikes to leave out


def test_bad_traits_are_refused():
    with pytest.raises(ValueError, match="frame_style"):
        render.BikeIdentity("odd", "tandem", (0, 0, 0), (0, 0, 0))


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """The demo set with 2 + 1 small photos per bike."""
    out = tmp_path_factory.mktemp("demo-set")
    written = render.render_dataset(out, per_class_train=2, per_class_val=1, size=SMALL)
    assert len(written) == 5 * 3
    return out


def test_render_dataset_writes_the_assignment_layout(small_set):
    for bike in render.DEMO_BIKES:
        train = sorted((small_set / "train" / bike.name).glob("*.jpg"))
        validation = sorted((small_set / "validation" / bike.name).glob("*.jpg"))
        assert [p.name for p in train] == [f"{bike.name}-01.jpg", f"{bike.name}-02.jpg"]
        assert [p.name for p in validation] == [f"{bike.name}-01.jpg"]
        with Image.open(train[0]) as photo:
            assert photo.format == "JPEG"
            assert photo.size == SMALL
            assert not photo.getexif()  # no timestamps or other varying metadata


def test_render_dataset_replaces_stale_photos(tmp_path):
    bike = render.DEMO_BIKES[2]
    stale = tmp_path / "train" / bike.name / "old-photo.jpg"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not a photo of this set")
    render.render_dataset(tmp_path, per_class_train=1, per_class_val=0, bikes=[bike], size=SMALL)
    assert sorted(p.name for p in stale.parent.iterdir()) == [f"{bike.name}-01.jpg"]


def test_fewer_photos_are_a_prefix_of_the_full_plan():
    full = render.plan_dataset(16, 4)
    small = render.plan_dataset(2, 1)
    assert len(full) == 100
    assert len({item.seed for item in full}) == 100
    assert set(small) <= set(full)


@pytest.mark.skipif(not COMMITTED_SET.is_dir(), reason="data/demo-bikes is not in this checkout")
def test_committed_demo_set_is_what_the_renderer_makes():
    plan = render.plan_dataset()
    files = sorted(p.relative_to(COMMITTED_SET).as_posix() for p in COMMITTED_SET.rglob("*.jpg"))
    assert files == sorted(item.relative_path for item in plan)
    # re-render two of them (one train, one validation photo): same pixels after decoding
    for item in (plan[0], plan[-1]):
        with Image.open(COMMITTED_SET / item.relative_path) as committed:
            expected = pixels(committed)
        encoded = BytesIO()
        render.save_jpeg(render.render_photo(item.bike, item.seed), encoded)
        assert np.array_equal(pixels(Image.open(encoded)), expected), item.relative_path


def test_contact_sheet_shows_every_photo(small_set, tmp_path):
    sheet = render.contact_sheet(small_set, tmp_path / "sheet.png", columns=5)
    with Image.open(sheet) as image:
        assert image.size == (5 * 160, 3 * (120 + 14))  # 15 photos, 5 a row, labels below


def test_contact_sheet_of_an_empty_folder_says_so(tmp_path):
    with pytest.raises(ValueError, match="no train"):
        render.contact_sheet(tmp_path, tmp_path / "sheet.png")
