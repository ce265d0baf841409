"""Project roles and what each may do: viewer reads, developer also runs and stops, admin also
creates, updates and deletes pipelines."""

from enum import IntEnum


class Role(IntEnum):
    VIEWER = 1
    DEVELOPER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> "Role":
        try:
            return cls[label.upper()]
        except KeyError:
            raise ValueError(f"unknown role {label!r}: use viewer, developer or admin") from None


def allows(held: Role, needed: Role) -> bool:
    return held >= needed
