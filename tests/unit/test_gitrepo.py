"""`stageline.gitrepo` against real git: local repositories, and a loopback HTTP server that
records what git sends it (or says nothing at all, to show that nothing hangs)."""

import base64
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from stageline.gitrepo import (
    CheckoutTarget,
    CredentialsRefused,
    GitError,
    Remote,
    check_out,
    commit_message,
    read_file,
    resolve_ref,
    scrub,
)
from tests.gitrepos import GitRepo, git, private_http

TOKEN = "tok-unit-0123456789"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    made = GitRepo(tmp_path / "repo")
    made.commit("first\n\nbody", {"README.md": "one\n"})
    return made


class TestResolve:
    def test_a_branch_and_an_annotated_tag_resolve_to_commits(self, repo: GitRepo) -> None:
        first = repo.head("main")
        repo.tag("v1", first)
        second = repo.commit("second", {"README.md": "two\n"})
        remote = Remote(repo.file_url)
        assert resolve_ref(remote, "branch", "main") == second
        assert resolve_ref(remote, "tag", "v1") == first  # peeled, not the tag object
        assert resolve_ref(remote, "branch", "HEAD") == second  # the default branch

    def test_an_unknown_branch_says_so(self, repo: GitRepo) -> None:
        with pytest.raises(GitError, match="has no branch 'nope'"):
            resolve_ref(Remote(repo.path), "branch", "nope")

    def test_a_url_that_would_run_a_command_is_refused(self, tmp_path: Path) -> None:
        pwned = tmp_path / "pwned"
        with pytest.raises(GitError, match="transport 'ext' not allowed"):
            resolve_ref(Remote(f"ext::sh -c touch% {pwned}"), "branch", "main")
        assert not pwned.exists()

    def test_a_message_is_read_without_a_clone(self, repo: GitRepo, tmp_path: Path) -> None:
        scratch = tmp_path / "scratch"
        message = commit_message(Remote(repo.path), repo.head("main"), scratch=scratch)
        assert message == "first\n\nbody"
        assert list(scratch.iterdir()) == []  # the repository made to read it is gone


class TestReadFile:
    def test_a_file_is_read_as_it_was_at_each_commit(self, repo: GitRepo, tmp_path: Path) -> None:
        first = repo.commit("one", {"ci/pipeline.yaml": "stages: []\n", "big.bin": "x" * 50_000})
        second = repo.commit("two", {"ci/pipeline.yaml": "stages: [changed]\n"})
        remote = Remote(repo.file_url)
        scratch = tmp_path / "scratch"
        assert read_file(remote, first, "ci/pipeline.yaml", scratch=scratch) == "stages: []\n"
        assert read_file(remote, second, "ci/pipeline.yaml", scratch=scratch) == (
            "stages: [changed]\n"
        )
        assert list(scratch.iterdir()) == []  # the bare repositories are removed

    def test_a_missing_file_is_none_and_a_directory_an_error(
        self, repo: GitRepo, tmp_path: Path
    ) -> None:
        head = repo.commit("one", {"ci/pipeline.yaml": "stages: []\n"})
        remote = Remote(repo.path)
        assert read_file(remote, head, "ci/other.yaml", scratch=tmp_path) is None
        with pytest.raises(GitError, match="'ci' is not a file"):
            read_file(remote, head, "ci", scratch=tmp_path)
        with pytest.raises(GitError, match="not a commit ID"):
            read_file(remote, "--upload-pack=evil", "ci", scratch=tmp_path)


class TestCheckOut:
    def test_a_commit_is_checked_out_detached_and_logged(
        self, repo: GitRepo, tmp_path: Path
    ) -> None:
        first = repo.head("main")
        repo.commit("second", {"README.md": "two\n"})
        lines: list[str] = []
        where = tmp_path / "ws"
        head = check_out(
            CheckoutTarget(Remote(repo.file_url), first, None), where, on_line=lines.append
        )
        assert head == first
        assert (where / "README.md").read_text() == "one\n"
        assert f"$ git fetch --no-tags --depth 1 origin {first}" in lines
        assert git("status", "--porcelain", cwd=where) == ""

    def test_without_a_commit_the_head_of_the_ref_is_checked_out(
        self, repo: GitRepo, tmp_path: Path
    ) -> None:
        target = CheckoutTarget(Remote(repo.path), None, "refs/heads/main")
        assert check_out(target, tmp_path / "ws", on_line=lambda _: None) == repo.head("main")

    def test_a_missing_commit_is_named(self, repo: GitRepo, tmp_path: Path) -> None:
        target = CheckoutTarget(Remote(repo.path), "f" * 40, None)
        with pytest.raises(GitError, match=f"cannot check out {'f' * 40} from .*no commit"):
            check_out(target, tmp_path / "ws", on_line=lambda _: None)

    @pytest.mark.parametrize(
        ("commit", "ref"), [("--upload-pack=touch pwned", None), (None, "--upload-pack=x")]
    )
    def test_what_git_could_take_for_an_option_is_refused(
        self, repo: GitRepo, tmp_path: Path, commit: str | None, ref: str | None
    ) -> None:
        with pytest.raises(GitError, match="not a"):
            check_out(
                CheckoutTarget(Remote(repo.path), commit, ref), tmp_path, on_line=lambda _: None
            )
        assert not (tmp_path / "pwned").exists()


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://user:hunter2@127.0.0.1:{server.server_address[1]}/private.git"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow.git"
    listener.close()


class TestCredentials:
    def test_the_token_goes_in_a_header_and_never_in_a_message(self, recorder: str) -> None:
        with pytest.raises(GitError) as raised:
            resolve_ref(Remote(recorder, TOKEN), "branch", "main")
        basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        assert f"Basic {basic}" in _Recorder.seen
        message = str(raised.value)
        assert TOKEN not in message
        assert basic not in message
        assert "hunter2" not in message
        assert "http://***@127.0.0.1" in message

    def test_scrub_hides_secrets_and_url_passwords(self) -> None:
        text = "fatal: https://me:pw@host/r.git said tok-1 and ssh://git@host/r"
        assert (
            scrub(text, ["tok-1"]) == "fatal: https://***@host/r.git said *** and ssh://***@host/r"
        )


class TestPrivateRepositories:
    """A repository served over http to one token only, as a forge serves a private one."""

    def test_the_token_reads_the_repository_and_no_message_shows_it(
        self, repo: GitRepo, tmp_path: Path
    ) -> None:
        head = repo.head("main")
        lines: list[str] = []
        with private_http(repo, TOKEN) as url:
            remote = Remote(url, TOKEN)
            assert resolve_ref(remote, "branch", "main") == head
            assert commit_message(remote, head, scratch=tmp_path / "scratch") == "first\n\nbody"
            target = CheckoutTarget(remote, head, "refs/heads/main")
            assert check_out(target, tmp_path / "ws", on_line=lines.append) == head
        assert (tmp_path / "ws" / "README.md").read_text() == "one\n"
        assert lines
        assert not [line for line in lines if TOKEN in line]

    @pytest.mark.parametrize(
        ("token", "says"),
        [("not-the-token", "refused the token"), (None, "asks for credentials")],
    )
    def test_refused_credentials_are_said_plainly_and_not_tried_again(
        self, repo: GitRepo, tmp_path: Path, token: str | None, says: str
    ) -> None:
        lines: list[str] = []
        with private_http(repo, TOKEN) as url:
            remote = Remote(url, token)
            with pytest.raises(CredentialsRefused, match=says):
                resolve_ref(remote, "branch", "main")
            target = CheckoutTarget(remote, repo.head("main"), "refs/heads/main")
            with pytest.raises(CredentialsRefused, match=says) as raised:
                check_out(target, tmp_path / "ws", on_line=lines.append)
        assert str(raised.value).startswith(f"cannot check out {repo.head('main')} from {url}: ")
        assert [line for line in lines if line.startswith("$ git fetch")] == [
            f"$ git fetch --no-tags --depth 1 origin {repo.head('main')}"
        ]


class TestSsh:
    @pytest.mark.skipif(shutil.which("ssh") is None, reason="no ssh client on this machine")
    @pytest.mark.parametrize(
        ("url", "reason"),
        [
            ("ssh://git@127.0.0.1:1/app.git", "ssh: connect to host 127.0.0.1 port 1: "),
            # port 22: refused, or a host key this user never accepted (BatchMode: no prompt)
            ("git@127.0.0.1:app.git", ""),
        ],
    )
    def test_an_ssh_remote_that_fails_says_ssh_s_reason_at_once(
        self, url: str, reason: str, tmp_path: Path
    ) -> None:
        """Both ssh forms go to ssh; the message is ssh's reason, not git's generic "Could not
        read from remote repository"."""
        started = time.monotonic()
        with pytest.raises(GitError) as resolving:
            resolve_ref(Remote(url), "branch", "main")
        lines: list[str] = []
        target = CheckoutTarget(Remote(url), None, "refs/heads/main")
        with pytest.raises(GitError) as checking_out:
            check_out(target, tmp_path / "ws", on_line=lines.append)
        assert time.monotonic() - started < 20
        for raised in (resolving, checking_out):
            assert reason in str(raised.value)
            assert "Could not read from remote repository" not in str(raised.value)
        said = str(checking_out.value).rpartition(": ")[2]
        assert any(said in line for line in lines if not line.startswith("$ "))


class TestBounds:
    def test_a_server_that_never_answers_times_out(self, silent: str) -> None:
        started = time.monotonic()
        with pytest.raises(GitError, match="timed out after 1s"):
            resolve_ref(Remote(silent), "branch", "main", timeout=1)
        assert time.monotonic() - started < 5

    def test_a_cancelled_checkout_stops(self, silent: str, tmp_path: Path) -> None:
        cancelled = threading.Event()
        threading.Timer(0.5, cancelled.set).start()
        with pytest.raises(GitError, match="canceled"):
            check_out(
                CheckoutTarget(Remote(silent), None, "refs/heads/main"),
                tmp_path / "ws",
                on_line=lambda _: None,
                cancelled=cancelled,
            )
