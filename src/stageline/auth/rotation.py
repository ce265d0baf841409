"""`stageline admin rotate-secrets`: seal every stored secret variable value under the current
master secret, in pipelines (deleted ones included) and in runs.

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
    unreadable: list[str] = field(default_factory=list)
    """`<kind> <id>: <variable>` for each value no key opened."""


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


def rotate_secrets(db: Database, vault: Vault, *, page_rows: int = PAGE_ROWS) -> Rotation:
    rotation = Rotation()
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
