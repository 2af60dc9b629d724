"""A test agent for the `command` provider that records what it did to a ledger file.

Each run appends JSON lines `{"event": "start"|"end", "step", "attempt", "pid", "ppid", "pgid",
"t"}` to the file named by `AX_TEST_LEDGER` (O_APPEND writes of one line are atomic), so
tests check ordering, overlap and re-runs from timestamps the agent itself recorded.

Behaviour comes from the prompt's `ax:` directives (so each step can differ) or argv:
  ax:sleep=SECONDS           sleep before answering
  ax:wait-file=PATH          wait (up to 30 s) until PATH exists before answering
  ax:touch=PATH              create PATH when done (another step may wait for it)
  ax:announce=PATH           create PATH once started
  ax:fail-attempts=N         exit 1 (stderr "planned failure") while AX_ATTEMPT <= N
  ax:fail-always             exit 1 every time
  ax:grandchild=PATH         spawn a long-sleeping grandchild first, write its pid to PATH
  ax:ignore-term             ignore SIGTERM (so only the group SIGKILL stops it)
  ax:output=JSON             print this JSON (default: {"step": ..., "attempt": ...})
  ax:echo                    print the prompt as text
  ax:check-deps=K1,K2        exit 3 unless those steps are already `completed` in AX_DB
  ax:kill-runner             SIGKILL the process that started it (its runner or worker),
                             as a step that runs its machine out of memory would
  ax:request=pause|cancel    record that control request for its execution in AX_DB
                             (SQLite) as its last act, as `ax workflow pause` would
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time


def record(event: str, **extra: object) -> None:
    path = os.environ.get("AX_TEST_LEDGER")
    if not path:
        return
    line = {
        "event": event,
        "step": os.environ.get("AX_STEP_KEY"),
        "attempt": int(os.environ.get("AX_ATTEMPT", "0")),
        "execution": os.environ.get("AX_EXECUTION_ID"),
        "key": os.environ.get("AX_IDEMPOTENCY_KEY"),
        "agent": os.environ.get("AX_AGENT"),
        "pid": os.getpid(),
        "ppid": os.getppid(),  # the runner (or worker) that started it
        "pgid": os.getpgid(0),
        "t": time.time(),
        **extra,
    }
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def directives(prompt: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for token in [*sys.argv[1:], *prompt.split()]:
        if token.startswith("ax:"):
            name, _, value = token[3:].partition("=")
            found[name] = value
    return found


def deps_completed(keys: list[str]) -> bool:
    db = sqlite3.connect(os.environ["AX_DB"], timeout=10)
    try:
        for key in keys:
            row = db.execute(
                "SELECT COUNT(*) FROM workflow_step_instances WHERE execution_id = ? "
                "AND key = ? AND state = 'completed'",
                (os.environ["AX_EXECUTION_ID"], key),
            ).fetchone()
            if not row or row[0] != 1:
                return False
        return True
    finally:
        db.close()


def request_control(request: str) -> None:
    db = sqlite3.connect(os.environ["AX_DB"], timeout=10)
    try:
        with db:
            db.execute(
                "UPDATE workflow_executions SET control_request = ? WHERE id = ?",
                (request, os.environ["AX_EXECUTION_ID"]),
            )
    finally:
        db.close()


def main() -> int:
    prompt = sys.stdin.read()
    options = directives(prompt)
    if "ignore-term" in options:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "grandchild" in options:
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, time; "
                "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)",
            ],
        )
        with open(options["grandchild"], "w", encoding="utf-8") as handle:
            handle.write(str(child.pid))
    record("start", prompt=prompt)
    if "kill-runner" in options:
        os.kill(os.getppid(), signal.SIGKILL)
        return 0
    if "announce" in options:
        with open(options["announce"], "a", encoding="utf-8"):
            pass
    if "check-deps" in options and not deps_completed(options["check-deps"].split(",")):
        record("end", ok=False)
        sys.stderr.write("dependencies were not committed before this step started\n")
        return 3
    time.sleep(float(options.get("sleep", "0") or 0))
    if "wait-file" in options:
        deadline = time.monotonic() + 30
        while not os.path.exists(options["wait-file"]) and time.monotonic() < deadline:
            time.sleep(0.01)
    attempt = int(os.environ.get("AX_ATTEMPT", "1"))
    failing = "fail-always" in options or attempt <= int(options.get("fail-attempts", "0"))
    record("end", ok=not failing)
    if "touch" in options:
        with open(options["touch"], "a", encoding="utf-8"):
            pass
    if failing:
        sys.stderr.write(f"noise\nplanned failure of attempt {attempt}\n")
        return 1
    if "request" in options:
        request_control(options["request"])
    if "echo" in options:
        sys.stdout.write(prompt)
    elif "output" in options:
        sys.stdout.write(options["output"])
    else:
        json.dump({"step": os.environ.get("AX_STEP_KEY"), "attempt": attempt}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
