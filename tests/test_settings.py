"""Settings: every environment variable in one frozen dataclass, checked when read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bikelib import BikeLibError, ConfigError
from bikelib.settings import APP_ROOT, Settings, settings


def test_defaults_without_any_variable():
    current = Settings.from_env({"HOME": "/home/me"})
    assert current.max_trainings == 1 and current.max_models == 20
    assert current.session_hours == 24.0 and current.server_folders is None
    assert current.max_queue == 8 and current.training_minutes == 15.0
    assert current.session_mb == 1024 and current.abandon_minutes == 5.0
    assert current.heartbeat_seconds == 30.0
    assert current.demo_data == APP_ROOT / "data" / "demo-bikes"
    assert current.demo_model == APP_ROOT / "data" / "demo-model"


def test_values_are_parsed():
    current = Settings.from_env(
        {
            "BIKE_RECOGNITION_WORKDIR": "/srv/sessions",
            "BIKE_RECOGNITION_SESSION_HOURS": "1.5",
            "BIKE_RECOGNITION_MAX_TRAININGS": " 2 ",
            "BIKE_RECOGNITION_MAX_MODELS": "5",
            "BIKE_RECOGNITION_MAX_QUEUE": "3",
            "BIKE_RECOGNITION_SESSION_MB": "200",
            "BIKE_RECOGNITION_TRAINING_MINUTES": "2.5",
            "BIKE_RECOGNITION_SERVER_FOLDERS": "0",
            "BIKE_RECOGNITION_ABANDON_MINUTES": "0.5",
            "BIKE_RECOGNITION_HEARTBEAT_SECONDS": "1.5",
            "BIKELIB_CACHE_DIR": "/tmp/cache",
            "BIKE_RECOGNITION_DEMO_DATA": "",  # set but empty: the default
        }
    )
    assert current.workdir == Path("/srv/sessions") and current.session_hours == 1.5
    assert (current.max_trainings, current.max_models, current.max_queue) == (2, 5, 3)
    assert current.training_minutes == 2.5 and current.session_mb == 200
    assert current.server_folders is False and current.cache_dir == Path("/tmp/cache")
    assert current.demo_data == Settings().demo_data and current.abandon_minutes == 0.5
    assert current.heartbeat_seconds == 1.5


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("BIKE_RECOGNITION_MAX_TRAININGS", "two", "a whole number of 1 or more, not 'two'"),
        ("BIKE_RECOGNITION_MAX_MODELS", "0", "a whole number of 1 or more, not '0'"),
        ("BIKE_RECOGNITION_SESSION_MB", "1.5", "a whole number of MB, not '1.5'"),
        ("BIKE_RECOGNITION_SESSION_MB", "0", "a whole number of MB, not '0'"),
        ("BIKE_RECOGNITION_SESSION_HOURS", "-3", "a number of hours above 0, not '-3'"),
        ("BIKE_RECOGNITION_SESSION_HOURS", "nan", "a number of hours above 0, not 'nan'"),
        ("BIKE_RECOGNITION_TRAINING_MINUTES", "0", "a number of minutes above 0, not '0'"),
        ("BIKE_RECOGNITION_ABANDON_MINUTES", "soon", "a number of minutes above 0, not 'soon'"),
        ("BIKE_RECOGNITION_HEARTBEAT_SECONDS", "0", "a number of seconds above 0, not '0'"),
        ("BIKE_RECOGNITION_SERVER_FOLDERS", "nope", "1 or 0 (true or false), not 'nope'"),
    ],
)
def test_a_malformed_value_names_the_variable_and_what_it_expects(name, value, expected):
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    assert str(raised.value) == f"{name} must be {expected}"
    assert isinstance(raised.value, BikeLibError) and isinstance(raised.value, ValueError)


def test_settings_are_read_once_and_a_changed_environment_is_seen_after_a_clear(monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_MAX_MODELS", "3")
    assert settings() is settings() and settings().max_models == 3
    monkeypatch.setenv("BIKE_RECOGNITION_MAX_MODELS", "4")  # conftest clears the cache
    assert settings().max_models == 4
