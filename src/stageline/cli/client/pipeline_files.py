"""`stageline pipeline apply -f FILE` and `stageline pipeline export NAME`: pipelines as code.

Apply creates the pipeline the file names, or updates the one of that name, and says what
changed (nothing changed: nothing is sent). Export writes a pipeline as YAML, which applied
again changes nothing. Errors in a file name its line and column (`FILE:LINE:COLUMN: …`).
"""

import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from stageline.cli.client import outcomes
from stageline.cli.client.config import DEFAULT_PROFILE
from stageline.cli.client.errors import ApiError
from stageline.cli.client.session import (
    JsonOption,
    ProfileOption,
    ProjectOption,
    ServerOption,
    app,
    connect,
    die,
    handled,
    print_json,
    wants_json,
)

pipeline_app = typer.Typer(help="Pipelines as code: apply a YAML file, export a pipeline.")
app.add_typer(pipeline_app, name="pipeline")

_AT = re.compile(r"^(?:body: )?line (\d+), column (\d+): ")


def _located(path: str, message: str) -> str:
    """`FILE:LINE:COLUMN: problem`, as editors and compilers print it."""
    match = _AT.match(message)
    if match is None:
        return f"{path}: {message}"
    return f"{path}:{match.group(1)}:{match.group(2)}: {message[match.end() :]}"


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        die(f"cannot read {path}: {error}", outcomes.ERROR)


@pipeline_app.command("apply")
def apply(
    file: Annotated[
        str, typer.Option("--file", "-f", help="The pipeline YAML file ('-': standard input).")
    ],
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """Create the pipeline FILE describes, or update the one of its name; prints what changed:
    created, updated (which keys) or unchanged. Secret variables keep the values set through
    the API or the web UI."""
    from stageline.schemas.pipeline_document import changed_keys, document_of
    from stageline.schemas.pipeline_yaml import pipeline_from_yaml
    from stageline.schemas.yaml_source import InvalidYaml

    text = _read(file)
    try:
        body = pipeline_from_yaml(text)
    except InvalidYaml as error:
        die(_located(file, error.message), outcomes.ERROR)
    name = body["name"]
    with handled(), connect(server, project, profile) as client:
        existing = next((p for p in client.list_pipelines() if p["name"] == name), None)
        try:
            if existing is None:
                pipeline_id = client.create_pipeline({"yaml_content": text})
                action, changed = "created", list(document_of(body))
            else:
                pipeline_id = existing["pipeline_id"]
                changed = changed_keys(document_of(client.pipeline(pipeline_id)), document_of(body))
                action = "updated" if changed else "unchanged"
                if changed:
                    client.update_pipeline(pipeline_id, {"yaml_content": text})
        except ApiError as error:
            die(_located(file, error.error_msg), outcomes.ERROR)
    if wants_json(as_json):
        print_json({"pipeline_id": pipeline_id, "name": name, "action": action, "changed": changed})
    elif action == "updated":
        typer.echo(f"updated pipeline {name} ({pipeline_id}): {', '.join(changed)}")
    else:
        typer.echo(f"{action} pipeline {name} ({pipeline_id})")


@pipeline_app.command("export")
def export(
    pipeline: Annotated[str, typer.Argument(help="The pipeline: its name or its ID.")],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """Write PIPELINE as YAML (secret values are never written); `apply -f` of the result
    changes nothing. With --json: {pipeline_id, name, file, yaml_content} on stdout."""
    from stageline.cli.client.references import resolve_pipeline
    from stageline.schemas.pipeline_document import pipeline_to_yaml

    with handled(), connect(server, project, profile) as client:
        detail = client.pipeline(resolve_pipeline(client, pipeline).id)
        schema_url = f"{client.server}/schemas/pipeline.json"
    text = pipeline_to_yaml(detail, schema_url=schema_url)
    if output is not None:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as error:
            die(f"cannot write {output}: {error}", outcomes.ERROR)
    if wants_json(as_json):
        written = {"pipeline_id": detail["id"], "name": detail["name"], "file": output}
        print_json({**written, "yaml_content": text})
    elif output is None:
        typer.echo(text, nl=False)
    else:
        typer.echo(f"wrote {output}", err=True)
