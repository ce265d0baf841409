"""Real git repositories for tests of code sources: a bare repository in a test's tmp_path that
commits are pushed to from a working clone, as a developer would."""

import os
import subprocess
from pathlib import Path


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
