"""The UI in a real browser: Debian's Chromium driven by Playwright, against a real stack and a
real `streamlit run ui/app.py`.

Chromium comes from the system (`apt-get install chromium`), never from `playwright install`.
Without it the test is skipped, unless RECSYS_REQUIRE_BROWSER=1 (CI) makes that a failure.
Screenshots of every page go to the test's folder; RECSYS_UPDATE_SCREENSHOTS=1 also copies them
to docs/img/ for the README.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright

from services.launcher.stack import Stack
from shared.redis_conn import free_port
from tests.conftest import ROOT, running_stack

pytestmark = pytest.mark.integration

CHROMIUM = Path(os.environ.get("RECSYS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_IMG = ROOT / "docs" / "img"
VIEWPORT: ViewportSize = {"width": 1440, "height": 1100}
# The browser stack's own Redis database: its versions and jobs are only this test's.
DB = 3
# Retrain trains the default synthetic recipe; a busy 2-core CI box takes its time.
TRAIN_TIMEOUT_MS = 480_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM}: `sudo apt-get install chromium` to run this test"
        if os.environ.get("RECSYS_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def browser_stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(redis_url, DB, tmp_path_factory.mktemp("browser-stack")) as stack:
        yield stack


@contextlib.contextmanager
def streamlit_ui(gateway_url: str, logs: Path) -> Iterator[str]:
    """`streamlit run ui/app.py` on a free port, talking to `gateway_url`."""
    port = free_port()
    env = {**os.environ, "UI_GATEWAY_URL": gateway_url, "UI_POLL_SECONDS": "0.5"}
    args = [
        *("run", str(ROOT / "ui" / "app.py"), "--server.port", str(port)),
        *("--server.address", "127.0.0.1", "--server.headless", "true"),
        *("--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"),
    ]
    url = f"http://127.0.0.1:{port}"
    with (logs / "streamlit.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", *args], env=env, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (logs / "streamlit.log").read_text(errors="replace")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "streamlit did not start within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _settled(page: Page) -> None:
    """Wait until Streamlit has finished running the page's script (its "Running…" widget shows
    a moment after a run starts, so it must stay away for a while)."""
    running = page.get_by_test_id("stStatusWidget")
    quiet_since = time.monotonic()
    deadline = quiet_since + 120
    while time.monotonic() - quiet_since < 1.0:
        assert time.monotonic() < deadline, "the page kept running for 2 minutes"
        if running.count():
            quiet_since = time.monotonic()
        page.wait_for_timeout(100)


def _charts_drawn(page: Page, n: int) -> None:
    """Charts load lazily and draw after the script ends: wait for `n` drawn (SVG marks)."""
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(n, timeout=60_000)
    for i in range(n):
        expect(charts.nth(i).locator("svg g[class*='mark-']").first).to_be_attached()
    page.wait_for_timeout(500)


def _shoot(page: Page, folder: Path, name: str) -> Path:
    path = folder / f"ui-{name}.png"
    page.screenshot(path=path)
    return path


def _served_version(page: Page) -> int:
    caption = page.get_by_text(re.compile(r"^Ranked by model version \d+$"))
    expect(caption).to_have_count(1, timeout=60_000)
    match = re.search(r"\d+$", caption.inner_text().strip())
    assert match is not None
    return int(match.group())


def _card_products(page: Page) -> list[str]:
    """The product ids of the cards, in rank order (a card's first line: "1. Title · P12")."""
    cards = page.locator("[class*='st-key-card-']")
    lines = [cards.nth(i).inner_text().strip().splitlines()[0] for i in range(cards.count())]
    found = [re.fullmatch(r"(\d+)\. .+ · (\S+)", line) for line in lines]
    assert all(found), lines
    ranked = sorted((int(m.group(1)), m.group(2)) for m in found if m)
    assert [rank for rank, _ in ranked] == list(range(1, len(ranked) + 1)), lines
    return [product for _, product in ranked]


def _traffic(gateway_url: str, stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        i = 0
        while not stop.is_set():
            client.get(f"{gateway_url}/recommend", params={"user": f"U{i % 300 + 1}"})
            i += 1
            stop.wait(0.05)


@pytest.mark.timeout(900)
def test_pick_user_retrain_and_every_page(
    browser: Browser, browser_stack: Stack, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    taken: list[Path] = []
    with streamlit_ui(browser_stack.gateway_url, tmp_path) as ui_url:
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(ui_url)
        before = _served_version(page)

        # Pick a user through the searchable example list.
        picker = page.get_by_role("combobox", name="…or search the example users")
        picker.click()
        page.keyboard.type("U7")
        page.get_by_role("option", name="U7", exact=True).click()
        expect(page.get_by_text("Top 10 for U7")).to_be_visible(timeout=60_000)
        _settled(page)
        expect(page.locator("[class*='st-key-card-']")).to_have_count(10)
        products = _card_products(page)
        assert len(products) >= 10, products
        assert all(re.fullmatch(r"P\w+", p) for p in products), products

        # Retrain: the progress bar runs through the stages to done, a new version is served.
        page.get_by_role("button", name="Retrain").click()
        bar = page.get_by_role("progressbar")
        expect(bar.first).to_be_visible(timeout=60_000)
        expect(page.get_by_text(re.compile(r"^Model version \d+ is now served\.$"))).to_be_visible(
            timeout=TRAIN_TIMEOUT_MS
        )
        _settled(page)
        expect(bar).to_have_count(1)
        expect(bar).to_have_attribute("aria-valuenow", "100")
        expect(page.get_by_text("Training: done (100%)")).to_be_visible()
        after = _served_version(page)
        assert after != before
        expect(page.get_by_text(f"Serving model version {after}")).to_be_visible()
        assert len(_card_products(page)) >= 10

        # An event from a card: the page says what it changed.
        first = _card_products(page)[0]
        page.locator(".st-key-card-1").get_by_role("button", name="Click").click()
        expect(page.get_by_text(f"Sent a click of {first} for U7.", exact=False)).to_be_visible(
            timeout=60_000
        )
        _settled(page)
        card = page.locator(".st-key-card-1")
        card.get_by_text("Why this item?").click()
        expect(card.get_by_role("table")).to_be_visible()
        expect(card.get_by_role("table")).to_contain_text("contribution")
        page.wait_for_timeout(500)  # the expander's opening animation
        taken.append(_shoot(page, shots, "recommendations"))

        page.get_by_role("link", name="Training", exact=True).click()
        expect(page.get_by_text("Recent jobs")).to_be_visible(timeout=60_000)
        _settled(page)
        history = page.get_by_test_id("stTable").last.locator("tbody tr")
        expect(history).to_have_count(2)  # the stack's first model, and the retrain
        expect(history.first).to_contain_text(f"version {after}, served")
        taken.append(_shoot(page, shots, "training"))

        page.get_by_role("link", name="Models", exact=True).click()
        expect(page.get_by_text("2 versions in the registry")).to_be_visible(timeout=60_000)
        _settled(page)
        # the versions' metrics, and the recipe search of the version the retrain produced
        expect(page.get_by_text("How this recipe was chosen")).to_be_visible()
        _charts_drawn(page, 2)
        taken.append(_shoot(page, shots, "models"))

        page.get_by_role("link", name="Evaluation", exact=True).click()
        expect(page.get_by_text("Ranking metrics @10 by model")).to_be_visible(timeout=60_000)
        _settled(page)
        _charts_drawn(page, 2)
        taken.append(_shoot(page, shots, "evaluation"))

        stop = threading.Event()
        traffic = threading.Thread(target=_traffic, args=(browser_stack.gateway_url, stop))
        traffic.start()
        try:
            page.get_by_role("link", name="Live", exact=True).click()
            # Rates need two samples, the charts a third: a few refreshes. The third chart: CTR
            # by position, from the click sent above (attributed to the list that showed it).
            expect(page.get_by_text("What the answers earned (last 24 h)")).to_be_visible()
            _charts_drawn(page, 3)
            expect(page.get_by_text(re.compile(r"^Since it started: \d+ requests"))).to_have_count(
                3
            )
            page.wait_for_timeout(4_000)  # a few more points on the lines
            taken.append(_shoot(page, shots, "live"))
        finally:
            stop.set()
            traffic.join()

        # Experiments: the retrained version (current, the control) against the first one,
        # watched while traffic comes in, then stopped.
        page.get_by_role("link", name="Experiments", exact=True).click()
        expect(page.get_by_text("No experiment yet: start one below.")).to_be_visible(
            timeout=60_000
        )
        _settled(page)
        name = page.get_by_label("Name", exact=True)
        name.fill("browser-ab")
        name.press("Enter")
        _settled(page)
        page.locator(".st-key-exp_start button").click()
        expect(page.get_by_text("Experiment browser-ab started", exact=False)).to_be_visible(
            timeout=120_000
        )
        stop = threading.Event()
        traffic = threading.Thread(target=_traffic, args=(browser_stack.gateway_url, stop))
        traffic.start()
        try:
            # The report is read again every 5 s; the interval chart needs answers in both arms.
            _charts_drawn(page, 1)
            expect(page.get_by_text(re.compile(r"^Verdict: "))).to_be_visible()
            page.wait_for_timeout(6_000)  # one more refresh: more answers in the table
            _settled(page)
            taken.append(_shoot(page, shots, "experiments"))
        finally:
            stop.set()
            traffic.join()
        # By role: the report refreshes itself, and a refresh may leave a hidden copy behind.
        page.locator(".st-key-exp_stop").get_by_role("button", name="Stop").click()
        page.locator(".st-key-exp_confirm").get_by_role("button").click()
        stopped = page.get_by_text("Experiment browser-ab stopped (stopped by hand)", exact=False)
        expect(stopped).to_be_visible(timeout=60_000)
        expect(page.get_by_test_id("stTable").last).to_contain_text("browser-ab")
        page.close()

    assert [p.name for p in taken] == [
        f"ui-{n}.png"
        for n in ("recommendations", "training", "models", "evaluation", "live", "experiments")
    ]
    assert all(p.stat().st_size > 10_000 for p in taken)
    if os.environ.get("RECSYS_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        for path in taken:
            shutil.copyfile(path, DOCS_IMG / path.name)
