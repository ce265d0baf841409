"""What the response bodies share: strings from a fixed vocabulary, and field descriptions.

They are `str` to the code that fills them (it copies stored columns) and enums in /openapi.json,
listed from the domain's own vocabularies so the two cannot drift apart.
"""

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, WithJsonSchema

from stageline.domain.statuses import RunStatus, StageStatus, TriggerType

DOCUMENTED = ConfigDict(use_attribute_docstrings=True)
"""With this config a body's attribute docstrings become field descriptions in /openapi.json."""


def _one_of(vocabulary: type[StrEnum]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": [member.value for member in vocabulary]})


RunStatusText = Annotated[str, _one_of(RunStatus)]
"""A run's `status`."""
StageStatusText = Annotated[str, _one_of(StageStatus)]
"""The `status` of a stage, a job or a step."""
TriggerText = Annotated[str, _one_of(TriggerType)]
"""What started a run (`trigger_type`)."""
