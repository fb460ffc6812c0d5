"""The dashboard in a real browser: Debian's chromium driven by Playwright.

Screenshots go to ``test-artifacts/browser/`` at the repository root (git-ignored),
or to ``$HELDOUT_TEST_ARTIFACTS/browser``; the folder is printed. Without chromium
the test fails, never skips: ``scripts/test.sh`` installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from playwright.sync_api import Browser, Page, expect, sync_playwright

from heldout.web import labels_of
from tests.support.openai_server import OpenAIServer
from tests.support.otel import agent_trace, provider
from tests.web.conftest import Served
from tests.web.seed import EVAL_RUN, PAIRWISE_RUN, PAYLOAD, seed_eval, seed_pairwise, seed_regress

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def artifacts() -> Path:
    base = Path(os.environ.get("HELDOUT_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder = base / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nbrowser screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert dialogs == [], "a script ran in the dashboard"


def test_cohort_row_and_spot_check_label_in_a_browser(
    served: Served, page: Page, artifacts: Path
) -> None:
    seed_eval(served.store)
    seed_regress(served.store)
    exporter = OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", headers=served.headers())
    tracer_provider = provider(exporter)
    agent_trace(tracer_provider, "Can I get a refund for my broken kettle?", PAYLOAD)
    agent_trace(tracer_provider, "Do you ship to Norway?", "Yes, in 4 days.")
    tracer_provider.shutdown()

    page.goto(served.url + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator(".chart svg")).to_have_count(2)
    page.screenshot(path=artifacts / "01-overview.png", full_page=True)

    # A production cohort, and the trace whose output is a script: shown, never run.
    page.get_by_role("link", name="refunds").click()
    expect(page.get_by_role("heading", name="Production cohort refunds")).to_be_visible()
    page.locator("#traces a").first.click()
    expect(page.locator("#output")).to_have_text(PAYLOAD)
    assert page.title().startswith("Trace ")  # the payload would have set it to "pwned"
    page.screenshot(path=artifacts / "02-trace.png", full_page=True)

    # A run, then a row: input, output, context, every judge's score and reason.
    page.get_by_role("link", name="Runs").click()
    page.get_by_role("link", name="demo eval").click()
    expect(page.get_by_role("heading", name="demo eval")).to_be_visible()
    page.get_by_role("link", name="row-003").click()
    expect(page.locator("#input")).to_have_text("Question 3: how do I reset my password?")
    expect(page.locator("#scores tbody tr")).to_have_count(2)
    page.screenshot(path=artifacts / "03-row.png", full_page=True)

    # Spot-check: sign in with the token, then label the first row.
    page.get_by_role("link", name="Label rows of this run").click()
    page.get_by_role("link", name="sign in", exact=True).click()
    page.get_by_label("Token").fill(served.token or "")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#label-form")).to_be_visible()
    expect(page.locator("#spot-output")).to_have_text(PAYLOAD)  # row-000 comes first
    page.screenshot(path=artifacts / "04-spotcheck.png", full_page=True)
    page.get_by_label("fail").check()
    page.get_by_label("Note").fill("the output is a script, not an answer")
    page.get_by_role("button", name="Record label").click()
    expect(page.locator("#accuracy tbody tr").first).to_contain_text("100%")
    page.screenshot(path=artifacts / "05-labelled.png", full_page=True)

    page.goto(f"{served.url}/runs/{EVAL_RUN}/rows/row-000")
    expect(page.get_by_text("the output is a script, not an answer")).to_be_visible()
    assert page.title() == "row-000 · heldout"


def test_a_preference_label_on_a_pairwise_axis_in_a_browser(
    served: Served, openai_server: OpenAIServer, page: Page, artifacts: Path
) -> None:
    seed_pairwise(served.store, openai_server)
    page.goto(f"{served.url}/login?next=/runs/{PAIRWISE_RUN}/spotcheck")
    page.get_by_label("Token").fill(served.token or "")
    page.get_by_role("button", name="Sign in").click()
    expect(
        page.get_by_role("heading", name="Which response is better on win_rate?")
    ).to_be_visible()
    # p0 first: the output is the good answer, shown as response 1 or 2 by a seeded draw.
    first = page.locator("#response-1").inner_text()
    better = "Response 1 is better" if "good" in first else "Response 2 is better"
    page.screenshot(path=artifacts / "06-preference.png", full_page=True)
    page.get_by_label(better).check()
    page.get_by_role("button", name="Record label").click()
    row = page.locator("#accuracy tbody tr").first
    expect(row).to_contain_text("A/B/tie")
    expect(row).to_contain_text("100%")  # the judge preferred the good answer too
    page.screenshot(path=artifacts / "07-preference-labelled.png", full_page=True)
    (label,) = labels_of(served.store, PAIRWISE_RUN)
    assert (label.sample_key, label.label) == ("p0", "A")
