"""The dashboard in a real browser: Playwright driving Debian's headless `chromium` against
a real `ax ui` over executions the real CLI runs.

The tests watch states change live (agents wait on files the test creates, so the test
sets the pace and never sleeps), press pause, resume and approve, check that a `<script>`
in an output stays text, that nothing breaks the Content-Security-Policy, and run axe-core
over each main page in light and dark. Screenshots of those pages in both themes are saved
under build/screenshots/ for people to look at. One browser serves the whole module.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    expect,
    sync_playwright,
)

from tests.conftest import AX
from tests.runtime.support import start_ax, step, wait_until, workflow, write_workflow
from tests.web.conftest import SERVING, Serve, UiServer
from tests.web.support import gate

ROOT = Path(__file__).parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
EVIL = "<script>alert(1)</script>"
# Runs before the page's own scripts (Playwright injects it outside the CSP): remembers
# every CSP violation the page reports, which a console listener alone could miss.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""

expect.set_options(timeout=20_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page and what it reported: console errors, dialogs, CSP violations."""

    page: Page
    errors: list[str]
    dialogs: list[str]

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found

    def assert_clean(self) -> None:
        assert self.violations() == []
        assert [e for e in self.errors if "Content Security Policy" in e or "Refused" in e] == []
        assert self.dialogs == []


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(viewport={"width": 1280, "height": 900})
    yield opened
    opened.close()


def watch(context: BrowserContext) -> Watched:
    page = context.new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    watched = Watched(page, [], [])

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return watched


def node(page: Page, key: str) -> Any:
    """The DAG box of step `key`."""
    return page.locator(f'svg.dag a[href*="step={key}#"] g.node')


def state_badge(page: Page) -> Any:
    return page.locator("#summary h1 .badge").first


def test_steps_change_state_live_and_pause_then_resume(
    context: BrowserContext, tmp_path: Path, ax_env: dict[str, str], serve: Serve
) -> None:
    first_go, first_on = tmp_path / "first-go", tmp_path / "first-on"
    second_go, second_on = tmp_path / "second-go", tmp_path / "second-on"
    data = workflow(
        [
            step("first", f"ax:announce={first_on} ax:wait-file={first_go}"),
            step("second", f"ax:announce={second_on} ax:wait-file={second_go}", ["first"]),
            step("third", "x", ["second"]),
        ],
        name="live",
    )
    server = serve(ax_env["AX_DB"])
    watched = watch(context)
    page = watched.page
    page.goto(server.url)
    expect(page.locator("#runs")).to_contain_text("No executions")
    runner = start_ax(["workflow", "run", str(write_workflow(tmp_path, data))], env=ax_env,
                      cwd=tmp_path)  # fmt: skip
    wait_until(first_on.exists)
    run = page.get_by_role("link", name=re.compile(r"^[0-9a-f]{8}$"))
    expect(run).to_have_count(1)  # the list polls: the new run shows without a reload
    run.click()
    expect(node(page, "first")).to_have_class(re.compile(r"\bstate-running\b"))
    expect(node(page, "second")).to_have_class(re.compile(r"\bstate-pending\b"))
    expect(state_badge(page)).to_have_text("executing")

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status")).to_contain_text("Pause: the execution is executing")
    expect(page.locator("#summary")).to_contain_text("Pausing")  # live, no reload
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    first_go.touch()  # the running step ends; the runner pauses instead of going on
    assert runner.wait(30) == 4
    expect(state_badge(page)).to_have_text("paused")
    expect(node(page, "first")).to_have_class(re.compile(r"\bstate-completed\b"))
    expect(node(page, "second")).to_have_class(re.compile(r"\bstate-pending\b"))

    page.get_by_role("button", name="Resume").click()  # the server runs the rest
    expect(node(page, "second")).to_have_class(re.compile(r"\bstate-running\b"))
    expect(state_badge(page)).to_have_text("executing")
    second_go.touch()
    expect(state_badge(page)).to_have_text("completed")
    expect(node(page, "third")).to_have_class(re.compile(r"\bstate-completed\b"))
    expect(page.locator("#summary button")).to_have_count(0)
    expect(page.locator("#events")).to_contain_text("workflow_resumed")
    watched.assert_clean()


def test_a_gate_is_approved_from_its_page(
    context: BrowserContext, tmp_path: Path, ax_env: dict[str, str], serve: Serve
) -> None:
    data = workflow([gate("review", message="Ship it?"), step("ship", "x", ["review"])],
                    name="gated")  # fmt: skip
    runner = start_ax(["workflow", "run", str(write_workflow(tmp_path, data))], env=ax_env,
                      cwd=tmp_path)  # fmt: skip
    server = serve(ax_env["AX_DB"])
    watched = watch(context)
    page = watched.page
    page.goto(server.url + "pending")
    expect(page.locator("#pending")).to_contain_text("Ship it?")  # polled until it opens
    page.get_by_role("link", name=re.compile(r"^[0-9a-f]{8}$")).first.click()
    expect(node(page, "review")).to_have_class(re.compile(r"\bstate-waiting\b"))
    page.get_by_label("Comment on review").fill("fine by me")
    page.get_by_role("button", name="Approve review").click()
    expect(page.get_by_role("status")).to_contain_text("Approved review")
    expect(state_badge(page)).to_have_text("completed")
    expect(node(page, "review")).to_have_class(re.compile(r"\bstate-completed\b"))
    expect(node(page, "ship")).to_have_class(re.compile(r"\bstate-completed\b"))
    assert runner.wait(30) == 0
    page.goto(page.url.split("#")[0].split("?")[0] + "?type=approval_granted")
    expect(page.locator("#events")).to_contain_text("fine by me")
    watched.assert_clean()


# ---- the gallery: one store holding every kind of step, looked at many ways ----


@dataclass
class Gallery:
    server: UiServer
    execution_id: str  # finished: retries, a fan-out, a skipped step, a <script> output
    waiting_id: str  # waiting at a gate, for the pending page


def gallery_flow() -> dict[str, Any]:
    return workflow(
        [
            step("plan", 'ax:output={"files":["a.py","b.py","c.py"]}'),
            step("lint", "ax:fail-attempts=1", ["plan"],
                 retryPolicy={"maxRetries": 1, "retryDelayMs": 400}),
            step("review", "ax:sleep=0.2 review {{file}}", ["plan"],
                 forEach={"items": "steps.plan.output.files", "as": "file"}),
            step("docs", "x", ["plan"], **{"if": "false"}),
            step("render", f"ax:output={EVIL}", ["lint", "review", "docs"]),
            step("publish", "x", ["render"]),
        ],
        name="gallery",
        config={"parallelism": 4},
    )  # fmt: skip


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gallery]:
    directory = tmp_path_factory.mktemp("gallery")
    environ = {**os.environ, "AX_DB": str(directory / "ax.db"), "NO_COLOR": "1"}

    def ax(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AX, *args], env=environ, cwd=directory, capture_output=True,
                              text=True, timeout=60)  # fmt: skip

    done = ax("workflow", "run", str(write_workflow(directory, gallery_flow())), "--format", "json")
    assert done.returncode == 0, done.stderr
    execution_id = re.search(r'"executionId": "([^"]+)"', done.stdout).group(1)  # type: ignore[union-attr]
    gated = directory / "gated"
    gated.mkdir()
    waiting = subprocess.Popen(
        [AX, "workflow", "run",
         str(write_workflow(gated, workflow([gate("approve", message="Publish <b>it</b>?")],
                                            name="release")))],
        env=environ, cwd=gated, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert waiting.stderr is not None
    waiting_id = waiting.stderr.readline().split()[1]  # "Execution ID started."
    server_process = subprocess.Popen(
        [AX, "ui", "--port", "0"], env=environ, cwd=directory,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server_process.stderr is not None
    line = server_process.stderr.readline()  # printed once the socket is bound
    match = SERVING.search(line)
    if match is None:
        server_process.kill()
        raise AssertionError(f"ax ui did not start: {line}{server_process.communicate()[1]}")
    server = UiServer(match.group(1), server_process)
    wait_until(lambda: ax("workflow", "pending").stdout.count("approve") >= 1)
    try:
        yield Gallery(server, execution_id, waiting_id)
    finally:
        ax("workflow", "cancel", waiting_id)
        waiting.communicate(timeout=30)
        server_process.send_signal(signal.SIGINT)
        server_process.communicate(timeout=15)


def main_pages(gallery: Gallery) -> dict[str, str]:
    return {
        "executions": "",
        "execution": f"executions/{gallery.execution_id}?step=render",
        "execution-waiting": f"executions/{gallery.waiting_id}",  # its buttons and gate
        "workflows": "workflows",
        "pending": "pending",
        "analytics": "analytics",
    }


def test_a_script_in_an_output_stays_text(gallery: Gallery, context: BrowserContext) -> None:
    watched = watch(context)
    page = watched.page
    page.goto(f"{gallery.server.url}executions/{gallery.execution_id}?step=render")
    output = page.locator("#step-detail pre.output")
    expect(output).to_have_text(EVIL)  # shown as the text it is
    assert page.locator("#step-detail script").count() == 0
    page.locator("#summary").dispatch_event("ax:changed")  # a live refresh swaps it in again
    expect(output).to_have_text(EVIL)
    watched.assert_clean()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_the_main_pages(gallery: Gallery, browser: Browser, scheme: str) -> None:
    """Saved for people to look at (build/screenshots/NAME-SCHEME.png); the pages load with
    no CSP violation and no error in either theme."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900})  # type: ignore[arg-type]
    try:
        watched = watch(context)
        page = watched.page
        for name, path in main_pages(gallery).items():
            page.goto(gallery.server.url + path)
            page.wait_for_load_state("load")
            expect(page.locator("h1").first).to_be_visible()
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(255, 255, 255)")
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{scheme}.png"), full_page=True)
            watched.assert_clean()
    finally:
        context.close()


def test_the_theme_toggle_is_remembered(gallery: Gallery, context: BrowserContext) -> None:
    page = watch(context).page
    page.goto(gallery.server.url)
    toggle = page.get_by_role("button", name="Dark mode")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.goto(gallery.server.url + "workflows")  # another page: still dark
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    expect(page.get_by_role("button", name="Light mode")).to_have_attribute("aria-pressed", "true")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(
    gallery: Gallery, browser: Browser, scheme: str
) -> None:
    """axe-core over each main page. The CSP would refuse the injected script, so this
    context alone bypasses it (the others check the CSP)."""
    assert hashlib.sha256(AXE.read_bytes()).hexdigest() == AXE_SHA256
    context = browser.new_context(bypass_csp=True, color_scheme=scheme)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        for name, path in main_pages(gallery).items():
            page.goto(gallery.server.url + path)
            page.add_script_tag(path=str(AXE))
            result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
            serious = [
                (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                for v in result["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            assert serious == [], (name, scheme, serious)
    finally:
        context.close()
