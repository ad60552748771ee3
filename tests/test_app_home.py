"""AppTest: the entry point's navigation and the Home page."""

from __future__ import annotations

import contextlib

from helpers import ROOT, write_dataset
from streamlit.testing.v1 import AppTest

from bikelib import TrainConfig, open_dataset, presence, save_model, train

APP = str(ROOT / "streamlit_app.py")


def test_home_explains_the_app_and_links_the_four_steps(app_env):
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value.endswith("Bike Recognition")
    links = [link.proto.page for link in at.get("page_link")]
    assert links == ["dataset", "train", "classify", "scan"]  # url paths from st.navigation
    state = " ".join(m.value for m in at.markdown)
    assert "The built-in demo bikes" in state
    assert "none yet" in state and "Models available**: 0" in state
    assert "train one" in at.info[0].value
    session = at.session_state["workspace_id"]  # the page run beat for its session
    assert presence.last_seen(session) is not None and not presence.is_gone(session)


def test_the_heartbeat_fragment_itself_beats_for_the_session(app_env, monkeypatch):
    """Without the page run's own beats (`attending`), the sidebar's heartbeat fragment,
    drawn on every page run, is what records the session (its timer: test_browser.py)."""
    monkeypatch.setattr(presence, "attending", lambda session_id: contextlib.nullcontext())
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert presence.last_seen(at.session_state["workspace_id"]) is not None


def test_home_shows_the_shipped_model_and_the_selected_dataset(app_env, monkeypatch):
    dataset = open_dataset(write_dataset(app_env / "data"), val_fraction=0.34)
    result = train(dataset, TrainConfig(epochs=1, image_size=32, batch_size=8, strangers=0))
    shipped = save_model(result, app_env / "demo-model", name="demo model")
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(shipped))
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["dataset_source"] = str(app_env / "data")
    at.run()
    assert not at.exception
    state = " ".join(m.value for m in at.markdown)
    assert f"Folder {app_env / 'data'}" in state
    assert "**demo model**" in state and "validation accuracy" in state
    assert "1 shipped, 0 trained in this session" in state
    assert not at.info


def test_home_without_demo_photos_says_where_to_start(app_env, monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_DATA", str(app_env / "missing"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert "upload your own" in at.info[0].value
