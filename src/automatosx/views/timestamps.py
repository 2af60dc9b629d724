"""Times as the contract writes them: the one formatter lives in `store.timestamps` (stored
values carry them too); the read model and the CLI import it from here."""

from __future__ import annotations

from automatosx.store.timestamps import iso

__all__ = ["iso"]
