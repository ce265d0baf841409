"""Real git repositories for tests of code sources: a bare repository in a test's tmp_path that
commits are pushed to from a working clone, as a developer would."""

import base64
import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar


def git(*args: str, cwd: Path | None = None) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.test",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.test",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout.strip()


class GitRepo:
    """`origin.git` (bare, what pipelines name) and `work` (the clone commits are made in)."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.bare = root / "origin.git"
        self.work = root / "work"
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        git("init", "--quiet", "--initial-branch=main", str(self.work))
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    @property
    def path(self) -> str:
        return str(self.bare)

    @property
    def file_url(self) -> str:
        return self.bare.as_uri()

    def commit(self, message: str, files: dict[str, str], *, branch: str = "main") -> str:
        """Commit `files` on `branch` (made from the current commit if new) and push it."""
        if git("branch", "--list", branch, cwd=self.work) or not self._has_commits():
            git("checkout", "--quiet", "-B", branch, cwd=self.work)
        else:
            git("checkout", "--quiet", "-b", branch, cwd=self.work)
        for name, text in files.items():
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            (self.work / name).write_text(text)
        git("add", "--all", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        git("push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(self, name: str, commit: str) -> None:
        """An annotated tag, pushed: its ref names the tag object, not the commit."""
        git("tag", "-a", name, "-m", f"release {name}", commit, cwd=self.work)
        git("push", "--quiet", "origin", f"refs/tags/{name}", cwd=self.work)

    def head(self, branch: str) -> str:
        return git("rev-parse", f"refs/heads/{branch}", cwd=self.bare)

    def _has_commits(self) -> bool:
        return bool(git("rev-list", "--all", "--max-count=1", cwd=self.work))


class _PrivateHttp(BaseHTTPRequestHandler):
    """Git's smart HTTP protocol (`git http-backend`, as a forge runs it) for one directory of
    repositories, to a client that sends the right token as a forge reads it: Basic
    `x-access-token:<token>`; anything else is a 401, as from a private repository."""

    root: ClassVar[Path]
    token: ClassVar[str]

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        basic = base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {basic}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type") or "",
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
        }
        for header, variable in (
            ("Git-Protocol", "GIT_PROTOCOL"),
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
        ):
            if self.headers.get(header):
                env[variable] = self.headers[header]
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        ends = [end for end in (b"\r\n\r\n", b"\n\n") if end in done.stdout]
        end = min(ends, key=done.stdout.index) if ends else b"\n\n"
        head, _, payload = done.stdout.partition(end)
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def private_http(repo: GitRepo, token: str) -> Iterator[str]:
    """Serve `repo` over http on the loopback to that token only; the repository's URL."""
    handler = type("Handler", (_PrivateHttp,), {"root": repo.bare.parent, "token": token})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{repo.bare.name}"
    finally:
        server.shutdown()
        server.server_close()
