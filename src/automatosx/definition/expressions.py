"""CEL expressions in a workflow file: a step's `if` and its `forEach.items` (SPEC section 8).

An expression is parsed and checked once, when the file loads, and transpiled to Python by
cel-python: the user's text is never run as Python (cel-python generates the code from the
parse tree, literals escaped, and runs it as its own compiled runner does), and CEL has no
access to Python objects: it sees only the values we hand it. It may read `context` (the
execution context) and `steps.<key>.output` or `.state` of upstream steps; a key with a
`-` is written `steps["parse-changes"]`.

`validate` reports, at the field's path and all at once: a parse error, an unknown function,
a name other than `context`/`steps` (and the variable a macro binds), a step that is not
upstream, and an expression too big to be safe. Cost is bounded: an expression has at most
`MAX_EXPRESSION_CHARS` characters and `MAX_NODES` parse nodes, comprehensions (`all`,
`exists`, `map`, ...) nest at most `MAX_MACRO_DEPTH` deep, and an expression with a
comprehension is evaluated with a time limit (`EVALUATION_TIMEOUT_S`); without one, CEL
cannot loop, so its cost is linear in the data it reads.

cel-python is imported on first use: a workflow without expressions never pays for it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from automatosx.errors import StepError, ValidationIssue

MAX_EXPRESSION_CHARS = 2000
MAX_NODES = 2000
MAX_MACRO_DEPTH = 2
MAX_TREE_DEPTH = 500  # parse levels: about 48 nested parentheses (CEL asks for 32)
TOO_DEEP = "nested too deeply (about 48 levels of parentheses at most)"
EVALUATION_TIMEOUT_S = 2.0
NAMES = ("context", "steps")
TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
)
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
FUNCTIONS = frozenset(
    {
        "size", "int", "uint", "double", "string", "bytes", "bool", "type", "dyn",
        "duration", "timestamp", "has", "matches", "contains", "startsWith", "endsWith",
        "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear",
        "getHours", "getMilliseconds", "getMinutes", "getMonth", "getSeconds",
    }
) | MACROS  # fmt: skip


@dataclass(frozen=True)
class Expression:
    """A checked, compiled expression."""

    source: str
    steps: frozenset[str]  # the step keys it reads
    loops: bool  # it has a comprehension (then it is evaluated with a time limit)
    _program: Any = field(repr=False, compare=False)

    def evaluate(self, context: Any, steps: Mapping[str, Any]) -> Any:
        """The value, as plain JSON-like Python. `context` is the execution context as a
        CEL value (`cel_value`, built once per run), `steps` maps each key the expression
        reads to its CEL value (`step_value`). Raises StepError(`expression_error`) when
        evaluation fails or takes too long."""
        activation = {"context": context, "steps": _cel_map(steps)}
        if not self.loops:
            return _to_python(_run(self._program, activation, self.source))
        return _to_python(_run_with_limit(self._program, activation, self.source))


class _Program:
    """A transpiled expression, called directly.

    cel-python's own `evaluate` clones an activation and resolves every name through its
    package search (75 us for `a == "x" && b == "y"`), and runs the code with a
    module-global activation (so two evaluations must not overlap). The transpiled code
    only reads `activation.NAME` and asks for `nested_activation(vars=...)` in
    comprehensions, so the lambdas are defined once, in a namespace of their own, and
    called with a plain activation of the names an expression may read (12 us, and safe
    from any thread). Anything else is resolved by cel-python's base activation (type
    names such as `int`)."""

    def __init__(self, runner: Any) -> None:
        celpy = _celpy()
        transpiler = runner.tp
        last = transpiler.source_text.strip().splitlines()[-1]
        prefix = "CEL = celpy.evaluation.result(base_activation, "
        if not (last.startswith(prefix) and last.endswith(")")):
            raise ValueError(f"unexpected transpiled code: {last[:80]}")
        namespace = dict(celpy.evaluation.result.__globals__)
        namespace["base_activation"] = transpiler.base_activation
        exec(transpiler.executable_code, namespace)  # cel-python's code, as it runs it
        _fix_has(transpiler.source_text, namespace)
        # the top expression: a lambda defined above, or one written on that line
        self._root = eval(last[len(prefix) : -1], namespace)
        self._base = transpiler.base_activation
        self._result = celpy.evaluation.result

    def evaluate(self, values: dict[str, Any]) -> Any:
        return self._result(_Activation(values, self._base), self._root)


_HAS_LAMBDA = re.compile(
    r"^(ex_\d+) = lambda activation: not isinstance\("
    r"celpy\.evaluation\.result\(activation, \1_h\), CELEvalError\)$",
    re.MULTILINE,
)


def _fix_has(source_text: str, namespace: dict[str, Any]) -> None:
    """cel-python 0.5's transpiled `has(x.f)` gives a Python bool, which `!`, `&&` and `||`
    refuse ("no such overload") and which is not a CEL bool as a result: each one is
    rebound, in this program's namespace, to give a CEL bool (the lambdas that call it look
    it up there when they run)."""
    bool_type = namespace["celpy"].celtypes.BoolType
    for name in _HAS_LAMBDA.findall(source_text):
        has = namespace[name]
        namespace[name] = lambda activation, has=has: bool_type(has(activation))


class _Activation:
    __slots__ = ("_base", "_values")

    def __init__(self, values: dict[str, Any], base: Any) -> None:
        self._values = values
        self._base = base

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            return getattr(self._base, name)

    def nested_activation(self, annotations: Any = None, vars: Any = None) -> _Activation:
        return _Activation({**self._values, **(vars or {})}, self._base)

    def resolve_variable(self, name: str) -> Any:
        return self.__getattr__(name)


def check_expression(
    source: str, *, path: str, is_upstream: Callable[[str], bool], known_steps: frozenset[str]
) -> list[ValidationIssue]:
    """The problems of an expression (every one, at `path`), without transpiling it (what
    `validate` needs: parsing costs ~2 ms, transpiling ~3 ms more)."""
    return _checked(source, path, is_upstream, known_steps)[1]


def compile_expression(
    source: str, *, path: str, is_upstream: Callable[[str], bool], known_steps: frozenset[str]
) -> tuple[Expression | None, list[ValidationIssue]]:
    """The compiled expression, or None and the problems found (every one, at `path`)."""
    checker, issues = _checked(source, path, is_upstream, known_steps)
    if checker is None or issues:
        return None, issues
    try:
        program = _program(source)
    except (RecursionError, SyntaxError):  # the generated Python nests too deep for Python
        return None, [_issue(path, "nested too deeply to compile")]
    except Exception as exc:  # the transpiler refusing a construct is a validation problem
        return None, [_issue(path, f"cannot be compiled: {exc}")]
    return Expression(source, frozenset(checker.steps), checker.loops, program), []


def _checked(
    source: str, path: str, is_upstream: Callable[[str], bool], known_steps: frozenset[str]
) -> tuple[_Checker | None, list[ValidationIssue]]:
    if len(source) > MAX_EXPRESSION_CHARS:
        return None, [_issue(path, f"longer than {MAX_EXPRESSION_CHARS} characters")]
    celpy = _celpy()
    try:
        tree = _parsed(source)
    except celpy.CELParseError as exc:
        column = getattr(exc, "column", None)
        where = f" at column {column}" if column else ""
        near = source[column - 1 : column + 9] if column else ""
        hint = f" (near {near!r})" if near.strip() else ""
        return None, [_issue(path, f"not a valid CEL expression: syntax error{where}{hint}")]
    except RecursionError:
        return None, [_issue(path, TOO_DEEP)]
    if _tree_depth(tree) > MAX_TREE_DEPTH:  # checked without recursing
        return None, [_issue(path, TOO_DEEP)]
    checker = _Checker(path, is_upstream, known_steps)
    checker.visit(tree, bound=frozenset(), depth=0)
    if checker.nodes > MAX_NODES:
        checker.issues.append(_issue(path, f"more than {MAX_NODES} parts: too big to evaluate"))
    return checker, checker.issues


def _tree_depth(tree: Any) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend(
            (child, level + 1) for child in getattr(node, "children", ()) if child is not None
        )
    return deepest


@lru_cache(maxsize=512)
def _parsed(source: str) -> Any:
    """The parse tree of `source` (validating a file and planning its run both need it)."""
    return _environment().compile(source)


@lru_cache(maxsize=512)
def _program(source: str) -> _Program:
    """The transpiled program of `source`, built once per process."""
    environment = _environment()
    return _Program(environment.program(_parsed(source)))


def step_value(output: Any, state: str) -> Any:
    """What `steps.<key>` is for a step: `{output, state}` as a CEL value (built once per
    step and reused: converting a large output is the expensive part)."""
    return cel_value({"output": output, "state": state})


def cel_value(value: Any) -> Any:
    return _celpy().json_to_cel(value)


# ---- checking the parse tree ----


class _Checker:
    def __init__(
        self, path: str, is_upstream: Callable[[str], bool], known_steps: frozenset[str]
    ) -> None:
        self.path = path
        self.is_upstream = is_upstream
        self.known_steps = known_steps
        self.issues: list[ValidationIssue] = []
        self.steps: set[str] = set()
        self.loops = False
        self.nodes = 0
        self._reported: set[str] = set()

    def report(self, message: str) -> None:
        if message not in self._reported:
            self._reported.add(message)
            self.issues.append(_issue(self.path, message))

    def visit(self, node: Any, *, bound: frozenset[str], depth: int) -> None:
        self.nodes += 1
        data = getattr(node, "data", None)
        if data is None:  # a token
            return
        children = node.children
        if data == "ident":
            name = str(children[0])
            if name not in bound and name not in NAMES and name not in TYPE_NAMES:
                self.report(f"unknown name '{name}' (an expression reads context and steps)")
            elif name == "steps" and name not in bound:
                self.report('steps must be followed by a step key: steps.KEY or steps["KEY"]')
            return
        if data in ("member_dot", "member_index") and _is_steps(children[0], bound):
            key = _step_key(data, children[1])
            if key is None:
                self.report('steps must be indexed by a step key written out: steps["KEY"]')
            else:
                self._step(key)
            if data == "member_index":
                self.visit(children[1], bound=bound, depth=depth)
            return
        if data == "ident_arg":
            self._function(str(children[0]))
            for child in children[1:]:
                self.visit(child, bound=bound, depth=depth)
            return
        if data == "member_dot_arg":
            target, name, *rest = children
            self._function(str(name))
            self.visit(target, bound=bound, depth=depth)
            arguments = rest[0].children if rest and rest[0] is not None else []
            if str(name) in MACROS:
                self.loops = True
                if depth + 1 > MAX_MACRO_DEPTH:
                    self.report(f"comprehensions nest more than {MAX_MACRO_DEPTH} deep")
                variable = _bound_name(arguments[0]) if arguments else None
                if variable is None:
                    self.report(f"{name}() needs a variable name first, as in {name}(x, ...)")
                    return
                inner = bound | {variable}
                for argument in arguments[1:]:
                    self.visit(argument, bound=inner, depth=depth + 1)
                return
            for argument in arguments:
                self.visit(argument, bound=bound, depth=depth)
            return
        for child in children:
            if child is not None:
                self.visit(child, bound=bound, depth=depth)

    def _function(self, name: str) -> None:
        if name not in FUNCTIONS:
            self.report(f"unknown function '{name}'")

    def _step(self, key: str) -> None:
        if key not in self.known_steps:
            self.report(f"steps.{key}: there is no step '{key}'")
        elif not self.is_upstream(key):
            self.report(
                f"steps.{key}: step '{key}' is not upstream of this step (add it to its "
                "dependencies)"
            )
        else:
            self.steps.add(key)


def _is_steps(node: Any, bound: frozenset[str]) -> bool:
    """`node` is the bare identifier `steps` (under its `member`/`primary` wrappers)."""
    while getattr(node, "data", None) in ("member", "primary") and len(node.children) == 1:
        node = node.children[0]
    return (
        getattr(node, "data", None) == "ident"
        and str(node.children[0]) == "steps"
        and "steps" not in bound
    )


def _step_key(kind: str, node: Any) -> str | None:
    if kind == "member_dot":
        return str(node)
    literal = _only_literal(node)
    if literal is not None and literal.type in ("STRING_LIT",):
        try:
            value = json.loads(literal.value) if literal.value.startswith('"') else None
        except ValueError:
            value = None
        if value is None and literal.value.startswith("'"):
            value = literal.value[1:-1]
        return value if isinstance(value, str) else None
    return None


def _only_literal(node: Any) -> Any:
    while getattr(node, "data", None) is not None:
        if node.data == "literal":
            return node.children[0]
        if len(node.children) != 1:
            return None
        node = node.children[0]
    return None


def _bound_name(node: Any) -> str | None:
    while getattr(node, "data", None) is not None and len(node.children) == 1:
        if node.data == "ident":
            return str(node.children[0])
        node = node.children[0]
    return None


def _issue(path: str, message: str) -> ValidationIssue:
    return ValidationIssue(path, message)


# ---- evaluating ----


def _run(program: _Program, activation: dict[str, Any], source: str) -> Any:
    celpy = _celpy()
    try:
        value = program.evaluate(activation)
    except celpy.CELEvalError as exc:
        raise StepError("expression_error", f"{source}: {_eval_message(exc)}") from None
    except (RecursionError, MemoryError, ArithmeticError, TypeError, ValueError) as exc:
        raise StepError("expression_error", f"{source}: {type(exc).__name__}: {exc}") from None
    if isinstance(value, celpy.CELEvalError):
        raise StepError("expression_error", f"{source}: {_eval_message(value)}")
    return value


def _run_with_limit(program: _Program, activation: dict[str, Any], source: str) -> Any:
    """Evaluate on a thread, waiting at most EVALUATION_TIMEOUT_S (a thread cannot be
    killed: a runaway comprehension finishes in the background, the step has failed)."""
    result: list[Any] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(_run(program, activation, source))
        except BaseException as exc:  # handed back to the caller
            failure.append(exc)

    thread = threading.Thread(target=work, name="ax-expression", daemon=True)
    thread.start()
    thread.join(EVALUATION_TIMEOUT_S)
    if thread.is_alive():
        raise StepError(
            "expression_error", f"{source}: took longer than {EVALUATION_TIMEOUT_S:.0f} s"
        )
    if failure:
        raise failure[0]
    return result[0]


def _eval_message(exc: Any) -> str:
    args = getattr(exc, "args", ())
    text = str(args[0]) if args else str(exc)
    if "no such key" in text or "no such member" in text:
        return f"{text} (a value the expression reads is missing)"
    return text


def _cel_map(steps: Mapping[str, Any]) -> Any:
    celpy = _celpy()
    return celpy.celtypes.MapType({celpy.celtypes.StringType(k): v for k, v in steps.items()})


def _to_python(value: Any) -> Any:
    """A CEL value as plain JSON-like Python (bool before int: BoolType is an int)."""
    celtypes = _celpy().celtypes
    if value is None:
        return None
    if isinstance(value, celtypes.BoolType | bool):
        return bool(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.ListType):
        return [_to_python(v) for v in value]
    if isinstance(value, celtypes.MapType):
        return {str(_to_python(k)): _to_python(v) for k, v in value.items()}
    return str(value)  # bytes, timestamps, durations, types


_environment_lock = threading.Lock()
_environment_instance: Any = None


def _celpy() -> Any:
    import celpy

    return celpy


def _environment() -> Any:
    """One environment per process whose parser builds the transpiler's tree nodes (the
    parser is created once per process by cel-python, with the first runner's tree class:
    this module must create it)."""
    global _environment_instance
    with _environment_lock:
        if _environment_instance is None:
            celpy = _celpy()
            # cel-python logs every failed evaluation ("Internal error: ...") on its own
            # loggers; a failed expression is the step's error, not a line on stderr
            quiet = logging.getLogger("celpy")
            quiet.addHandler(logging.NullHandler())
            quiet.propagate = False
            _environment_instance = celpy.Environment(runner_class=celpy.CompiledRunner)
        return _environment_instance
