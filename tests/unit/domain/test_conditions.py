"""Tests for `stageline.domain.conditions`: parsing and evaluating a job's `condition`."""

import re
from dataclasses import dataclass

import pytest

from stageline.domain.conditions import (
    DEFAULT_CONDITION,
    Condition,
    ConditionContext,
    InvalidCondition,
    parse_condition,
)
from stageline.domain.errors import InvalidInput
from stageline.domain.statuses import StageStatus

S = StageStatus


def context(
    *needs: StageStatus,
    run_failed: bool = False,
    run_cancelled: bool = False,
    **variables: str,
) -> ConditionContext:
    return ConditionContext(needs, run_failed, run_cancelled, variables)


def holds(text: str | None, ctx: ConditionContext | None = None) -> bool:
    return parse_condition(text).evaluate(ctx or context())


@dataclass(frozen=True)
class StatusCase:
    id: str
    text: str
    context: ConditionContext
    expected: bool


STATUS_CASES = [
    StatusCase("default with no needs", "${{ default() }}", context(), True),
    StatusCase("default after completed", "${{ default() }}", context(S.COMPLETED), True),
    StatusCase("default after unselected", "${{ default() }}", context(S.UNSELECTED), True),
    StatusCase(
        "default after a failure", "${{ default() }}", context(S.COMPLETED, S.FAILED), False
    ),
    StatusCase("default after skipped", "${{ default() }}", context(S.SKIPPED), False),
    StatusCase("default after canceled", "${{ default() }}", context(S.CANCELED), False),
    StatusCase("default ignores run_failed", "${{ default() }}", context(run_failed=True), True),
    StatusCase(
        "default when cancelling",
        "${{ default() }}",
        context(S.COMPLETED, run_cancelled=True),
        False,
    ),
    StatusCase("success is default", "${{ success() }}", context(S.COMPLETED), True),
    StatusCase("success after a failure", "${{ success() }}", context(S.FAILED), False),
    StatusCase("always after a failure", "${{ always() }}", context(S.FAILED), True),
    StatusCase("always when cancelling", "${{ always() }}", context(run_cancelled=True), True),
    StatusCase("failure with none", "${{ failure() }}", context(S.COMPLETED), False),
    StatusCase("failure after failed need", "${{ failure() }}", context(S.FAILED), True),
    StatusCase("failure after async failed", "${{ failure() }}", context(S.ASYNC_FAILED), True),
    StatusCase("failure elsewhere in run", "${{ failure() }}", context(run_failed=True), True),
    StatusCase(
        "failure when cancelling",
        "${{ failure() }}",
        context(S.FAILED, run_failed=True, run_cancelled=True),
        False,
    ),
    StatusCase(
        "cancelled when cancelling", "${{ cancelled() }}", context(run_cancelled=True), True
    ),
    StatusCase("cancelled otherwise", "${{ cancelled() }}", context(S.FAILED), False),
    StatusCase("canceled spelling", "${{ canceled() }}", context(run_cancelled=True), True),
    StatusCase(
        "implicit default holds",
        "${{ variables.env == 'prod' }}",
        context(S.COMPLETED, env="prod"),
        True,
    ),
    StatusCase(
        "implicit default after failure",
        "${{ variables.env == 'prod' }}",
        context(S.FAILED, env="prod"),
        False,
    ),
    StatusCase(
        "implicit default when cancelling",
        "${{ variables.env == 'prod' }}",
        context(env="prod", run_cancelled=True),
        False,
    ),
    StatusCase("implicit default on a literal", "${{ true }}", context(S.FAILED), False),
    StatusCase(
        "explicit always disables implicit default",
        "${{ always() && variables.env == 'prod' }}",
        context(S.FAILED, env="prod"),
        True,
    ),
    StatusCase(
        "status function inside an operand counts",
        "${{ variables.env == 'prod' || failure() }}",
        context(S.FAILED, env="dev"),
        True,
    ),
    StatusCase(
        "failure or cancelled",
        "${{ failure() || cancelled() }}",
        context(run_cancelled=True),
        True,
    ),
]


@pytest.mark.parametrize("case", STATUS_CASES, ids=lambda case: case.id)
def test_status_functions_and_implicit_default(case: StatusCase) -> None:
    assert parse_condition(case.text).evaluate(case.context) is case.expected


@pytest.mark.parametrize("text", [None, "", "   ", DEFAULT_CONDITION])
def test_empty_means_default(text: str | None) -> None:
    condition = parse_condition(text)
    assert condition.source == DEFAULT_CONDITION
    assert condition.evaluate(context(S.COMPLETED)) is True
    assert condition.evaluate(context(S.FAILED)) is False


# Evaluated with no needs and nothing failed, so the implicit `default()` holds.
EXPRESSION_CASES: list[tuple[str, str, bool]] = [
    # Precedence, `!` and parentheses.
    ("and binds tighter than or", "${{ true || false && false }}", True),
    ("parentheses regroup", "${{ (true || false) && false }}", False),
    ("and before or on the left", "${{ false && false || true }}", True),
    ("not", "${{ !false }}", True),
    ("double not", "${{ !!true }}", True),
    ("not of a group", "${{ !(false || true) }}", False),
    ("not covers the comparison", "${{ !variables.env == 'prod' }}", False),
    ("not in parentheses is an operand", "${{ (!variables.env) == false }}", True),
    ("whitespace is free", "  ${{true&&(variables.env=='prod')}}  ", True),
    # String literals and escapes.
    ("escaped quote", "${{ variables.name == 'it''s' }}", True),
    ("only quotes", "${{ contains('''''', '''') }}", True),
    ("empty literal is empty", "${{ variables.missing == '' }}", True),
    ("braces inside a string", "${{ '}}' == '}}' }}", True),
    # Equality ignores case; strings stay strings.
    ("case-insensitive equality", "${{ variables.env == 'PROD' }}", True),
    ("case-insensitive inequality", "${{ 'Prod' != 'pROD' }}", False),
    ("two numeric strings compare as text", "${{ variables.version == '1.10' }}", False),
    ("numeric strings equal as text", "${{ '1.0' == '1.0' }}", True),
    # Numbers.
    ("int equals float", "${{ 1 == 1.0 }}", True),
    ("variable compared with a number", "${{ variables.count == 10 }}", True),
    ("numeric text equals a number", "${{ variables.version == 1.1 }}", True),
    ("non-numeric text versus number", "${{ variables.env == 1 }}", False),
    ("negative number", "${{ -1 < 0 }}", True),
    ("ordering numeric strings is numeric", "${{ variables.count > '9' }}", True),
    ("ordering numeric literals", "${{ 10 >= 10 }}", True),
    ("ordering text ignores case", "${{ 'b' > 'A' }}", True),
    ("ordering text is lexical", "${{ 'abc' < 'abd' }}", True),
    ("ordering text versus number is text", "${{ 'x' <= 1 }}", False),
    ("less or equal", "${{ 2.5 <= 2 }}", False),
    # Booleans and null.
    ("true equals its text", "${{ true == 'TRUE' }}", True),
    ("false equals its text", "${{ false == 'false' }}", True),
    ("true is not the number 1", "${{ true == 1 }}", False),
    ("null is empty text", "${{ null == '' }}", True),
    ("missing variable is empty", "${{ variables.missing == null }}", True),
    # Truthiness.
    ("missing variable is false", "${{ variables.missing }}", False),
    ("set variable is true", "${{ variables.env }}", True),
    ("text 'false' is true", "${{ variables.flag }}", True),
    ("text '0' is true", "${{ variables.zero }}", True),
    ("number 0 is false", "${{ 0 }}", False),
    ("number 0.0 is false", "${{ 0.0 }}", False),
    ("other numbers are true", "${{ -2 }}", True),
    ("null is false", "${{ null }}", False),
    ("empty text is false", "${{ '' }}", False),
    ("false is false", "${{ false }}", False),
    # String functions, case-insensitive, on the text of any value.
    ("contains", "${{ contains('Hello World', 'WORLD') }}", True),
    ("contains not", "${{ contains('Hello', 'bye') }}", False),
    ("contains empty", "${{ contains(variables.missing, '') }}", True),
    ("contains a number's text", "${{ contains(1.5, '.5') }}", True),
    ("contains a boolean's text", "${{ contains(true, 'RU') }}", True),
    ("startsWith", "${{ startsWith(variables.branch, 'RELEASE/') }}", True),
    ("startsWith not", "${{ startsWith(variables.branch, 'main') }}", False),
    ("endsWith", "${{ endsWith(variables.branch, '.X') }}", True),
    ("endsWith not", "${{ endsWith(variables.branch, 'release') }}", False),
    ("function result in logic", "${{ !contains(variables.env, 'dev') && true }}", True),
    ("expression as argument", "${{ contains(variables.env == 'prod', 'tru') }}", True),
]

VARIABLES = {
    "env": "prod",
    "name": "it's",
    "version": "1.1",
    "count": "10",
    "flag": "false",
    "zero": "0",
    "branch": "release/1.x",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param(text, expected, id=case_id) for case_id, text, expected in EXPRESSION_CASES],
)
def test_expressions(text: str, expected: bool) -> None:
    assert holds(text, ConditionContext((), False, False, VARIABLES)) is expected


def test_parse_once_evaluate_many() -> None:
    condition = parse_condition("${{ failure() || variables.force == 'yes' }}")
    assert condition.evaluate(context(S.FAILED)) is True
    assert condition.evaluate(context(S.COMPLETED)) is False
    assert condition.evaluate(context(S.COMPLETED, force="YES")) is True
    assert condition.evaluate(context(S.COMPLETED, force="YES", run_cancelled=True)) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${{ always() }}", frozenset()),
        ("${{ variables.a == 'x' }}", frozenset({"a"})),
        (
            "${{ variables.a == variables.b || contains(variables.c, variables.a) }}",
            frozenset({"a", "b", "c"}),
        ),
        ("${{ !(variables.deep_name_2) }}", frozenset({"deep_name_2"})),
    ],
)
def test_variables_property(text: str, expected: frozenset[str]) -> None:
    assert parse_condition(text).variables == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, {"default"}),
        ("${{ success() }}", {"default"}),
        ("${{ variables.x == '1' }}", {"default"}),
        ("${{ contains('a', 'b') }}", {"default"}),
        ("${{ always() }}", {"always"}),
        ("${{ failure() }}", {"failure"}),
        ("${{ canceled() || failure() }}", {"cancelled", "failure"}),
        ("${{ cancelled() && !default() }}", {"cancelled", "default"}),
        ("${{ always() && (success() || failure()) }}", {"always", "default", "failure"}),
    ],
)
def test_status_functions_property(text: str | None, expected: set[str]) -> None:
    assert parse_condition(text).status_functions == frozenset(expected)


def test_condition_keeps_its_source_and_compares_by_it() -> None:
    text = "  ${{ always() }} "
    condition = parse_condition(text)
    assert condition.source == text
    assert condition == Condition(text)
    assert hash(condition) == hash(Condition(text))
    assert condition != parse_condition("${{ failure() }}")


def test_condition_constructor_validates_and_keeps_blank_invalid() -> None:
    with pytest.raises(InvalidCondition):
        Condition("")
    with pytest.raises(InvalidCondition):
        Condition("${{ nope() }}")


@dataclass(frozen=True)
class InvalidCase:
    id: str
    text: str
    fragment: str
    column: int


INVALID_CASES = [
    InvalidCase("no braces", "default()", "must be written '${{ <expression> }}'", 1),
    InvalidCase("text before", "if ${{ always() }}", "must be written", 1),
    InvalidCase("unclosed", "${{ always() ", "missing the closing '}}'", 13),
    InvalidCase("text after", "${{ always() }} && x", "unexpected text after '}}'", 17),
    InvalidCase("two expressions", "${{ always() }} || ${{ failure() }}", "unexpected '}'", 14),
    InvalidCase("nested braces", "${{ ${{ always() }} }}", "unexpected '$'", 5),
    InvalidCase("empty expression", "${{   }}", "empty expression", 7),
    InvalidCase("unknown function", "${{ foo() }}", "unknown function 'foo' (known: always", 5),
    InvalidCase("function name case", "${{ startswith('a', 'b') }}", "unknown function", 5),
    InvalidCase("unknown root", "${{ github.ref == 'main' }}", "unknown name 'github'", 5),
    InvalidCase("keyword case", "${{ TRUE }}", "unknown name 'TRUE'", 5),
    InvalidCase("bare variables", "${{ variables == 'x' }}", "expected '.' after 'variables'", 15),
    InvalidCase("bad variable name", "${{ variables.1x }}", "expected a variable name", 15),
    InvalidCase("dotted variable name", "${{ variables.a.b }}", "unexpected '.'", 16),
    InvalidCase("status function argument", "${{ always(1) }}", "always() takes no arguments", 5),
    InvalidCase(
        "too few arguments", "${{ contains('a') }}", "contains() takes 2 arguments, got 1", 5
    ),
    InvalidCase(
        "too many arguments", "${{ endsWith('a', 'b', 'c') }}", "takes 2 arguments, got 3", 5
    ),
    InvalidCase("missing comma", "${{ contains('a' 'b') }}", "expected ')' to close", 18),
    InvalidCase("unclosed call", "${{ always( }}", "found end of expression", 13),
    InvalidCase("unclosed group", "${{ (always() }}", "expected ')' to close '('", 15),
    InvalidCase("extra closing", "${{ always()) }}", "unexpected ')'", 13),
    InvalidCase("trailing tokens", "${{ always() failure() }}", "unexpected 'failure'", 14),
    InvalidCase("trailing comma", "${{ always(), true }}", "unexpected ','", 13),
    InvalidCase("dangling and", "${{ always() && }}", "expected a value, found end", 17),
    InvalidCase("leading or", "${{ || always() }}", "expected a value, found '||'", 5),
    InvalidCase("not after comparison", "${{ 'a' == !true }}", "expected a value, found '!'", 12),
    InvalidCase("chained comparison", "${{ 1 == 1 == 1 }}", "cannot be chained", 12),
    InvalidCase("chained ordering", "${{ 1 < 2 <= 3 }}", "cannot be chained", 11),
    InvalidCase("unterminated string", "${{ 'abc }}", "unterminated string literal", 5),
    InvalidCase("odd quote after escape", "${{ 'it''s }}", "unterminated string literal", 9),
    InvalidCase("double-quoted string", '${{ "abc" }}', "unexpected '\"'", 5),
    InvalidCase("single equals", "${{ variables.a = 'b' }}", "unexpected '=' (use '==')", 17),
    InvalidCase("single ampersand", "${{ true & false }}", "use '&&'", 10),
    InvalidCase("minus without number", "${{ 1 == -variables.a }}", "'-' only starts", 10),
    InvalidCase("malformed number", "${{ 1.2.3 }}", "unexpected '.'", 8),
    InvalidCase("too deep", "${{ " + "(" * 40 + "1" + ")" * 40 + " }}", "nested more than 32", 37),
    InvalidCase("too many nots", "${{ " + "!" * 40 + "true }}", "nested more than 32", 37),
    InvalidCase("too long", "${{ " + " || ".join(["1"] * 200) + " }}", "longer than 256", 645),
]


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda case: case.id)
def test_invalid_conditions(case: InvalidCase) -> None:
    with pytest.raises(InvalidCondition, match=re.escape(case.fragment)) as raised:
        parse_condition(case.text)
    assert raised.value.column == case.column
    assert raised.value.message.endswith(f"at column {case.column}")


def test_invalid_condition_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_condition("${{ nope }}")
    assert isinstance(raised.value, InvalidCondition)
    assert raised.value.message == raised.value.problem + " at column 5"
