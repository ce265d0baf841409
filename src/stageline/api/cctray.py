"""The CCTray feed (cc.xml): one `<Project>` per pipeline, as CCMenu, Nevergreen and BuildNotify
read it (cctray.org's format).

Built with ElementTree, so every attribute value is escaped, whatever a pipeline is named.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.etree import ElementTree

from stageline.api.render import Renderer
from stageline.domain.monitors import cc_activity, cc_last_build_status
from stageline.domain.schedules import next_fire
from stageline.store.queries.feeds import MonitoredPipeline

MEDIA_TYPE = "application/xml"


def cc_time(epoch_ms: int) -> str:
    """`2025-03-01T09:15:02Z`: ISO 8601 with its zone, as cctray.org asks."""
    return datetime.fromtimestamp(epoch_ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cc_xml(
    renderer: Renderer,
    project_id: str,
    pipelines: Sequence[MonitoredPipeline],
    *,
    now: int,
    branch: str | None = None,
) -> bytes:
    """The feed's document. With `branch`, each name says so (`app :: main`), so that feeds of
    several branches can sit side by side in one monitor. `nextBuildTime` is when the
    pipeline's schedules fire next (they build its default branch: not said on a branch's
    feed)."""
    root = ElementTree.Element("Projects")
    for pipeline in pipelines:
        built, latest = pipeline.last_built, pipeline.latest
        if built is not None:
            # the time the last build finished; started and ended, so it has an end time
            when = built.end_time if built.end_time is not None else built.start_time
        else:
            when = pipeline.created_at  # nothing built yet: a time the schema accepts
        attributes = {
            "name": pipeline.name if branch is None else f"{pipeline.name} :: {branch}",
            "activity": cc_activity(None if latest is None else latest.status),
            "lastBuildStatus": cc_last_build_status(None if built is None else built.status),
            "lastBuildTime": cc_time(when),
            "webUrl": (
                renderer.detail_url(project_id, pipeline.pipeline_id, latest.run_id)
                if latest is not None
                else renderer.pipeline_url(project_id, pipeline.pipeline_id)
            ),
        }
        if built is not None:
            attributes["lastBuildLabel"] = str(built.run_number)
        upcoming = next_fire(pipeline.schedules, now) if branch is None else None
        if upcoming is not None:
            attributes["nextBuildTime"] = cc_time(upcoming)
        ElementTree.SubElement(root, "Project", attributes)
    document: bytes = ElementTree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document
