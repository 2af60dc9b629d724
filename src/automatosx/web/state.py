"""What the server holds while it runs: the open store, the event feed, the runners it
started, and its config. Routes reach it through `ui_state(request)`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from automatosx.store.base import Store
    from automatosx.web.config import UiConfig
    from automatosx.web.event_feed import EventFeed
    from automatosx.web.runners import BackgroundRunners


@dataclass
class UiState:
    store: Store
    config: UiConfig
    feed: EventFeed
    runners: BackgroundRunners


def ui_state(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state
