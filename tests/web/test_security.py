"""SPEC section 10's rules, on every route of the OpenAPI document and the pages, the
stream included: the Host check (DNS rebinding), the token, POST-only changes with a
same-origin Origin, `--read-only`, and the headers every response carries."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import RunAx
from tests.runtime.support import step, workflow
from tests.web.conftest import Serve, UiServer
from tests.web.support import run_json

TOKEN = "s3cret-token-for-the-tests"
PAGES = ["/", "/static/app.css"]


def routes(server: UiServer, execution_id: str) -> list[tuple[str, str]]:
    """(method, concrete path) of every operation the OpenAPI document lists, plus pages."""
    with httpx.Client(base_url=server.url, headers=_bearer()) as client:
        spec = client.get("/api/v1/openapi.json").json()
    found = [("get", "/api/v1/openapi.json")] + [("get", page) for page in PAGES]
    for path, operations in spec["paths"].items():
        concrete = path.replace("{id}", execution_id).replace("{key}", "a")
        found += [(method, concrete) for method in operations]
    assert ("get", f"/api/v1/executions/{execution_id}/stream") in found
    return found


def _bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def finished(run_ax: RunAx, tmp_path: Path, ax_env: dict[str, str]) -> str:
    return str(run_json(run_ax, tmp_path, workflow([step("a", "x")]), ax_env)["executionId"])


def test_a_foreign_host_header_is_refused_everywhere(
    serve: Serve, ax_env: dict[str, str], finished: str
) -> None:
    server = serve(ax_env["AX_DB"], "--token", TOKEN)
    for method, path in routes(server, finished):
        for host in ["evil.example", f"evil.example:{server.port}", "127.0.0.1.evil.example"]:
            response = httpx.request(
                method, server.url.rstrip("/") + path, headers={**_bearer(), "Host": host}
            )
            assert response.status_code == 400, (method, path, host)
    with httpx.Client(base_url=server.url, headers=_bearer()) as client:
        for host in [f"localhost:{server.port}", f"127.0.0.1:{server.port}", "localhost"]:
            assert client.get("/api/v1/workflows", headers={"Host": host}).status_code == 200


def test_with_a_token_every_route_needs_it(
    serve: Serve, ax_env: dict[str, str], finished: str
) -> None:
    server = serve(ax_env["AX_DB"], "--token", TOKEN)
    base = server.url.rstrip("/")
    for method, path in routes(server, finished):
        assert httpx.request(method, base + path).status_code == 401, (method, path)
        wrong = {"Authorization": "Bearer not-the-token-at-all"}
        assert httpx.request(method, base + path, headers=wrong).status_code == 401, path
    with httpx.Client(base_url=server.url, headers=_bearer()) as client:
        assert client.get("/api/v1/workflows").status_code == 200
        # the bearer token stands for the Origin: a script with the token may change things
        assert client.post(f"/api/v1/executions/{finished}/pause").status_code == 409


def test_a_browser_trades_the_token_in_the_url_for_a_cookie(
    serve: Serve, ax_env: dict[str, str], finished: str
) -> None:
    server = serve(ax_env["AX_DB"], "--token", TOKEN)
    with httpx.Client(base_url=server.url) as browser:
        first = browser.get(f"/?state=completed&token={TOKEN}")
        assert first.status_code == 303
        assert first.headers["location"] == "/?state=completed"  # the token leaves the URL
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert browser.get("/").status_code == 200  # the cookie now
        assert browser.get(f"/api/v1/executions/{finished}/stream").status_code == 200
        # a cookie is sent by the browser on its own: a change also needs the Origin
        pause = f"/api/v1/executions/{finished}/pause"
        assert browser.post(pause).status_code == 403
        origin = {"Origin": server.url.rstrip("/")}
        assert browser.post(pause, headers=origin).status_code == 409  # allowed: it's done
    with httpx.Client(base_url=server.url) as stranger:
        assert stranger.get("/?token=wrong-token-of-some-length").status_code == 401
        assert "set-cookie" not in stranger.get("/?token=wrong-token-of-some-length").headers


def test_changes_are_same_origin_posts(serve: Serve, ax_env: dict[str, str], finished: str) -> None:
    server = serve(ax_env["AX_DB"])
    pause = f"/api/v1/executions/{finished}/pause"
    with httpx.Client(base_url=server.url) as client:
        assert client.post(pause).status_code == 403  # no Origin
        for origin in ["http://evil.example", f"http://localhost:{server.port + 1}", "null",
                       f"https://127.0.0.1:{server.port}"]:  # fmt: skip
            refused = client.post(pause, headers={"Origin": origin})
            assert refused.status_code == 403, origin
        same = client.post(pause, headers={"Origin": server.url.rstrip("/")})
        assert same.status_code == 409  # through the guard; the state forbids it
        for method in ["PUT", "DELETE", "PATCH"]:
            response = client.request(method, pause, headers={"Origin": server.url.rstrip("/")})
            assert response.status_code == 405, method
        assert client.get(pause).status_code == 405  # a GET never changes anything


def test_read_only_refuses_every_change(
    serve: Serve, ax_env: dict[str, str], finished: str
) -> None:
    server = serve(ax_env["AX_DB"], "--read-only")
    origin = {"Origin": server.url.rstrip("/")}
    for method, path in routes(server, finished):
        response = httpx.request(method, server.url.rstrip("/") + path, headers=origin)
        assert response.status_code == (403 if method == "post" else 200), (method, path)


def test_every_response_carries_a_strict_policy(
    serve: Serve, ax_env: dict[str, str], finished: str
) -> None:
    server = serve(ax_env["AX_DB"])
    with httpx.Client(base_url=server.url) as client:
        for path in ["/", "/api/v1/workflows", "/api/v1/executions/ffffffff",
                     f"/api/v1/executions/{finished}/stream"]:  # fmt: skip
            headers = client.get(path).headers
            policy = headers["content-security-policy"]
            assert "default-src 'none'" in policy and "script-src 'self'" in policy, path
            assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
            assert headers["x-content-type-options"] == "nosniff"
        refused = client.get("/", headers={"Host": "evil.example"}).headers
        assert "default-src 'none'" in refused["content-security-policy"]


def test_another_address_needs_a_token(run_ax: RunAx) -> None:
    run_ax("ui", "--host", "0.0.0.0", "--port", "0").assert_clean_error()
    short = run_ax("ui", "--host", "0.0.0.0", "--port", "0", "--token", "short")
    short.assert_clean_error()
    assert "too short" in short.stderr
    run_ax("ui", "--port", "99999").assert_clean_error()


def test_a_port_in_use_is_one_error_line(serve: Serve, run_ax: RunAx, tmp_path: Path) -> None:
    server = serve(str(tmp_path / "ax.db"))
    taken = run_ax("ui", "--port", str(server.port))
    taken.assert_clean_error()
    assert "cannot listen on 127.0.0.1" in taken.stderr
