"""App targets: how fast Home and Dataset render, and peak memory while training.

1. Render time of Home and Dataset with AppTest in a fresh interpreter (the first run
   pays for imports and decoding thumbnails, the second is what a visitor clicking
   around sees), and whether TensorFlow got imported (it must not be).
2. Peak resident memory while training the demo set with the app's default settings:
   the real `streamlit run` server on 127.0.0.1, driven by headless Chromium, sampled
   from /proc every 0.2 s for the server process and every process it started.

    python bench/app.py [--skip-memory]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, machine, table

from tests.helpers import run_fresh, serve_app

RENDER_SCRIPT = r"""
import json, sys, time
from streamlit.testing.v1 import AppTest
times = {}
at = AppTest.from_file("streamlit_app.py", default_timeout=300)
for page in ("pages/home.py", "pages/dataset.py"):
    for attempt in ("first", "again"):
        start = time.perf_counter()
        at.switch_page(page).run()
        times[f"{page} ({attempt})"] = time.perf_counter() - start
        assert not at.exception, [e.value for e in at.exception]
print(json.dumps({"times": times, "tensorflow": "tensorflow" in sys.modules}))
"""


def render_times(env: dict) -> list[list[str]]:
    report = run_fresh(RENDER_SCRIPT, env)
    rows = [
        [f"render {name}", f"{seconds * 1000:.0f} ms"] for name, seconds in report["times"].items()
    ]
    rows.append(["TensorFlow imported by Home + Dataset", "yes" if report["tensorflow"] else "no"])
    return rows


def rss_of_tree(pid: int) -> tuple[int, int]:
    """(resident bytes of pid, of pid and all its descendants) from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            resident_pages = int((entry / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
        rss[int(entry.name)] = resident_pages * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack += children.get(current, [])
    return rss.get(pid, 0), total


def training_memory(env: dict) -> list[list[str]]:
    from playwright.sync_api import sync_playwright

    peaks = {"server": 0, "tree": 0}
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            alone, tree = rss_of_tree(server.pid)
            peaks["server"], peaks["tree"] = max(peaks["server"], alone), max(peaks["tree"], tree)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    with serve_app(env, timeout=90) as (server, url):
        sampler.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    headless=True,
                    args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
                )
                page = browser.new_page()
                page.set_default_timeout(600_000)
                page.goto(f"{url}/train")
                page.get_by_role("button", name="Start training").click()
                started = time.perf_counter()
                page.get_by_text("Model saved as").wait_for()
                seconds = time.perf_counter() - started
                idle_rss = rss_of_tree(server.pid)
                browser.close()
        finally:
            sampling.set()
    mb = 1024 * 1024
    return [
        ["train the demo set, default settings, from click to saved model", f"{seconds:.0f} s"],
        ["peak RSS, app process alone", f"{peaks['server'] / mb:.0f} MB"],
        ["peak RSS, app process + its training process", f"{peaks['tree'] / mb:.0f} MB"],
        ["RSS after training (app + children)", f"{idle_rss[1] / mb:.0f} MB"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "BIKE_RECOGNITION_WORKDIR": scratch,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "BIKELIB_CACHE_DIR": str(Path(scratch) / "cache"),
            "PYTHONPATH": str(ROOT),
        }
        # The pages' own cost, without the served app's background warm-up (which loads
        # TensorFlow and the shipped model while the first page renders); the training
        # memory below is measured as served, warm-up on.
        rows = render_times({**env, "BIKE_RECOGNITION_WARM_UP": "0"})
        if not args.skip_memory:
            rows += training_memory(env)
    print(f"App render time and memory, {machine()}\n")
    print(table(["what", "measured"], rows))


if __name__ == "__main__":
    main()
