"""The dashboard's pages through a real `ax ui` on loopback, over real executions run by
the CLI, in SQLite and in PostgreSQL: each page shows what the store holds, agent text is
escaped, unknown IDs get the 404 page, and the control buttons follow the state."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunAx
from tests.runtime.support import start_ax, step, wait_until, workflow, write_workflow
from tests.web.conftest import Serve
from tests.web.support import diamond, gate, run_json

STATIC = Path(__file__).parents[2] / "src" / "automatosx" / "web" / "static"
EVIL = "<script>alert(1)</script>"
BIG = 25_000  # characters: past the page's 20,000


@pytest.fixture
def env(ax_env: dict[str, str], store_url: str) -> dict[str, str]:
    return {**ax_env, "AX_DB": store_url}


def pages(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30)


def html(client: httpx.Client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.text[:500])
    assert response.headers["content-type"].startswith("text/html"), path
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert_no_inline_code(response.text)
    return response.text


def assert_no_inline_code(page: str) -> None:
    """What the CSP would block: inline scripts, style attributes or elements, handlers."""
    for script in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in script, script
    assert not re.search(r"<[a-z][^>]*\sstyle=", page)
    assert "<style" not in page
    assert not re.search(r"<[a-z][^>]*\son[a-z]+=", page)


def buttons(page: str) -> list[str]:
    """The commands a page's buttons post: `pause`, `cancel`, `approve gate`, ..."""
    found = []
    for url in re.findall(r'data-ax-post="([^"]+)"', page):
        parts = url.split("/")
        found.append(f"{parts[-1]} {parts[-2]}" if "/steps/" in url else parts[-1])
    return found


def listed(page: str) -> list[str]:
    """The executions a page links to, in its order."""
    return re.findall(r'href="/executions/([0-9a-f-]{36})"', page)


def event_ids(page: str) -> list[int]:
    log = page[page.index('<table class="events">') :]
    return [int(i) for i in re.findall(r'<tr><td class="num">(\d+)</td>', log)]


def texts_flow() -> dict[str, object]:
    return workflow(
        [
            step("evil", f"ax:output={EVIL}"),
            step("big", 'ax:output="' + "x" * BIG + '"'),
            step("fan", "item {{n}}", forEach={"items": "[1, 2]", "as": "n"}),
        ],
        name="texts",
    )


def test_every_page_shows_what_the_store_holds(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    done = run_json(run_ax, tmp_path, diamond(), env)
    execution_id = done["executionId"]
    server = serve(env["AX_DB"])
    with pages(server.url) as client:
        listing = html(client, "/")
        assert f'href="/executions/{execution_id}"' in listing
        assert "diamond" in listing and "state-completed" in listing
        assert 'hx-get="/parts/executions"' in listing and 'hx-trigger="every 2s"' in listing
        part = html(client, "/parts/executions")
        assert f'href="/executions/{execution_id}"' in part and "<html" not in part

        page = html(client, f"/executions/{execution_id[:8]}")  # a prefix is enough
        assert f"Execution {execution_id}" in page
        for key in ("plan", "left", "right", "join"):  # a box per step, linking to its panel
            assert f'href="/executions/{execution_id}?step={key}#step-panel"' in page
        assert page.count('<g class="node state-completed kind-agent') == 4
        assert page.count('class="edge') == 4
        # `right` failed once and was retried: two bars on its row, the backoff between
        assert "right attempt 1: failed in" in page and "right attempt 2: completed in" in page
        assert 'class="attempt state-failed"' in page
        assert page.count('<line class="backoff"') == 1
        assert "critical" in page
        assert "step_retrying" in page and "workflow_completed" in page  # the event log
        assert "data-ax-stream" not in page  # finished: nothing to follow
        assert buttons(page) == []
        assert "Finished: nothing to control." in page

        live = html(client, f"/executions/{execution_id}/live")
        for part_id in ("graph", "timeline", "steps", "events", "checkpoints"):
            assert f'<div id="{part_id}" hx-swap-oob="innerHTML">' in live

        panel = html(client, f"/executions/{execution_id}?step=left")
        assert 'id="step-panel"' in panel and "Attempt 1" in panel
        assert "left of {&#34;items&#34;:[1,2]}" in panel  # the rendered prompt

        assert "diamond" in html(client, "/workflows")
        assert "Nothing waits for a decision." in html(client, "/pending")
        analytics = html(client, "/analytics?since=1d")
        assert '<svg class="bars"' in analytics and "100.0%" in analytics
        assert ">right</td>" in analytics  # the steps table
        assert "planned failure" in analytics  # the most common errors
        assert html(client, "/analytics?workflow=diamond").count("<tbody>") == 3


def test_agent_text_is_escaped_and_long_outputs_are_cut_with_a_link(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    done = run_json(run_ax, tmp_path, texts_flow(), env)
    execution_id = done["executionId"]
    assert done["stepResults"]["evil"] == EVIL
    server = serve(env["AX_DB"])
    with pages(server.url) as client:
        evil = html(client, f"/executions/{execution_id}?step=evil")
        assert EVIL not in evil
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in evil
        big = html(client, f"/executions/{execution_id}?step=big")
        assert "x" * 20_000 in big and "x" * 20_001 not in big
        full = f"/api/v1/executions/{execution_id}/steps/big/output"
        assert f'<a href="{full}">the whole output</a>' in big
        assert client.get(full).json() == "x" * BIG
        fan = html(client, f"/executions/{execution_id}?step=fan")
        assert "each of its 2 items ran as its own step" in fan
        assert f'href="/executions/{execution_id}?step=fan%5B1%5D#step-panel">fan[1]</a>' in fan
        item = html(client, f"/executions/{execution_id}?step=fan%5B1%5D")
        assert '<pre class="text">item 2</pre>' in item


def test_unknown_ids_and_bad_filters_get_an_error_page(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    done = run_json(run_ax, tmp_path, workflow([step("a", "x")]), env)
    server = serve(env["AX_DB"])
    with pages(server.url) as client:
        for path in ["/executions/ffffffff", "/executions/ffffffff/live", "/?workflow=nope",
                     f"/executions/{done['executionId']}?step=nope"]:  # fmt: skip
            page = html(client, path, status=404)
            assert "<h1>Not found</h1>" in page, path
        assert "did you mean" in html(client, f"/executions/{done['executionId']}?step=aa", 404)
        for path in ["/?state=bogus", "/analytics?since=soon",
                     f"/executions/{done['executionId']}?type=bogus"]:  # fmt: skip
            assert "Cannot show this" in html(client, path, status=400), path


def test_the_list_filters_and_pages_by_cursor(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    flows = [workflow([step("a", "x")]), workflow([step("a", "ax:fail-always")]), diamond()]
    ids = [run_json(run_ax, tmp_path, data, env)["executionId"] for data in flows]
    server = serve(env["AX_DB"])
    with pages(server.url) as client:
        first = html(client, "/?limit=2")
        assert listed(first) == [ids[2], ids[1]]  # newest first
        (older,) = re.findall(r'<a href="([^"]+)" rel="next">Older</a>', first)
        assert older == f"/?limit=2&amp;cursor={ids[1]}"
        second = html(client, older.replace("&amp;", "&"))
        assert listed(second) == [ids[0]]
        assert f'hx-get="/parts/executions?limit=2&amp;cursor={ids[1]}"' in second
        assert 'rel="next"' not in second and '<a href="/?limit=2">Newest</a>' in second
        failed = html(client, "/?state=failed")
        assert listed(failed) == [ids[1]]
        assert '<option value="failed" selected>' in failed  # the filter shows in the form
        assert listed(html(client, "/?workflow=diamond")) == [ids[2]]
        assert "No executions match these filters." in html(client, "/?state=paused")

        retries = html(client, f"/executions/{ids[2]}?type=step_retrying")
        log = retries[retries.index('<table class="events">') :]
        assert re.findall(r"<td>(step_\w+|workflow_\w+)</td>", log) == ["step_retrying"]
        every = event_ids(html(client, f"/executions/{ids[2]}"))
        assert len(every) > 3 and every == sorted(every)
        assert event_ids(html(client, f"/executions/{ids[2]}?after={every[1]}")) == every[2:]


def test_buttons_follow_the_execution_state(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    hold, held = tmp_path / "hold", tmp_path / "held"
    data = workflow(
        [step("slow", f"ax:announce={held} ax:wait-file={hold}"), step("next", "x", ["slow"])]
    )
    runner = start_ax(["workflow", "run", str(write_workflow(tmp_path, data))], env=env,
                      cwd=tmp_path)  # fmt: skip
    wait_until(held.exists)
    server = serve(env["AX_DB"])
    read_only = serve(env["AX_DB"], "--read-only")
    with pages(server.url) as client, pages(read_only.url) as viewer:
        (execution_id,) = listed(html(client, "/"))
        path = f"/executions/{execution_id}"
        running = html(client, path)
        assert buttons(running) == ["pause", "cancel"]
        assert f'data-ax-stream="/api/v1/executions/{execution_id}/stream?after=' in running
        assert buttons(html(viewer, path)) == []
        assert "Read-only server: no controls." in html(viewer, path)

        assert run_ax("workflow", "pause", execution_id, env=env).returncode == 0
        pausing = html(client, path)
        assert buttons(pausing) == ["cancel"] and "Pausing" in pausing
        hold.touch()
        assert runner.wait(30) == 4
        paused = html(client, path)
        assert buttons(paused) == ["resume", "cancel"]
        assert "data-ax-stream" in paused  # a paused execution may go on: still followed
        assert buttons(html(viewer, path)) == []
        assert run_ax("workflow", "cancel", execution_id, env=env).returncode == 0
        assert buttons(html(client, path)) == []


def test_a_waiting_gate_has_its_decision_buttons(
    run_ax: RunAx, tmp_path: Path, env: dict[str, str], serve: Serve
) -> None:
    data = workflow([gate("review", message="Ship <b>it</b>?"), step("ship", "x", ["review"])])
    runner = start_ax(["workflow", "run", str(write_workflow(tmp_path, data))], env=env,
                      cwd=tmp_path)  # fmt: skip
    server = serve(env["AX_DB"])
    read_only = serve(env["AX_DB"], "--read-only")
    with pages(server.url) as client, pages(read_only.url) as viewer:
        wait_until(lambda: "review" in html(client, "/pending"))
        pending = html(client, "/pending")
        assert "Ship &lt;b&gt;it&lt;/b&gt;?" in pending
        assert buttons(pending) == ["approve review", "reject review"]
        assert buttons(html(viewer, "/pending")) == []
        execution_id = listed(pending)[0]
        page = html(client, f"/executions/{execution_id}")
        assert buttons(page) == ["pause", "cancel", "approve review", "reject review"]
        assert "Waiting for a decision" in page
        assert '<g class="node state-waiting kind-approval' in page
        assert "review attempt 1: waiting for a decision for" in page
        assert '<g class="node state-pending kind-agent' in page  # `ship`: drawn before it runs
        assert buttons(html(viewer, f"/executions/{execution_id}")) == []

        assert run_ax("workflow", "approve", execution_id, "review", env=env).returncode == 0
        assert runner.wait(30) == 0
        assert buttons(html(client, f"/executions/{execution_id}")) == []
        assert "Nothing waits for a decision." in html(client, "/pending")


def test_the_vendored_htmx_is_the_file_its_table_names(tmp_path: Path, serve: Serve) -> None:
    listed = (STATIC / "VENDORED.md").read_text(encoding="utf-8")
    digest = hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest()
    assert "| `htmx.min.js` | htmx.org | 2.0.11 | 0BSD" in listed and digest in listed
    server = serve(str(tmp_path / "ax.db"))
    with pages(server.url) as client:
        for name in ("htmx.min.js", "app.js", "app.css", "favicon.svg"):
            response = client.get(f"/static/{name}")
            assert response.status_code == 200, name
        assert hashlib.sha256(client.get("/static/htmx.min.js").content).hexdigest() == digest
