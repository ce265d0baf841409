"""Types shared by the wire models."""

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from stageline.domain.errors import excerpt

ID_PATTERN = r"^[0-9a-zA-Z]{32}$"
CodeArtsId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A pipeline, run, project or user ID: 32 letters and digits."""

MAX_INT32 = 2**31 - 1
"""The largest integer any request may carry: counts, offsets, numbers and sequences all end
in 32-bit columns or comparisons with them, and a larger value could only fail there."""
Offset = Annotated[int, Field(ge=0, le=MAX_INT32)]
"""How many items or lines to skip."""
MAX_LIST_ITEMS = 100
"""Most variables, sources, schedules or triggers of a pipeline or a run request, and most
values of a filter."""
MAX_CHOICES = 1000
"""Most stage or job identifiers a run request may choose, or job run IDs a retry may name."""
MAX_JSON_DEPTH = 32
"""How deeply free-form JSON (schedules, triggers, variable limits) may nest: what is stored
must be answered again, and JSON encoders give up on deep nesting."""


def _shallow(value: Any) -> Any:
    """Refuse arrays and objects nested deeper than `MAX_JSON_DEPTH` (without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nests arrays and objects deeper than {MAX_JSON_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children)
    return value


FreeJson = Annotated[dict[str, Any], AfterValidator(_shallow)]
"""An object this server stores and answers as it came (a schedule, a trigger)."""
ShallowList = Annotated[list[Any], AfterValidator(_shallow)]


NUL = "\x00"
"""PostgreSQL text and JSON cannot hold it: a request carrying one is refused at the door rather
than failing in the database (and working on SQLite)."""


def _nul_at(value: Any) -> str | None:
    """Where the first string (key or value) holding a NUL character is, else None."""
    pending: list[tuple[Any, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str) and NUL in item:
            return path or "body"
        if isinstance(item, dict):
            for key, child in item.items():
                name = excerpt(str(key).replace(NUL, "\\0"))
                where = f"{path}.{name}" if path else name
                if isinstance(key, str) and NUL in key:
                    return where
                pending.append((child, where))
        elif isinstance(item, list):
            pending.extend((child, f"{path}[{index}]") for index, child in enumerate(item))
    return None


def refuse_nul(data: Any) -> Any:
    """`data` as it is; ValueError naming where it holds a NUL character."""
    where = _nul_at(data)
    if where is not None:
        raise ValueError(f"{where}: text must not contain NUL characters (\\u0000)")
    return data


class WireInput(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return refuse_nul(data)


RunStatusName = Literal[
    "COMPLETED", "RUNNING", "FAILED", "CANCELED", "PAUSED", "SUSPEND", "IGNORED"
]
"""RunStatus as a filter value (a Literal, so that strict validation takes the JSON string)."""
