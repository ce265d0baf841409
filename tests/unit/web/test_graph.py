"""The job graph's layout: a job's column is one past its deepest dependency in the stage."""

from typing import Any

from stageline.web.graph import COLUMN_GAP, NODE_WIDTH, layout


def job(identifier: str, *needs: str) -> dict[str, Any]:
    return {"id": f"id-{identifier}", "identifier": identifier, "depends_on": list(needs)}


def columns(jobs: list[dict[str, Any]]) -> dict[str, int]:
    graph = layout(jobs)
    return {node.job["identifier"]: node.x // (NODE_WIDTH + COLUMN_GAP) for node in graph.nodes}


class TestLayout:
    def test_independent_jobs_share_the_first_column(self) -> None:
        graph = layout([job("A"), job("B")])
        assert columns([job("A"), job("B")]) == {"A": 0, "B": 0}
        assert graph.edges == []
        assert graph.nodes[0].y < graph.nodes[1].y

    def test_a_job_sits_one_column_past_its_deepest_dependency(self) -> None:
        jobs = [job("D", "B", "C"), job("A"), job("B", "A"), job("C")]
        assert columns(jobs) == {"A": 0, "B": 1, "C": 0, "D": 2}

    def test_each_dependency_is_an_arrow_to_the_job(self) -> None:
        graph = layout([job("A"), job("B", "A"), job("C", "A", "B")])
        assert {(e.source_id, e.target_id) for e in graph.edges} == {
            ("id-A", "id-B"),
            ("id-A", "id-C"),
            ("id-B", "id-C"),
        }
        assert all(edge.path.startswith("M") for edge in graph.edges)

    def test_a_dependency_outside_the_stage_draws_nothing(self) -> None:
        graph = layout([job("A", "ELSEWHERE")])
        assert columns([job("A", "ELSEWHERE")]) == {"A": 0}
        assert graph.edges == []

    def test_the_drawing_is_as_large_as_its_columns_and_rows(self) -> None:
        wide = layout([job("A"), job("B", "A"), job("C", "B")])
        tall = layout([job("A"), job("B"), job("C")])
        assert wide.width > tall.width
        assert tall.height > wide.height
