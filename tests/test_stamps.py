"""Cheap reruns: source stamps reused while a folder is quiet, model.json parsed once."""

from __future__ import annotations

import json
import os
import time
import types

import pytest
from helpers import fake_clock, write_dataset

from bikelib import read_meta, stamps
from bikelib.stamps import source_stamp


@pytest.fixture(autouse=True)
def empty_caches(monkeypatch):
    monkeypatch.setattr(stamps, "_stamps", type(stamps._stamps)())
    monkeypatch.setattr(stamps, "_json", type(stamps._json)())


@pytest.fixture
def clock(monkeypatch):
    return fake_clock(monkeypatch, stamps)


@pytest.fixture
def walks(monkeypatch):
    """How many full walks `source_stamp` made."""
    counted = {"n": 0}
    walk = stamps.walk_stamp

    def counting(source):
        counted["n"] += 1
        return walk(source)

    monkeypatch.setattr(stamps, "walk_stamp", counting)
    return counted


def settle(root) -> None:
    """Date every folder and file a minute back, as a folder nobody is changing."""
    past = time.time() - 60
    for folder, _, files in os.walk(root):
        for path in [folder, *(os.path.join(folder, f) for f in files)]:
            os.utime(path, (past, past))


@pytest.fixture
def quiet(tmp_path):
    data = write_dataset(tmp_path / "photos", per_class=3)
    settle(data)
    return data


def test_a_quiet_folder_is_walked_once_within_the_ttl(quiet, clock, walks):
    first = source_stamp(quiet)
    for _ in range(5):
        clock.now += 1
        assert source_stamp(quiet) == first
    assert walks["n"] == 1  # the reruns only looked at the folders' times
    clock.now += stamps.TTL_S  # past the TTL: walked again, same files, same stamp
    assert source_stamp(quiet) == first and walks["n"] == 2


def test_a_photo_added_removed_or_renamed_changes_the_stamp_at_once(quiet, clock):
    stamp = source_stamp(quiet)
    (quiet / "red-bike" / "new.png").write_bytes(b"a photo")
    added = source_stamp(quiet)
    assert added != stamp
    settle(quiet)
    stamp = source_stamp(quiet)
    os.rename(quiet / "red-bike" / "new.png", quiet / "red-bike" / "renamed.png")
    renamed = source_stamp(quiet)
    assert renamed != stamp
    settle(quiet)
    stamp = source_stamp(quiet)
    (quiet / "red-bike" / "renamed.png").unlink()
    assert source_stamp(quiet) != stamp


def test_a_photo_rewritten_in_place_shows_after_the_ttl_or_an_invalidate(quiet, clock):
    stamp = source_stamp(quiet)
    photo = quiet / "blue-bike" / "photo0.png"
    folder_time = photo.parent.stat().st_mtime_ns
    photo.write_bytes(photo.read_bytes() + b"edited")
    assert photo.parent.stat().st_mtime_ns == folder_time  # its folder's time did not move
    assert source_stamp(quiet) == stamp  # within the TTL: the cached stamp
    stamps.invalidate(quiet)
    after_invalidate = source_stamp(quiet)
    assert after_invalidate != stamp
    photo.write_bytes(photo.read_bytes() + b"again")
    clock.now += stamps.TTL_S + 1
    assert source_stamp(quiet) != after_invalidate  # after the TTL, walked again
    stamps.invalidate()  # everything
    assert not stamps._stamps


def test_a_folder_changed_just_now_is_not_trusted(tmp_path, clock, walks):
    fresh = write_dataset(tmp_path / "fresh", per_class=2)  # written this second
    stamp = source_stamp(fresh)
    assert source_stamp(fresh) == stamp and walks["n"] == 2  # a second change may hide


def test_a_zip_or_a_missing_source_still_has_a_stamp(tmp_path, clock):
    archive = tmp_path / "bikes.zip"
    archive.write_bytes(b"zip bytes")
    assert source_stamp(archive) != source_stamp(tmp_path / "missing")
    assert source_stamp(tmp_path / "missing") == source_stamp(tmp_path / "missing")


def test_the_stamp_cache_is_bounded(tmp_path, clock, monkeypatch):
    monkeypatch.setattr(stamps, "STAMP_ENTRIES", 3)
    for i in range(6):
        (tmp_path / f"f{i}").mkdir()
        source_stamp(tmp_path / f"f{i}")
    assert list(stamps._stamps) == [str(tmp_path / f"f{i}") for i in (3, 4, 5)]


def test_model_json_is_parsed_once_per_version_and_the_cache_is_bounded(tmp_path, monkeypatch):
    parses = []
    fake_json = types.SimpleNamespace(loads=lambda text: parses.append(text) or json.loads(text))
    monkeypatch.setattr(stamps, "json", fake_json)
    monkeypatch.setattr(stamps, "JSON_ENTRIES", 4)
    path = tmp_path / "model.json"
    path.write_text('{"name": "first"}')
    assert stamps.parsed_json(path) == {"name": "first"}
    copy = stamps.parsed_json(path)
    copy["name"] = "changed by a caller"  # a copy: the cache keeps its own
    assert stamps.parsed_json(path) == {"name": "first"} and len(parses) == 1
    staged = tmp_path / "staged.json"
    staged.write_text('{"name": "second"}')
    os.replace(staged, path)  # how save_model writes it: a new file moved into place
    assert stamps.parsed_json(path) == {"name": "second"} and len(parses) == 2
    for i in range(6):
        (tmp_path / f"{i}.json").write_text(str(i))
        assert stamps.parsed_json(tmp_path / f"{i}.json") == i
    assert len(stamps._json) == 4
    with pytest.raises(OSError):
        stamps.parsed_json(tmp_path / "missing.json")


def test_read_meta_uses_the_cache_and_still_checks(tmp_path, monkeypatch):
    from bikelib.artifacts import FORMAT
    from bikelib.errors import ModelLoadError

    model = tmp_path / "m"
    model.mkdir()
    (model / "model.keras").write_bytes(b"")
    meta = {"format": FORMAT, "classes": ["a", "b"], "image_size": 32, "architecture": "x"}
    (model / "model.json").write_text(json.dumps(meta))
    assert read_meta(model) == meta
    parses = []
    fake_json = types.SimpleNamespace(loads=lambda text: parses.append(text) or json.loads(text))
    monkeypatch.setattr(stamps, "json", fake_json)
    assert read_meta(model) == meta and not parses  # the second listing parses nothing
    (model / "model.json").write_text("{broken")
    with pytest.raises(ModelLoadError, match="is not valid JSON"):
        read_meta(model)
