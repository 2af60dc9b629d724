"""Entry point of `ax`.

`--version` is answered before Typer, Rich or pydantic are imported so start-up stays close to
a bare interpreter. Every project error becomes one `error:` line on stderr and its exit code;
an unexpected exception too (exit 1). `--debug` (anywhere on the line) also prints the
traceback first, and keeps the exit code: a script that tells bad input (2) from a failed
run (1) must not see the answer change because someone asked for details. The `AX_*`
settings are checked before any command runs (not for `--help`, which must always work,
nor while the shell asks for completions, which must never print an error).
"""

from __future__ import annotations

import os
import sys

COMPLETE_VAR = "_AX_COMPLETE"  # set by the shell completion scripts (cli/completion.py)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        from automatosx import __version__

        sys.stdout.write(f"ax {__version__}\n")
        raise SystemExit(0)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    raise SystemExit(_run(args, debug=debug))


def _run(args: list[str], *, debug: bool) -> int:
    from automatosx.errors import AxError

    try:
        if "--help" not in args and not os.environ.get(COMPLETE_VAR):
            from automatosx.settings import check_settings

            check_settings()
        from automatosx.cli.commands import app

        result = app(args=args, prog_name="ax", standalone_mode=False)
        return int(result) if isinstance(result, int) else 0
    except AxError as exc:
        if debug:
            _traceback()
        for line in exc.lines():
            _error(line)
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as exc:  # Typer's own usage errors and anything unforeseen
        import typer
        from typer.exceptions import TyperException

        if isinstance(exc, typer.Exit):
            return int(exc.exit_code)
        if isinstance(exc, typer.Abort):
            _error("aborted")
            return 130
        if isinstance(exc, TyperException):
            _error(exc.format_message())
            return 2 if exc.exit_code == 2 else int(exc.exit_code)
        if debug:
            _traceback()
            _error(f"unexpected {type(exc).__name__}: {exc}")
        else:
            _error(f"unexpected {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        return 1


def _traceback() -> None:
    """The exception being handled, as Python prints it, on stderr (for `--debug`)."""
    import traceback

    sys.stderr.write(traceback.format_exc())
    sys.stderr.flush()


def _error(message: str) -> None:
    from automatosx.cli.output import neutralise  # a message may quote the file or an agent

    first_line = neutralise(" ".join(message.split("\n")).strip())
    sys.stderr.write(f"error: {first_line}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    main()
