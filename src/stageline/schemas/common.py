"""Types shared by the wire models."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

ID_PATTERN = r"^[0-9a-zA-Z]{32}$"
CodeArtsId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A pipeline, run, project or user ID: 32 letters and digits."""

MAX_INT32 = 2**31 - 1
"""The largest integer any request may carry: counts, offsets, numbers and sequences all end
in 32-bit columns or comparisons with them, and a larger value could only fail there."""
Offset = Annotated[int, Field(ge=0, le=MAX_INT32)]
"""How many items or lines to skip."""
MAX_LIST_ITEMS = 100
"""Most items in any list of a request body (variables, sources, IDs to filter by, …)."""


class WireInput(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


RunStatusName = Literal[
    "COMPLETED", "RUNNING", "FAILED", "CANCELED", "PAUSED", "SUSPEND", "IGNORED"
]
"""RunStatus as a filter value (a Literal, so that strict validation takes the JSON string)."""
