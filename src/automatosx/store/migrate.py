"""Versioned schema migrations kept as `.sql` files (package data), one folder per dialect.

`migrations/<dialect>/NNN_name.sql` is version NNN. A store applies the versions it lacks, in
order, inside one locked transaction, and records each in `schema_version`, so several
processes opening a fresh database at once agree on one schema. A database newer than this
code is refused instead of being half-understood.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources

from automatosx.errors import AxError

_FILE_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


@cache
def load_migrations(dialect: str) -> tuple[Migration, ...]:
    """The migrations of `dialect` ("sqlite" or "postgres"), oldest first."""
    folder = resources.files("automatosx.store").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        text = entry.read_text(encoding="utf-8")
        statements = split_statements(text, sqlite_triggers=dialect == "sqlite")
        found.append(Migration(int(match.group(1)), match.group(2), statements))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return tuple(found)


def latest_version(dialect: str) -> int:
    return load_migrations(dialect)[-1].version


def split_statements(script: str, *, sqlite_triggers: bool = True) -> tuple[str, ...]:
    """Splits a script into statements at lines ending in `;`. SQLite's
    `CREATE TRIGGER ... BEGIN ...; END;` stays whole (`sqlite_triggers`), and PostgreSQL
    dollar-quoted bodies (`$$ ... $$`) are never split."""
    statements: list[str] = []
    buffer: list[str] = []
    in_dollar_quote = False
    for line in script.splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer.append(line)
        if line.count("$$") % 2 == 1:
            in_dollar_quote = not in_dollar_quote
        text = "\n".join(buffer)
        complete = not sqlite_triggers or sqlite3.complete_statement(text)
        if not in_dollar_quote and line.rstrip().endswith(";") and complete:
            statements.append(text.strip())
            buffer = []
    if "\n".join(buffer).strip():
        raise RuntimeError(f"unterminated SQL statement: {' '.join(buffer)[:80]}")
    return tuple(statements)


def check_not_newer(current: int, dialect: str) -> None:
    latest = latest_version(dialect)
    if current > latest:
        raise AxError(
            f"the database schema is version {current}, newer than this ax supports ({latest}); "
            "upgrade automatosx"
        )
