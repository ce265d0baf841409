"""The `depends_on` graph of a stage's jobs, laid out for an inline SVG drawn by the server.

A job's column is one more than the deepest job it depends on (jobs without dependencies in
column 0), its row its place among the jobs of that column; an arrow runs from the right edge
of each dependency to the left edge of the job. No JavaScript and no layout library: a stage
holds a handful of jobs, and a run page must render without the network.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NODE_WIDTH = 180
NODE_HEIGHT = 44
COLUMN_GAP = 48
ROW_GAP = 14
MARGIN = 4


@dataclass(frozen=True)
class Node:
    job: Mapping[str, Any]
    x: int
    y: int


@dataclass(frozen=True)
class Edge:
    source_id: str
    target_id: str
    path: str
    """SVG path data: a gentle curve from the dependency to the job."""


@dataclass(frozen=True)
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def _columns(jobs: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Each job's column; a dependency outside the stage (or a cycle, which validation refuses
    anyway) counts as none."""
    by_identifier = {job["identifier"]: job for job in jobs}
    column: dict[str, int] = {}

    def depth(identifier: str, seen: frozenset[str]) -> int:
        if identifier in column:
            return column[identifier]
        needs = [
            need
            for need in by_identifier[identifier].get("depends_on") or []
            if need in by_identifier and need not in seen
        ]
        value = 1 + max((depth(n, seen | {identifier}) for n in needs), default=-1)
        column[identifier] = value
        return value

    for job in jobs:
        depth(job["identifier"], frozenset())
    return column


def layout(jobs: Sequence[Mapping[str, Any]]) -> Graph:
    columns = _columns(jobs)
    rows: dict[int, int] = {}
    nodes: list[Node] = []
    place: dict[str, Node] = {}
    for job in jobs:
        col = columns[job["identifier"]]
        row = rows.get(col, 0)
        rows[col] = row + 1
        node = Node(
            job,
            MARGIN + col * (NODE_WIDTH + COLUMN_GAP),
            MARGIN + row * (NODE_HEIGHT + ROW_GAP),
        )
        nodes.append(node)
        place[job["identifier"]] = node
    edges = []
    for node in nodes:
        for need in node.job.get("depends_on") or []:
            source = place.get(need)
            if source is None:
                continue
            x1, y1 = source.x + NODE_WIDTH, source.y + NODE_HEIGHT // 2
            x2, y2 = node.x - 6, node.y + NODE_HEIGHT // 2
            bend = (x2 - x1) // 2
            edges.append(
                Edge(
                    source.job["id"],
                    node.job["id"],
                    f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}",
                )
            )
    width = MARGIN * 2 + (max(columns.values(), default=0) + 1) * (NODE_WIDTH + COLUMN_GAP)
    height = MARGIN * 2 + max(rows.values(), default=1) * (NODE_HEIGHT + ROW_GAP)
    return Graph(nodes, edges, width - COLUMN_GAP, height - ROW_GAP)
