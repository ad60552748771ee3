"""Soak: a real `streamlit run` server on 127.0.0.1 and N headless browser visitors.

Each visitor is one browser context (its own Streamlit session) in one headless
Chromium, looping over actions drawn by a seeded RNG: view Home or Dataset, upload a
small zip of photos on Dataset, train a short run (2 epochs, 64 px) on Train and wait for
it (and for its turn in the training queue), classify a photo on Classify, scan a zip
of listing photos on Scan listings. Same selectors as tests/test_browser.py.

Measured: every action's outcome (a Streamlit exception box, an error alert or a
timeout is a failure, with its text), HTTP responses and websocket messages, the time
each training waited in the queue, and the memory of the server process and of all its
descendants (the training children), sampled every second from /proc/PID/smaps_rollup:
RSS, PSS (each shared page divided among the processes mapping it) and USS (private
pages: what each one adds). RSS counts the pages server and child both map from the same
files (TensorFlow's libraries) twice; PSS shares them out to every process that maps
them, unrelated ones too (another TensorFlow program on the machine makes it look
smaller). So every 10 s (`--together-every`), run as root, it also counts the physical
pages of server and children from /proc/PID/pagemap, each page once: the memory they
take together, as on a machine of their own.

Bounded: no action starts after --minutes; whatever still runs is cut off
`GRACE_S` later (reported as cut off, not hidden), and a watchdog ends everything
`WATCHDOG_S` after that. The browser resolves no host but 127.0.0.1.

    python bench/soak.py [--sessions 8] [--minutes 10] [--seed 0] [--json FILE]
        [--mix view=30,upload=12,train=13,classify=25,scan=20] [--together-every 10]
        [--evidence DIR]

With --evidence, each failed action leaves in DIR a screenshot, the page's address and
headings, and the visitor's last websocket messages decoded (what the browser asked
for, page and fragment, and what the server answered): to find why it failed. That is
how the upload-then-page-change failures of 2026-12-02 were found to be the soak's own:
it clicked the next page before the upload's rerun (see `upload`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import statistics
import tempfile
import threading
import time
import zipfile
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from common import ROOT, machine, table

from tests.helpers import serve_app, write_dataset

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no other host resolves
]
DEMO_BIKES = ROOT / "data" / "demo-bikes"
MIX = {"view": 30, "upload": 12, "train": 13, "classify": 25, "scan": 20}  # relative weights
TIMEOUT_S = {"view": 120, "upload": 180, "classify": 180, "scan": 300, "train": 900}
GRACE_S = 120  # after the last start, how long running actions may still finish
WATCHDOG_S = 120  # after that, the whole process ends whatever it is doing
MB = 1024 * 1024


# -- memory ------------------------------------------------------------------------------

# RSS counts every page a process maps, so two processes that map the same files
# (TensorFlow's shared libraries, hundreds of MB) count those pages twice. PSS shares
# each page out among the processes that map it, so the PSS of a process tree adds up
# to the memory it really takes; USS (private pages) is what each process adds alone.
MEASURES = ("rss", "pss", "uss")


def memory_of(pid: int) -> dict[str, int] | None:
    """{"rss", "pss", "uss"} of one process in bytes, from /proc/PID/smaps_rollup
    (Linux 4.14 and later); None when the process is gone or cannot be read."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    kb = {}
    for line in text.splitlines()[1:]:
        name, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            kb[name] = int(parts[0]) * 1024
    if "Rss" not in kb:
        return None
    private = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
    return {"rss": kb["Rss"], "pss": kb.get("Pss", 0), "uss": private}


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(parent, []).append(int(entry.name))
    found, stack = [], list(parents.get(pid, []))
    while stack:
        current = stack.pop()
        found.append(current)
        stack += parents.get(current, [])
    return found


def resident_frames(pid: int):
    """The physical page frames a process has resident (numpy array, unique), from
    /proc/PID/pagemap; None when they cannot be read (the frame numbers need root:
    without it the kernel reports 0 for every page)."""
    import numpy as np

    page = os.sysconf("SC_PAGE_SIZE")
    parts = []
    try:
        with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
            for line in maps:
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                try:
                    pagemap.seek(start // page * 8)
                    data = pagemap.read((end - start) // page * 8)
                except (OSError, ValueError, OverflowError):  # [vsyscall] and the like
                    continue
                entries = np.frombuffer(data, "<u8")
                present = entries[(entries >> np.uint64(63)) == 1]  # bit 63: in memory
                parts.append(present & np.uint64((1 << 55) - 1))  # bits 0-54: the frame
    except OSError:
        return None
    frames = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.uint64)
    return None if len(frames) and not frames.any() else frames


def together_bytes(pids: list[int]) -> int | None:
    """Memory the processes take together: their resident pages, a page that several
    map counted once (what they would take alone on a machine; PSS also shares pages out
    to unrelated processes that map the same files). None without root."""
    import numpy as np

    frames = []
    for pid in pids:
        found = resident_frames(pid)
        if found is None and pid == pids[0]:
            return None
        if found is not None:
            frames.append(found)
    return len(np.unique(np.concatenate(frames))) * os.sysconf("SC_PAGE_SIZE")


def tree_memory(pid: int) -> tuple[dict[str, int], dict[int, dict[str, int]]]:
    """(memory of pid, {descendant pid: its memory}), each {"rss", "pss", "uss"}."""
    own = memory_of(pid) or dict.fromkeys(MEASURES, 0)
    children = {}
    for child in descendants(pid):
        memory = memory_of(child)
        if memory is not None:
            children[child] = memory
    return own, children


class MemorySampler(threading.Thread):
    """RSS, PSS and USS of the server and of its descendants every `interval` seconds,
    and their peaks: the peak of the sums is taken per sample, so a server and a child
    that peak at different times are not added up. Every `together_every` seconds also
    the memory they take together, each physical page once (`together_bytes`)."""

    def __init__(
        self, pid: int, started: float, interval: float = 1.0, together_every: float = 10.0
    ):
        super().__init__(daemon=True)
        self.pid, self.started, self.interval = pid, started, interval
        self.together_every = together_every  # seconds; reading page frames costs ~1 s
        self.together_at: float | None = -math.inf if together_every > 0 else None
        self.together_peak: dict = {}  # {"t", "together", "server", "children"} at its peak
        self.stopping = threading.Event()
        self.samples: list[dict] = []
        # peak[measure][what], what: server, children (together), one_child, total
        self.peak = {m: {"server": 0, "children": 0, "one_child": 0, "total": 0} for m in MEASURES}
        self.at_peak_total: dict[str, dict] = {m: {} for m in MEASURES}

    def sample(self) -> dict:
        server, children = tree_memory(self.pid)
        sample: dict = {"t": round(time.monotonic() - self.started, 1)}
        sample["n_children"] = len(children)
        for m in MEASURES:
            kids = sum(child[m] for child in children.values())
            # "server" and "children" stay RSS, as in the soak files written before PSS
            prefix = "" if m == "rss" else f"{m}_"
            sample[f"{prefix}server"], sample[f"{prefix}children"] = server[m], kids
            peak = self.peak[m]
            peak["server"] = max(peak["server"], server[m])
            peak["children"] = max(peak["children"], kids)
            peak["one_child"] = max(peak["one_child"], *(c[m] for c in children.values()), 0)
            if server[m] + kids > peak["total"]:
                peak["total"] = server[m] + kids
                self.at_peak_total[m] = {"t": sample["t"], "server": server[m], "children": kids}
        if self.together_at is not None and (
            time.monotonic() - self.together_at >= self.together_every
        ):
            self.together_at = time.monotonic()
            together = together_bytes([self.pid, *children])
            if together is None:
                self.together_at = None  # not root: no page frames to read, stop trying
            else:
                sample["together"] = together
                if together > self.together_peak.get("together", 0):
                    self.together_peak = {
                        "t": sample["t"],
                        "together": together,
                        "server": server["rss"],
                        "children": sample["children"],
                        "n_children": len(children),
                    }
        return sample

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append(self.sample())
            self.stopping.wait(self.interval)


# -- what the visitors do -------------------------------------------------------------------


@dataclass
class Action:
    visitor: int
    kind: str
    detail: str = ""
    started: float = 0.0  # seconds since the soak began
    seconds: float = 0.0
    outcome: str = "ok"  # ok | failed | cut off
    error: str = ""
    queue_wait: float | None = None  # trainings: seconds shown "Waiting for another training"
    queued_at_stop: bool = False  # trainings: still waiting in the queue when cut off
    step: str = ""  # what it was doing last (where a failure happened)


@dataclass
class Traffic:
    responses: int = 0
    http_errors: list[str] = field(default_factory=list)  # status >= 400
    failed: list[str] = field(default_factory=list)  # failed requests, not aborted
    aborted: int = 0  # cancelled by the page itself (a rerun replaced an image)
    offhost: list[str] = field(default_factory=list)
    ws_sent: int = 0
    ws_received: int = 0
    ws_closed: int = 0


class Failure(Exception):
    pass


async def idle(page, timeout_s: float = 120) -> None:
    """Until the script run is over (its status widget gone), not just begun."""
    await page.wait_for_timeout(500)
    await page.locator('[data-testid="stStatusWidget"]').wait_for(
        state="hidden", timeout=timeout_s * 1000
    )


async def check_page(page) -> None:
    """A Streamlit exception box or a red error alert on the page is a failure."""
    for testid in ("stException", "stAlertContentError"):
        boxes = page.locator(f'[data-testid="{testid}"]')
        if await boxes.count():
            text = (await boxes.first.inner_text()).strip().replace("\n", " ")
            raise Failure(f"{testid}: {text[:300]}")


async def go_to(page, link: str, heading: str | None = None) -> None:
    """Click a page in the sidebar, and wait until the server has run it through.

    The heading alone is no sign: opened from itself, the page shows its heading before
    the click's run has begun, and a click or upload then goes to the old page's widgets,
    which the new run replaces (a tab click lost, an upload never sent)."""
    finished = RUNS_FINISHED.get(id(page), 0)
    await page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=link).click()
    await counted(page, RUNS_FINISHED, finished, 120, f"no run of {link} finished")
    await page.get_by_role("heading", name=heading or link, level=1).wait_for()


# Widget reruns each visitor's browser has asked for (rerun requests that carry widget
# values: not a page change, not a timer), by page: how `upload` knows its file arrived.
WIDGET_RERUNS: dict[int, int] = {}
# Whole-page runs the server finished successfully (not fragments, not runs cut short by
# a newer request), by page: how `go_to` knows the page it clicked has been run.
RUNS_FINISHED: dict[int, int] = {}
UPLOAD_COPIES = Path(tempfile.gettempdir())  # main() points it into the soak's scratch folder


async def counted(page, counter: dict[int, int], before: int, seconds: float, what: str) -> None:
    """Until this page's count in `counter` has moved on from `before`; a Failure saying
    `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while counter.get(id(page), 0) == before:
        if time.monotonic() > deadline:
            raise Failure(f"{what} in {seconds:g} s")
        await page.wait_for_timeout(100)


async def upload(page, path: Path) -> None:
    """Into the page's own uploader (the sidebar has one too: "Open a saved model"), and
    until the page has run with it.

    The browser first sends the file, then asks for a rerun with the uploader's new value.
    Until then the page still shows what it showed before (after uploading the same zip
    again: the very text that says it is shown), and a click on another page is undone by
    that rerun, which asks for the uploader's page. So: wait for the request, then idle.
    Each upload is a fresh copy of the file (same name, new folder in the soak's scratch
    folder, never beside the original: copies next to a demo photo became photos of the
    demo set): Chromium tells the page nothing when its file input is given the file it
    already holds.
    """
    main = page.locator('[data-testid="stMain"] [data-testid="stFileUploader"]')
    fresh = Path(tempfile.mkdtemp(dir=UPLOAD_COPIES)) / path.name
    shutil.copyfile(path, fresh)
    asked = WIDGET_RERUNS.get(id(page), 0)
    await main.locator('input[type="file"]').first.set_input_files(str(fresh))
    await counted(page, WIDGET_RERUNS, asked, 60, f"{path.name} asked for no rerun")
    await idle(page)


async def set_slider(page, label: str, steps_from_start: int) -> None:
    slider = page.get_by_role("slider", name=label)
    await slider.focus()
    await slider.press("Home")
    for _ in range(steps_from_start):
        await slider.press("ArrowRight")


async def view(page, rng: random.Random, files: dict, action: Action) -> None:
    action.step = "open the page"
    if rng.random() < 0.4:
        action.detail = "Home"
        await go_to(page, "Home", "Bike Recognition")
        await page.get_by_role("heading", name="This session").wait_for()
    else:
        action.detail = "Dataset"
        await go_to(page, "Dataset")
        await page.get_by_role("tab", name="Photos").click()  # the last tab seen stays open
        await page.locator('[data-testid="stImage"] img').first.wait_for()
        if rng.random() < 0.3:
            action.detail += " + Statistics"
            # The first photos show while the run still draws the rest; a tab clicked
            # then is lost (no rerun is asked for: the 14:29 soak's evidence). Wait.
            await idle(page)
            await page.get_by_role("tab", name="Statistics").click()
            await page.get_by_text("Photos per bike and split").wait_for()
    await idle(page)


async def upload_zip(page, rng: random.Random, files: dict, action: Action) -> None:
    archive = files["dataset_zip"]
    action.detail = archive.name
    action.step = "open the page"
    await go_to(page, "Dataset")
    await idle(page)
    action.step = "upload the zip, wait for its photos"
    await page.get_by_role("radio", name="Upload a .zip").click()
    await idle(page)
    await upload(page, archive)
    await page.get_by_text(f"Showing uploaded {archive.name}").wait_for()
    await idle(page)


async def classify(page, rng: random.Random, files: dict, action: Action) -> None:
    photo = rng.choice(files["photos"])
    action.detail = photo.name
    action.step = "open the page (loads the model)"
    await go_to(page, "Classify")
    await idle(page, TIMEOUT_S["classify"])  # the first model load imports TensorFlow
    action.step = "upload the photo, wait for its verdict"
    await upload(page, photo)
    await page.locator(
        '[data-testid="stMain"] [data-testid="stMarkdownContainer"] h3'
    ).first.wait_for()
    await idle(page)
    if rng.random() < 0.3:
        action.detail += " + heatmap"
        action.step = "heatmap"
        await page.get_by_text("Show why (heatmap)").click()
        await page.get_by_text("Why: where it saw").first.wait_for()
        await idle(page)


async def scan(page, rng: random.Random, files: dict, action: Action) -> None:
    archive = rng.choice(files["listing_zips"])
    action.detail = archive.name
    action.step = "open the page (loads the model)"
    await go_to(page, "Scan listings")
    await idle(page, TIMEOUT_S["scan"])
    action.step = "upload the zip"
    await upload(page, archive)
    await page.get_by_text(archive.name).first.wait_for()
    action.step = "scan, wait for the ranking"
    await page.get_by_role("button", name="Scan").click()
    await page.get_by_text("photos may be your bike").wait_for(timeout=TIMEOUT_S["scan"] * 1000)
    await idle(page)


async def train(page, rng: random.Random, files: dict, action: Action) -> None:
    action.step = "open the page"
    await go_to(page, "Train")
    await idle(page)
    start = page.get_by_role("button", name="Start training")
    if await start.is_disabled():
        action.detail = "own run still going"
    else:
        action.detail = "2 epochs, 64 px"
        action.step = "set the form, start"
        await set_slider(page, "Epochs", 1)
        await set_slider(page, "Image size (pixels)", 1)
        await start.click()
    clicked = time.monotonic()
    queued = page.get_by_text("Waiting for another training")
    saved = page.get_by_text("Model saved as")
    running = page.get_by_text(re.compile(r"^(Preparing the photos|Epoch \d+ of \d+)"))
    seen_queued = False
    action.step = "wait for the run to leave the queue"
    while True:  # poll: the page redraws the run every second
        if await saved.count():
            break
        await check_page(page)
        if await queued.count():
            seen_queued = action.queued_at_stop = True  # until it leaves the queue
        elif await running.count() or await saved.count():
            break
        await page.wait_for_timeout(500)
    action.queue_wait = round(time.monotonic() - clicked, 1) if seen_queued else 0.0
    action.queued_at_stop = False
    action.step = "wait for the saved model"
    await saved.wait_for(timeout=TIMEOUT_S["train"] * 1000)
    await idle(page)


ACTIONS = {"view": view, "upload": upload_zip, "train": train, "classify": classify, "scan": scan}


async def visitor(
    number: int,
    browser,
    url: str,
    files: dict,
    seed: int,
    t0: float,
    last_start: float,
    actions: list[Action],
    traffic: Traffic,
    mix: dict[str, float],
    evidence: Path | None = None,
) -> None:
    rng = random.Random(seed * 1000 + number)
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    host = urlparse(url).netloc

    def on_request(request) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in ("http", "https", "ws", "wss") and parsed.netloc != host:
            traffic.offhost.append(request.url[:200])

    def on_response(response) -> None:
        traffic.responses += 1
        if response.status >= 400:
            traffic.http_errors.append(f"{response.status} {response.url[:200]}")

    def on_failed(request) -> None:
        reason = request.failure or ""
        if "ERR_ABORTED" in reason:
            traffic.aborted += 1
        else:
            traffic.failed.append(f"{reason} {request.url[:200]}")

    frames: deque = deque(maxlen=400)  # this visitor's last websocket messages, decoded

    def on_websocket(ws) -> None:
        def sent(payload):
            traffic.ws_sent += 1
            said = back_message(payload)
            if said.startswith("rerun") and "widgets=0" not in said and "auto=True" not in said:
                WIDGET_RERUNS[id(page)] = WIDGET_RERUNS.get(id(page), 0) + 1
            if evidence:
                frames.append((round(time.monotonic() - t0, 2), "sent", said))

        def received(payload):
            traffic.ws_received += 1
            summary = forward_message(payload)
            if summary == "script_finished 0":  # FINISHED_SUCCESSFULLY, a whole page
                RUNS_FINISHED[id(page)] = RUNS_FINISHED.get(id(page), 0) + 1
            if evidence and summary:
                frames.append((round(time.monotonic() - t0, 2), "got", summary))

        def closed(_):
            traffic.ws_closed += 1

        ws.on("framesent", sent)
        ws.on("framereceived", received)
        ws.on("close", closed)

    context.on("request", on_request)
    context.on("response", on_response)
    context.on("requestfailed", on_failed)
    page = await context.new_page()
    page.on("websocket", on_websocket)
    page.set_default_timeout(120_000)
    await asyncio.sleep(rng.uniform(0, 10))  # visitors do not all arrive at once

    async def run(kind: str, body) -> bool:
        action = Action(number, kind, started=round(time.monotonic() - t0, 1))
        actions.append(action)
        if evidence:
            frames.append((action.started, "act", f"{kind} begins"))
        began, limit = time.monotonic(), TIMEOUT_S[kind] + 30
        try:
            await asyncio.wait_for(body(action), limit)
            await check_page(page)
        except asyncio.CancelledError:
            action.outcome = "cut off"
            action.error = f"still running at the hard stop, at '{action.step}'"
            action.seconds = round(time.monotonic() - began, 1)
            raise
        except Exception as error:  # noqa: BLE001 - every failure is recorded, with its text
            action.outcome = "failed"
            text = str(error).strip().splitlines() or [f"over the limit of {limit} s"]
            action.error = f"{type(error).__name__} at '{action.step}': {' '.join(text[:3])[:400]}"
            print(f"visitor {number} {kind} failed: {action.error}", flush=True)
            if evidence:
                await keep_evidence(evidence, page, action, list(frames))
        action.seconds = round(time.monotonic() - began, 1)
        return action.outcome == "ok"

    async def first_visit(action: Action) -> None:
        action.detail = "first visit, Home"
        await page.goto(url)
        await page.get_by_role("heading", name="Bike Recognition", level=1).wait_for()
        await idle(page)

    try:
        ok = await run("view", first_visit)
        while time.monotonic() < last_start:
            if not ok:  # start again from a fresh load of the app, as a person would
                await run("view", first_visit)
            kind = rng.choices(list(mix), weights=list(mix.values()))[0]
            ok = await run(kind, lambda action, k=kind: ACTIONS[k](page, rng, files, action))
            await asyncio.sleep(rng.uniform(0.5, 3.0))  # a person reads the page
    finally:
        await context.close()


# -- evidence of a failure ----------------------------------------------------------------


def back_message(payload) -> str:
    """What the browser asked the server (a BackMsg), in one line."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    message = BackMsg()
    try:
        message.ParseFromString(payload if isinstance(payload, bytes) else payload.encode())
    except Exception:  # noqa: BLE001 - evidence only: keep what cannot be decoded as such
        return f"undecoded {len(payload)} bytes"
    kind = message.WhichOneof("type")
    if kind != "rerun_script":
        return str(kind)
    state = message.rerun_script
    widgets = [w.id.rsplit("-", 1)[-1][:40] for w in state.widget_states.widgets]
    return (
        f"rerun page={state.page_script_hash[:8]} name={state.page_name!r} "
        f"fragment={state.fragment_id[:12] or '-'} auto={state.is_auto_rerun} "
        f"widgets={len(widgets)}"
    )


def forward_message(payload) -> str | None:
    """What the server told the browser (a ForwardMsg), deltas left out."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    message = ForwardMsg()
    try:
        message.ParseFromString(payload if isinstance(payload, bytes) else payload.encode())
    except Exception:  # noqa: BLE001 - evidence only
        return f"undecoded {len(payload)} bytes"
    kind = message.WhichOneof("type")
    if kind in ("delta", "ref_hash", "heartbeat_ack"):
        return None
    if kind == "new_session":
        return f"new_session page={message.new_session.page_script_hash[:8]}"
    if kind == "script_finished":
        return f"script_finished {message.script_finished}"
    if kind == "session_status_changed":
        status = message.session_status_changed
        return f"status running={status.script_is_running}"
    if kind in ("auto_rerun", "stop_auto_rerun"):
        return f"{kind} " + " ".join(str(getattr(message, kind)).split())[:80]
    if kind == "page_not_found":
        return f"page_not_found {message.page_not_found.page_name}"
    return str(kind)


async def keep_evidence(folder: Path, page, action: Action, frames: list) -> None:
    """A screenshot, the address, the headings and the last messages of a failed action."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"visitor{action.visitor}-{action.started:07.1f}-{action.kind}"
    lines = [f"{action.kind} started at {action.started} s: {action.error}"]
    try:
        lines.append(f"url {page.url}")
        headings = await page.get_by_role("heading", level=1).all_inner_texts()
        lines.append(f"h1 {headings}")
        running = await page.locator('[data-testid="stStatusWidget"]').count()
        lines.append(f"status widget shown: {bool(running)}")
        await page.screenshot(path=str(folder / f"{stem}.png"))
    except Exception as error:  # noqa: BLE001 - a closed page still leaves its messages
        lines.append(f"page unavailable: {error}")
    lines += [f"{t:9.2f} {direction:4} {text}" for t, direction, text in frames]
    (folder / f"{stem}.txt").write_text("\n".join(lines) + "\n")


# -- setup, run, report ---------------------------------------------------------------------


def make_files(folder: Path, seed: int) -> dict:
    """The zips and photos the visitors upload (generated or taken from the demo set)."""
    rng = random.Random(seed)
    photos_root = write_dataset(folder / "soak-bikes", per_class=6)
    dataset_zip = folder / "soak-bikes.zip"
    with zipfile.ZipFile(dataset_zip, "w") as z:
        for photo in sorted(photos_root.rglob("*.png")):
            z.write(photo, f"soak-bikes/{photo.relative_to(photos_root)}")
    demo = sorted((DEMO_BIKES / "validation").rglob("*.jpg")) or sorted(photos_root.rglob("*.png"))
    listing_zips = []
    for number in range(3):
        archive = folder / f"listings-{number}.zip"
        with zipfile.ZipFile(archive, "w") as z:
            for photo in rng.sample(demo, min(6, len(demo))):
                z.write(photo, f"listings/{photo.parent.name}-{photo.name}")
            z.writestr("listings/not-a-photo.jpg", b"this is text, not a JPEG")
        listing_zips.append(archive)
    return {"dataset_zip": dataset_zip, "photos": demo, "listing_zips": listing_zips}


async def soak(url: str, args, files: dict, t0: float, actions: list, traffic: Traffic) -> None:
    from playwright.async_api import async_playwright

    last_start = t0 + args.minutes * 60
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            tasks = [
                asyncio.create_task(
                    visitor(
                        *(n, browser, url, files, args.seed, t0, last_start, actions, traffic),
                        args.mix,
                        args.evidence,
                    )
                )
                for n in range(args.sessions)
            ]
            _, pending = await asyncio.wait(tasks, timeout=last_start + GRACE_S - time.monotonic())
            for task in pending:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for n, result in enumerate(results):
                if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
                    print(f"visitor {n} ended with {type(result).__name__}: {result}", flush=True)
        finally:
            await browser.close()


def watchdog(seconds: float, server_pid: list[int]) -> None:
    """The hard stop behind the hard stop: end the server and this process."""

    def fire() -> None:
        print(f"watchdog: still running after {seconds:.0f} s; ending everything", flush=True)
        for pid in server_pid:
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def seconds_summary(values: list[float]) -> str:
    if not values:
        return ""
    values = sorted(values)
    return f"{statistics.median(values):.1f} / {values[-1]:.1f}"


def report(args, actions: list[Action], traffic: Traffic, sampler: MemorySampler, meta: dict):
    rows = []
    for kind in ["view", "upload", "train", "classify", "scan"]:
        mine = [a for a in actions if a.kind == kind]
        done = [a.seconds for a in mine if a.outcome == "ok"]
        rows.append(
            [
                kind,
                len(mine),
                sum(a.outcome == "ok" for a in mine),
                sum(a.outcome == "failed" for a in mine),
                sum(a.outcome == "cut off" for a in mine),
                seconds_summary(done),
            ]
        )
    rows.append(
        [
            "**all**",
            len(actions),
            sum(a.outcome == "ok" for a in actions),
            sum(a.outcome == "failed" for a in actions),
            sum(a.outcome == "cut off" for a in actions),
            "",
        ]
    )
    per_kind = table(
        ["action", "started", "ok", "failed", "cut off at stop", "seconds median / max (ok)"], rows
    )
    trainings = [a for a in actions if a.kind == "train"]
    waits = [a.queue_wait for a in trainings if a.queue_wait is not None]
    queued = [w for w in waits if w > 0]
    still_queued = sum(a.queued_at_stop and a.outcome == "cut off" for a in trainings)
    peak = sampler.peak
    ok_trainings = sum(a.outcome == "ok" for a in trainings)
    waited = f"{len(queued)}" + (f", {still_queued} still waiting at the stop" * bool(still_queued))
    median_wait = statistics.median(queued) if queued else 0

    def at_peak(measure: str) -> str:
        at = sampler.at_peak_total[measure]
        return (
            f"server {at.get('server', 0) / MB:.0f} + children {at.get('children', 0) / MB:.0f},"
            f" at {at.get('t', 0):.0f} s"
        )

    def together(at: dict) -> str:
        if not at:
            return "not measured (reading page frames needs root)"
        return (
            f"**{at['together'] / MB:.0f} MB** (RSS then: server {at['server'] / MB:.0f}"
            f" + {at['n_children']} {'child' if at['n_children'] == 1 else 'children'}"
            f" {at['children'] / MB:.0f}, at {at['t']:.0f} s;"
            f" sampled every {sampler.together_every:g} s)"
        )

    def three(what: str) -> str:
        return " / ".join(f"{peak[m][what] / MB:.0f}" for m in MEASURES) + " MB"

    served, errors = traffic.responses - len(traffic.http_errors), len(traffic.http_errors)
    load = f"{meta['load_before']} / {meta['load_after']}"
    summary = [
        ["visitors (browser sessions)", str(args.sessions)],
        [
            "minutes of new actions; wall time to the last one",
            f"{args.minutes:g}; {meta['wall_s']:.0f} s",
        ],
        ["actions ok / failed / cut off", "{} / {} / {}".format(*rows[-1][2:5])],
        ["HTTP responses, status < 400 / >= 400", f"{served} / {errors}"],
        [
            "requests failed (aborted by the page itself)",
            f"{len(traffic.failed)} ({traffic.aborted})",
        ],
        ["websocket messages to / from the server", f"{traffic.ws_sent} / {traffic.ws_received}"],
        ["websockets closed before the end", str(traffic.ws_closed)],
        ["requests to any host but 127.0.0.1", str(len(traffic.offhost))],
        ["trainings finished (of started)", f"{ok_trainings} (of {len(trainings)})"],
        ["trainings that waited in the queue", waited],
        [
            "longest / median queue wait (of those)",
            f"{max(queued, default=0):.0f} s / {median_wait:.0f} s",
        ],
        ["peak server process, RSS / PSS / USS", three("server")],
        ["peak training children together, RSS / PSS / USS", three("children")],
        ["peak one training child, RSS / PSS / USS", three("one_child")],
        [
            "peak server + children, sum of RSS (counts shared pages twice)",
            f"{peak['rss']['total'] / MB:.0f} MB ({at_peak('rss')})",
        ],
        [
            "peak server + children, sum of PSS (shares pages out to other processes too)",
            f"{peak['pss']['total'] / MB:.0f} MB ({at_peak('pss')})",
        ],
        [
            "**peak server + children, shared pages counted once** (target <= 1.5 GB)",
            together(sampler.together_peak),
        ],
        ["load average before / after (1, 5, 15 min)", load],
    ]
    out = [
        f"Soak: {args.sessions} visitors, {args.minutes:g} minutes, seed {args.seed}; {machine()}",
        "",
        per_kind,
        "",
        table(["what", "measured"], summary),
    ]
    failures = [a for a in actions if a.outcome != "ok"]
    if failures:
        out += ["", "Failures and cut-off actions:", ""]
        out += [
            f"- {a.started:.0f} s, visitor {a.visitor}, {a.kind} ({a.detail}): "
            f"{a.outcome}, {a.error}"
            for a in failures
        ]
    for name, items in [
        ("HTTP errors", traffic.http_errors),
        ("failed requests", traffic.failed),
        ("off-host requests", traffic.offhost),
    ]:
        if items:
            out += ["", f"{name} (first 10 of {len(items)}):", *(f"- {i}" for i in items[:10])]
    return "\n".join(out)


def mix_weights(text: str) -> dict[str, float]:
    """`view=3,upload=1`: the actions to draw from and their relative weights."""
    weights = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in ACTIONS:
            raise argparse.ArgumentTypeError(f"{kind!r} is not one of {', '.join(ACTIONS)}")
        weights[kind.strip()] = float(weight or 1)
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every action and memory sample here")
    parser.add_argument(
        "--mix", type=mix_weights, default=MIX, help="relative weights, e.g. view=3,upload=1"
    )
    parser.add_argument(
        "--together-every",
        type=float,
        default=10.0,
        help="seconds between readings of the page frames server and children share (0: none)",
    )
    parser.add_argument(
        "--log", type=Path, default=ROOT / "test-output" / "soak-server.log", help="server output"
    )
    parser.add_argument("--evidence", type=Path, help="a folder for what each failure leaves")
    args = parser.parse_args()
    if not 1 <= args.sessions <= 16 or not 0 < args.minutes <= 30:
        parser.error("--sessions 1..16 and --minutes up to 30 (the soak is bounded)")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no browser: {CHROMIUM} is not installed")
    args.log.parent.mkdir(parents=True, exist_ok=True)
    actions: list[Action] = []
    traffic = Traffic()
    server_pid: list[int] = []
    watchdog(args.minutes * 60 + GRACE_S + WATCHDOG_S + 120, server_pid)  # + start-up
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        scratch = Path(scratch)
        files = make_files(scratch, args.seed)
        global UPLOAD_COPIES
        UPLOAD_COPIES = scratch / "upload-copies"
        UPLOAD_COPIES.mkdir()
        env = {
            **os.environ,
            "BIKE_RECOGNITION_WORKDIR": str(scratch / "sessions"),
            "BIKELIB_CACHE_DIR": str(scratch / "cache"),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": str(ROOT),
        }
        with serve_app(env, log_path=args.log, timeout=120) as (server, url):
            server_pid.append(server.pid)
            print(f"server {server.pid} at {url}; {args.sessions} visitors", flush=True)
            t0 = time.monotonic()
            sampler = MemorySampler(server.pid, t0, together_every=args.together_every)
            sampler.start()
            try:
                asyncio.run(soak(url, args, files, t0, actions, traffic))
            finally:
                wall_s = time.monotonic() - t0
                sampler.stopping.set()
                sampler.join(5)
    meta = {
        "wall_s": wall_s,
        "load_before": load_before,
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "machine": machine(),
    }
    text = report(args, actions, traffic, sampler, meta)
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "meta": meta,
                    "actions": [asdict(a) for a in actions],
                    "traffic": asdict(traffic),
                    "memory": {
                        "peak": sampler.peak,
                        "at_peak": sampler.at_peak_total,
                        "together_peak": sampler.together_peak,
                    },
                    "samples": sampler.samples,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
