"""The system `git`, run for the server (resolve a branch or tag, read a commit's message) and for
the agent (check a commit out into a workspace), never waiting on a person and never for long.

Every call has a timeout and runs in a process group of its own, killed whole when the time is
up (ssh and the remote helpers are children of git). Prompts are off: `GIT_TERMINAL_PROMPT=0`,
an empty `GIT_ASKPASS`, ssh in `BatchMode`. A token for an https remote is passed as an
`Authorization` header through git's environment (`GIT_CONFIG_*`), never on a command line;
it and any `user:password@` of a URL are scrubbed from every message this module makes.

Imports nothing of ours: both the engine and the agent use it.
"""

import base64
import contextlib
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

RESOLVE_TIMEOUT_SECONDS = 20.0
"""The server's bound on one ls-remote or message fetch: a run's start waits for it."""
CHECKOUT_TIMEOUT_SECONDS = 900.0
"""The agent's bound on checking out one source."""
COMMIT_ID = re.compile(r"[0-9a-fA-F]{4,64}")
"""A commit as git abbreviates it or in full (SHA-1 or SHA-256)."""
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)[^/@\s]+@")
_KILL_GRACE_SECONDS = 2.0

RefKind = Literal["branch", "tag"]


class GitError(Exception):
    """A git command failed; the message is scrubbed of credentials and says why."""


class CredentialsRefused(GitError):
    """The repository wants credentials that were not given, or refused those that were."""


_ASKS_FOR_CREDENTIALS = ("could not read Username", "could not read Password")
"""What git says when a server answers 401 and it may not prompt (https)."""


@dataclass(frozen=True)
class Remote:
    """A repository as git names it (https, ssh, file:// or a local path) and, for https, the
    token that reads it."""

    url: str
    token: str | None = None

    @property
    def shown(self) -> str:
        """The URL as messages show it: without credentials."""
        return scrub(self.url)

    def secrets(self) -> tuple[str, ...]:
        if not self.token:
            return ()
        return (self.token, _basic(self.token))


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each of `secrets` and the credentials of any URL in it replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


INHERITED_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "SSH_AUTH_SOCK",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "GIT_SSL_CAINFO",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
"""What git keeps of the process's environment: where the user's git configuration and ssh
keys are (the operator's own: proxies, `url.<base>.insteadOf`, known hosts), proxies and
certificates; never a variable that would change which git or which ssh runs."""


def git_environment(remote: Remote | None = None) -> dict[str, str]:
    """The environment git runs in: no prompts, and the token as an http header."""
    env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=15",
        }
    )
    config = [
        # a transfer slower than 1 KiB/s for a minute is given up
        ("http.lowSpeedLimit", "1024"),
        ("http.lowSpeedTime", "60"),
        # only transports that fetch; never ext:: (a "URL" that runs a command) or fd::
        ("protocol.allow", "never"),
        *((f"protocol.{name}.allow", "always") for name in ("https", "http", "ssh", "git", "file")),
        ("advice.detachedHead", "false"),
        ("init.defaultBranch", "main"),
    ]
    if remote is not None and remote.token and remote.url.lower().startswith(("https:", "http:")):
        config.append(("http.extraHeader", f"Authorization: Basic {_basic(remote.token)}"))
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _kill(process: "subprocess.Popen[bytes]") -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def run_git(
    args: list[str],
    *,
    remote: Remote | None = None,
    cwd: Path | None = None,
    timeout: float = RESOLVE_TIMEOUT_SECONDS,
    on_line: Callable[[str], None] | None = None,
    cancelled: threading.Event | None = None,
) -> str:
    """Run `git <args>`; its standard output, or `GitError` with git's complaint (scrubbed).
    Standard error goes to `on_line` line by line, as it comes, when given."""
    secrets = remote.secrets() if remote is not None else ()
    try:
        process = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=git_environment(remote),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        raise GitError(f"cannot run git: {error.strerror or error}") from None
    assert process.stdout is not None
    assert process.stderr is not None
    output: list[bytes] = []
    errors: list[str] = []

    def read_output(stream: IO[bytes]) -> None:
        output.append(stream.read())

    def read_errors(stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            # progress lines end in \r; each becomes a line of its own
            for part in raw.decode("utf-8", errors="replace").replace("\r", "\n").splitlines():
                if part.strip():
                    line = scrub(part, secrets)
                    errors.append(line)
                    if on_line is not None:
                        on_line(line)

    readers = [
        threading.Thread(target=read_output, args=(process.stdout,), daemon=True),
        threading.Thread(target=read_errors, args=(process.stderr,), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    why: str | None = None
    while True:
        try:  # returns as soon as git exits: a run's start waits on several of these
            process.wait(timeout=0.05)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancelled is not None and cancelled.is_set():
            why = "canceled"
        elif time.monotonic() > deadline:
            why = f"timed out after {timeout:.0f}s"
        if why is not None:
            _kill(process)
            break
    process.wait()
    _kill(process)  # what git left behind (an ssh) dies with it
    for reader in readers:
        reader.join(timeout=_KILL_GRACE_SECONDS)
    if why is not None:
        raise GitError(why)
    if process.returncode != 0:
        reason = _reason(errors) or f"git exited with code {process.returncode}"
        if reason.startswith(_ASKS_FOR_CREDENTIALS) or "Authentication failed" in reason:
            raise CredentialsRefused(_credentials_problem(remote))
        raise GitError(reason)
    return b"".join(output).decode("utf-8", errors="replace")


_TRANSPORT_FAILED = "fatal: Could not read from remote repository."
"""What git says after ssh (or another transport) failed, having said why on the line before."""


def _reason(errors: list[str]) -> str | None:
    """Why git failed, from what it said: its first complaint is the specific one ("does not
    appear to be a git repository"), the later ones are generic; but when the first is that the
    remote could not be read, the transport's own line before it says why ("ssh: connect to
    host … Connection refused", "Permission denied (publickey)")."""
    for index, line in enumerate(errors):
        if line.startswith(("fatal:", "error:")):
            if line == _TRANSPORT_FAILED and index > 0:
                line = errors[index - 1]
            return line.removeprefix("fatal: ").removeprefix("error: ")
    return errors[-1] if errors else None


def _credentials_problem(remote: Remote | None) -> str:
    if remote is not None and remote.token:
        return "the repository refused the token"
    if remote is not None and remote.url != remote.shown:
        return "the repository refused the credentials in the URL"
    return (
        "the repository asks for credentials: give the code source a token_variable naming"
        " a secret variable that holds an access token"
    )


def _ref_name(kind: RefKind, name: str) -> str:
    if name.startswith("refs/") or name == "HEAD":
        return name
    return f"refs/heads/{name}" if kind == "branch" else f"refs/tags/{name}"


def resolve_ref(
    remote: Remote, kind: RefKind, name: str, *, timeout: float = RESOLVE_TIMEOUT_SECONDS
) -> str:
    """The commit a branch or tag of `remote` points at now (an annotated tag is peeled);
    `HEAD` is the repository's default branch."""
    ref = _ref_name(kind, name)
    try:
        listed = run_git(
            ["ls-remote", "--", remote.url, ref, f"{ref}^{{}}"], remote=remote, timeout=timeout
        )
    except GitError as error:
        raise type(error)(f"cannot read {remote.shown}: {error}") from None
    found = {}
    for line in listed.splitlines():
        sha, _, name = line.partition("\t")
        found[name] = sha
    commit = found.get(f"{ref}^{{}}") or found.get(ref)
    if commit is None:
        raise GitError(f"{remote.shown} has no {kind} '{name}'")
    return commit


@contextlib.contextmanager
def _one_commit(
    remote: Remote,
    commit: str,
    *,
    scratch: Path,
    ref: str | None,
    timeout: float,
    blobs_on_demand: bool,
) -> Iterator[Path]:
    """A bare repository made under `scratch` (and removed after) holding `commit` fetched
    alone: without its trees (`blobs_on_demand` False), or with its trees and with the remote
    as a promisor, so that a file's content is fetched when it is read. A server that refuses
    fetching by SHA is asked for `ref` instead, which must still point at `commit`."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="commit-") as bare:
        where = Path(bare)
        run_git(["init", "--quiet", "--bare", str(where)], timeout=timeout)
        run_git(["remote", "add", "--", "origin", remote.url], cwd=where, timeout=timeout)
        if blobs_on_demand:
            run_git(["config", "remote.origin.promisor", "true"], cwd=where, timeout=timeout)
            run_git(["config", "remote.origin.partialclonefilter", "blob:none"], cwd=where)
        only = "--filter=blob:none" if blobs_on_demand else "--filter=tree:0"
        fetch = ["fetch", "--quiet", "--no-tags", "--depth", "1", only, "origin"]
        try:
            run_git([*fetch, commit], remote=remote, cwd=where, timeout=timeout)
        except GitError:
            if ref is None:
                raise
            run_git([*fetch, ref], remote=remote, cwd=where, timeout=timeout)
        yield where


def commit_message(
    remote: Remote,
    commit: str,
    *,
    scratch: Path,
    ref: str | None = None,
    timeout: float = RESOLVE_TIMEOUT_SECONDS,
) -> str:
    """A commit's whole message, read by fetching that one commit without its files."""
    with _one_commit(
        remote, commit, scratch=scratch, ref=ref, timeout=timeout, blobs_on_demand=False
    ) as where:
        message = run_git(["log", "-1", "--format=%B", commit], cwd=where, timeout=timeout)
    return message.rstrip("\n")


FILE_MAX_BYTES = 1024 * 1024
"""The largest file `read_file` reads (a pipeline file is a few kilobytes)."""


def read_file(
    remote: Remote,
    commit: str,
    path: str,
    *,
    scratch: Path,
    ref: str | None = None,
    timeout: float = RESOLVE_TIMEOUT_SECONDS,
) -> str | None:
    """The text of the file at `path` in `commit`, or None when the commit has no such file.
    Fetches that one commit's trees, then only that file's content (where the server can
    filter)."""
    if not COMMIT_ID.fullmatch(commit):
        raise GitError(f"cannot read '{commit[:64]}': not a commit ID")
    with _one_commit(
        remote, commit, scratch=scratch, ref=ref, timeout=timeout, blobs_on_demand=True
    ) as where:
        listed = run_git(["ls-tree", "-z", commit, "--", path], cwd=where, timeout=timeout)
        entry = listed.split("\0", 1)[0]
        mode_type, _, name = entry.partition("\t")
        if name != path:
            return None
        if mode_type.split(" ")[1:2] != ["blob"]:
            raise GitError(f"'{path}' is not a file in commit {commit[:12]}")
        blob = mode_type.split(" ")[2]
        size = int(run_git(["cat-file", "-s", blob], remote=remote, cwd=where, timeout=timeout))
        if size > FILE_MAX_BYTES:
            raise GitError(f"'{path}' is larger than {FILE_MAX_BYTES} bytes")
        return run_git(["cat-file", "blob", blob], remote=remote, cwd=where, timeout=timeout)


@dataclass(frozen=True)
class CheckoutTarget:
    """What to check out: `commit` when the run fixed it, else the head of `ref`, else that of
    the repository's default branch."""

    remote: Remote
    commit: str | None
    ref: str | None


def check_out(
    target: CheckoutTarget,
    directory: Path,
    *,
    on_line: Callable[[str], None],
    timeout: float = CHECKOUT_TIMEOUT_SECONDS,
    cancelled: threading.Event | None = None,
) -> str:
    """Check exactly one commit out into `directory` (created if missing; it may already hold
    files, which stay untracked): `git init`, a shallow fetch of the commit (the whole
    history when the server will not give a commit by SHA), a detached checkout. Each command
    and git's messages go to `on_line`, scrubbed. Returns the commit; `GitError` says why not."""
    remote = target.remote
    wanted = target.commit or target.ref or "HEAD"
    # Refuse anything git could read as an option: these come from run requests and events.
    if target.commit is not None and not COMMIT_ID.fullmatch(target.commit):
        raise GitError(f"cannot check out '{target.commit[:64]}': not a commit ID")
    if target.ref is not None and not target.ref.startswith("refs/"):
        raise GitError(f"cannot check out '{target.ref[:64]}': not a full ref name")
    deadline = time.monotonic() + timeout
    directory.mkdir(parents=True, exist_ok=True)

    def git(args: list[str], shown: str) -> str:
        on_line(f"$ git {shown}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise GitError(f"timed out after {timeout:.0f}s")
        return run_git(
            args, remote=remote, cwd=directory, timeout=left, on_line=on_line, cancelled=cancelled
        )

    try:
        git(["init", "--quiet"], "init")
        git(["remote", "add", "--", "origin", remote.url], f"remote add origin {remote.shown}")
        shallow = ["fetch", "--no-tags", "--depth", "1", "origin", wanted]
        try:
            git([*shallow[:-2], "--", *shallow[-2:]], " ".join(shallow))
        except GitError as error:
            if (
                target.commit is None
                or isinstance(error, CredentialsRefused)
                or str(error) == "canceled"
                or "timed out" in str(error)
            ):
                raise
            # Servers that refuse unadvertised objects: fetch everything, then find the commit.
            full = [
                "fetch",
                "--no-tags",
                "origin",
                "+refs/heads/*:refs/remotes/origin/*",
                "+refs/tags/*:refs/tags/*",
            ]
            git(full, "fetch --no-tags origin (all branches and tags)")
            try:
                run_git(["cat-file", "-e", f"{target.commit}^{{commit}}"], cwd=directory)
            except GitError:
                raise GitError(f"the repository has no commit {target.commit}") from None
        checkout = "FETCH_HEAD" if target.commit is None else target.commit
        git(["checkout", "--quiet", "--detach", checkout], f"checkout --detach {checkout}")
        head = run_git(["rev-parse", "HEAD"], cwd=directory).strip()
    except GitError as error:
        raise type(error)(f"cannot check out {wanted} from {remote.shown}: {error}") from None
    exclude = directory / ".git" / "info" / "exclude"
    with contextlib.suppress(OSError):
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as file:
            file.write(".stageline/\n")  # the agent's own files for the job's steps
    return head
