"""The first Classify on a fresh server, with and without the warm-up.

A fresh `streamlit run` server on 127.0.0.1 (its own session folder), one headless
Chromium visitor: opens Home, reads it for `--read` seconds, goes to Classify, uploads
a demo photo and waits for its verdict. Timed: Home's first page (does the warm-up slow
it?) and Classify from the click in the menu to the verdict (TensorFlow's import, the
shipped model, the bicycle gate and the first prediction, unless warmed up already).
The decode and gate cache (BIKELIB_CACHE_DIR) is shared by the runs and filled first,
as on a server that restarts; `--cold` gives every run an empty one (first start ever:
the gate is converted from its weights).

    python bench/first_classify.py [--read 0 10] [--repeat 1] [--cold]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import ROOT, machine, table

from tests.helpers import serve_app

CHROMIUM = "/usr/bin/chromium"
PHOTO = ROOT / "data" / "demo-bikes" / "validation" / "black-mountain" / "black-mountain-01.jpg"


def visit(url: str, read_s: float) -> tuple[float, float]:
    """(seconds to Home's first page, seconds from the Classify click to the verdict)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(600_000)
        began = time.monotonic()
        page.goto(url)
        page.get_by_role("heading", name="Bike Recognition", level=1).wait_for()
        page.wait_for_timeout(300)
        page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden")
        home = time.monotonic() - began
        page.wait_for_timeout(read_s * 1000)
        began = time.monotonic()
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Classify").click()
        main = page.locator('[data-testid="stMain"] [data-testid="stFileUploader"]')
        main.locator('input[type="file"]').first.set_input_files(str(PHOTO))
        page.locator(
            '[data-testid="stMain"] [data-testid="stMarkdownContainer"] h3'
        ).first.wait_for()
        classify = time.monotonic() - began
        browser.close()
    return home, classify


def run(warm_up: bool, read_s: float, cache: Path) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="first-classify-") as scratch:
        env = {
            **os.environ,
            "BIKE_RECOGNITION_WORKDIR": str(Path(scratch) / "sessions"),
            "BIKELIB_CACHE_DIR": str(cache),
            "BIKE_RECOGNITION_WARM_UP": "1" if warm_up else "0",
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": str(ROOT),
        }
        with serve_app(env, timeout=120) as (_, url):
            return visit(url, read_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--read", type=float, nargs="+", default=[0, 10])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cold", action="store_true", help="an empty cache for every run")
    args = parser.parse_args()
    print(f"{machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="first-classify-cache-") as shared:
        if not args.cold:  # fill the shared cache once (the gate converted), not timed
            from bikelib.gate import load_pretrained_model

            load_pretrained_model(Path(shared))  # converted into <cache>/pretrained/
        for _ in range(args.repeat):
            for read_s in args.read:
                for warm_up in (False, True):
                    cache = Path(shared)
                    if args.cold:  # a cache of its own, empty
                        cache = Path(tempfile.mkdtemp(prefix="cold-", dir=shared))
                    home, classify = run(warm_up, read_s, cache)
                    rows.append(
                        [
                            "on" if warm_up else "off",
                            f"{read_s:g}",
                            f"{home:.1f}",
                            f"{classify:.1f}",
                        ]
                    )
                    print(rows[-1], flush=True)
    headers = ["warm-up", "read Home (s)", "Home's first page (s)", "Classify click to verdict (s)"]
    print(table(headers, rows))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
