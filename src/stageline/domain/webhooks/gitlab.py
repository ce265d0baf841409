"""GitLab (and CodeArts Repo, which sends GitLab's shapes) payloads → build params.

The event is told by `object_kind` (the `X-Gitlab-Event` header only decides that a delivery is
GitLab's). Merge request actions are normalised as `actions.MR_ACTIONS` says.
"""

from stageline.domain.webhooks.events import Doc, EventKind, Host, Ignored, TriggerEvent, event
from stageline.domain.webhooks.refs import branch_of, commit, is_zero, tag_of

GITLAB_EVENTS = {
    "Push Hook": "push",
    "Tag Push Hook": "tag_push",
    "Merge Request Hook": "merge_request",
    "Issue Hook": "issue",
    "Note Hook": "note",
}
"""`X-Gitlab-Event` values that may start a run, and the `object_kind` each carries."""

MR_ACTIONS = {"open": "open", "reopen": "reopen", "update": "update", "merge": "merge"}
ISSUE_ACTIONS = frozenset({"open", "reopen"})


def read(host: Host, payload: Doc, header_event: str | None) -> TriggerEvent | Ignored:
    kind = payload.text("object_kind")
    if header_event is not None and GITLAB_EVENTS.get(header_event) is None:
        return Ignored(f"{header_event!r} events start no runs")
    if kind is None:
        return Ignored("the body has no object_kind")
    reader = _READERS.get(kind)
    if reader is None:
        return Ignored(f"{kind!r} events start no runs")
    return reader(host, payload)


def _user(payload: Doc) -> str | None:
    return payload.text("user_username") or payload.text("user", "username")


def _project(payload: Doc) -> dict[str, str | None]:
    """The project's own repository, as both target and source."""
    return {
        "codehub_id": payload.text("project", "id") or payload.text("project_id"),
        "git_url": payload.text("project", "git_http_url"),
        "source_codehub_id": payload.text("project", "id") or payload.text("project_id"),
        "source_codehub_url": payload.text("project", "git_ssh_url"),
        "source_codehub_http_url": payload.text("project", "git_http_url"),
    }


def _message_of(payload: Doc, sha: str | None) -> str | None:
    """The message of the commit `sha` among the pushed ones, else of the last one listed."""
    commits = payload.items("commits")
    for item in commits:
        if sha is not None and item.text("id") == sha:
            return item.text("message")
    return commits[-1].text("message") if commits else None


def _push(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    ref = payload.text("ref")
    branch = branch_of(ref)
    if branch is None:
        return Ignored(f"a push to {ref!r}, which is not a branch")
    if is_zero(payload.text("after")):
        return Ignored(f"branch {branch!r} was deleted")
    sha = commit(payload.text("checkout_sha"), payload.text("after"))
    return event(
        host,
        EventKind.PUSH,
        branch=branch,
        user=_user(payload),
        build_type="branch",
        commit_id=sha,
        message=_message_of(payload, sha),
        source_branch=branch,
        target_branch=branch,
        **_project(payload),
    )


def _tag_push(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    tag = tag_of(payload.text("ref"))
    if tag is None:
        return Ignored(f"a tag push to {payload.text('ref')!r}, which is not a tag")
    if is_zero(payload.text("after")):
        return Ignored(f"tag {tag!r} was deleted")
    if not is_zero(payload.text("before")):
        return Ignored(f"tag {tag!r} was moved, not created")
    # `after` may be an annotated tag's own object; `checkout_sha` is the commit it points at.
    sha = commit(payload.text("checkout_sha"), payload.text("after"))
    return event(
        host,
        EventKind.TAG_PUSH,
        user=_user(payload),
        build_type="tag",
        commit_id=sha,
        message=payload.text("message") or _message_of(payload, sha),
        tag=tag,
        **_project(payload),
    )


def _merge_request(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    attributes = payload.doc("object_attributes")
    raw_action = attributes.text("action")
    action = MR_ACTIONS.get(raw_action or "")
    if action is None:
        return Ignored(f"merge request action {raw_action!r} starts no run")
    if action == "update" and not attributes.present("oldrev"):
        return Ignored("the merge request was edited without new commits")
    if action == "merge":
        sha = commit(attributes.text("merge_commit_sha"), attributes.text("last_commit", "id"))
    else:
        sha = commit(attributes.text("last_commit", "id"))
    target = attributes.text("target_branch")
    return event(
        host,
        EventKind.MERGE_REQUEST,
        branch=target,
        user=_user(payload),
        build_type="branch",
        action=action,
        commit_id=sha,
        message=attributes.text("last_commit", "message"),
        merge_id=attributes.text("iid"),
        source_branch=attributes.text("source_branch"),
        target_branch=target,
        codehub_id=attributes.text("target_project_id") or payload.text("project", "id"),
        git_url=(
            attributes.text("target", "git_http_url") or payload.text("project", "git_http_url")
        ),
        source_codehub_id=attributes.text("source_project_id"),
        source_codehub_url=attributes.text("source", "git_ssh_url"),
        source_codehub_http_url=attributes.text("source", "git_http_url"),
    )


def _issue(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    raw_action = payload.text("object_attributes", "action")
    if raw_action is not None and raw_action not in ISSUE_ACTIONS:
        return Ignored(f"issue action {raw_action!r} starts no run (only open and reopen)")
    return event(
        host,
        EventKind.ISSUE,
        user=_user(payload),
        build_type="branch",
        message=payload.text("object_attributes", "title"),
        target_branch=payload.text("project", "default_branch"),
        codehub_id=payload.text("project", "id"),
        git_url=payload.text("project", "git_http_url"),
    )


def _note(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    attributes = payload.doc("object_attributes")
    raw_action = attributes.text("action")
    if raw_action is not None and raw_action != "create":
        return Ignored(f"comment action {raw_action!r} starts no run (only new comments)")
    common = {
        "message": attributes.text("note"),
        "codehub_id": payload.text("project", "id") or payload.text("project_id"),
        "git_url": payload.text("project", "git_http_url"),
    }
    default_branch = payload.text("project", "default_branch")
    user = _user(payload)
    noteable = attributes.text("noteable_type")
    if noteable == "MergeRequest":
        mr = payload.doc("merge_request")
        return event(
            host,
            EventKind.NOTE,
            user=user,
            build_type="branch",
            commit_id=commit(mr.text("last_commit", "id")),
            merge_id=mr.text("iid"),
            source_branch=mr.text("source_branch"),
            target_branch=mr.text("target_branch") or default_branch,
            source_codehub_id=mr.text("source_project_id"),
            source_codehub_url=mr.text("source", "git_ssh_url"),
            source_codehub_http_url=mr.text("source", "git_http_url"),
            **common,
        )
    sha = commit(payload.text("commit", "id"), attributes.text("commit_id"))
    return event(
        host,
        EventKind.NOTE,
        user=user,
        build_type="branch",
        commit_id=sha if noteable == "Commit" else None,
        target_branch=default_branch,
        **common,
    )


_READERS = {
    "push": _push,
    "tag_push": _tag_push,
    "merge_request": _merge_request,
    "issue": _issue,
    "note": _note,
}
