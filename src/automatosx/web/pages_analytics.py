"""`/analytics`: the statistics document (SPEC section 11, `views.stats`) as charts and
tables, for the window `since` (an age: 7d, 12h) and optionally one `workflow`, both in
the URL. The figures are the store's (`ax workflow stats` prints the same); this page only
draws them: success rate, p50/p95 duration and cost per workflow as bars, the steps and
the most common errors as tables.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from automatosx.views.stats import stats_document
from automatosx.views.timestamps import DEFAULT_STATS_SINCE, parse_age
from automatosx.web.charts import bar_chart
from automatosx.web.formatting import cost, duration, percent
from automatosx.web.rendering import page, render
from automatosx.web.state import UiState, ui_state

router = APIRouter(include_in_schema=False)
State = Annotated[UiState, Depends(ui_state)]
WINDOWS = ("1h", "24h", "7d", "30d", "90d")  # offered in the form; any age works in the URL


@router.get("/analytics", response_class=HTMLResponse)
@page
def analytics_page(
    request: Request,
    ui: State,
    since: Annotated[str, Query(max_length=20)] = DEFAULT_STATS_SINCE,
    workflow: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    """Success rates, durations, cost, retries and errors of recent executions."""
    window = since.strip() or DEFAULT_STATS_SINCE
    stats = stats_document(
        ui.store, since=time.time() - parse_age(window), workflow=workflow or None
    )
    rows = stats["workflows"]
    charts = {
        "success": bar_chart(
            [(w["name"], [w["successRate"]]) for w in rows], ["success rate"], percent,
            maximum=1.0,
        ),
        "duration": bar_chart(
            [(w["name"], [w["p50DurationMs"], w["p95DurationMs"]]) for w in rows],
            ["p50", "p95"], duration,
        ),
        "cost": bar_chart([(w["name"], [w["costUsd"]]) for w in rows], ["cost"], cost),
    }  # fmt: skip
    workflows = sorted(w.name for w in ui.store.list_workflows())
    return render(
        request, "analytics.html", nav="analytics", stats=stats, charts=charts,
        since=window, workflow=workflow or None, workflows=workflows,
        windows=WINDOWS if window in WINDOWS else (*WINDOWS, window),
    )  # fmt: skip
