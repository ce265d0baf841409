"""The dashboard in a real browser: logging in and out, the wall and the run page following runs
live (Server-Sent Events, no reload), a manual review passed from the run page, and what a
viewer and a forged or CSRF-less request are refused."""

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.factories import World, definition, shell_job, stage
from tests.integration.test_reviews_and_outputs import reviewed_then_shipped, wait_until_paused

pytestmark = pytest.mark.browser
FORBIDDEN = "DEVCP.00014031"


HOLD_THE_TILES_PAGE_AND_LISTEN = """(pipelineId) => {
    // The wall's fetch of its own page is read at once but handed over only when released.
    const realFetch = window.fetch;
    let pageRead;
    window.tilesPageRead = new Promise((resolve) => { pageRead = resolve; });
    window.fetch = (url, options) => {
        if (url !== location.pathname) return realFetch(url, options);
        return realFetch(url, options).then((response) => response.text()).then((text) => {
            pageRead(true);
            return new Promise((resolve) => {
                window.releaseTilesPage = () => resolve(new Response(text, {status: 200}));
            });
        });
    };
    // A second listener of the same stream tells when the run's end has been sent.
    window.toldCompleted = new Promise((resolve) => {
        const source = new EventSource(document.getElementById("wall").dataset.stream);
        source.onmessage = (event) => {
            const change = JSON.parse(event.data);
            if (change.pipeline_id === pipelineId && change.element?.status === "COMPLETED") {
                source.close();
                resolve(true);
            }
        };
    });
}"""


def run_path(world: World, pipeline_id: str) -> str:
    """The path of the batch-status element's `detail_url`: where the run page must be."""
    (element,) = world.status(pipeline_id)
    return urlsplit(str(element["detail_url"])).path


def post_from_page(page: Page, path: str, *, csrf: bool = True) -> dict[str, Any]:
    """A POST sent by the page's own JavaScript context (its cookies), with or without the
    CSRF header the dashboard's scripts send; the status and the JSON answer."""
    answer: dict[str, Any] = page.evaluate(
        """async ([path, csrf]) => {
            const headers = {"Content-Type": "application/json"};
            if (csrf) headers["X-CSRF-Token"] = document.body.dataset.csrf;
            const response = await fetch(path, {method: "POST", headers, body: "{}"});
            return {status: response.status, body: await response.json()};
        }""",
        [path, csrf],
    )
    return answer


class TestSessions:
    def test_a_page_sends_a_stranger_to_the_login_and_back(self, page: Page, world: World) -> None:
        wall = f"/projects/{world.project_id}"
        log_in(page, world.viewer, wall)
        expect(page).to_have_url(re.compile(re.escape(wall) + "$"))
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "stageline_session"]
        assert cookie["httpOnly"]
        assert cookie["sameSite"] == "Lax"
        expect(page.locator("header .who")).to_have_text(world.viewer.display_name)

    def test_a_wrong_password_is_refused(self, page: Page, world: World) -> None:
        page.goto("/login")
        page.fill("input[name=username]", world.viewer.name)
        page.fill("input[name=password]", "not-the-password")
        page.click("button[type=submit]")
        expect(page.locator("#login-error")).to_contain_text("wrong")
        assert not page.context.cookies()

    def test_logout_ends_the_session_and_its_token(
        self, page: Page, world: World, dashboard: str
    ) -> None:
        log_in(page, world.developer, f"/projects/{world.project_id}")
        (cookie,) = [c for c in page.context.cookies() if c["name"] == "stageline_session"]
        page.click("#logout")
        page.wait_for_url("**/login")
        page.goto(f"/projects/{world.project_id}")
        page.wait_for_url(re.compile(r"/login\?next="))
        # The token itself is gone: the API refuses it too.
        response = httpx.post(
            f"{dashboard}/v5/{world.project_id}/api/pipelines/list",
            json={},
            headers={"X-Auth-Token": cookie["value"]},
        )
        assert response.status_code == 401, response.text

    def test_the_dashboards_json_answers_a_stranger_401(self, dashboard: str, world: World) -> None:
        stream = httpx.get(f"{dashboard}/projects/{world.project_id}/wall/stream")
        assert stream.status_code == 401
        assert set(stream.json()) >= {"error_code", "error_msg"}
        page = httpx.get(f"{dashboard}/projects/{world.project_id}")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=")


class TestLive:
    def test_the_wall_shows_a_run_go_from_running_to_completed_without_reload(
        self, page: Page, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(
            definition(stage("BUILD", shell_job("SLOW", "sleep 1.5; echo done")))
        )
        log_in(page, world.viewer, f"/projects/{world.project_id}")
        expect(page.locator("#live")).to_have_attribute("data-state", "open")
        page.evaluate("window.notReloaded = true")
        badge = page.locator(f".tile[data-pipeline='{pipeline_id}'] .badge")
        expect(badge).to_have_text("")
        world.run(pipeline_id)
        expect(badge).to_have_text("RUNNING")
        expect(badge).to_have_text("COMPLETED", timeout=30_000)
        assert page.evaluate("window.notReloaded") is True
        tile = page.locator(f".tile[data-pipeline='{pipeline_id}']")
        expect(tile.locator(".run-link")).to_have_text("#1")
        expect(tile.locator(".dot")).to_have_attribute("data-status", "COMPLETED")
        # The filters work in the page: by name, then by status.
        name = page.locator(f".tile[data-pipeline='{pipeline_id}'] .tile-name").inner_text()
        page.fill("#filter-name", name)
        expect(page.locator(".tile:visible")).to_have_count(1)
        page.fill("#filter-name", "")
        page.select_option("#filter-status", "FAILED")
        expect(tile).to_be_hidden()
        page.select_option("#filter-status", "COMPLETED")
        expect(tile).to_be_visible()

    def test_a_pipeline_made_after_the_wall_loaded_gets_a_tile_and_a_deleted_one_loses_it(
        self, page: Page, world: World
    ) -> None:
        log_in(page, world.viewer, f"/projects/{world.project_id}")
        expect(page.locator("#live")).to_have_attribute("data-state", "open")
        page.evaluate("window.notReloaded = true")
        pipeline_id = world.create_pipeline()
        tile = page.locator(f".tile[data-pipeline='{pipeline_id}']")
        expect(tile).to_have_count(0)

        world.run(pipeline_id)
        expect(tile.locator(".badge")).to_have_text("COMPLETED", timeout=30_000)
        expect(tile.locator(".run-link")).to_have_text("#1")
        deleted = world.client.delete(
            f"{world.base}/pipelines/{pipeline_id}", headers=world.admin.headers
        )
        assert deleted.status_code == 200
        expect(tile).to_have_count(0)
        assert page.evaluate("window.notReloaded") is True

    def test_a_change_told_while_a_new_tiles_page_is_on_its_way_is_drawn_on_it(
        self, page: Page, world: World, tmp_path: Path
    ) -> None:
        """The wall fetches a new pipeline's tile from its page: a change the stream tells
        meanwhile must not be lost to a page rendered before it."""
        gate = tmp_path / "gate"
        script = f"until [ -e '{gate}' ]; do sleep 0.05; done"
        log_in(page, world.viewer, f"/projects/{world.project_id}")
        expect(page.locator("#live")).to_have_attribute("data-state", "open")
        pipeline_id = world.create_pipeline(definition(stage("BUILD", shell_job("GATED", script))))
        page.evaluate(HOLD_THE_TILES_PAGE_AND_LISTEN, pipeline_id)
        run_id = world.run(pipeline_id)
        page.evaluate("window.tilesPageRead")  # rendered while the run waits at the gate
        gate.touch()
        world.wait_for(pipeline_id, run_id)
        assert page.evaluate("window.toldCompleted") is True
        page.wait_for_timeout(300)  # the wall's own stream is told as well
        page.evaluate("window.releaseTilesPage()")
        tile = page.locator(f".tile[data-pipeline='{pipeline_id}']")
        expect(tile.locator(".badge")).to_have_text("COMPLETED")

    def test_the_pipeline_page_shows_a_new_run_and_its_end_without_reload(
        self, page: Page, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(
            definition(stage("BUILD", shell_job("SLOW", "sleep 1; echo done")))
        )
        world.wait_for(pipeline_id, world.run(pipeline_id))
        log_in(page, world.viewer, f"/projects/{world.project_id}/pipelines/{pipeline_id}")
        expect(page.locator("#live")).to_have_attribute("data-state", "open")
        page.evaluate("window.notReloaded = true")
        rows = page.locator("#history tbody tr")
        expect(rows).to_have_count(1)

        run_id = world.run(pipeline_id)

        expect(rows).to_have_count(2)
        expect(rows.first).to_have_attribute("data-run", run_id)
        expect(rows.first.locator(".badge")).to_have_text("COMPLETED", timeout=30_000)
        expect(page.locator("#history h2 small")).to_have_text("2")
        assert page.evaluate("window.notReloaded") is True

    def test_the_run_page_streams_a_running_steps_log(self, page: Page, world: World) -> None:
        secret = f"s3cret-{secrets.token_hex(4)}"
        script = "\n".join(
            (
                'echo "token $API_TOKEN"',
                'for i in 1 2 3 4 5 6; do echo "line-$i"; sleep 0.4; done',
                'echo "version=1.2.3" >> "$STAGELINE_OUTPUTS"',
                "mkdir -p dist && echo packed > dist/app.txt",
            )
        )
        job = shell_job("TALK", script)
        job["steps"][0]["inputs"].append({"key": "artifacts", "value": "dist/*.txt"})
        pipeline_id = world.create_pipeline(
            definition(stage("BUILD", job)),
            variables=[{"name": "API_TOKEN", "value": secret, "is_secret": True}],
        )
        world.run(pipeline_id)
        log_in(page, world.viewer, run_path(world, pipeline_id))
        step = page.locator(".job details.step").first
        expect(step).to_have_attribute("data-status", "RUNNING")
        step.locator("summary").click()
        log = step.locator("pre.log")
        expect(log).to_contain_text("line-1")
        # Lines arrive while the step still runs, not all at its end.
        assert step.get_attribute("data-status") == "RUNNING"
        assert "line-6" not in log.inner_text()
        expect(log).to_have_attribute("data-complete", "true", timeout=30_000)
        expect(step).to_have_attribute("data-status", "COMPLETED")
        text = log.inner_text()
        assert "line-6" in text
        assert "token ***" in text
        assert secret not in text
        # Outputs and artifacts appear once the step has ended, without a reload.
        outputs = step.locator("table.outputs")
        expect(outputs).to_be_visible()
        expect(outputs).to_contain_text("version")
        expect(outputs).to_contain_text("1.2.3")
        link = page.locator("#artifacts a")
        expect(link).to_have_text("dist/app.txt", timeout=30_000)
        with page.expect_download() as download:
            link.click()
        assert Path(download.value.path()).read_bytes() == b"packed\n"


class TestActions:
    def test_a_developer_runs_chosen_stages_from_the_pipeline_page(
        self, page: Page, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("FIRST", shell_job("ONE", "echo $WHO")),
                stage("SECOND", shell_job("TWO", "echo two")),
            ),
            variables=[{"name": "WHO", "value": "nobody", "is_runtime": True}],
        )
        log_in(page, world.developer, f"/projects/{world.project_id}/pipelines/{pipeline_id}")
        page.click("#run-open")
        page.fill("input[name='var:WHO']", "the browser")
        page.uncheck("input[name=stage][value=SECOND]")
        page.click("#run-submit")
        page.wait_for_url(re.compile(r"/runs/[0-9a-f]+$"))
        expect(page.locator("#run-status")).to_have_text("COMPLETED", timeout=30_000)
        stages = page.locator("section.stage")
        expect(stages.nth(1)).to_have_attribute("data-status", "UNSELECTED")
        step = page.locator(".job details.step").first
        step.locator("summary").click()
        expect(step.locator("pre.log")).to_contain_text("the browser")

    def test_a_developer_passes_a_manual_review_from_the_run_page(
        self, page: Page, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(reviewed_then_shipped())
        run_id = world.run(pipeline_id)
        wait_until_paused(world, pipeline_id, run_id)
        log_in(page, world.developer, run_path(world, pipeline_id))
        expect(page.locator("#run-status")).to_have_text("PAUSED")
        page.get_by_role("button", name="Pass").click()
        expect(page.locator("#run-status")).to_have_text("COMPLETED", timeout=30_000)
        assert world.detail(pipeline_id, run_id)["status"] == "COMPLETED"

    def test_a_viewer_sees_no_actions_and_a_forged_one_is_refused(
        self, page: Page, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(reviewed_then_shipped())
        run_id = world.run(pipeline_id)
        wait_until_paused(world, pipeline_id, run_id)
        path = run_path(world, pipeline_id)
        log_in(page, world.viewer, path)
        expect(page.locator("#run-status")).to_have_text("PAUSED")
        for selector in ("#stop", "#retry", "button.review", ".retry-job"):
            expect(page.locator(selector)).to_have_count(0)
        review_step = world.detail(pipeline_id, run_id)["stages"][0]["jobs"][0]["steps"][0]
        for action in ("/stop", f"/reviews/{review_step['id']}/pass"):
            answer = post_from_page(page, path + action)
            assert answer["status"] == 403, answer
            assert answer["body"]["error_code"] == FORBIDDEN
        page.goto(f"/projects/{world.project_id}/pipelines/{pipeline_id}")
        expect(page.locator("#runs, table.runs")).to_have_count(1)
        expect(page.locator("#run-open")).to_have_count(0)
        expect(page.locator("#edit")).to_have_count(0)
        assert world.detail(pipeline_id, run_id)["status"] == "PAUSED"

    def test_a_post_without_the_csrf_token_is_refused(self, page: Page, world: World) -> None:
        pipeline_id = world.create_pipeline(reviewed_then_shipped())
        run_id = world.run(pipeline_id)
        wait_until_paused(world, pipeline_id, run_id)
        path = run_path(world, pipeline_id)
        log_in(page, world.developer, path)
        expect(page.locator("#stop")).to_be_visible()
        answer = post_from_page(page, path + "/stop", csrf=False)
        assert answer["status"] == 403, answer
        assert "CSRF" in answer["body"]["error_msg"]
        assert world.detail(pipeline_id, run_id)["status"] == "PAUSED"
        page.click("#stop")
        expect(page.locator("#run-status")).to_have_text("CANCELED", timeout=30_000)
