"""The Typer applications that command modules attach to (kept apart to avoid cycles)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="ax",
    help="AutomatosX: durable, declarative orchestration of multi-agent AI workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
workflow_app = typer.Typer(
    help="Validate, run, inspect and control workflows.", no_args_is_help=True
)
agent_app = typer.Typer(help="The agent registry.", no_args_is_help=True)
provider_app = typer.Typer(help="Providers and their availability.", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")
app.add_typer(agent_app, name="agent")
app.add_typer(provider_app, name="provider")


def _show_version(value: bool) -> None:
    if value:
        from automatosx import __version__

        typer.echo(f"ax {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        help="Show the version and exit.",
        callback=_show_version,
        is_eager=True,
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        help="On an error, also print the Python traceback (the exit code stays the same). "
        "Accepted anywhere on the command line.",
    ),
) -> None:
    """AutomatosX: durable, declarative orchestration of multi-agent AI workflows."""
    # `ax` takes --debug out of the arguments before Typer parses them (cli/main.py), so it
    # works after a subcommand too; the option is declared here so that `ax --help` lists it.
