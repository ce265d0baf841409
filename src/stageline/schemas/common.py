"""Types shared by the wire models."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

ID_PATTERN = r"^[0-9a-zA-Z]{32}$"
CodeArtsId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A pipeline, run, project or user ID: 32 letters and digits."""


class WireInput(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


RunStatusName = Literal[
    "COMPLETED", "RUNNING", "FAILED", "CANCELED", "PAUSED", "SUSPEND", "IGNORED"
]
"""RunStatus as a filter value (a Literal, so that strict validation takes the JSON string)."""
