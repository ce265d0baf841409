"""The executor checks a job's code sources out before its first step (`agent.checkout`), with
real git repositories: into the workspace, or each into its alias's directory."""

import dataclasses
import threading
from pathlib import Path

from stageline.agent.executor import run_job
from stageline.schemas.jobs import JobAssignment, SourceCheckout
from tests.gitrepos import GitRepo
from tests.unit.agent.test_executor import RecordingEvents, job, shell


def run(assignment: JobAssignment, workspace: Path) -> RecordingEvents:
    events = RecordingEvents()
    run_job(assignment, events, workspace=workspace, cancelled=threading.Event())
    return events


def with_checkouts(assignment: JobAssignment, *checkouts: SourceCheckout) -> JobAssignment:
    return dataclasses.replace(assignment, checkouts=checkouts)


class TestCheckouts:
    def test_the_first_step_runs_in_the_checkout_after_its_lines(self, tmp_path: Path) -> None:
        repo = GitRepo(tmp_path / "repo")
        commit = repo.commit("c", {"README.md": "from git\n"})
        source = SourceCheckout(url=repo.file_url, commit=commit, ref="refs/heads/main")
        assignment = with_checkouts(job(shell("s1", "cat README.md\ngit rev-parse HEAD")), source)
        events = run(assignment, tmp_path / "ws")
        lines = events.log_lines("s1")
        assert lines[0] == "$ git init"
        assert lines[-2:] == ["from git", commit]
        assert events.without_logs()[-1] == ("job_finished", "job-1", "COMPLETED", None)

    def test_several_sources_go_into_their_directories(self, tmp_path: Path) -> None:
        one, two = GitRepo(tmp_path / "one"), GitRepo(tmp_path / "two")
        one.commit("c", {"README.md": "one\n"})
        two.commit("c", {"README.md": "two\n"})
        sources = [
            SourceCheckout(url=r.path, commit=None, ref="refs/heads/main", directory=name)
            for r, name in ((one, "one"), (two, "two"))
        ]
        assignment = with_checkouts(job(shell("s1", "cat one/README.md two/README.md")), *sources)
        assert run(assignment, tmp_path / "ws").log_lines("s1")[-2:] == ["one", "two"]

    def test_a_failed_checkout_fails_the_first_step_and_the_job(self, tmp_path: Path) -> None:
        missing = str(tmp_path / "missing.git")
        source = SourceCheckout(url=missing, commit="a" * 40, ref=None)
        assignment = with_checkouts(job(shell("s1", "echo never"), shell("s2", "echo no")), source)
        events = run(assignment, tmp_path / "ws")
        finished = [c for c in events.without_logs() if c[0].endswith("finished")]
        assert [c[:3] for c in finished] == [
            ("step_finished", "s1", "FAILED"),
            ("job_finished", "job-1", "FAILED"),
        ]
        assert finished[1][3].startswith(f"cannot check out {'a' * 40} from {missing}: ")
        assert "never" not in events.log_lines("s1")
        assert events.log_lines("s1")[-1].startswith("[stageline] cannot check out")

    def test_a_directory_that_is_not_a_plain_name_is_refused(self, tmp_path: Path) -> None:
        source = SourceCheckout(url="/nowhere", commit=None, ref=None, directory="../up")
        events = run(with_checkouts(job(shell("s1", "true")), source), tmp_path / "ws")
        assert events.without_logs()[-1][2] == "FAILED"
        assert not (tmp_path / "up").exists()

    def test_the_token_is_masked_in_the_log(self, tmp_path: Path) -> None:
        token = "tok-agent-secret"
        source = SourceCheckout(
            url=f"https://x:{token}@127.0.0.1:1/r.git",
            commit=None,
            ref="refs/heads/main",
            token_variable="REPO_TOKEN",
        )
        assignment = job(shell("s1", "true"), env={"REPO_TOKEN": token}, secrets=(token,))
        events = run(with_checkouts(assignment, source), tmp_path / "ws")
        assert token not in repr(events.snapshot())
