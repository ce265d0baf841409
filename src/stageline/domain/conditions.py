"""Parse and evaluate a job's `condition`: the expression deciding whether it runs or is SKIPPED.

Parse once with `parse_condition`, then call `Condition.evaluate` with a `ConditionContext`.

The whole text is `${{ <expression> }}`, with any whitespace around it; None, an empty or a blank
string means `${{ default() }}`. Anything else raises `InvalidCondition`, whose message says what
is wrong and at which (1-based) column of the whole text.

Operators, loosest first: `||`, `&&`, `!`, then the comparisons `== != < <= > >=`, which do
not chain (`a == b == c` is invalid). `!` negates a whole comparison: `!variables.a == 'x'` is
`!(variables.a == 'x')`. Parentheses group. Operands:

- `variables.<name>`, with `<name>` matching `[A-Za-z_][A-Za-z0-9_]*`: the run's variable, or
  `''` if the run has none of that name.
- `'text'` (`''` is a quote inside it), numbers such as `3`, `-1`, `2.5`, and `true`, `false`,
  `null`.
- Status functions, which take no arguments:
  `default()` (alias `success()`): the run is not being stopped and every job this one depends
  on ended COMPLETED or UNSELECTED (true if it depends on none);
  `always()`: true;
  `failure()`: the run is not being stopped and a job of the run, or one this job depends on,
  has FAILED (or ASYNC_FAILED);
  `cancelled()` (alias `canceled()`): the run is being stopped.
- `contains(a, b)`, `startsWith(a, b)`, `endsWith(a, b)`: case-insensitive tests on text.
  Function names are case-sensitive.

A condition that calls no status function means `default() && (<expression>)`: with
`${{ variables.env == 'prod' }}` the job is still skipped after a failure.

Values. `==` and `!=` compare two strings as text, ignoring case; other pairs as numbers when
both sides read as numbers (`variables.n == 1` holds for `'1.0'`), else as text. `< <= > >=`
compare as numbers when both sides read as numbers (`'10' > '9'`), else as text ignoring case.
As text, `true`/`false` read `'true'`/`'false'`, `null` reads `''`, numbers read `1` or `2.5`.
For `!`, `&&`, `||` and the final result, `false`, `null`, `''` and the number 0 are false and
all else is true, the strings `'false'` and `'0'` included: write `variables.flag == 'true'`.
An expression may hold at most 256 tokens and 32 levels of parentheses or `!`.
"""

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from stageline.domain.errors import InvalidInput
from stageline.domain.statuses import (
    STAGE_CONDITION_FAILED,
    STAGE_CONDITION_SUCCEEDED,
    StageStatus,
)

DEFAULT_CONDITION = "${{ default() }}"

_Value = str | float | bool | None

_MAX_TOKENS = 256
_MAX_DEPTH = 32
_STATUS_FUNCTIONS = frozenset({"default", "always", "failure", "cancelled"})
_ALIASES = {"success": "default", "canceled": "cancelled"}
_TEXT_TESTS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda a, b: b in a,
    "startsWith": lambda a, b: a.startswith(b),
    "endsWith": lambda a, b: a.endswith(b),
}
_FUNCTIONS = sorted(_STATUS_FUNCTIONS | _TEXT_TESTS.keys() | _ALIASES.keys())
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_KEYWORDS: dict[str, _Value] = {"true": True, "false": False, "null": None}
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_TOKEN = re.compile(
    rf"(?P<space>\s+)|(?P<number>{_NUMBER.pattern})|(?P<string>'(?:[^']|'')*')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\|\||&&|[=!<>]=|[<>!(),.])"
)
_HINTS = {"=": "use '=='", "&": "use '&&'", "|": "use '||'", "-": "'-' only starts a number"}
_HINTS |= dict.fromkeys("${}", "one '${{ ... }}' must hold the whole condition")


class InvalidCondition(InvalidInput):
    """A condition that does not parse; `column` is 1-based, counted in the whole text."""

    def __init__(self, problem: str, column: int) -> None:
        super().__init__(f"{problem} at column {column}")
        self.problem = problem
        self.column = column


@dataclass(frozen=True)
class ConditionContext:
    """What a condition sees when its job is about to start."""

    needs: tuple[StageStatus, ...]  # final statuses of the jobs this job depends_on
    run_failed: bool  # some job of the run has FAILED so far
    run_cancelled: bool  # the run is being stopped
    variables: Mapping[str, str]  # the run's resolved variables


@dataclass(frozen=True)
class _Literal:
    value: _Value


@dataclass(frozen=True)
class _Variable:
    name: str


@dataclass(frozen=True)
class _Op:
    """A function call (canonical name) or an operator (`!`, `&&`, `||`, a comparison)."""

    name: str
    args: tuple["_Node", ...]


_Node = _Literal | _Variable | _Op


@dataclass(frozen=True)
class _Token:
    kind: str  # a group name of _TOKEN, or "end"
    text: str
    column: int

    def describe(self) -> str:
        return "end of expression" if self.kind == "end" else repr(self.text)


def _envelope(text: str) -> tuple[int, int]:
    """The [start, end) span of the expression inside `${{ ... }}`."""
    start, end = len(text) - len(text.lstrip()), len(text.rstrip())
    if not text.startswith("${{", start):
        raise InvalidCondition("a condition must be written '${{ <expression> }}'", start + 1)
    if not text.endswith("}}", start + 3, end):
        closing = text.find("}}", start + 3)
        if closing < 0:
            raise InvalidCondition("missing the closing '}}'", end + 1)
        extra = len(text) - len(text[closing + 2 :].lstrip())
        raise InvalidCondition("unexpected text after '}}'", extra + 1)
    return start + 3, end - 2


def _tokenize(text: str, start: int, end: int) -> list[_Token]:
    tokens: list[_Token] = []
    pos = start
    while pos < end:
        match = _TOKEN.match(text, pos, end)
        if match is None:
            char = text[pos]
            if char == "'":
                raise InvalidCondition("unterminated string literal", pos + 1)
            hint = _HINTS.get(char, "not part of the condition syntax")
            raise InvalidCondition(f"unexpected {char!r} ({hint})", pos + 1)
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup or "", match.group(), pos + 1))
        if len(tokens) > _MAX_TOKENS:
            raise InvalidCondition(f"expression longer than {_MAX_TOKENS} tokens", pos + 1)
        pos = match.end()
    tokens.append(_Token("end", "", end + 1))
    return tokens


class _Parser:
    """Recursive descent over the tokens, one method per precedence level."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens, self.index, self.depth = tokens, 0, 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.peek()
        if token.kind != "end":
            self.index += 1
        return token

    def expect(self, text: str, purpose: str) -> _Token:
        token = self.take()
        if token.text != text:
            problem = f"expected {text!r} {purpose}, found {token.describe()}"
            raise InvalidCondition(problem, token.column)
        return token

    def nest(self, token: _Token, delta: int) -> None:
        self.depth += delta
        if self.depth > _MAX_DEPTH:
            raise InvalidCondition(f"nested more than {_MAX_DEPTH} levels deep", token.column)

    def parse(self) -> _Node:
        if self.peek().kind == "end":
            raise InvalidCondition("empty expression", self.peek().column)
        node = self.chain("||", self.both)
        if (token := self.peek()).kind != "end":
            raise InvalidCondition(f"unexpected {token.describe()}", token.column)
        return node

    def chain(self, op: str, operand: Callable[[], _Node]) -> _Node:
        """`operand (op operand)*`, as one n-ary node so long chains stay shallow."""
        args = [operand()]
        while self.peek().text == op:
            self.take()
            args.append(operand())
        return args[0] if len(args) == 1 else _Op(op, tuple(args))

    def both(self) -> _Node:
        return self.chain("&&", self.negation)

    def negation(self) -> _Node:
        if self.peek().text != "!":
            return self.comparison()
        token = self.take()
        self.nest(token, 1)
        node = _Op("!", (self.negation(),))
        self.nest(token, -1)
        return node

    def comparison(self) -> _Node:
        left = self.operand()
        if self.peek().text not in _COMPARISONS:
            return left
        node = _Op(self.take().text, (left, self.operand()))
        if (token := self.peek()).text in _COMPARISONS:
            raise InvalidCondition("comparisons cannot be chained; add parentheses", token.column)
        return node

    def grouped(self, token: _Token) -> _Node:
        self.nest(token, 1)
        node = self.chain("||", self.both)
        self.nest(token, -1)
        return node

    def operand(self) -> _Node:
        token = self.take()
        if token.text == "(":
            node = self.grouped(token)
            self.expect(")", "to close '('")
            return node
        if token.kind == "number":
            return _Literal(float(token.text))
        if token.kind == "string":
            return _Literal(token.text[1:-1].replace("''", "'"))
        if token.kind != "name":
            raise InvalidCondition(f"expected a value, found {token.describe()}", token.column)
        if token.text in _KEYWORDS:
            return _Literal(_KEYWORDS[token.text])
        if self.peek().text == "(":
            return self.call(token)
        if token.text != "variables":
            problem = f"unknown name {token.text!r} (expected variables.<name>, a function call, "
            raise InvalidCondition(problem + "true, false or null)", token.column)
        self.expect(".", "after 'variables'")
        if (name := self.take()).kind != "name":
            problem = f"expected a variable name after 'variables.', found {name.describe()}"
            raise InvalidCondition(problem, name.column)
        return _Variable(name.text)

    def call(self, name: _Token) -> _Node:
        if name.text not in _FUNCTIONS:
            known = ", ".join(_FUNCTIONS)
            raise InvalidCondition(f"unknown function {name.text!r} (known: {known})", name.column)
        self.take()  # the "("
        args: list[_Node] = []
        if self.peek().text != ")":
            args.append(self.grouped(name))
            while self.peek().text == ",":
                self.take()
                args.append(self.grouped(name))
        self.expect(")", f"to close '{name.text}('")
        canonical = _ALIASES.get(name.text, name.text)
        arity = 0 if canonical in _STATUS_FUNCTIONS else 2
        if len(args) != arity:
            wanted = f"{arity} arguments" if arity else "no arguments"
            raise InvalidCondition(f"{name.text}() takes {wanted}, got {len(args)}", name.column)
        return _Op(canonical, tuple(args))


def _walk(node: _Node) -> Iterator[_Node]:
    yield node
    for arg in node.args if isinstance(node, _Op) else ():
        yield from _walk(arg)


def _status_calls(root: _Node) -> frozenset[str]:
    return frozenset(
        n.name for n in _walk(root) if isinstance(n, _Op) and n.name in _STATUS_FUNCTIONS
    )


def _parse(text: str) -> _Node:
    start, end = _envelope(text)
    root = _Parser(_tokenize(text, start, end)).parse()
    return root if _status_calls(root) else _Op("&&", (_Op("default", ()), root))


def _text(value: _Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value or ""


def _number(value: _Value) -> float | None:
    if isinstance(value, float):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _truthy(value: _Value) -> bool:
    return value not in (None, False, "", 0.0)


def _compare(op: str, left: _Value, right: _Value) -> bool:
    a, b = _number(left), _number(right)
    as_text = isinstance(left, str) and isinstance(right, str) and op in ("==", "!=")
    if a is not None and b is not None and not as_text:
        return _COMPARISONS[op](a, b)
    return _COMPARISONS[op](_text(left).casefold(), _text(right).casefold())


def _status(name: str, context: ConditionContext) -> bool:
    if name == "always":
        return True
    if name == "cancelled":
        return context.run_cancelled
    if context.run_cancelled:
        return False
    if name == "failure":
        return context.run_failed or any(need in STAGE_CONDITION_FAILED for need in context.needs)
    return all(need in STAGE_CONDITION_SUCCEEDED for need in context.needs)


def _evaluate(node: _Node, context: ConditionContext) -> _Value:
    if isinstance(node, _Literal):
        return node.value
    if isinstance(node, _Variable):
        return context.variables.get(node.name, "")
    if node.name in _STATUS_FUNCTIONS:
        return _status(node.name, context)
    if node.name == "&&":
        return all(_truthy(_evaluate(arg, context)) for arg in node.args)
    if node.name == "||":
        return any(_truthy(_evaluate(arg, context)) for arg in node.args)
    values = [_evaluate(arg, context) for arg in node.args]
    if node.name == "!":
        return not _truthy(values[0])
    if node.name in _TEXT_TESTS:
        return _TEXT_TESTS[node.name](_text(values[0]).casefold(), _text(values[1]).casefold())
    return _compare(node.name, values[0], values[1])


@dataclass(frozen=True)
class Condition:
    """A parsed condition, ready to evaluate many times.

    `Condition(text)` validates like `parse_condition` but does not read blank text as default.
    """

    source: str
    _root: _Node = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_root", _parse(self.source))

    def evaluate(self, context: ConditionContext) -> bool:
        """Whether the job runs (True) or is SKIPPED (False)."""
        return _truthy(_evaluate(self._root, context))

    @property
    def variables(self) -> frozenset[str]:
        """The names referenced as `variables.<name>`."""
        return frozenset(n.name for n in _walk(self._root) if isinstance(n, _Variable))

    @property
    def status_functions(self) -> frozenset[str]:
        """The status functions called, as default/always/failure/cancelled (a condition calling
        none reports its implicit `default`)."""
        return _status_calls(self._root)


def parse_condition(text: str | None) -> Condition:
    """Parse a job's `condition`; None or blank text is `DEFAULT_CONDITION`."""
    return Condition(DEFAULT_CONDITION if text is None or not text.strip() else text)
