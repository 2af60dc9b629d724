"""The Typer applications that command modules attach to (kept apart to avoid cycles).

Help is Click's plain layout (`rich_markup_mode=None`), as `gh` or `uv` print it: it
rewraps paragraphs to the terminal, shows no type for flags (Typer's Rich panels printed
`--help <bool>` and kept a docstring's line breaks, a lone word on a line at 80 columns),
and does not import Rich. `--install-completion` / `--show-completion` come from Typer;
`cli/completion.py` completes execution IDs and step keys from the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:  # Typer 0.29 carries its own copy of Click: its types, not click's
    from typer._click import Context, HelpFormatter


class CommandGroup(TyperGroup):
    """Lists each command with its whole first sentence, wrapped, where Click cuts it to
    the line with "..." ("Check a workflow file without running it; print its steps...")."""

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


app = typer.Typer(
    name="ax",
    help="AutomatosX: durable, declarative orchestration of multi-agent AI workflows.",
    cls=CommandGroup,
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _group(help: str) -> typer.Typer:
    return typer.Typer(help=help, cls=CommandGroup, no_args_is_help=True, rich_markup_mode=None)


workflow_app = _group("Validate, run, inspect and control workflows.")
agent_app = _group("The agent registry.")
provider_app = _group("Providers and their availability.")
cache_app = _group("The result cache: answers of cached steps, kept in the store.")
app.add_typer(workflow_app, name="workflow")
app.add_typer(agent_app, name="agent")
app.add_typer(provider_app, name="provider")
app.add_typer(cache_app, name="cache")


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
