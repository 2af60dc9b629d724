"""`ax ui`: serve the dashboard and the JSON API over the store (SPEC section 10).

It binds to loopback unless told otherwise; any other address needs `--token` (checked
before anything is opened). The address it serves on is printed on stderr once the socket
is bound (with `--port 0`, the port the system chose), flushed, so a script can wait for
that line. Ctrl-C stops it; executions it resumed are paused first, never left orphaned.
"""

from __future__ import annotations

import socket
import sys

import typer

from automatosx.cli.apps import app

DEFAULT_PORT = 8765


@app.command("ui")
def ui_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port (0: any free one)."),
    token: str | None = typer.Option(
        None, "--token", envvar="AX_UI_TOKEN", show_envvar=True,
        help="Every request must carry it (Authorization: Bearer TOKEN, or ?token= once "
        "in a browser). Required for an address other than loopback.",
    ),
    read_only: bool = typer.Option(False, "--read-only", help="Refuse every change."),
    allow_host: list[str] = typer.Option(
        [], "--allow-host", metavar="NAME",
        help="Also answer requests whose Host is NAME (this machine's DNS name).",
    ),
) -> None:  # fmt: skip
    """Serve the dashboard and the HTTP API (http://127.0.0.1:8765/ by default)."""
    import uvicorn

    from automatosx.errors import AxError
    from automatosx.store import opened_store
    from automatosx.web.app import create_app
    from automatosx.web.config import UiConfig

    config = UiConfig(host, port, token, read_only, tuple(allow_host)).check()
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without it a response's headers and body, sent
        # apart, waited out the client's delayed ACK (40 ms a request, measured).
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind((host.strip("[]"), port))
        listener.listen(2048)  # connections wait in the backlog until the server accepts
    except OSError as exc:
        raise AxError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = listener.getsockname()[1]
    with opened_store() as store:  # the server shows runs started later: it may create it
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(store, config), log_level="warning", access_log=False,
                lifespan="on", timeout_graceful_shutdown=5,
            )
        )  # fmt: skip
        shown = f"[{host.strip('[]')}]" if ":" in host else host
        sys.stderr.write(f"Serving the dashboard on http://{shown}:{bound}/ (Ctrl-C stops)\n")
        sys.stderr.flush()
        server.run(sockets=[listener])
