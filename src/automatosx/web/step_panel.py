"""The selected step's panel on an execution's page: each attempt's rendered prompt and
output (or error), its times, tokens and cost, from the attempts document
(`views.attempts`).

Texts are shown as text: the templates escape them (autoescape) and put them in `<pre>`.
Secrets were masked by the store before anything was written. An output or prompt longer
than `TEXT_LIMIT` characters is cut, with a link to the API's full output, so a step that
printed megabytes does not make the page megabytes.
"""

from __future__ import annotations

import json
from typing import Any

from automatosx.store.base import Store
from automatosx.store.records import ExecutionRecord
from automatosx.views.attempts import attempts_document

TEXT_LIMIT = 20_000  # characters of a prompt or an output shown on the page
ITEMS_LINKED = 20  # a forEach step's panel links its first items (the steps table has all)


def step_panel(
    store: Store, execution: ExecutionRecord, key: str, document: dict[str, Any]
) -> dict[str, Any]:
    """The panel of step instance `key` (NotFoundError, naming the closest, if unknown)."""
    attempts = attempts_document(store, execution, key)
    shown = []
    for attempt in attempts:
        prompt, prompt_cut = cut(attempt.get("prompt"))
        output, output_cut = cut(attempt.get("output"))
        shown.append(
            {**attempt, "promptText": prompt, "promptCut": prompt_cut,
             "outputText": output, "outputCut": output_cut}
        )  # fmt: skip
    entry = document["steps"].get(key) or {}
    items = entry.get("items") or 0
    return {
        "key": key,
        "entry": entry,
        "attempts": shown,
        "outputUrl": f"/api/v1/executions/{execution.id}/steps/{key}/output",
        # a forEach step has no attempts of its own: its items do (the first few linked)
        "items": items,
        "itemKeys": [f"{key}[{index}]" for index in range(min(items, ITEMS_LINKED))],
        "childExecutionId": entry.get("childExecutionId"),
    }


def as_text(value: Any) -> str | None:
    """An output as people read it: text as it is, anything else as indented JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def cut(value: Any, limit: int = TEXT_LIMIT) -> tuple[str | None, bool]:
    """The text of `value`, at most `limit` characters, and whether it was cut."""
    text = as_text(value)
    if text is None or len(text) <= limit:
        return text, False
    return text[:limit], True
