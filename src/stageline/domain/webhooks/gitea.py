"""Gitea, Forgejo and Gogs payloads (`X-Gitea-Event`, `X-Forgejo-Event`) → build params.

Their pushes, pull requests, issues and comments are shaped like GitHub's and read by the same
code. A new tag arrives twice, as a `push` of `refs/tags/<tag>` and as a `create` that names
its commit (`sha`): the `create` starts the run, the push is ignored.
"""

from dataclasses import replace

from stageline.domain.webhooks import github
from stageline.domain.webhooks.events import Doc, EventKind, Host, Ignored, TriggerEvent, event
from stageline.domain.webhooks.refs import commit, short, tag_of


def read(host: Host, payload: Doc, header_event: str) -> TriggerEvent | Ignored:
    if header_event == "push":
        return _push(host, payload)
    if header_event == "create":
        return _create(host, payload)
    if header_event == "pull_request":
        return github.pull_request(host, payload)
    if header_event == "issues":
        return github.issues(host, payload)
    if header_event == "issue_comment":
        return github.issue_comment(host, payload)
    return Ignored(f"{header_event!r} events start no runs")


def _push(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    tag = tag_of(payload.text("ref"))
    if tag is not None:
        return Ignored(f"the push of tag {tag!r} is handled by its `create` event")
    found = github.push(host, payload)
    if isinstance(found, Ignored) or found.params["message"] is not None:
        return found
    # Older versions send no `head_commit`: the message is that of the pushed head commit.
    after = found.params["commit_id"]
    message = next(
        (c.text("message") for c in payload.items("commits") if c.text("id") == after), None
    )
    return replace(found, params={**found.params, "message": message})


def _create(host: Host, payload: Doc) -> TriggerEvent | Ignored:
    ref_type = payload.text("ref_type")
    if ref_type != "tag":
        return Ignored(f"creating a {ref_type or 'ref'} starts no run (its push does)")
    return event(
        host,
        EventKind.TAG_PUSH,
        user=payload.text("sender", "login"),
        build_type="tag",
        commit_id=commit(payload.text("sha")),
        tag=short(payload.text("ref"), "refs/tags/"),
        codehub_id=payload.text("repository", "id"),
        git_url=payload.text("repository", "clone_url"),
        source_codehub_id=payload.text("repository", "id"),
        source_codehub_url=payload.text("repository", "ssh_url"),
        source_codehub_http_url=payload.text("repository", "clone_url"),
    )
