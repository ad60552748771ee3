"""The app's settings, read from the environment in one place and checked once.

Every environment variable bikelib or the app reads is a field of `Settings`;
nothing else calls `os.environ.get`. `settings()` parses the environment on first use
and keeps the result (a server's environment does not change while it runs); tests
that change a variable call `settings.cache_clear()` (tests/conftest.py does it
before every test). A malformed value raises `ConfigError` naming the variable and
what it expects, instead of being silently replaced by a default.

    BIKE_RECOGNITION_WORKDIR         per-session folders (~/.cache/bike-recognition/sessions)
    BIKE_RECOGNITION_SESSION_HOURS   idle hours before a session folder is removed (24)
    BIKE_RECOGNITION_MAX_TRAININGS   trainings running at once in one server (1)
    BIKE_RECOGNITION_MAX_QUEUE       trainings waiting for a slot before more are refused (8)
    BIKE_RECOGNITION_TRAINING_MINUTES  wall-clock limit of one training run (15)
    BIKE_RECOGNITION_MAX_MODELS      models kept per session, oldest removed first (20)
    BIKE_RECOGNITION_SESSION_MB      disk space of one session's uploads and models (1024)
    BIKE_RECOGNITION_ABANDON_MINUTES minutes without a heartbeat before a closed tab's
                                     training is dropped or stopped (5)
    BIKE_RECOGNITION_HEARTBEAT_SECONDS  how often an open tab beats (30; keep it well
                                     under the abandon time; tests shorten it)
    BIKE_RECOGNITION_WARM_UP         1: load the shipped model in the background at the first
                                     page run, so the first Classify does not wait (1); 0: not
    BIKE_RECOGNITION_SERVER_FOLDERS  1: offer "a folder on the server" to every visitor; 0: to
                                     nobody; unset: only to a browser on the same machine
    BIKE_RECOGNITION_DEMO_DATA       the built-in photos (data/demo-bikes)
    BIKE_RECOGNITION_DEMO_MODEL      the shipped model (data/demo-model)
    BIKELIB_CACHE_DIR                photo and zip cache ($XDG_CACHE_HOME/bike-recognition)
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

APP_ROOT = Path(__file__).resolve().parent.parent
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """Everything the environment can change, with the defaults a laptop wants."""

    workdir: Path = Path.home() / ".cache" / "bike-recognition" / "sessions"
    session_hours: float = 24.0
    max_trainings: int = 1
    max_queue: int = 8
    training_minutes: float = 15.0
    max_models: int = 20
    session_mb: int = 1024
    abandon_minutes: float = 5.0
    heartbeat_seconds: float = 30.0  # an open tab's beat; tests/test_browser.py shortens it
    warm_up: bool = True  # the shipped model loaded in the background (app_models.py)
    # None: offered only to a browser on the server's own machine (see app_state.py).
    server_folders: bool | None = None
    demo_data: Path = APP_ROOT / "data" / "demo-bikes"
    demo_model: Path = APP_ROOT / "data" / "demo-model"
    cache_dir: Path = Path.home() / ".cache" / "bike-recognition"
    # glibc's own variable, read here too so that the app can apply it from inside the
    # process where the server's environment cannot be set (bikelib/memory.py).
    malloc_arenas: int = 2

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `environ` (os.environ by default); ConfigError for a bad value."""
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None  # set but empty counts as unset, as it always has

        def path(name: str, default: Path) -> Path:
            value = text(name)
            return Path(value).expanduser() if value else default

        def number(name: str, default, kind, expected: str):
            value = text(name)
            if value is None:
                return default
            try:
                parsed = kind(value)
            except ValueError:
                parsed = None
            if parsed is None or not (parsed > 0 and math.isfinite(parsed)):
                raise ConfigError(f"{name} must be {expected}, not '{value}'")
            return parsed

        def switch(name: str, default: bool | None) -> bool | None:
            value = text(name)
            if value is None:
                return default
            if value.lower() not in _TRUE | _FALSE:
                raise ConfigError(f"{name} must be 1 or 0 (true or false), not '{value}'")
            return value.lower() in _TRUE

        xdg = text("XDG_CACHE_HOME")
        cache_home = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
        whole = "a whole number of 1 or more"
        return cls(
            workdir=path("BIKE_RECOGNITION_WORKDIR", cls.workdir),
            session_hours=number(
                "BIKE_RECOGNITION_SESSION_HOURS", 24.0, float, "a number of hours above 0"
            ),
            max_trainings=number("BIKE_RECOGNITION_MAX_TRAININGS", 1, int, whole),
            max_queue=number("BIKE_RECOGNITION_MAX_QUEUE", 8, int, whole),
            training_minutes=number(
                "BIKE_RECOGNITION_TRAINING_MINUTES", 15.0, float, "a number of minutes above 0"
            ),
            max_models=number("BIKE_RECOGNITION_MAX_MODELS", 20, int, whole),
            session_mb=number("BIKE_RECOGNITION_SESSION_MB", 1024, int, "a whole number of MB"),
            abandon_minutes=number(
                "BIKE_RECOGNITION_ABANDON_MINUTES", 5.0, float, "a number of minutes above 0"
            ),
            heartbeat_seconds=number(
                "BIKE_RECOGNITION_HEARTBEAT_SECONDS", 30.0, float, "a number of seconds above 0"
            ),
            warm_up=switch("BIKE_RECOGNITION_WARM_UP", True),
            server_folders=switch("BIKE_RECOGNITION_SERVER_FOLDERS", None),
            demo_data=path("BIKE_RECOGNITION_DEMO_DATA", cls.demo_data),
            demo_model=path("BIKE_RECOGNITION_DEMO_MODEL", cls.demo_model),
            cache_dir=path("BIKELIB_CACHE_DIR", cache_home / "bike-recognition"),
            malloc_arenas=number("MALLOC_ARENA_MAX", 2, int, whole),
        )


@functools.cache
def settings() -> Settings:
    """This process's settings, read from the environment on first use."""
    return Settings.from_env()
