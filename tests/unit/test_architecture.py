"""Rules of the code's shape, checked on the source text (AST only: nothing is imported or run).

1. One door: only `engine/transitions.py` changes a status. No other module assigns to a
   `.status` attribute (`x.status = ...`, `x.status += ...`, `setattr(x, "status", ...)`); rows
   may still be *constructed* with a `status=` keyword, which is creation, not a change.
2. One vocabulary: groups of statuses are defined once, in `domain/statuses.py`. No other module
   lists two or more statuses (`StageStatus.X`, `RunStatus.X`, their aliases `S.X` / `R.X`, or
   the wire strings such as "COMPLETED") side by side: as the elements of a tuple, list or set
   literal (which covers `frozenset({...})` and `x in (...)`), or as the positional arguments of
   one call (`_all_in(S.SKIPPED, S.UNSELECTED)` lists a group just the same). `Literal[...]`
   type arguments are exempt: a wire model's type must spell its values out, and so are the
   edge tables of `domain/transitions.py` (`*_EDGES`): each entry is the targets of one status,
   the state machine written as data, not a group to reuse.

Only the literal's own elements count, so a table of single-status rules or of (status, weight)
pairs is not a listing. Each failure names the offending file:line.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from stageline.domain.statuses import RunStatus, StageStatus

SRC = Path(__file__).resolve().parents[2] / "src" / "stageline"
THE_DOOR = "engine/transitions.py"
THE_VOCABULARY = "domain/statuses.py"
THE_EDGE_TABLES = "domain/transitions.py"
STATUS_ENUMS = {"StageStatus", "RunStatus", "S", "R"}
MEMBER_NAMES = {member.name for member in (*StageStatus, *RunStatus)}
WIRE_STRINGS = {member.value for member in (*StageStatus, *RunStatus)}


def modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# -- 1. one door -----------------------------------------------------------------------------


def _targets(node: ast.expr) -> Iterator[ast.expr]:
    if isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _targets(element)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)
    else:
        yield node


def status_assignments(tree: ast.Module) -> Iterator[int]:
    """Line numbers where a `.status` attribute is assigned."""
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value == "status"
        ):
            yield node.lineno
            continue
        for target in targets:
            for leaf in _targets(target):
                if isinstance(leaf, ast.Attribute) and leaf.attr == "status":
                    yield leaf.lineno


def test_only_the_door_assigns_a_status() -> None:
    offenders = [
        f"src/stageline/{relative(path)}:{line}"
        for path in modules()
        if relative(path) != THE_DOOR
        for line in sorted(status_assignments(parse(path)))
    ]
    assert not offenders, (
        "status assigned outside engine/transitions.py (go through apply/apply_run/admit):\n"
        + "\n".join(offenders)
    )


def test_the_door_check_sees_assignments() -> None:
    """The check itself: it finds each way of assigning and lets construction through."""
    tree = ast.parse(
        "job.status = 'FAILED'\n"
        "run.status: str = x\n"
        "a, (b.status, c) = y\n"
        "step.status += ''\n"
        "setattr(stage, 'status', s)\n"
        "JobRun(status=S.INIT)\n"
        "if job.status == S.INIT: pass\n"
    )
    assert list(status_assignments(tree)) == [1, 2, 3, 4, 5]


# -- 2. one vocabulary -----------------------------------------------------------------------


def _is_status(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id in STATUS_ENUMS and node.attr in MEMBER_NAMES
    return isinstance(node, ast.Constant) and node.value in WIRE_STRINGS


def _literal_type_arguments(tree: ast.AST) -> set[int]:
    """ids of the nodes that are the arguments of a `Literal[...]` (or `typing.Literal[...]`)."""
    exempt: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Subscript):
            continue
        value = node.value
        name = value.id if isinstance(value, ast.Name) else getattr(value, "attr", None)
        if name == "Literal":
            exempt.add(id(node.slice))
    return exempt


def _edge_tables(tree: ast.Module) -> set[int]:
    """ids of every node inside the value of a module-level `*_EDGES = ...` assignment."""
    exempt: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            names, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            names, value = [node.target], node.value
        else:
            continue
        if any(isinstance(name, ast.Name) and name.id.endswith("_EDGES") for name in names):
            exempt |= {id(inner) for inner in ast.walk(value)}
    return exempt


def status_listings(tree: ast.Module, *, edge_tables: bool = False) -> Iterator[tuple[int, str]]:
    """(line, what) of every literal or call that lists two or more statuses; with
    `edge_tables`, those inside the edge tables are let through."""
    exempt = _literal_type_arguments(tree) | (_edge_tables(tree) if edge_tables else set())
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            if id(node) in exempt:
                continue
            members = [element for element in node.elts if _is_status(element)]
            kind = type(node).__name__.lower()
        elif isinstance(node, ast.Call):
            members = [arg for arg in node.args if _is_status(arg)]
            kind = "call"
        else:
            continue
        if len(members) >= 2:
            yield node.lineno, f"{kind} of {', '.join(ast.unparse(m) for m in members)}"


def test_only_the_vocabulary_lists_statuses() -> None:
    offenders = [
        f"src/stageline/{relative(path)}:{line}: {what}"
        for path in modules()
        if relative(path) != THE_VOCABULARY
        for line, what in sorted(
            status_listings(parse(path), edge_tables=relative(path) == THE_EDGE_TABLES)
        )
    ]
    assert not offenders, (
        "statuses listed outside domain/statuses.py (name or add a group there):\n"
        + "\n".join(offenders)
    )


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("x in (S.QUEUED, S.REDISPATCH)", True),
        ("x not in [RunStatus.RUNNING, RunStatus.PAUSED]", True),
        ("frozenset({StageStatus.FAILED, R.CANCELED})", True),
        ("CLAIMABLE = ('QUEUED', 'REDISPATCH')", True),
        ("if status in {'RUNNING', 'PAUSED'}: pass", True),
        ("_all_in(S.SKIPPED, S.UNSELECTED)", True),
        ("Outcome = Literal['COMPLETED', 'FAILED', 'CANCELED']", False),
        ("Outcome = typing.Literal['COMPLETED', 'FAILED']", False),
        ("(_all_in(S.UNSELECTED), S.UNSELECTED)", False),
        ("WEIGHTS = (('COMPLETED', 70), ('FAILED', 12))", False),
        ("x in STAGE_TERMINAL or x is S.ASYNC_RUNNING", False),
        ("apply(state, job, S.CANCELED, message=m)", False),
        ("(S.RUNNING, 'a label')", False),
    ],
)
def test_the_vocabulary_check_sees_listings(source: str, found: bool) -> None:
    assert bool(list(status_listings(ast.parse(source)))) is found


def test_the_edge_tables_are_exempt_where_they_are_declared_only() -> None:
    source = (
        "STAGE_EDGES: dict[S, frozenset[S]] = {S.INIT: frozenset({S.QUEUED, S.SKIPPED})}\n"
        "RUN_EDGES = {R.RUNNING: frozenset({R.COMPLETED, R.FAILED})}\n"
        "DONE = frozenset({S.COMPLETED, S.SKIPPED})\n"
    )
    assert sorted(line for line, _ in status_listings(ast.parse(source), edge_tables=True)) == [3]
    assert sorted(line for line, _ in status_listings(ast.parse(source))) == [1, 2, 3]


def test_the_checks_read_the_source_tree() -> None:
    assert (SRC / THE_DOOR).is_file()
    assert (SRC / THE_VOCABULARY).is_file()
    assert len(modules()) > 50
