"""Every environment variable Stageline sets for a step is a reserved variable name, so that a
pipeline variable can never replace one; and reserved variables never reach a step."""

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from stageline.agent.executor import INHERITED_ENV, OUTPUTS_ENV, run_job
from stageline.domain.variables import STEP_ENVIRONMENT, reserved, source_variables
from stageline.engine.dispatcher import job_environment
from stageline.store.tables import JobRun
from tests.unit.agent.test_executor import RecordingEvents, job, shell

CONTEXT = SimpleNamespace(
    build_params={"commit_id": "0123456789abcdef", "target_branch": "main"},
    sources=[
        {
            "type": "code",
            "params": {
                "git_url": "https://example.com/lib.git",
                "alias": "lib",
                "build_params": {"build_type": "tag", "tag": "v1", "commit_id": "0a" * 20},
            },
        }
    ],
    project_id="p",
    pipeline_id="pl",
    pipeline_name="Pipeline",
    run_id="r",
    run_number=7,
    trigger_type="Manual",
    executor_id="u",
    executor_name="User",
    stage_name="Build",
)
JOB = JobRun(id="j", name="Compile")


def test_what_the_server_sets_is_the_documented_step_environment_and_reserved() -> None:
    """Besides the fixed names, a code source with an alias has its own `<ALIAS>_REPO_*`
    variables (refused only for the pipeline's own aliases, when it is saved)."""
    env = job_environment(CONTEXT, JOB, {})
    per_source = set(source_variables("lib"))
    assert per_source <= set(env)
    assert set(env) - per_source <= STEP_ENVIRONMENT
    assert all(reserved(name) for name in set(env) - per_source)
    assert env["LIB_REPO_COMMIT_ID"] == "0a" * 20
    assert (env["LIB_REPO_TAG"], env["LIB_REPO_BRANCH"]) == ("v1", "")


def test_a_variable_named_like_a_source_variable_does_not_replace_it() -> None:
    env = job_environment(CONTEXT, JOB, {"LIB_REPO_URL": "https://evil.example/x.git"})
    assert env["LIB_REPO_URL"] == "https://example.com/lib.git"


def test_what_the_agent_adds_is_reserved(tmp_path: Path) -> None:
    """Run a step that prints its environment's names; all but the inherited ones are
    Stageline's (the job's env here is empty), and each of them must be reserved."""
    events = RecordingEvents()
    assignment = job(shell("s1", "compgen -e\n"))
    run_job(assignment, events, workspace=tmp_path / "ws", cancelled=threading.Event())
    names = set(events.log_lines("s1")) - set(INHERITED_ENV)
    names -= {"PWD", "SHLVL", "OLDPWD", "_"}  # bash's own
    assert OUTPUTS_ENV in names
    assert names - {OUTPUTS_ENV} <= STEP_ENVIRONMENT
    assert all(reserved(name) for name in names)


@pytest.mark.parametrize("name", ["PATH", "LD_PRELOAD", "BASH_ENV", "PYTHONPATH", "BRANCH"])
def test_a_reserved_variable_of_an_older_run_does_not_reach_the_step(name: str) -> None:
    env = job_environment(CONTEXT, JOB, {name: "/tmp/evil", "GREETING": "hello"})
    assert env.get(name) != "/tmp/evil"
    assert env["GREETING"] == "hello"


@pytest.mark.parametrize("name", ["GREETING", "PATH_TO_REPORT", "MY_LD_PRELOAD", "path", "TZ"])
def test_ordinary_names_are_not_reserved(name: str) -> None:
    assert not reserved(name)
