"""Per-session storage: ids, folders, uploads, the photo set, source names, pruning."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from helpers import photo_bytes as png
from helpers import synthetic_photo, write_dataset

import bikelib
from bikelib import DatasetError, open_dataset, sessions, stamps
from bikelib.sessions import Workspace
from bikelib.settings import settings


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "sessions"
    monkeypatch.setenv("BIKE_RECOGNITION_WORKDIR", str(root))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_DATA", str(tmp_path / "no-demo-data"))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(tmp_path / "no-demo-model"))
    return root


def test_a_session_gets_one_id_and_its_own_folders(workdir):
    state: dict = {}
    first = Workspace.for_session(state)
    assert Workspace.for_session(state).path == first.path == workdir / state[sessions.SESSION_KEY]
    assert not first.path.exists()  # nothing is created until something is stored
    other = Workspace.for_session({})
    assert other.path != first.path
    upload = first.save_upload("../../etc/bikes.zip", b"zip bytes")
    assert upload == first.path / "uploads" / "bikes.zip" and upload.read_bytes() == b"zip bytes"
    assert not (other.path / "uploads").exists()


def test_a_forged_session_id_is_replaced(workdir):
    state = {sessions.SESSION_KEY: "../../somewhere-else"}
    workspace = Workspace.for_session(state)
    assert state[sessions.SESSION_KEY] != "../../somewhere-else"
    assert workspace.path.parent == workdir
    with pytest.raises(ValueError):
        Workspace("../x")


def test_pruning_removes_only_idle_session_folders(workdir):
    old, recent = workdir / ("a" * 32), workdir / ("b" * 32)
    foreign = workdir / "not-a-session"
    for folder in (old, recent, foreign):
        (folder / "models").mkdir(parents=True)
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    os.utime(foreign, (day_ago, day_ago))
    assert sessions.prune_sessions(workdir, 24 * 3600) == [old]
    assert not old.exists() and recent.exists() and foreign.exists()


def test_photos_added_in_the_browser_make_a_dataset(workdir):
    workspace = Workspace.for_session({})
    assert workspace.add_photos("red bike", [("image.jpg", png(seed=1))]) == 1
    assert workspace.add_photos("red bike", [("image.jpg", png(seed=2))]) == 1  # camera names
    assert workspace.add_photos("red bike", [("again.jpg", png(seed=2))]) == 0  # same content
    workspace.add_photos("blue  bike ", [(f"b{i}.png", png((40, 70, 200), i)) for i in range(2)])
    assert workspace.photo_set_counts() == {"blue bike": 2, "red bike": 2}
    dataset = open_dataset(workspace.photo_set)
    assert dataset.classes == ("blue bike", "red bike")
    assert workspace.source_kind(workspace.photo_set) == "photos"
    workspace.remove_bike("blue bike")
    assert workspace.photo_set_counts() == {"red bike": 2}


@pytest.mark.parametrize("name", ["../up", ".hidden", "a/b", "x" * 51])
def test_bike_names_must_be_folder_names(name):
    with pytest.raises(DatasetError, match="bike name"):
        Workspace.for_session({}).add_photos(name, [("p.png", png())])


@pytest.mark.parametrize("name", ["not-mine", "Not_Mine", "notmine", "other", "OTHERS", "unknown"])
def test_the_not_mine_names_are_refused_for_a_bike_in_one_sentence(name):
    with pytest.raises(DatasetError) as raised:
        Workspace.for_session({}).add_photos(name, [("p.png", png())])
    assert str(raised.value) == (
        f"'{name}' is the name kept for photos of other people's bikes (not mine), "
        "so it cannot name one of your bikes."
    )


def test_other_peoples_bikes_go_to_the_not_mine_folder():
    workspace = Workspace.for_session({})
    assert workspace.add_photos("", [("o.png", png(seed=3))], not_mine=True) == 1
    assert workspace.photo_set_counts() == {"not-mine": 1}
    workspace.remove_bike("not-mine")
    assert workspace.photo_set_counts() == {}


@pytest.mark.parametrize("name", ["", "   "])
def test_a_missing_bike_name_is_asked_for_in_plain_words(name):
    with pytest.raises(DatasetError) as raised:
        Workspace.for_session({}).add_photos(name, [("p.png", png())])
    assert str(raised.value) == "Give the bike a name first."


def test_only_photos_can_be_added():
    with pytest.raises(DatasetError, match="is not a photo"):
        Workspace.for_session({}).add_photos("bike", [("notes.txt", b"text")])


def test_sources_are_described_for_people(tmp_path, monkeypatch):
    demo = write_dataset(tmp_path / "demo")
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_DATA", str(demo))
    workspace = Workspace.for_session({})
    assert workspace.default_source() == demo
    assert workspace.describe_source(demo) == "the built-in demo bikes"
    zip_path = workspace.save_upload("mine.zip", b"")
    assert workspace.describe_source(zip_path) == "uploaded mine.zip"
    assert workspace.source_kind(zip_path) == "zip"
    assert workspace.source_kind("/srv/photos") == "folder"
    assert workspace.describe_source(None) == "none"


def test_server_folders_are_decided_by_the_browser_unless_switched(monkeypatch):
    assert settings().server_folders is None  # unset: only a browser on this machine
    monkeypatch.setenv("BIKE_RECOGNITION_SERVER_FOLDERS", "0")
    assert settings().server_folders is False
    monkeypatch.setenv("BIKE_RECOGNITION_SERVER_FOLDERS", "1")
    assert settings().server_folders is True


def test_a_refused_server_folder_never_says_whether_it_exists(tmp_path, monkeypatch, workdir):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BIKELIB_CACHE_DIR", str(cache))
    data = write_dataset(tmp_path / "photos", per_class=2)
    workspace = Workspace.for_session({})
    other = workspace.save_upload("theirs.zip", b"zip")  # a session's own storage
    (cache / "entry").mkdir(parents=True)
    assert workspace.server_folder(f" {data} ") == data.resolve()
    refused = [
        tmp_path / "nowhere",  # missing
        data / "red-bike" / "photo0.png",  # a file
        other.parent,  # inside the sessions' folders
        cache / "entry",  # inside the shared cache
        tmp_path,  # above them: it would read every session's photos
    ]
    for path in refused:
        with pytest.raises(DatasetError) as raised:
            workspace.server_folder(str(path))
        assert str(raised.value) == sessions.FOLDER_REFUSED, path
    with pytest.raises(DatasetError, match="full path"):
        workspace.server_folder("photos")


def test_source_stamp_changes_when_photos_change(tiny_dataset):
    before = stamps.source_stamp(tiny_dataset)
    assert stamps.source_stamp(tiny_dataset) == before
    synthetic_photo((1, 2, 3), 9).save(tiny_dataset / "red-bike" / "new.png")
    assert stamps.source_stamp(tiny_dataset) != before


def test_safe_filename():
    assert sessions.safe_filename("../../a b?.JPG") == "a_b_.jpg"
    assert sessions.safe_filename("...") == "file"


FULL = "This session has used its 1 MB of space: remove a bike or an old model first."


def test_a_session_stays_within_its_share_of_the_disk(monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_SESSION_MB", "1")
    workspace = Workspace("c" * 32)
    half = os.urandom(600_000)
    assert workspace.add_photos("red", [("a.png", half)]) == 1
    with pytest.raises(sessions.SessionFullError, match=FULL) as raised:
        workspace.add_photos("blue", [("b.png", os.urandom(600_000))])
    assert isinstance(raised.value, bikelib.BikeLibError)
    assert workspace.photo_set_counts() == {"red": 1}  # nothing of the refused add is kept
    with pytest.raises(sessions.SessionFullError, match=FULL):
        workspace.save_upload("bikes.zip", os.urandom(600_000))
    assert workspace.save_upload("small.zip", b"x" * 1000).is_file()
    (workspace.models / "big-model").mkdir()
    (workspace.models / "big-model" / "model.keras").write_bytes(os.urandom(500_000))
    with pytest.raises(sessions.SessionFullError, match=FULL):
        workspace.new_model_dir("default")  # no training starts in a full session
    workspace.remove_bike("red")
    assert workspace.new_model_dir("default").parent == workspace.models
    assert workspace.add_photos("blue", [("b.png", os.urandom(100_000))]) == 1


def test_the_default_share_is_said_in_gigabytes(monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_SESSION_MB", "1024")
    workspace = Workspace("d" * 32)
    monkeypatch.setattr(Workspace, "used_bytes", lambda self: 2**30)
    with pytest.raises(sessions.SessionFullError, match="used its 1 GB of space"):
        workspace.check_space(1)


def test_one_pruning_round_removes_idle_sessions_and_cache_entries(workdir, monkeypatch):
    old, recent = workdir / ("a" * 32), workdir / ("b" * 32)
    for folder in (old, recent):
        (folder / "uploads").mkdir(parents=True)
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    pruned_cache = []
    monkeypatch.setattr(sessions, "prune_cache", lambda age: pruned_cache.append(age) or 0)
    sessions.prune_now()
    assert not old.exists() and recent.exists()
    assert pruned_cache == [24 * 3600]


def test_the_pruner_is_one_thread_per_process_started_by_a_visit(monkeypatch):
    rounds = []
    monkeypatch.setattr(sessions, "prune_now", lambda: rounds.append(1))
    monkeypatch.setattr(sessions, "_pruner", None)  # as in a fresh process
    before = [t for t in threading.enumerate() if t.name == "session-pruner"]  # other tests'
    first = sessions.start_pruner()
    Workspace.for_session({})  # a visit starts no second one
    assert sessions.start_pruner() is first and first.daemon and first.is_alive()
    started = [t for t in threading.enumerate() if t.name == "session-pruner"]
    assert [t for t in started if t not in before] == [first]
    deadline = time.monotonic() + 5
    while not rounds and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rounds == [1]  # its first round at once, the next an hour later
