"""Code sources with real git: the run's commit is fixed when it starts, and the real agent checks
it out into each job's workspace before the first step (the log shows how, or why not)."""

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from stageline.auth.vault import Vault
from stageline.domain.statuses import TriggerType
from stageline.engine.runs import RunEngine
from stageline.engine.scheduler import Executor
from stageline.engine.sources import SourceResolver
from stageline.schemas.runs import RunCreate
from stageline.settings import Settings
from stageline.store.database import Database
from tests.factories import World, definition, shell_job, stage
from tests.gitrepos import GitRepo, private_http
from tests.integration.test_runs import logs

SHOW_CHECKOUT = 'cat README.md; echo "HEAD=$(git rev-parse HEAD)"; echo "COMMIT_ID=$COMMIT_ID"'
TOKEN = "tok-0123-very-secret-token"


def code_source(url: str, **params: Any) -> dict[str, Any]:
    return {"type": "code", "params": {"git_type": "gitlab", "git_url": url, **params}}


def one_job(script: str = SHOW_CHECKOUT) -> str:
    return definition(stage("BUILD", shell_job("CHECK", script)))


def job_log(world: World, pipeline_id: str, run_id: str, detail: dict[str, Any]) -> str:
    text: str = logs(world, pipeline_id, run_id, detail["stages"][0]["jobs"][0])["log"]
    return text


def values(text: str) -> dict[str, str]:
    """KEY=value lines the step printed."""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and " " not in line)


def run_source(url: str, **build_params: Any) -> dict[str, Any]:
    """A RunPipeline body choosing what to build of `url`."""
    return {"sources": [code_source(url, build_params=build_params)]}


class TestTheRunsCommit:
    @pytest.mark.parametrize("form", ["path", "file_url"])
    def test_a_step_sees_the_branch_head_checked_out(
        self, world: World, git_repo: GitRepo, form: str
    ) -> None:
        url = getattr(git_repo, form)
        head = git_repo.commit("second commit\n\nwith a body", {"README.md": "second\n"})
        pipeline_id = world.create_pipeline(
            one_job(), sources=[code_source(url, default_branch="main")]
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        text = job_log(world, pipeline_id, run_id, detail)
        assert detail["status"] == "COMPLETED", text
        assert "second" in text.splitlines()
        assert values(text)["HEAD"] == values(text)["COMMIT_ID"] == head
        assert f"$ git fetch --no-tags --depth 1 origin {head}" in text
        (item,) = world.status(pipeline_id)  # batch status
        assert item["trigger_type"] == item["build_params"]["event_type"] == "Manual"
        assert item["build_params"]["commit_id"] == head
        assert item["build_params"]["message"] == "second commit\n\nwith a body"
        (source,) = detail["sources"]
        assert source["params"]["build_params"]["commit_id"] == head
        assert source["params"]["build_params"]["target_branch"] == "main"

    def test_a_source_naming_no_branch_builds_the_default_branch(
        self, world: World, git_repo: GitRepo
    ) -> None:
        head = git_repo.commit("on main", {"README.md": "main\n"})
        git_repo.commit("elsewhere", {"README.md": "other\n"}, branch="other")
        pipeline_id = world.create_pipeline(one_job(), sources=[code_source(git_repo.path)])
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        text = job_log(world, pipeline_id, run_id, detail)
        assert detail["status"] == "COMPLETED", text
        assert values(text)["HEAD"] == head

    def test_every_job_builds_the_commit_of_the_start_though_the_branch_moved(
        self, world: World, git_repo: GitRepo, tmp_path: Path
    ) -> None:
        first = git_repo.commit("before", {"README.md": "before\n"})
        go = tmp_path / "go"
        wait = f"for _ in $(seq 600); do [ -f {go} ] && break; sleep 0.05; done\n"
        pipeline_id = world.create_pipeline(
            definition(
                stage("ONE", shell_job("WAIT", wait + SHOW_CHECKOUT)),
                stage("TWO", shell_job("LATER", SHOW_CHECKOUT)),
            ),
            sources=[code_source(git_repo.path, default_branch="main")],
        )
        run_id = world.run(pipeline_id)
        moved = git_repo.commit("after", {"README.md": "after\n"})
        go.touch()
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        for index in range(2):
            job = detail["stages"][index]["jobs"][0]
            text = logs(world, pipeline_id, run_id, job)["log"]
            assert values(text)["HEAD"] == first != moved
            assert "before" in text.splitlines()

    def test_a_tag_build_checks_out_the_tagged_commit(
        self, world: World, git_repo: GitRepo
    ) -> None:
        tagged = git_repo.commit("release", {"README.md": "one-point-oh\n"})
        git_repo.tag("v1.0", tagged)
        git_repo.commit("later", {"README.md": "later\n"})
        pipeline_id = world.create_pipeline(
            one_job(SHOW_CHECKOUT + '; echo "TAG=$TAG"'),
            sources=[code_source(git_repo.path, default_branch="main")],
        )
        run_id = world.run(pipeline_id, run_source(git_repo.path, build_type="tag", tag="v1.0"))
        detail = world.wait_for(pipeline_id, run_id)
        text = job_log(world, pipeline_id, run_id, detail)
        assert detail["status"] == "COMPLETED", text
        assert (values(text)["HEAD"], values(text)["TAG"]) == (tagged, "v1.0")
        (item,) = world.status(pipeline_id)
        assert (item["build_params"]["commit_id"], item["build_params"]["message"]) == (
            tagged,
            "release",
        )

    def test_a_branch_and_an_explicit_commit_are_built_as_asked(
        self, world: World, git_repo: GitRepo
    ) -> None:
        old = git_repo.commit("old", {"README.md": "old\n"})
        git_repo.commit("new", {"README.md": "new\n"})
        feature = git_repo.commit("feature work", {"README.md": "feature\n"}, branch="feature")
        pipeline_id = world.create_pipeline(
            one_job(), sources=[code_source(git_repo.path, default_branch="main")]
        )
        on_feature = world.run(
            pipeline_id,
            run_source(git_repo.path, build_type="branch", target_branch="feature"),
        )
        pinned = world.run(
            pipeline_id,
            run_source(git_repo.path, build_type="branch", target_branch="main", commit_id=old),
        )
        for run_id, commit, message in (
            (on_feature, feature, "feature work"),
            (pinned, old, "old"),
        ):
            detail = world.wait_for(pipeline_id, run_id)
            text = job_log(world, pipeline_id, run_id, detail)
            assert detail["status"] == "COMPLETED", text
            assert values(text)["HEAD"] == commit
            (source,) = detail["sources"]
            assert source["params"]["build_params"]["message"] == message

    def test_several_sources_go_into_their_alias_directories_with_their_variables(
        self, world: World, tmp_path: Path
    ) -> None:
        app, lib = GitRepo(tmp_path / "app"), GitRepo(tmp_path / "lib")
        app_head = app.commit("app", {"README.md": "the app\n"})
        lib.commit("lib on main", {"README.md": "lib main\n"})
        lib_head = lib.commit("lib", {"README.md": "the lib\n"}, branch="stable")
        script = (
            "cat app/README.md lib/README.md\n"
            'echo "APP=$(git -C app rev-parse HEAD)"; echo "LIB=$(git -C lib rev-parse HEAD)"\n'
            'echo "A=$APP_REPO_COMMIT_ID"; echo "L=$LIB_REPO_COMMIT_ID"\n'
            'echo "LB=$LIB_REPO_BRANCH"; echo "LU=$LIB_REPO_URL"; echo "C=$COMMIT_ID"\n'
        )
        pipeline_id = world.create_pipeline(
            one_job(script),
            sources=[
                code_source(app.path, alias="app", default_branch="main"),
                code_source(lib.file_url, alias="lib", default_branch="stable"),
            ],
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        text = job_log(world, pipeline_id, run_id, detail)
        assert detail["status"] == "COMPLETED", text
        assert "the app" in text
        assert "the lib" in text
        seen = values(text)
        assert seen["APP"] == seen["A"] == seen["C"] == app_head
        assert seen["LIB"] == seen["L"] == lib_head
        assert (seen["LB"], seen["LU"]) == ("stable", lib.file_url)
        assert [s["params"]["build_params"]["commit_id"] for s in detail["sources"]] == [
            app_head,
            lib_head,
        ]

    def test_a_source_built_from_a_tag_sets_its_alias_tag_and_no_branch(
        self, world: World, tmp_path: Path
    ) -> None:
        app, lib = GitRepo(tmp_path / "app"), GitRepo(tmp_path / "lib")
        app.commit("app", {"README.md": "the app\n"})
        released = lib.commit("lib 2.0", {"README.md": "lib 2.0\n"})
        lib.tag("v2.0", released)
        lib.commit("lib later", {"README.md": "lib later\n"})
        script = (
            'echo "LIB=$(git -C lib rev-parse HEAD)"; echo "L=$LIB_REPO_COMMIT_ID"\n'
            'echo "LT=$LIB_REPO_TAG"; echo "LB=$LIB_REPO_BRANCH"; echo "AB=$APP_REPO_BRANCH"\n'
        )
        sources = [
            code_source(app.path, alias="app", default_branch="main"),
            code_source(lib.path, alias="lib", default_branch="main"),
        ]
        pipeline_id = world.create_pipeline(one_job(script), sources=sources)
        body = {
            "sources": [
                {
                    **sources[0],
                    "params": {**sources[0]["params"], "build_params": {"build_type": "branch"}},
                },
                {
                    **sources[1],
                    "params": {
                        **sources[1]["params"],
                        "build_params": {"build_type": "tag", "tag": "v2.0"},
                    },
                },
            ]
        }
        run_id = world.run(pipeline_id, body)
        detail = world.wait_for(pipeline_id, run_id)
        text = job_log(world, pipeline_id, run_id, detail)
        assert detail["status"] == "COMPLETED", text
        seen = values(text)
        assert seen["LIB"] == seen["L"] == released
        assert (seen["LT"], seen["LB"], seen["AB"]) == ("v2.0", "", "main")


class TestEvents:
    """A trigger's event (a push, a merge request) may name the commit: it is built as named;
    an event without one (a branch's issue, a deleted branch's push) builds the branch head."""

    @staticmethod
    def start(
        world: World,
        db: Database,
        settings: Settings,
        tmp_path: Path,
        event: dict[str, Any],
        *,
        trigger: TriggerType = TriggerType.PUSH,
        script: str = SHOW_CHECKOUT,
    ) -> dict[str, Any]:
        pipeline_id = world.create_pipeline(
            one_job(script), sources=[code_source(world.extra["repo"], default_branch="main")]
        )
        engine = RunEngine(
            db,
            vault=Vault(settings.master_secret()),
            resolver=SourceResolver(tmp_path / "scratch"),
        )
        run_id = engine.start_run(
            project_id=world.project_id,
            pipeline_id=pipeline_id,
            request=RunCreate(),
            executor=Executor(user_id=world.developer.user_id, display_name="Hook"),
            trigger=trigger,
            event_params=event,
        )
        return world.detail(pipeline_id, run_id)

    def test_the_commit_an_event_names_is_built_with_its_message(
        self, world: World, db: Database, settings: Settings, git_repo: GitRepo, tmp_path: Path
    ) -> None:
        pushed = git_repo.commit("pushed", {"README.md": "pushed\n"})
        git_repo.commit("pushed later", {"README.md": "later\n"})
        world.extra["repo"] = git_repo.path
        event = {"commit_id": pushed, "message": "as the event says", "target_branch": "main"}
        detail = self.start(world, db, settings, tmp_path, event)
        chosen = detail["sources"][0]["params"]["build_params"]
        assert (chosen["commit_id"], chosen["message"]) == (pushed, "as the event says")
        assert chosen["event_type"] == "Push"

    def test_an_event_without_a_commit_builds_the_branch_head(
        self, world: World, db: Database, settings: Settings, git_repo: GitRepo, tmp_path: Path
    ) -> None:
        feature = git_repo.commit("feature", {"README.md": "feature\n"}, branch="feature")
        world.extra["repo"] = git_repo.file_url
        event = {"commit_id": None, "target_branch": "feature"}
        detail = self.start(world, db, settings, tmp_path, event)
        chosen = detail["sources"][0]["params"]["build_params"]
        assert (chosen["commit_id"], chosen["message"]) == (feature, "feature")

    def test_a_merge_requests_steps_see_its_branches_merge_id_and_run(
        self, world: World, db: Database, settings: Settings, git_repo: GitRepo, tmp_path: Path
    ) -> None:
        feature = git_repo.commit("feature", {"README.md": "feature\n"}, branch="feature")
        world.extra["repo"] = git_repo.path
        names = (
            "MERGE_ID SOURCE_BRANCH TARGET_BRANCH BRANCH TAG REPO_URL PIPELINE_RUN_ID"
            " PIPELINE_NUMBER TRIGGER_TYPE"
        )
        script = SHOW_CHECKOUT + f'; for v in {names}; do echo "$v=${{!v}}"; done'
        event = {
            "commit_id": feature,
            "message": "feature",
            "source_branch": "feature",
            "target_branch": "main",
            "merge_id": "42",
            "action": "open",
        }
        started = self.start(
            world, db, settings, tmp_path, event, trigger=TriggerType.MR, script=script
        )
        detail = world.wait_for(started["pipeline_id"], started["id"])
        text = job_log(world, started["pipeline_id"], started["id"], detail)
        assert detail["status"] == "COMPLETED", text
        seen = values(text)
        assert seen["HEAD"] == seen["COMMIT_ID"] == feature
        assert {name: seen.get(name, "") for name in names.split()} == {
            "MERGE_ID": "42",
            "SOURCE_BRANCH": "feature",
            "TARGET_BRANCH": "main",
            "BRANCH": "main",
            "TAG": "",
            "REPO_URL": git_repo.path,
            "PIPELINE_RUN_ID": started["id"],
            "PIPELINE_NUMBER": "1",
            "TRIGGER_TYPE": "MR",
        }


class TestFailures:
    @pytest.mark.parametrize(
        ("where", "build_params", "reason"),
        [
            ("missing", {"build_type": "branch", "target_branch": "main"}, "cannot check out"),
            ("repo", {"build_type": "branch", "target_branch": "nope"}, "cannot check out"),
            ("repo", {"build_type": "branch", "commit_id": "0" * 40}, "has no commit"),
        ],
    )
    def test_a_checkout_that_fails_fails_the_job_with_its_reason_in_the_log(
        self,
        world: World,
        git_repo: GitRepo,
        tmp_path: Path,
        where: str,
        build_params: dict[str, Any],
        reason: str,
    ) -> None:
        url = str(tmp_path / "missing.git") if where == "missing" else git_repo.path
        pipeline_id = world.create_pipeline(one_job("echo never"), sources=[code_source(url)])
        started = time.monotonic()
        run_id = world.run(pipeline_id, run_source(url, **build_params))
        detail = world.wait_for(pipeline_id, run_id, timeout=30)
        assert time.monotonic() - started < 30
        assert detail["status"] == "FAILED"
        job = detail["stages"][0]["jobs"][0]
        assert job["status"] == "FAILED"
        assert reason in job["message"], job["message"]
        text = logs(world, pipeline_id, run_id, job)["log"]
        assert reason in text
        assert "$ git fetch" in text
        assert "never" not in text.splitlines()
        if "commit_id" not in build_params:  # unresolved at start: the run has no commit
            assert detail["sources"][0]["params"]["build_params"]["commit_id"] is None

    def test_a_tag_build_naming_no_tag_is_refused(self, world: World, git_repo: GitRepo) -> None:
        """Rather than build the default branch in its place."""
        pipeline_id = world.create_pipeline(one_job(), sources=[code_source(git_repo.path)])
        response = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/run",
            json=run_source(git_repo.path, build_type="tag"),
            headers=world.developer.headers,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_msg"].startswith("sources[0].params.build_params.tag: ")
        assert world.status(pipeline_id) == []

    def test_a_run_naming_no_commit_id_is_refused(self, world: World, git_repo: GitRepo) -> None:
        pipeline_id = world.create_pipeline(one_job(), sources=[code_source(git_repo.path)])
        body = run_source(git_repo.path, build_type="branch", commit_id="--upload-pack=x")
        response = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/run", json=body, headers=world.developer.headers
        )
        assert response.status_code == 400, response.text
        assert "sources[0].params.build_params.commit_id" in response.json()["error_msg"]
        assert world.status(pipeline_id) == []


class TestTokens:
    def test_a_token_never_shows_in_logs_details_or_errors(
        self, world: World, git_repo: GitRepo
    ) -> None:
        """Over https the token goes in a header: a refused connection's error shows neither
        it nor the URL's password; with a file:// URL it is not used and the build works."""
        secret_url = "https://builder:hunter2-pw@127.0.0.1:1/private.git"
        variables = [{"name": "REPO_TOKEN", "value": TOKEN, "is_secret": True}]
        script = 'echo "token=$REPO_TOKEN"; ' + SHOW_CHECKOUT
        for url, status in ((secret_url, "FAILED"), (git_repo.file_url, "COMPLETED")):
            pipeline_id = world.create_pipeline(
                one_job(script),
                variables=variables,
                sources=[code_source(url, default_branch="main", token_variable="REPO_TOKEN")],
            )
            run_id = world.run(pipeline_id)
            detail = world.wait_for(pipeline_id, run_id)
            assert detail["status"] == status
            text = job_log(world, pipeline_id, run_id, detail)
            seen = json.dumps([text, detail, world.status(pipeline_id)])
            shown = world.client.get(
                f"{world.base}/pipelines/{pipeline_id}", headers=world.admin.headers
            ).text
            for leak in (TOKEN, base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()):
                assert leak not in seen
                assert leak not in shown
            if status == "FAILED":
                assert "hunter2" not in text
                assert "https://***@127.0.0.1:1/private.git" in text
            else:
                assert "token=***" in text

    def test_a_private_repository_is_read_with_the_named_secret_which_never_shows(
        self, world: World, git_repo: GitRepo, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Served to one token only: the server resolves the branch with it and the agent
        checks out with it; a wrong token or none fails the job saying so, and no token shows
        in the log, run detail, batch status, pipeline detail or the server's log."""
        head = git_repo.commit("private work", {"README.md": "private\n"})
        wrong = "tok-wrong-but-also-secret"
        outcomes = {}
        with private_http(git_repo, TOKEN) as url:
            for token, status in ((TOKEN, "COMPLETED"), (wrong, "FAILED"), (None, "FAILED")):
                params: dict[str, Any] = {"default_branch": "main"}
                variables = []
                if token is not None:
                    params["token_variable"] = "REPO_TOKEN"
                    variables = [{"name": "REPO_TOKEN", "value": token, "is_secret": True}]
                pipeline_id = world.create_pipeline(
                    one_job(), variables=variables, sources=[code_source(url, **params)]
                )
                run_id = world.run(pipeline_id)
                detail = world.wait_for(pipeline_id, run_id, timeout=30)
                text = job_log(world, pipeline_id, run_id, detail)
                assert detail["status"] == status, text
                shown = world.client.get(
                    f"{world.base}/pipelines/{pipeline_id}", headers=world.admin.headers
                ).text
                seen = json.dumps([text, detail, world.status(pipeline_id), shown])
                for leak in (TOKEN, wrong):
                    for form in (
                        leak,
                        base64.b64encode(f"x-access-token:{leak}".encode()).decode(),
                    ):
                        assert form not in seen
                        assert form not in caplog.text
                outcomes[token] = (detail, text)
        assert "the repository refused the token" in caplog.text  # the log was heard
        detail, text = outcomes[TOKEN]
        assert values(text)["HEAD"] == values(text)["COMMIT_ID"] == head
        assert "private" in text.splitlines()
        (item,) = world.status(detail["pipeline_id"])
        assert (item["build_params"]["commit_id"], item["build_params"]["message"]) == (
            head,
            "private work",
        )
        for token, reason in (
            (wrong, "the repository refused the token"),
            (None, "the repository asks for credentials: give the code source a token_variable"),
        ):
            detail, text = outcomes[token]
            job = detail["stages"][0]["jobs"][0]
            assert reason in job["message"]
            assert reason in text
            assert text.count("$ git fetch") == 1  # refused credentials are not tried again

    @pytest.mark.parametrize(
        ("sources", "variables", "path"),
        [
            (
                [code_source("/r.git", token_variable="PLAIN")],
                [{"name": "PLAIN", "value": "x"}],
                "sources[0].params.token_variable:",
            ),
            (
                [code_source("/a.git", token_variable="NOPE")],
                [],
                "sources[0].params.token_variable:",
            ),
            (
                [code_source("/a.git", alias="a"), code_source("/b.git")],
                [],
                "sources[1].params.alias:",
            ),
            (
                [code_source("/a.git", alias="a"), code_source("/b.git", alias="A")],
                [],
                "sources[1].params.alias:",
            ),
            (
                [code_source("/a.git", alias="app")],
                [{"name": "APP_REPO_URL", "value": "x"}],
                "variables[0].name:",
            ),
            ([code_source(".stageline/demo-repos/app.git")], [], "sources[0].params.git_url:"),
            ([code_source("repos/app.git")], [], "sources[0].params.git_url:"),
        ],
    )
    def test_a_pipeline_with_a_bad_source_is_refused_naming_the_field(
        self,
        world: World,
        sources: list[dict[str, Any]],
        variables: list[dict[str, Any]],
        path: str,
    ) -> None:
        response = world.client.post(
            f"{world.base}/pipelines",
            json={
                "name": "bad-source",
                "is_publish": False,
                "definition": one_job(),
                "sources": sources,
                "variables": variables,
            },
            headers=world.admin.headers,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_msg"].startswith(path), response.text
