"""GitHub payloads (`X-GitHub-Event`) → build params.

A new tag arrives twice: as a `push` of `refs/tags/<tag>` (which names the commit) and as a
`create` (which does not). Both map to CreateTag; the hook should send only pushes.
"""

from stageline.domain.webhooks.events import Doc, EventKind, Host, Ignored, TriggerEvent, event
from stageline.domain.webhooks.refs import branch_of, commit, is_zero, short, tag_of

PR_ACTIONS = {
    "opened": "open",
    "ready_for_review": "open",
    "reopened": "reopen",
    "synchronize": "update",
}
"""GitHub's `pull_request` actions that start a run (and `closed` when merged: `merge`)."""
ISSUE_ACTIONS = frozenset({"opened", "reopened"})


def read(host: Host, payload: Doc, header_event: str) -> TriggerEvent | Ignored:
    reader = _READERS.get(header_event)
    if reader is None:
        return Ignored(f"{header_event!r} events start no runs")
    return reader(host, payload)


def _repository(payload: Doc) -> dict[str, str | None]:
    return {
        "codehub_id": payload.text("repository", "id"),
        "git_url": payload.text("repository", "clone_url"),
    }


def _same_repository(payload: Doc) -> dict[str, str | None]:
    """The repository as target and as source."""
    return {
        **_repository(payload),
        "source_codehub_id": payload.text("repository", "id"),
        "source_codehub_url": payload.text("repository", "ssh_url"),
        "source_codehub_http_url": payload.text("repository", "clone_url"),
    }


def _user(payload: Doc) -> str | None:
    return payload.text("sender", "login") or payload.text("pusher", "name")


def push(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    """A `push` (GitHub's and Gitea's are alike): of a branch, or a new tag."""
    ref = payload.text("ref")
    branch, tag = branch_of(ref), tag_of(ref)
    if payload.truthy("deleted") or is_zero(payload.text("after")):
        return Ignored(f"{ref!r} was deleted")
    message = payload.text("head_commit", "message")
    if branch is not None:
        return event(
            host,
            EventKind.PUSH,
            branch=branch,
            user=_user(payload),
            build_type="branch",
            commit_id=commit(payload.text("after"), payload.text("head_commit", "id")),
            message=message,
            source_branch=branch,
            target_branch=branch,
            **_same_repository(payload),
        )
    if tag is not None:
        if not payload.truthy("created"):
            return Ignored(f"tag {tag!r} was moved, not created")
        return event(
            host,
            EventKind.TAG_PUSH,
            user=_user(payload),
            build_type="tag",
            commit_id=commit(payload.text("head_commit", "id"), payload.text("after")),
            message=message,
            tag=tag,
            target_branch=branch_of(payload.text("base_ref")),
            **_same_repository(payload),
        )
    return Ignored(f"a push to {ref!r}, which is neither a branch nor a tag")


def _create(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    ref_type = payload.text("ref_type")
    if ref_type != "tag":
        return Ignored(f"creating a {ref_type or 'ref'} starts no run (its push does)")
    return event(
        host,
        EventKind.TAG_PUSH,
        user=_user(payload),
        build_type="tag",
        tag=short(payload.text("ref"), "refs/tags/"),
        **_same_repository(payload),
    )


def pull_request_action(payload: Doc) -> str | None:
    """Our action for a pull request event (GitHub's and Gitea's closed+merged is `merge`)."""
    raw = payload.text("action") or ""
    if raw == "closed":
        return "merge" if payload.truthy("pull_request", "merged") else None
    return {**PR_ACTIONS, "synchronized": "update"}.get(raw)


def pull_request(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    action = pull_request_action(payload)
    if action is None:
        raw = payload.text("action")
        closed = " without merging" if raw == "closed" else ""
        return Ignored(f"pull request action {raw!r}{closed} starts no run")
    pr = payload.doc("pull_request")
    if action == "merge":
        sha = commit(pr.text("merge_commit_sha"), pr.text("head", "sha"))
    else:
        sha = commit(pr.text("head", "sha"))
    target = pr.text("base", "ref")
    return event(
        host,
        EventKind.MERGE_REQUEST,
        branch=target,
        user=_user(payload),
        build_type="branch",
        action=action,
        commit_id=sha,
        message=pr.text("title"),
        merge_id=payload.text("number") or pr.text("number"),
        source_branch=pr.text("head", "ref"),
        target_branch=target,
        codehub_id=pr.text("base", "repo", "id") or pr.text("base", "repo_id"),
        git_url=pr.text("base", "repo", "clone_url"),
        # `head.repo` is null when the fork was deleted.
        source_codehub_id=pr.text("head", "repo", "id") or pr.text("head", "repo_id"),
        source_codehub_url=pr.text("head", "repo", "ssh_url"),
        source_codehub_http_url=pr.text("head", "repo", "clone_url"),
    )


def issues(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    """An issue opened or reopened (GitHub's `issues`, Gitea's `issues`)."""
    raw = payload.text("action")
    if raw not in ISSUE_ACTIONS:
        return Ignored(f"issue action {raw!r} starts no run (only opened and reopened)")
    return event(
        host,
        EventKind.ISSUE,
        user=_user(payload),
        build_type="branch",
        message=payload.text("issue", "title"),
        target_branch=payload.text("repository", "default_branch"),
        **_repository(payload),
    )


def issue_comment(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    """A new comment on an issue or a pull request (GitHub's and Gitea's `issue_comment`):
    the body names no commit."""
    raw = payload.text("action")
    if raw != "created":
        return Ignored(f"comment action {raw!r} starts no run (only new comments)")
    on_pull_request = payload.present("issue", "pull_request") or payload.truthy("is_pull")
    return event(
        host,
        EventKind.NOTE,
        user=_user(payload),
        build_type="branch",
        message=payload.text("comment", "body"),
        merge_id=payload.text("issue", "number") if on_pull_request else None,
        target_branch=payload.text("repository", "default_branch"),
        **_repository(payload),
    )


_READERS = {
    "push": push,
    "create": _create,
    "pull_request": pull_request,
    "issues": issues,
    "issue_comment": issue_comment,
}
