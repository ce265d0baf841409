"""The webhook fixtures (tests/fixtures/webhooks): bodies as bytes, headers with the secret and
signatures filled in, and the values each must yield (the README's tables, written out)."""

import hmac
import json
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


def body_of(name: str) -> bytes:
    """The fixture's body, byte for byte."""
    return (FIXTURES / f"{name}.json").read_bytes()


def sign(secret: str, body: bytes, digest: str = "sha256") -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def headers_of(name: str, secret: str, body: bytes | None = None) -> dict[str, str]:
    """The fixture's headers, with `secret` and the signatures of `body` (default: its own)."""
    signed = body_of(name) if body is None else body
    raw: dict[str, str] = json.loads((FIXTURES / f"{name}.headers.json").read_text())
    values = {
        "{{SECRET}}": secret,
        "{{HMAC_SHA256_HEX}}": sign(secret, signed, "sha256"),
        "{{HMAC_SHA1_HEX}}": sign(secret, signed, "sha1"),
    }
    filled = {}
    for key, value in raw.items():
        for placeholder, actual in values.items():
            value = value.replace(placeholder, actual)
        filled[key] = value
    return filled


@dataclass(frozen=True)
class Expected:
    """One README row. `source_same`: the source repo is the target one (True) or absent
    (False). For tags `source`/`target` are None unless given."""

    name: str
    event: str
    commit: str | None
    message: str | None
    source: str | None
    target: str | None
    tag: str | None
    merge_id: str | None
    action: str | None
    repo_id: str
    clone_url: str
    source_same: bool
    kind: str


GH = "https://github.com/Codertocat/Hello-World.git"
GL = "https://gitlab.com/gitlab-org/hello-world.git"
GT = "http://try.gitea.io/gogits/hello-world.git"

STARTED = [
    # GitHub
    Expected("github/push", "Push", "366701fde727cb7a9e7f21eb88264f59f6f9b89c",
             "Fix multiline secrets replacer (#700)", "main", "main", None, None, None,
             "179344069", "https://github.com/woodpecker-ci/woodpecker.git", True, "push"),
    Expected("github/push_new_branch", "Push", "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
             "Initial commit", "master", "master", None, None, None, "186853002", GH, True,
             "push"),
    Expected("github/push_tag", "CreateTag", "67012991d6c69b1c58378346fca366b864d8d1a1",
             "Update .woodpecker.yml", None, "main", "the-tag-v1", None, None, "1028609128",
             "https://github.com/6543/test_ci_tmp.git", True, "tag_push"),
    Expected("github/create_tag", "CreateTag", None, None, None, None, "simple-tag", None, None,
             "186853002", GH, True, "tag_push"),
    Expected("github/pull_request_opened", "MR", "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
             "Update the README with new information.", "changes", "master", None, "2", "open",
             "186853002", GH, True, "merge_request"),
    Expected("github/pull_request_synchronize", "MR",
             "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
             "Update the README with new information.", "changes", "master", None, "2",
             "update", "186853002", GH, True, "merge_request"),
    Expected("github/pull_request_closed_merged", "MR",
             "473d70eb7c50a54ae62bf9b124efa1c3eb245be8", "Change file", "anbraten-patch-3",
             "main", None, "62", "merge", "576689461",
             "https://github.com/anbraten/test-ready-release-go.git", True, "merge_request"),
    Expected("github/issues_opened", "Issue", None, "Spelling error in the README file", None,
             "master", None, None, None, "186853002", GH, False, "issue"),
    Expected("github/issue_comment_created", "Note", None,
             "You are totally right! I'll get this fixed right away.", None, "master", None,
             None, None, "186853002", GH, False, "note"),
    Expected("github/issue_comment_created_on_pull_request", "Note", None, "trigger abc", None,
             "master", None, "2", None, "309651765",
             "https://github.com/abc/def-ci-webhook-test.git", False, "note"),
    # GitLab
    Expected("gitlab/push", "Push", "2adc9465c4edfc33834e173fe89436a7cb899a1d", "added readme",
             "master", "master", None, None, None, "4861503", GL, True, "push"),
    Expected("gitlab/tag_push", "CreateTag", "2adc9465c4edfc33834e173fe89436a7cb899a1d",
             "added readme", None, None, "v1.0.0", None, None, "4861503", GL, True, "tag_push"),
    Expected("gitlab/tag_push_annotated", "CreateTag",
             "16862e368d8ab812e48833b741dad720d6e2cb7f", "hi", None, None, "v22", None, None,
             "2", "http://10.40.8.5:3200/test/woodpecker.git", True, "tag_push"),
    Expected("gitlab/merge_request_open", "MR", "2f7670508b771e7e77839402be8b34b13787aba8",
             "Edit README.md", "real6543-main-patch-42541", "main", None, "3", "open",
             "72081820", "https://gitlab.com/demoaccount2-commits-group/test_ci_tmp.git", True,
             "merge_request"),
    Expected("gitlab/merge_request_update", "MR", "c136499ec574e1034b24c5d306de9acda3005367",
             "Update folder/todo.txt", "anbraten-main-patch-05373", "main", None, "3", "update",
             "32059612", "https://gitlab.com/anbraten/woodpecker.git", True, "merge_request"),
    Expected("gitlab/merge_request_merge", "MR", "43411b53d670203e887c4985c4e58e8e6b7c109e",
             "Add new file", "patch-1", "main", None, "4", "merge", "32059612",
             "https://gitlab.com/anbraten/woodpecker-test.git", True, "merge_request"),
    Expected("gitlab/issue", "Issue", None, "found a bug", None, "master", None, None, None,
             "4861503", GL, False, "issue"),
    Expected("gitlab/note_merge_request", "Note", "c4c79227ed610f1151f05bbc5be33b4f340d39c8",
             "lgtm", "feature", "master", None, "1", None, "4861503", GL, True, "note"),
    # Gitea
    Expected("gitea/push", "Push", "29be01c073851cf0db0c6a466e396b725a670453", "add some text",
             "main", "main", None, None, None, "6",
             "http://127.0.0.1:3000/Test-CI/multi-line-secrets.git", True, "push"),
    Expected("gitea/create_tag", "CreateTag", "599d25c67b05717269f50ac082b34f176d085179", None,
             None, None, "v1.0.0", None, None, "61", GT, True, "tag_push"),
    Expected("gitea/pull_request_opened", "MR", "2eba238e33607c1fa49253182e9fff42baafa1eb",
             "Add License File", "feature", "master", None, "1", "open", "6589",
             "https://try.gitea.io/jcitizen/my-repo.git", True, "merge_request"),
    Expected("gitea/pull_request_synchronized", "MR", "2eba238e33607c1fa49253182e9fff42baafa1eb",
             "Add License File", "feature", "master", None, "1", "update", "6589",
             "https://try.gitea.io/jcitizen/my-repo.git", True, "merge_request"),
    Expected("gitea/pull_request_closed_merged", "MR",
             "f2440f050054df0f8ecabcace648f1683509064c", "Adjust file", "anbraten-patch-1",
             "main", None, "1", "merge", "46534", "https://gitea.com/anbraten/test-repo.git",
             True, "merge_request"),
    Expected("gitea/issues_opened", "Issue", None, "Problem", None, "master", None, None, None,
             "61", GT, False, "issue"),
    Expected("gitea/issue_comment_created", "Note", None, "Got it", None, "master", None, None,
             None, "61", GT, False, "note"),
    Expected("gitea/issue_comment_created_on_pull_request", "Note", None, "run gofmt", None,
             "master", None, "2", None, "61", GT, False, "note"),
]  # fmt: skip
"""Every fixture that starts a run, with what it must yield."""

IGNORED = ["gitlab/merge_request_update_without_oldrev"]
"""Every fixture that starts nothing."""

SECRET = "fixture-secret-0123456789abcdef0123456789abcdef"
