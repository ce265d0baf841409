"""Step log lines: append in order, read a window by line offset."""

from collections.abc import Sequence
from typing import Literal

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from stageline.store.tables import StepLog


def append_log_lines(
    session: Session, *, step_run_id: str, first_line_no: int, lines: Sequence[str], now: int
) -> None:
    session.execute(
        insert(StepLog),
        [
            {
                "step_run_id": step_run_id,
                "line_no": first_line_no + i,
                "content": line,
                "created_at": now,
            }
            for i, line in enumerate(lines)
        ],
    )


_LAST_LINES = (
    select(StepLog.step_run_id, func.max(StepLog.line_no))
    .where(StepLog.step_run_id.in_(bindparam("ids", expanding=True)))
    .group_by(StepLog.step_run_id)
)


def next_line_numbers(session: Session, *, step_run_ids: Sequence[str]) -> dict[str, int]:
    """For each step, the number its next log line gets (0 for a step with no lines yet)."""
    rows = session.execute(_LAST_LINES, {"ids": list(step_run_ids)})
    found = {row[0]: row[1] + 1 for row in rows}
    return {step_run_id: found.get(step_run_id, 0) for step_run_id in step_run_ids}


def read_log_lines(
    session: Session,
    *,
    step_run_id: str,
    start: int,
    end: int | None,
    limit: int,
    sort: Literal["asc", "desc"],
) -> list[tuple[int, str]]:
    """(line_no, content) with start <= line_no (< end when given), `limit` of them in `sort`."""
    query = select(StepLog.line_no, StepLog.content).where(
        StepLog.step_run_id == step_run_id, StepLog.line_no >= start
    )
    if end is not None:
        query = query.where(StepLog.line_no < end)
    order = StepLog.line_no.asc() if sort == "asc" else StepLog.line_no.desc()
    return [(row[0], row[1]) for row in session.execute(query.order_by(order).limit(limit))]
