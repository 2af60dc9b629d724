"""Writing a definition back out as YAML or JSON, and the JSON Schema of the file format.

The output is the file form (camelCase keys, defaults left out) and always loads back, through
the same safe loader, to an equal definition: what the store keeps and what `ax` prints can be
re-run as a file.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from automatosx.definition.models import WorkflowDefinition

SCHEMA_ID = "https://automatosx.dev/schemas/workflow.schema.json"


class _PlainDumper(yaml.SafeDumper):
    """Never writes anchors or aliases: the loader bounds them, so output avoids them."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# Unicode line breaks (NEL, LS, PS), and the bidirectional controls PyYAML writes as they are.
_DOUBLE_QUOTED = re.compile("[\x85\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _represent_text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """PyYAML folds Unicode line breaks (NEL, LS, PS) inside single-quoted or plain text, so
    text holding one is written double-quoted, where they are escaped and survive. So is text
    holding a bidirectional control: printed for people, it is shown as its escape (`\\u202e`,
    see the CLI's `neutralise`), which only inside double quotes still reads back as the same
    text. Other text of several lines is a literal block (`|`), as a person writes a prompt;
    PyYAML falls back to quotes when a block cannot hold the text exactly."""
    if _DOUBLE_QUOTED.search(data):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    if "\n" in data.rstrip("\n"):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_str(data)


_PlainDumper.add_representer(str, _represent_text)


def dump_yaml(data: Any) -> str:
    """Plain data as block-style YAML in the order given, with no anchors or tags: what
    `to_yaml` writes, and what the CLI prints for people (`ax agent show`)."""
    return yaml.dump(
        data,
        Dumper=_PlainDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def to_yaml(definition: WorkflowDefinition) -> str:
    return dump_yaml(definition.to_data())


def to_json(definition: WorkflowDefinition, *, indent: int | None = 2) -> str:
    return json.dumps(definition.to_data(), indent=indent, ensure_ascii=False)


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a workflow file, with the file's camelCase names; point
    an editor's YAML plugin at it (`# yaml-language-server: $schema=...`)."""
    schema = WorkflowDefinition.model_json_schema(by_alias=True, mode="validation")
    for model in [schema, *schema.get("$defs", {}).values()]:
        if "description" in model:
            model["description"] = _unwrapped(model["description"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "AutomatosX workflow",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def _unwrapped(docstring: str) -> str:
    """A model's docstring as an editor should show it: the lines of each paragraph joined
    (the source wraps them at 100 columns; a tooltip wraps them again)."""
    paragraphs = docstring.split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
