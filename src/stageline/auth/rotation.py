"""`stageline admin rotate-secrets`: seal every stored secret variable value under the current
master secret, in pipelines (deleted ones included) and in runs, and every pipeline trigger's
webhook secret (`security_token`).

Values stored in clear by an earlier version are sealed; values sealed under an older master
secret (given to the vault as `previous`) are opened and sealed again; current ones are left
alone, so the command may be run again, or after an interruption, at no harm. Each page of rows
is one transaction; a value no key opens is left as it is and reported.
"""

from dataclasses import dataclass, field
from typing import Any

from stageline.auth.vault import SecretUnreadable, Vault
from stageline.store.database import Database
from stageline.store.queries import variables as variable_queries
from stageline.store.queries.variables import Holder
from stageline.store.tables import Pipeline, PipelineRun

PAGE_ROWS = 500
TABLES: dict[str, Holder] = {"pipeline": Pipeline, "run": PipelineRun}


@dataclass
class Rotation:
    rewritten: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    """Rows whose variables were rewritten, by kind (`pipeline`, `run`)."""
    triggers_rewritten: int = 0
    """Pipelines whose triggers' webhook secrets were rewritten."""
    unreadable: list[str] = field(default_factory=list)
    """`<kind> <id>: <variable>` (or `trigger <hook ID>`) for each value no key opened."""


def _resealed(variables: list[Any], vault: Vault, *, where: str, into: Rotation) -> list[Any]:
    result = []
    for variable in variables:
        value = variable.get("value")
        if variable.get("is_secret") and value and not vault.is_current(value):
            try:
                variable = {**variable, "value": vault.reseal(value)}
            except SecretUnreadable:
                into.unreadable.append(f"{where}: {variable.get('name')}")
        result.append(variable)
    return result


def _resealed_triggers(
    triggers: list[Any], vault: Vault, *, where: str, into: Rotation
) -> list[Any]:
    result = []
    for trigger in triggers:
        token = trigger.get("security_token") if isinstance(trigger, dict) else None
        if isinstance(token, str) and token and not vault.is_current(token):
            try:
                trigger = {**trigger, "security_token": vault.reseal(token)}
            except SecretUnreadable:
                into.unreadable.append(f"{where}: trigger {trigger.get('hook_id')}")
        result.append(trigger)
    return result


def _rotate_triggers(db: Database, vault: Vault, rotation: Rotation, page_rows: int) -> None:
    after = ""
    while True:
        with db.writer() as session:
            page = variable_queries.triggers_page(session, after=after, limit=page_rows)
            for pipeline_id, triggers in page:
                where = f"pipeline {pipeline_id}"
                resealed = _resealed_triggers(triggers or [], vault, where=where, into=rotation)
                if resealed != (triggers or []):
                    variable_queries.write_triggers(
                        session, pipeline_id=pipeline_id, triggers=resealed
                    )
                    rotation.triggers_rewritten += 1
        if len(page) < page_rows:
            return
        after = page[-1][0]


def rotate_secrets(db: Database, vault: Vault, *, page_rows: int = PAGE_ROWS) -> Rotation:
    rotation = Rotation()
    _rotate_triggers(db, vault, rotation, page_rows)
    for kind, table in TABLES.items():
        after = ""
        while True:
            with db.writer() as session:
                page = variable_queries.variables_page(session, table, after=after, limit=page_rows)
                for row_id, variables in page:
                    where = f"{kind} {row_id}"
                    resealed = _resealed(variables or [], vault, where=where, into=rotation)
                    if resealed != (variables or []):
                        variable_queries.write_variables(
                            session, table, row_id=row_id, variables=resealed
                        )
                        rotation.rewritten[kind] += 1
            if len(page) < page_rows:
                break
            after = page[-1][0]
    return rotation
