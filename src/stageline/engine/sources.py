"""A run's code sources: what each builds, and the commit it builds, fixed when the run is made.

`run_sources` says, without any I/O, which branch, tag or commit each code source of a new run
names (the primary one, the first, takes the run's build params); `SourceResolver` then asks
each repository for the commit a branch or tag points at, and the commit's message. Every job
of the run checks out that commit, however the branch moves meanwhile. A repository that
cannot be read leaves the commit unknown: the run is still made, and its jobs' checkout says
why it fails.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stageline.auth.vault import Vault
from stageline.domain.errors import InvalidInput
from stageline.domain.statuses import TriggerType
from stageline.domain.variables import source_variables
from stageline.gitrepo import (
    RESOLVE_TIMEOUT_SECONDS,
    GitError,
    RefKind,
    Remote,
    commit_message,
    read_file,
    resolve_ref,
)
from stageline.schemas.pipeline_yaml import definition_from_yaml
from stageline.schemas.runs import RunCreate, RunSource
from stageline.schemas.yaml_source import InvalidYaml

log = logging.getLogger(__name__)

SOURCE_BUILD_KEYS = (
    "build_type",
    "target_branch",
    "tag",
    "commit_id",
    "message",
    "event_type",
    "source_branch",
    "merge_id",
)
"""What a run records per code source, in `sources[].params.build_params`."""
OWN_TEXT_EVENTS = frozenset({TriggerType.ISSUE.value, TriggerType.NOTE.value})
"""Events whose `message` is their own text (an issue's title, a comment) rather than a
commit's: it is kept when the commit they build is resolved."""
TOKEN_VARIABLE = "token_variable"
"""A code source's parameter (an extension) naming the secret variable whose value is the
token that reads the repository over https."""
PIPELINE_FILE = "pipeline_file"
"""A code source's parameter (an extension) naming the pipeline YAML file in the repository
whose stages each run takes (pipelines as code)."""


PIPELINE_FILE_COMMIT = "pipeline_file_commit"
"""What a run records on its primary code source, beside `pipeline_file`: the commit the
pipeline file was read at."""


def code_sources(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in sources if s.get("type") == "code"]


def pipeline_file_of(pipeline_sources: list[dict[str, Any]]) -> str | None:
    """The pipeline file the pipeline's primary code source names (pipelines as code)."""
    primary = next(iter(code_sources(pipeline_sources)), None)
    return (primary["params"].get(PIPELINE_FILE) or None) if primary is not None else None


@dataclass(frozen=True)
class PipelineFile:
    """A run's pipeline file: read at `commit`, its stages as a `definition`, or the
    `problem` (with the file's line and column when it is the YAML's) that fails the run."""

    path: str
    commit: str | None
    definition: str | None
    problem: str | None = None


def _relative_path(url: str) -> bool:
    """Whether git would read `url` as a relative local path: no `scheme://`, no scp-like
    `host:path` (a colon before any slash), and no leading slash."""
    if "://" in url or url.startswith("/"):
        return False
    colon, slash = url.find(":"), url.find("/")
    return colon == -1 or (slash != -1 and slash < colon)


def source_problem(
    sources: list[dict[str, Any]], declared: list[dict[str, Any]], *, where: str = "sources"
) -> str | None:
    """Why these code sources cannot be saved or run, with a field path; None when they can.
    Several code sources need distinct aliases (their directories and variables are named
    after them), which no variable's name may take; a token variable must be a declared
    secret; a run's tag build must name its tag."""
    code = [(index, s["params"]) for index, s in enumerate(sources) if s.get("type") == "code"]
    secrets = {v["name"] for v in declared if v.get("is_secret")}
    aliases: dict[str, str] = {}
    """Upper-cased (as in the variables' names) -> as given."""
    for index, params in code:
        alias = params.get("alias") or ""
        if alias.upper() in aliases:
            return f"{where}[{index}].params.alias: '{alias}' is already used by another source"
        if alias:
            aliases[alias.upper()] = alias
        elif len(code) > 1:
            return f"{where}[{index}].params.alias: each of several code sources needs one"
        url = params.get("git_url") or ""
        if url.startswith("-"):
            return f"{where}[{index}].params.git_url: not a repository URL"
        if _relative_path(url):
            return (
                f"{where}[{index}].params.git_url: a local repository needs an absolute path"
                " (a relative one means another place on the server and on each agent)"
            )
        chosen = params.get("build_params") or {}
        if chosen.get("build_type") == "tag" and not chosen.get("tag"):
            return f"{where}[{index}].params.build_params.tag: required with build_type 'tag'"
        pipeline_file = params.get(PIPELINE_FILE) or ""
        if ".." in pipeline_file.split("/"):
            return f"{where}[{index}].params.{PIPELINE_FILE}: must not have a '..' part"
        token = params.get(TOKEN_VARIABLE)
        if token is not None and token not in secrets:
            return (
                f"{where}[{index}].params.{TOKEN_VARIABLE}: '{token}' is not a secret variable"
                " of the pipeline (declare it with is_secret true)"
            )
    taken = {name: alias for alias in aliases.values() for name in source_variables(alias)}
    for index, variable in enumerate(declared):
        if variable["name"] in taken:
            return (
                f"variables[{index}].name: '{variable['name']}' is set by Stageline for the code"
                f" source aliased '{taken[variable['name']]}'"
            )
    return None


def run_sources(
    pipeline_sources: list[dict[str, Any]],
    given: list[RunSource],
    build_params: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The sources the run records: those the request gives, else the pipeline's; every code
    source with what it builds in `params.build_params`, the primary one (the first) from the
    run's `build_params`. A given source takes the pipeline's token variable only if it names
    the same repository: the token never goes to a URL the pipeline's admin did not set."""
    if given:
        tokens = {
            s["params"].get("git_url"): s["params"][TOKEN_VARIABLE]
            for s in code_sources(pipeline_sources)
            if s["params"].get(TOKEN_VARIABLE)
        }
        sources = []
        for one in given:
            recorded = one.model_dump(exclude_none=True)
            token = tokens.get(one.params.git_url)
            if one.type == "code" and token is not None:
                recorded["params"][TOKEN_VARIABLE] = token
            sources.append(recorded)
    else:
        sources = [{**s, "params": dict(s.get("params") or {})} for s in pipeline_sources]
    primary = True
    for source in sources:
        if source.get("type") != "code":
            continue
        params = source["params"]
        if primary:
            chosen = {key: build_params.get(key) for key in SOURCE_BUILD_KEYS}
            primary = False
        else:
            chosen = dict.fromkeys(SOURCE_BUILD_KEYS)
            chosen.update(params.get("build_params") or {})
            if not chosen["build_type"] and params.get("default_branch"):
                chosen["build_type"] = "branch"
                chosen["target_branch"] = params["default_branch"]
        params["build_params"] = chosen
    return sources


def needs_resolving(sources: list[dict[str, Any]]) -> bool:
    """Whether a code source has a repository whose commit (or its message) is not known."""
    return any(
        s["params"].get("git_url")
        and not (
            s["params"]["build_params"].get("commit_id")
            and s["params"]["build_params"].get("message")
        )
        for s in code_sources(sources)
    )


def token_values(
    sources: list[dict[str, Any]],
    declared: list[dict[str, Any]],
    request: RunCreate,
    vault: Vault | None,
) -> dict[str, str]:
    """The opened value of each token variable the sources name (a run-time value if the
    request sets one)."""
    wanted = {
        s["params"][TOKEN_VARIABLE]
        for s in code_sources(sources)
        if s["params"].get(TOKEN_VARIABLE)
    }
    if not wanted:
        return {}
    given = {v.name: v.value for v in request.variables or []}
    values = {}
    for variable in declared:
        name = variable["name"]
        if name not in wanted:
            continue
        if variable.get("is_runtime") and name in given:
            values[name] = given[name]
        elif variable.get("value") and vault is not None:
            values[name] = (
                vault.open(variable["value"]) if variable.get("is_secret") else variable["value"]
            )
    return values


def source_ref(chosen: Mapping[str, Any]) -> str | None:
    """The full name of the branch or tag a source's `build_params` name, if any."""
    if chosen.get("build_type") == "tag":
        return f"refs/tags/{chosen['tag']}" if chosen.get("tag") else None
    if chosen.get("target_branch"):
        return f"refs/heads/{chosen['target_branch']}"
    return None


class SourceResolver:
    """Asks the repositories of a new run's code sources which commit each builds. Runs
    before the run's transaction: a slow repository never holds the database's write lock."""

    def __init__(self, scratch: Path, timeout_seconds: float = RESOLVE_TIMEOUT_SECONDS) -> None:
        self.scratch = scratch
        """Where the bare repositories that read a commit's message are made (and removed)."""
        self.timeout_seconds = timeout_seconds

    def resolve(
        self, sources: list[dict[str, Any]], tokens: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """`sources` with each code source's `commit_id` and `message` filled in where they
        could be read; a repository that cannot be read leaves them as they were (logged)."""
        resolved = []
        for source in sources:
            params = source.get("params") or {}
            if source.get("type") != "code" or not params.get("git_url"):
                resolved.append(source)
                continue
            chosen = dict(params["build_params"])
            remote = Remote(params["git_url"], tokens.get(params.get(TOKEN_VARIABLE) or ""))
            try:
                self._resolve(remote, chosen)
            except GitError as error:
                log.warning("run source %s: %s", remote.shown, error)
            resolved.append({**source, "params": {**params, "build_params": chosen}})
        return resolved

    def _resolve(self, remote: Remote, chosen: dict[str, Any]) -> None:
        ref = source_ref(chosen)
        if not chosen.get("commit_id"):
            # naming no branch or tag builds the repository's default branch
            kind: RefKind = "tag" if ref and ref.startswith("refs/tags/") else "branch"
            chosen["commit_id"] = resolve_ref(
                remote, kind, ref or "HEAD", timeout=self.timeout_seconds
            )
            if chosen.get("event_type") not in OWN_TEXT_EVENTS:
                chosen["message"] = None  # an event's message was about another commit
        if not chosen.get("message"):
            chosen["message"] = commit_message(
                remote,
                chosen["commit_id"],
                scratch=self.scratch,
                ref=ref or "HEAD",
                timeout=self.timeout_seconds,
            )

    def read_pipeline_file(
        self, sources: list[dict[str, Any]], path: str, tokens: Mapping[str, str]
    ) -> PipelineFile:
        """The pipeline file at the commit the run's primary code source resolved to. Never
        raises: what goes wrong is the `problem` the run fails with."""
        primary = next(iter(code_sources(sources)), None)
        params = primary["params"] if primary is not None else {}
        chosen = params.get("build_params") or {}
        commit = chosen.get("commit_id")
        if not params.get("git_url") or not commit:
            return PipelineFile(
                path, None, None, f"{path}: the repository could not be read (see the log)"
            )
        remote = Remote(params["git_url"], tokens.get(params.get(TOKEN_VARIABLE) or ""))
        try:
            text = read_file(
                remote,
                commit,
                path,
                scratch=self.scratch,
                ref=source_ref(chosen) or "HEAD",
                timeout=self.timeout_seconds,
            )
        except GitError as error:
            return PipelineFile(path, commit, None, f"{path} at {commit[:12]}: {error}")
        if text is None:
            return PipelineFile(path, commit, None, f"{path}: no such file at {commit[:12]}")
        try:
            return PipelineFile(path, commit, definition_from_yaml(text))
        except InvalidYaml as error:
            return PipelineFile(path, commit, None, f"{path} at {commit[:12]}: {error.message}")


def refuse_bad_sources(sources: list[dict[str, Any]], declared: list[dict[str, Any]]) -> None:
    """`InvalidInput` when `source_problem` finds one."""
    problem = source_problem(sources, declared)
    if problem is not None:
        raise InvalidInput(problem)
