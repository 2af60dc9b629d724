"""`ax cache list | clear | prune`: the result cache's entries, which live in the store.

`list` shows what the cache would answer; `clear` removes the entries named (whole keys or
unique prefixes of 8+ characters, as `list` shows them) or, with no key, every entry;
`prune` removes the expired entries, and with `--older-than` those created before that
age. A row that cannot be read back stops `list` with one `error:` line naming the
`ax cache clear KEY` that removes it (`clear` and `prune` never need to read one).
"""

from __future__ import annotations

import time

import typer

from automatosx.cli.apps import cache_app
from automatosx.cli.output import OutputFormat, console, err_console, print_json, write_table
from automatosx.cli.workflow_read import opened_store
from automatosx.views.cache import cache_entry_document
from automatosx.views.timestamps import parse_age

FORMAT_OPTION = typer.Option(OutputFormat.table, "--format", help="Output format.")
SHORT_KEY = 12  # enough to name an entry in `ax cache clear` (any unique 8+ prefix does)


@cache_app.command("list")
def list_command(format: OutputFormat = FORMAT_OPTION) -> None:
    """The cached answers, newest first: step, agent, cost, age, expiry and hits."""
    now = time.time()
    with opened_store() as store:
        entries = store.list_cache_entries()
    documents = [cache_entry_document(entry, now) for entry in entries]
    if format is OutputFormat.json:
        print_json(documents)
        return
    if not entries:
        err_console.print("The result cache is empty.")
        return
    from automatosx.cli.output import relative_time

    rows = []
    for entry in entries:
        if entry.expires_at is None:
            expires = "never"
        elif entry.is_live(now):
            expires = "in " + relative_time(now, entry.expires_at).removesuffix(" ago")
        else:
            expires = f"expired {relative_time(entry.expires_at, now)}"
        cost = "-" if entry.cost_usd is None else f"${entry.cost_usd:.4f}"
        rows.append(
            (
                (entry.key[:SHORT_KEY], None),
                (entry.step_key or "-", None),
                (entry.agent or "-", None),
                (entry.provider or "-", None),
                (cost, None),
                (relative_time(entry.created_at, now), None),
                (expires, "yellow" if not entry.is_live(now) else None),
                (str(entry.hits), None),
                (entry.execution_id or "-", None),
            )
        )
    write_table(
        console,
        ("Key", "Step", "Agent", "Provider", "Cost", "Created", "Expires", "Hits", "Execution"),
        rows,
    )


@cache_app.command("clear")
def clear_command(
    keys: list[str] | None = typer.Argument(
        None,
        help="Entries to remove (keys or unique 8+ character prefixes); none: all.",
        show_default=False,
    ),
    format: OutputFormat = FORMAT_OPTION,
) -> None:
    """Remove the entries named, or every entry. An unknown key removes nothing (exit 2)."""
    with opened_store() as store:
        removed = store.delete_cache_entries(keys or None)
    _report(removed, format, what="")


@cache_app.command("prune")
def prune_command(
    older_than: str | None = typer.Option(
        None,
        "--older-than",
        help="Also entries created longer ago than this: 30m, 12h, 7d.",
        show_default=False,
    ),
    format: OutputFormat = FORMAT_OPTION,
) -> None:
    """Remove the expired entries, and with --older-than the old ones too."""
    age = None if older_than is None else parse_age(older_than)
    with opened_store() as store:
        removed = store.prune_cache(now=time.time(), older_than_seconds=age)
    what = " (expired" + (f" or older than {older_than.strip()})" if older_than else ")")
    _report(removed, format, what=what)


def _report(removed: list[str], format: OutputFormat, *, what: str) -> None:
    if format is OutputFormat.json:
        print_json({"removed": len(removed), "keys": removed})
        return
    noun = "entry" if len(removed) == 1 else "entries"
    console.print(f"Removed {len(removed)} cache {noun}{what}.", markup=False)
