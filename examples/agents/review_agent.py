"""A deterministic stand-in agent for the examples: no key, no network, no model.

It follows the `command` provider contract: the rendered prompt arrives on stdin, the answer
goes to stdout (a JSON object for structured output, plain text for the writer), a non-zero
exit is a failure. What it answers is derived only from the prompt and the files the prompt
names, so the same input always gives the same output and the examples can be tested.

    echo "Parse the code changes in examples/agents/review_agent.py" \
        | python3 examples/agents/review_agent.py --role backend
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

RISKY_PATTERNS = {
    "eval(": "high",
    "exec(": "high",
    "os.system": "high",
    "pickle.loads": "high",
    "shell=True": "high",
    "subprocess": "medium",
    "password": "medium",
    "secret": "medium",
    "http://": "low",
    "TODO": "low",
}
SEVERITY_RANK = {"none": 0, "low": 1, "medium": 2, "high": 3}


def named_files(prompt: str, suffix: str) -> list[Path]:
    """Existing files with `suffix` that the prompt mentions (relative to the working dir)."""
    found = []
    for token in re.findall(r"[\w./-]+" + re.escape(suffix), prompt):
        path = Path(token)
        if path.is_file() and path not in found:
            found.append(path)
    return found


def python_functions(paths: list[Path]) -> list[str]:
    """Function names defined in the files (parsed, never imported or run)."""
    names: list[str] = []
    for path in paths:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.append(node.name)
    return sorted(set(names))


def backend(prompt: str) -> dict[str, Any]:
    files = named_files(prompt, ".py")
    functions = python_functions(files)
    if not functions:  # no source file named: treat identifiers in the prompt as the changes
        functions = sorted(set(re.findall(r"\b([a-z]+_[a-z_]+)\b", prompt)))
    return {"files": [str(p) for p in files], "functions": functions, "summary": first_line(prompt)}


def security(prompt: str) -> dict[str, Any]:
    text = prompt + "".join(p.read_text(encoding="utf-8") for p in named_files(prompt, ".py"))
    findings = [
        {"pattern": pattern, "severity": severity}
        for pattern, severity in RISKY_PATTERNS.items()
        if pattern in text
    ]
    worst = max((f["severity"] for f in findings), key=SEVERITY_RANK.__getitem__, default="none")
    return {"findings": findings, "severity": worst, "passed": worst not in ("high",)}


def quality(prompt: str) -> dict[str, Any]:
    issues = []
    names = re.findall(r"\"([A-Za-z_]\w*)\"", prompt)
    issues += [f"function '{n}' has a very short name" for n in names if len(n) <= 2]
    issues += [f"'{n}' is not snake_case" for n in names if n != n.lower()]
    score = max(0, 100 - 10 * len(issues))
    return {"issues": issues, "score": score, "passed": score >= 60, "checked": len(names)}


def data(prompt: str) -> dict[str, Any]:
    tables = named_files(prompt, ".csv")
    if not tables:
        columns = sorted(set(re.findall(r"\"([a-z_]+)\"", prompt)))
        return {"columns": columns, "rows": 0, "cleanedColumns": columns, "droppedRows": 0}
    with tables[0].open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    complete = [row for row in body if len(row) == len(header) and all(cell for cell in row)]
    return {
        "source": str(tables[0]),
        "columns": header,
        "rows": len(body),
        "cleanedColumns": [c.strip().lower() for c in header],
        "droppedRows": len(body) - len(complete),
    }


def devops(prompt: str) -> dict[str, Any]:
    environment = "production" if "production" in prompt.lower() else "staging"
    return {"environment": environment, "status": "ok", "actions": [first_line(prompt)]}


def writer(prompt: str) -> str:
    lines = [f"# Report ({os.environ.get('AX_STEP_KEY', 'report')})", ""]
    decoder = json.JSONDecoder()
    position = prompt.find("{")
    while position != -1:  # every JSON object quoted in the prompt becomes a bullet list
        try:
            document, end = decoder.raw_decode(prompt, position)
        except ValueError:
            position = prompt.find("{", position + 1)
            continue
        if isinstance(document, dict):
            lines += [f"- {key}: {json.dumps(item)}" for key, item in document.items()]
        position = prompt.find("{", end)
    lines += ["", first_line(prompt)]
    return "\n".join(lines)


def first_line(prompt: str) -> str:
    return prompt.strip().splitlines()[0][:120] if prompt.strip() else ""


ROLES = {"backend": backend, "security": security, "quality": quality, "data": data,
         "devops": devops, "writer": writer}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--role", choices=sorted(ROLES), required=True)
    args = parser.parse_args()
    answer = ROLES[args.role](sys.stdin.read())
    sys.stdout.write(answer if isinstance(answer, str) else json.dumps(answer))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
