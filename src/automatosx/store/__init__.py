"""Where executions are kept: one `Store` interface, SQLite by default, PostgreSQL for scale.

Use `open_store()` (it reads `AX_DB`) and program against `Store`.
"""

from automatosx.store.base import Store
from automatosx.store.open import open_store, opened_store

__all__ = ["Store", "open_store", "opened_store"]
