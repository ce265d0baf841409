"""cc.xml and badge documents built from rows alone: escaping, the CCTray mapping, badge sizes."""

from datetime import UTC
from xml.etree import ElementTree

import pytest

from stageline.api.badges import badge_svg, text_width
from stageline.api.cctray import cc_time, cc_xml
from stageline.api.render import Renderer
from stageline.domain.monitors import (
    CCActivity,
    CCStatus,
    badge_look,
    cc_activity,
    cc_last_build_status,
)
from stageline.domain.statuses import RunStatus
from stageline.store.queries.feeds import MonitoredPipeline, RunGlance

RENDERER = Renderer(display_tz=UTC, public_base_url="https://ci.example.test/")
PROJECT = "p" * 32
PIPELINE_URL = f"https://ci.example.test/projects/{PROJECT}/pipelines/{'a' * 32}"


class TestCCTrayMapping:
    @pytest.mark.parametrize(
        ("status", "activity"),
        [(s, CCActivity.BUILDING) for s in ("RUNNING", "PAUSED", "SUSPEND")]
        + [(s, CCActivity.SLEEPING) for s in ("COMPLETED", "FAILED", "CANCELED", "IGNORED")]
        + [(None, CCActivity.SLEEPING)],
    )
    def test_activity_is_building_while_the_latest_run_has_not_ended(
        self, status: str | None, activity: CCActivity
    ) -> None:
        assert cc_activity(status) == activity

    def test_every_run_status_has_a_last_build_status(self) -> None:
        expected = {
            RunStatus.COMPLETED: CCStatus.SUCCESS,
            RunStatus.FAILED: CCStatus.FAILURE,
            RunStatus.CANCELED: CCStatus.FAILURE,
        }
        for status in RunStatus:
            assert cc_last_build_status(status) == expected.get(status, CCStatus.UNKNOWN)
        assert cc_last_build_status(None) == CCStatus.UNKNOWN

    def test_every_run_status_has_a_badge(self) -> None:
        for status in RunStatus:
            assert badge_look(status).message != "unknown", status
        assert badge_look(None).message == "unknown"


class TestCcXml:
    def test_attribute_values_are_escaped_and_times_carry_their_zone(self) -> None:
        built = RunGlance("r" * 32, "FAILED", 7, 1_700_000_000_000, 1_700_000_061_999)
        running = RunGlance("s" * 32, "RUNNING", 8, 1_700_000_100_000, None)
        pipeline = MonitoredPipeline("a" * 32, "app", 1, running, built, [])
        document = cc_xml(RENDERER, PROJECT, [pipeline], now=1, branch='x"<&>\n')
        (project,) = ElementTree.fromstring(document)
        assert project.attrib == {
            "name": 'app :: x"<&>\n',
            "activity": "Building",
            "lastBuildStatus": "Failure",
            "lastBuildLabel": "7",
            "lastBuildTime": "2023-11-14T22:14:21Z",
            "webUrl": f"{PIPELINE_URL}/runs/{'s' * 32}",
        }
        assert b"&lt;&amp;&gt;" in document

    def test_a_pipeline_never_built_is_unknown_since_it_was_created(self) -> None:
        pipeline = MonitoredPipeline("a" * 32, "app", 1_700_000_000_000, None, None, [])
        (project,) = ElementTree.fromstring(cc_xml(RENDERER, PROJECT, [pipeline], now=1))
        assert project.attrib["lastBuildStatus"] == "Unknown"
        assert project.attrib["activity"] == "Sleeping"
        assert project.attrib["lastBuildTime"] == cc_time(1_700_000_000_000)
        assert "lastBuildLabel" not in project.attrib


class TestBadges:
    def test_widths_follow_verdana_at_11px(self) -> None:
        assert text_width("build") == 27  # shields.io draws it 27 px wide too
        assert text_width("passing") == 42
        assert text_width("WWW") > text_width("iii")
        assert text_width("构建") == 22

    def test_the_svg_is_well_formed_with_the_halves_side_by_side(self) -> None:
        svg = ElementTree.fromstring(badge_svg("a <b> & c", badge_look("COMPLETED")))
        ns = {"s": "http://www.w3.org/2000/svg"}
        left, right, _ = svg.findall("s:g/s:rect", ns)
        assert int(left.attrib["width"]) + int(right.attrib["width"]) == int(svg.attrib["width"])
        assert right.attrib["x"] == left.attrib["width"]
        assert right.attrib["fill"] == "#4c1"
        texts = [t.text for t in svg.findall("s:g/s:text", ns)]
        assert texts == ["a <b> & c", "a <b> & c", "passing", "passing"]
        assert svg.find("s:title", ns) is not None
