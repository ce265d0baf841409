"""Types shared by the wire models."""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

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
        children = item.values() if isinstance(item, dict) else item
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nests arrays and objects deeper than {MAX_JSON_DEPTH} levels")
        pending.extend((child, depth + 1) for child in children)
    return value


FreeJson = Annotated[dict[str, Any], AfterValidator(_shallow)]
"""An object this server stores and answers as it came (a schedule, a trigger)."""
ShallowList = Annotated[list[Any], AfterValidator(_shallow)]


class WireInput(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


RunStatusName = Literal[
    "COMPLETED", "RUNNING", "FAILED", "CANCELED", "PAUSED", "SUSPEND", "IGNORED"
]
"""RunStatus as a filter value (a Literal, so that strict validation takes the JSON string)."""
