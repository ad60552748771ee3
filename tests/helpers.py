"""Helpers shared by the tests and the benchmarks (bench/app.py imports this file).

No pytest here: generated photos and datasets, the app served by `streamlit run` on a
free local port, and a script run in a fresh interpreter (to see what it imports).
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED_BIKES = ROOT.parent / "shared" / "datasets" / "umea-bikes"

# Easily told apart by colour, so a few epochs learn them: tests check plumbing, not skill.
CLASS_COLOURS = {"blue-bike": (40, 70, 200), "green-bike": (40, 170, 60), "red-bike": (200, 40, 40)}


def synthetic_photo(colour: tuple[int, int, int], seed: int, size=(96, 72)) -> Image.Image:
    """A noisy picture dominated by one colour, with a random darker block in it."""
    rng = np.random.default_rng(seed)
    w, h = size
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (h, w, 3)), 0, 255)
    x, y = rng.integers(0, w // 2), rng.integers(0, h // 2)
    pixels[y : y + h // 3, x : x + w // 3] *= 0.4
    return Image.fromarray(pixels.astype(np.uint8))


def photo_bytes(colour=(200, 40, 40), seed: int = 0, fmt: str = "PNG") -> bytes:
    """`synthetic_photo` as the bytes of an upload (PNG unless `fmt` says otherwise)."""
    buffer = io.BytesIO()
    synthetic_photo(colour, seed).save(buffer, fmt)
    return buffer.getvalue()


def write_dataset(root: Path, per_class: int = 6, split: bool = False, fmt: str = "png") -> Path:
    """Folders of synthetic photos: `root/<class>/` or `root/{train,validation}/<class>/`."""
    for class_index, (name, colour) in enumerate(CLASS_COLOURS.items()):
        for i in range(per_class):
            part = ("validation" if i % 3 == 0 else "train") if split else ""
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            synthetic_photo(colour, seed=class_index * 100 + i).save(folder / f"photo{i}.{fmt}")
    return root


NOT_MINE_COLOURS = ((200, 200, 40), (150, 60, 160), (90, 90, 90))  # none of the bikes'


def write_not_mine(root: Path, count: int = 5, folder: str = "not-mine", split: bool = False):
    """Photos of "other people's bikes": `root/<folder>/` (or train/ and validation/)."""
    for i in range(count):
        part = ("validation" if i % 3 == 0 else "train") if split else ""
        (root / part / folder).mkdir(parents=True, exist_ok=True)
        colour = NOT_MINE_COLOURS[i % len(NOT_MINE_COLOURS)]
        synthetic_photo(colour, seed=900 + i).save(root / part / folder / f"other{i}.png")
    return root


def fake_clock(monkeypatch, module, start: float = 1000.0):
    """`module.clock` (a monotonic clock the module reads), moved by hand: `clock.now += 301`."""

    class Clock:
        now = start

    fake = Clock()
    monkeypatch.setattr(module, "clock", lambda: fake.now)
    return fake


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serve_app(
    env: dict, log_path: Path | None = None, timeout: float = 90, port: int | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """`streamlit run streamlit_app.py` on 127.0.0.1 (`port`, or a free one): (server, url)
    once it answers its health check; stopped after. Output goes to `log_path` (or nowhere)."""
    port = port or free_port()
    command = [
        *(sys.executable, "-m", "streamlit", "run", "streamlit_app.py"),
        *("--server.headless", "true", "--server.address", "127.0.0.1"),
        *("--server.port", str(port), "--browser.gatherUsageStats", "false"),
    ]
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(log_path.open("w")) if log_path else subprocess.DEVNULL
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while True:
                if server.poll() is not None:
                    output = log_path.read_text()[-2000:] if log_path else ""
                    raise RuntimeError(f"the app exited ({server.returncode}): {output}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the app did not become healthy in {timeout:.0f} s")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                        if answer.read() == b"ok":
                            break
                except OSError:
                    time.sleep(0.5)
            yield server, url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def run_fresh(script: str, env: dict, *args: str, timeout: float = 600) -> dict:
    """Run a Python `script` (AppTest, say) in a new interpreter at the repository root,
    so what it imports is its own; returns its last line of output, read as JSON."""
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def calibrated_model(root: Path, name: str | None = None) -> Path:
    """A small real model (3 generated bikes, 32 px) saved with its open-set reference and
    6 calibration strangers, so verdicts, the threshold and its trade-off all exist."""
    from bikelib import TrainConfig, open_dataset, save_model, strangers, train

    dataset = open_dataset(write_dataset(root / "data", per_class=8), val_fraction=0.25)
    # 10 epochs at 0.01: enough to beat chance on these colours (6 at the default rate
    # stayed at 1/3, and the pages rightly give a guessing model no verdicts).
    config = TrainConfig(epochs=10, image_size=32, batch_size=8, strangers=0, learning_rate=0.01)
    result = train(dataset, config, others=strangers.strangers("calibration", 32, 6))
    return save_model(result, root / "demo-model", name=name)


def open_page(page: str):
    """An AppTest of the whole app (streamlit_app.py) switched to `page`, run once."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at
