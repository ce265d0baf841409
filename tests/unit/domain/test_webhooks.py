"""Tests for `stageline.domain.webhooks`: every fixture read end to end (host, secret, body,
event), what is ignored and why, and bodies no host would send."""

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from stageline.domain.build_params import BUILD_PARAM_KEYS
from stageline.domain.errors import Unauthenticated
from stageline.domain.webhooks.deliveries import (
    Envelope,
    authenticate,
    delivery_id,
    detect_host,
    read_body,
)
from stageline.domain.webhooks.events import (
    EventKind,
    Host,
    Ignored,
    InvalidPayload,
    TriggerEvent,
)
from stageline.domain.webhooks.reading import read_event
from stageline.domain.webhooks.triggers import admits
from tests.webhooks import IGNORED, SECRET, STARTED, Expected, body_of, headers_of, sign


def deliver(headers: dict[str, str], body: bytes, secret: str = SECRET) -> TriggerEvent | Ignored:
    """What the endpoint does before it looks at the pipeline: detect, authenticate, read."""
    envelope = Envelope.of(headers)
    host = detect_host(envelope, body)
    assert host is not None
    authenticate(host, envelope, body, secret=secret)
    return read_event(host, envelope, read_body(envelope, body))


def fixture(name: str) -> TriggerEvent | Ignored:
    return deliver(headers_of(name, SECRET), body_of(name))


def host_of(name: str) -> Host:
    return Host(name.split("/")[0])


def first_line(text: str | None) -> str | None:
    return None if text is None else text.splitlines()[0]


class TestFixtures:
    @pytest.mark.parametrize("expected", STARTED, ids=lambda e: e.name)
    def test_each_fixture_yields_the_values_of_its_readme_row(self, expected: Expected) -> None:
        found = fixture(expected.name)
        assert isinstance(found, TriggerEvent), found
        params = found.params
        assert found.host is host_of(expected.name)
        assert found.kind == EventKind(expected.kind)
        assert found.trigger_type.value == expected.event
        assert set(params) == set(BUILD_PARAM_KEYS)
        assert params["event_type"] == expected.event
        assert params["commit_id"] == expected.commit
        assert first_line(params["message"]) == expected.message
        assert params["tag"] == expected.tag
        assert params["build_type"] == ("tag" if expected.tag else "branch")
        if expected.tag is None or expected.target is not None:
            assert params["target_branch"] == expected.target
        assert params["source_branch"] == expected.source
        assert params["merge_id"] == expected.merge_id
        assert params["action"] == expected.action
        assert params["codehub_id"] == expected.repo_id
        assert params["git_url"] == expected.clone_url
        if expected.source_same:
            assert params["source_codehub_id"] == expected.repo_id
            assert params["source_codehub_http_url"] == expected.clone_url
            assert params["source_codehub_url"]  # the SSH clone URL
        else:
            assert params["source_codehub_id"] is None
            assert params["source_codehub_http_url"] is None
        assert found.user

    @pytest.mark.parametrize("name", IGNORED)
    def test_fixtures_that_start_nothing_are_ignored(self, name: str) -> None:
        found = fixture(name)
        assert isinstance(found, Ignored)
        assert "without new commits" in found.reason

    def test_the_full_message_is_kept(self) -> None:
        found = fixture("github/push")
        assert isinstance(found, TriggerEvent)
        assert found.params["message"] == (
            "Fix multiline secrets replacer (#700)\n\n* Fix multiline secrets replacer\r\n\r\n"
            "* Add tests"
        )

    def test_the_branch_a_filter_applies_to(self) -> None:
        push, mr, tag = (fixture(n) for n in ("gitlab/push", "gitea/pull_request_opened",
                                              "gitlab/tag_push"))  # fmt: skip
        assert isinstance(push, TriggerEvent)
        assert isinstance(mr, TriggerEvent)
        assert isinstance(tag, TriggerEvent)
        assert (push.branch, mr.branch, tag.branch) == ("master", "master", None)

    def test_the_forge_user_is_the_executor(self) -> None:
        users = {n: fixture(n) for n in ("gitlab/push", "github/push", "gitea/pull_request_opened")}
        assert {n: getattr(f, "user", None) for n, f in users.items()} == {
            "gitlab/push": "sytses",
            "github/push": "6543",
            "gitea/pull_request_opened": "jcitizen",
        }

    def test_an_old_gitea_body_secret_is_never_the_secret(self) -> None:
        name = "gitea/pull_request_opened"
        assert json.loads(body_of(name))["secret"] == "12345"
        with pytest.raises(Unauthenticated):
            deliver(headers_of(name, "12345"), body_of(name), secret=SECRET)


def edited(name: str, **changes: Any) -> tuple[dict[str, str], bytes]:
    """The fixture with top-level keys changed (None deletes), re-signed."""
    document = json.loads(body_of(name))
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    body = json.dumps(document).encode()
    return headers_of(name, SECRET, body), body


def with_event(headers: dict[str, str], **named: str) -> dict[str, str]:
    return {**headers, **named}


ZERO = "0" * 40


class TestIgnored:
    def reason(self, headers: dict[str, str], body: bytes) -> str:
        found = deliver(headers, body)
        assert isinstance(found, Ignored), found
        return found.reason

    def test_a_deleted_branch(self) -> None:
        assert "deleted" in self.reason(*edited("gitlab/push", after=ZERO, checkout_sha=None))
        assert "deleted" in self.reason(*edited("github/push", after=ZERO, deleted=True))
        assert "deleted" in self.reason(*edited("gitea/push", after=ZERO))

    def test_a_deleted_or_moved_tag(self) -> None:
        assert "deleted" in self.reason(*edited("gitlab/tag_push", after=ZERO))
        assert "moved" in self.reason(*edited("gitlab/tag_push", before="1" * 40))
        assert "moved" in self.reason(*edited("github/push_tag", created=False))

    def test_a_pull_request_closed_without_merging(self) -> None:
        pr = json.loads(body_of("github/pull_request_closed_merged"))["pull_request"]
        headers, body = edited(
            "github/pull_request_closed_merged", pull_request={**pr, "merged": False}
        )
        assert "without merging" in self.reason(headers, body)

    def test_a_gitlab_merge_request_closed_or_approved(self) -> None:
        attributes = json.loads(body_of("gitlab/merge_request_open"))["object_attributes"]
        for action in ("close", "approved", "unapproved"):
            headers, body = edited(
                "gitlab/merge_request_open", object_attributes={**attributes, "action": action}
            )
            assert action in self.reason(headers, body)

    @pytest.mark.parametrize("action", ["labeled", "edited", "assigned", "label_updated"])
    def test_label_and_other_edits(self, action: str) -> None:
        assert action in self.reason(*edited("github/pull_request_opened", action=action))
        assert action in self.reason(*edited("gitea/pull_request_opened", action=action))

    def test_closed_issues_and_edited_comments(self) -> None:
        assert "closed" in self.reason(*edited("github/issues_opened", action="closed"))
        assert "edited" in self.reason(*edited("gitea/issue_comment_created", action="edited"))
        assert "deleted" in self.reason(*edited("github/issue_comment_created", action="deleted"))

    def test_a_github_create_of_a_branch(self) -> None:
        headers, body = edited("github/create_tag", ref_type="branch", ref="feature")
        assert "branch" in self.reason(headers, body)

    def test_a_gitea_push_of_a_tag_is_left_to_its_create(self) -> None:
        headers, body = edited("gitea/push", ref="refs/tags/v1")
        assert "create" in self.reason(headers, body)

    def test_unknown_event_types(self) -> None:
        headers, body = headers_of("github/push", SECRET), body_of("github/push")
        assert "ping" in self.reason(with_event(headers, **{"X-GitHub-Event": "ping"}), body)
        headers, body = headers_of("gitlab/push", SECRET), body_of("gitlab/push")
        assert "Pipeline Hook" in self.reason(
            with_event(headers, **{"X-Gitlab-Event": "Pipeline Hook"}), body
        )
        headers, body = headers_of("gitea/push", SECRET), body_of("gitea/push")
        assert "release" in self.reason(with_event(headers, **{"X-Gitea-Event": "release"}), body)

    def test_a_push_to_neither_branch_nor_tag(self) -> None:
        assert "refs/notes/x" in self.reason(*edited("github/push", ref="refs/notes/x"))


ODD_BODIES: list[Any] = [
    {},
    {"ref": 7, "after": ["x"], "repository": "r", "commits": {"a": 1}, "head_commit": 3},
    {"object_kind": "push", "ref": "refs/heads/", "project": [], "commits": [None, 1]},
    {"object_kind": "merge_request", "object_attributes": {"action": "update", "oldrev": 1}},
    {"object_kind": "note", "object_attributes": {"noteable_type": "MergeRequest"}},
    {"object_kind": "tag_push", "ref": "refs/tags/v1", "before": ZERO, "after": "x" * 40},
    {"action": "closed", "pull_request": {"merged": True, "base": None, "head": {"repo": None}}},
    {"action": "created", "issue": None, "comment": {"body": ["not text"]}},
    {"ref_type": "tag", "ref": None, "sha": 42},
    {"ref": "refs/heads/main", "after": "A" * 40, "created": True, "commits": [{"id": None}]},
]

EVENTS = [
    ("gitlab/push", "X-Gitlab-Event", name)
    for name in ("Push Hook", "Tag Push Hook", "Merge Request Hook", "Issue Hook", "Note Hook")
] + [
    (fixture_name, header, name)
    for fixture_name, header in (("github/push", "X-GitHub-Event"), ("gitea/push", "X-Gitea-Event"))
    for name in ("push", "create", "pull_request", "issues", "issue_comment")
]


class TestOddBodies:
    @pytest.mark.parametrize(("name", "header", "event_name"), EVENTS)
    @pytest.mark.parametrize("document", ODD_BODIES)
    def test_never_a_key_or_type_error(
        self, name: str, header: str, event_name: str, document: Any
    ) -> None:
        body = json.dumps(document).encode()
        headers = with_event(headers_of(name, SECRET, body), **{header: event_name})
        found = deliver(headers, body)
        if isinstance(found, TriggerEvent):
            assert set(found.params) == set(BUILD_PARAM_KEYS)
            assert all(v is None or isinstance(v, str) for v in found.params.values())
            assert found.params["commit_id"] is None or len(found.params["commit_id"]) == 40

    def test_nul_characters_are_dropped_and_long_messages_cut(self) -> None:
        commit = json.loads(body_of("github/push"))["head_commit"]
        headers, body = edited(
            "github/push", head_commit={**commit, "message": "a\x00b" + "c" * 100_000}
        )
        found = deliver(headers, body)
        assert isinstance(found, TriggerEvent)
        message = found.params["message"]
        assert message is not None
        assert message.startswith("abc")
        assert len(message) == 16384


class TestReadBody:
    def test_a_github_form_body(self) -> None:
        raw = body_of("github/push")
        body = urlencode({"payload": raw.decode()}).encode()
        headers = {
            **headers_of("github/push", SECRET, body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        found = deliver(headers, body)
        assert isinstance(found, TriggerEvent)
        assert found.params["commit_id"] == "366701fde727cb7a9e7f21eb88264f59f6f9b89c"

    @pytest.mark.parametrize(
        ("body", "content_type", "problem"),
        [
            (b"{not json", "application/json", "not valid JSON"),
            (b"[1, 2]", "application/json", "not a JSON object"),
            (b"", "application/json", "not valid JSON"),
            (b"\xff\xfe", "application/json", "not valid JSON"),
            (b"[" * 100_000, "application/json", "not valid JSON"),
            (b"other=1", "application/x-www-form-urlencoded", "no `payload`"),
            (b"payload=%7Bx", "application/x-www-form-urlencoded", "not valid JSON"),
        ],
    )
    def test_what_is_no_json_object_is_invalid(
        self, body: bytes, content_type: str, problem: str
    ) -> None:
        with pytest.raises(InvalidPayload, match=problem):
            read_body(Envelope.of({"Content-Type": content_type}), body)


class TestDetectHost:
    @pytest.mark.parametrize(
        ("headers", "body", "host"),
        [
            ({"X-Forgejo-Event": "push", "X-GitHub-Event": "push"}, b"{}", Host.GITEA),
            ({"X-Gitea-Event": "push", "X-GitHub-Event": "push"}, b"{}", Host.GITEA),
            ({"X-Gogs-Event": "push"}, b"{}", Host.GITEA),
            ({"X-Gitlab-Event": "Push Hook", "X-GitHub-Event": "push"}, b"{}", Host.GITLAB),
            ({"x-github-event": "push"}, b"{}", Host.GITHUB),
            ({"X-Repo-Token": "t"}, b"{}", Host.CODEARTS),
            ({"X-Auth-Token": "t"}, b"{}", Host.CODEARTS),
            ({"X-Gitlab-Event": "Push Hook", "X-Repo-Token": "t"}, b"{}", Host.CODEARTS),
            ({"X-Gitlab-Event": "Push Hook", "X-Auth-Token": "t"}, b"{}", Host.CODEARTS),
            ({"X-Gitlab-Token": "t"}, b"{}", Host.CODEARTS),
            ({}, b'{"object_kind": "push"}', Host.CODEARTS),
            ({"Content-Type": "application/json"}, b"{}", None),
        ],
    )
    def test_hosts_are_told_in_order(
        self, headers: dict[str, str], body: bytes, host: Host | None
    ) -> None:
        assert detect_host(Envelope.of(headers), body) is host


class TestCodeArts:
    def test_a_gitlab_body_with_a_codearts_token_header(self) -> None:
        body = body_of("gitlab/push")
        found = deliver({"X-Repo-Token": SECRET, "Content-Type": "application/json"}, body)
        assert isinstance(found, TriggerEvent)
        assert found.host is Host.CODEARTS
        assert found.params["commit_id"] == "2adc9465c4edfc33834e173fe89436a7cb899a1d"

    def test_its_token_header_with_a_gitlab_event_header(self) -> None:
        headers = headers_of("gitlab/merge_request_open", SECRET)
        del headers["X-Gitlab-Token"]
        found = deliver({**headers, "X-Repo-Token": SECRET}, body_of("gitlab/merge_request_open"))
        assert isinstance(found, TriggerEvent)
        assert found.host is Host.CODEARTS
        assert (found.trigger_type.value, found.params["merge_id"]) == ("MR", "3")
        with pytest.raises(Unauthenticated):
            deliver({**headers, "X-Repo-Token": "wrong"}, body_of("gitlab/merge_request_open"))

    def test_any_of_its_token_headers(self) -> None:
        body = body_of("gitlab/issue")
        for header in ("X-Repo-Token", "X-Gitlab-Token", "X-Auth-Token"):
            envelope = Envelope.of({header: SECRET})
            authenticate(Host.CODEARTS, envelope, body, secret=SECRET)
            with pytest.raises(Unauthenticated):
                authenticate(Host.CODEARTS, Envelope.of({header: "wrong"}), body, secret=SECRET)


AUTH_FIXTURES = ["gitlab/push", "github/push", "gitea/push"]


class TestAuthentication:
    @pytest.mark.parametrize("name", AUTH_FIXTURES)
    def test_the_right_secret_passes(self, name: str) -> None:
        assert isinstance(fixture(name), TriggerEvent)

    @pytest.mark.parametrize("name", AUTH_FIXTURES)
    def test_a_wrong_secret_is_refused(self, name: str) -> None:
        with pytest.raises(Unauthenticated):
            deliver(headers_of(name, "not-the-secret"), body_of(name))

    @pytest.mark.parametrize(
        ("name", "header"),
        [
            ("gitlab/push", "X-Gitlab-Token"),
            ("github/push", "X-Hub-Signature-256"),
            ("gitea/push", "X-Gitea-Signature"),
        ],
    )
    def test_a_missing_header_is_refused(self, name: str, header: str) -> None:
        headers = headers_of(name, SECRET)
        del headers[header]
        if name.startswith("gitea"):
            del headers["X-Gogs-Signature"]
        with pytest.raises(Unauthenticated, match="missing"):
            deliver(headers, body_of(name))

    @pytest.mark.parametrize("name", ["github/push", "gitea/push"])
    def test_a_tampered_body_is_refused(self, name: str) -> None:
        body = body_of(name).replace(b"main", b"evil", 1)
        with pytest.raises(Unauthenticated, match="does not match"):
            deliver(headers_of(name, SECRET), body)

    def test_a_sha1_signature_alone_is_refused(self) -> None:
        headers = headers_of("github/push", SECRET)
        del headers["X-Hub-Signature-256"]
        assert headers["X-Hub-Signature"].startswith("sha1=")
        with pytest.raises(Unauthenticated, match="SHA-1"):
            deliver(headers, body_of("github/push"))

    def test_a_forgejo_signature(self) -> None:
        body = body_of("gitea/push")
        headers = {"X-Forgejo-Event": "push", "X-Forgejo-Signature": sign(SECRET, body)}
        assert isinstance(deliver(headers, body), TriggerEvent)

    def test_the_secret_is_checked_before_the_body_is_read(self) -> None:
        with pytest.raises(Unauthenticated):
            deliver({"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=00"}, b"{bad")


class TestDeliveryId:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("gitlab/push", "c8c088fb-90ad-55e3-88d0-0dae780a08d6"),
            ("github/push", "4b339019-3bb5-5b16-aa4d-6e11a90ee644"),
            ("gitea/push", "f61c736a-fd3d-5466-a8b4-2fd0e6241a69"),
        ],
    )
    def test_each_host_names_its_delivery(self, name: str, expected: str) -> None:
        envelope = Envelope.of(headers_of(name, SECRET))
        assert delivery_id(host_of(name), envelope) == expected

    def test_gitlab_without_an_idempotency_key_uses_the_event_uuid(self) -> None:
        headers = headers_of("gitlab/push", SECRET)
        del headers["Idempotency-Key"]
        found = delivery_id(Host.GITLAB, Envelope.of(headers))
        assert found == "060c8b5a-701f-5675-ab4a-29858985d263"

    def test_none_or_too_long(self) -> None:
        assert delivery_id(Host.CODEARTS, Envelope.of({})) is None
        long = delivery_id(Host.GITHUB, Envelope.of({"X-GitHub-Delivery": "x" * 500}))
        assert long is not None
        assert len(long) <= 128


def trigger(*events: dict[str, Any]) -> dict[str, Any]:
    return {"git_url": "https://example.test/r.git", "events": list(events)}


class TestTriggers:
    def test_an_enabled_event_is_admitted(self) -> None:
        found = fixture("gitlab/push")
        assert isinstance(found, TriggerEvent)
        assert admits(trigger({"type": "push", "enable": True}), found) is None

    def test_a_disabled_or_absent_event_is_ignored(self) -> None:
        found = fixture("gitlab/push")
        assert isinstance(found, TriggerEvent)
        for config in (trigger({"type": "push", "enable": False}), trigger(), {}):
            ignored = admits(config, found)
            assert ignored is not None
            assert "does not enable push" in ignored.reason

    @pytest.mark.parametrize(
        ("patterns", "admitted"),
        [
            ([], True),
            (["master"], True),
            (["ma*"], True),
            (["main", "release/*"], False),
            (["Master"], False),
        ],
    )
    def test_branch_filters_of_pushes(self, patterns: list[str], admitted: bool) -> None:
        found = fixture("gitlab/push")  # branch master
        assert isinstance(found, TriggerEvent)
        config = trigger({"type": "push", "enable": True, "branches": patterns})
        assert (admits(config, found) is None) is admitted

    def test_a_merge_request_is_filtered_by_its_target_branch(self) -> None:
        found = fixture("gitlab/merge_request_open")  # real6543-main-patch-42541 → main
        assert isinstance(found, TriggerEvent)
        on = {"type": "merge_request", "enable": True}
        assert admits(trigger({**on, "branches": ["main"]}), found) is None
        ignored = admits(trigger({**on, "branches": ["real6543-*"]}), found)
        assert ignored is not None
        assert "target branch 'main'" in ignored.reason

    def test_a_glob_star_spans_slashes(self) -> None:
        headers, body = edited("gitlab/push", ref="refs/heads/release/1.0/hotfix")
        found = deliver(headers, body)
        assert isinstance(found, TriggerEvent)
        config = trigger({"type": "push", "enable": True, "branches": ["release/*"]})
        assert admits(config, found) is None

    def test_filters_do_not_apply_to_tags(self) -> None:
        found = fixture("gitlab/tag_push")
        assert isinstance(found, TriggerEvent)
        config = trigger({"type": "tag_push", "enable": True, "branches": ["nothing"]})
        assert admits(config, found) is None
