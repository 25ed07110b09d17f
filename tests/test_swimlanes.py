"""The column layout of the library (engine.bpmn.swimlanes): lanes side by side as columns, the flow
downwards, returns along the side, labels clear of shapes and of each other, and a procedure of up to
fifteen steps printable whole on one A4 portrait page at a readable scale."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from engine.bpmn import steptable as st
from engine.bpmn.swimlanes import Box
from engine.render.diagram import render_svg_bytes
from engine.render.handbook import CHART_AREA_HEIGHT, CHART_AREA_WIDTH

TABLES = sorted(st.TABLES_DIR.glob("*.yaml"))
NS = {"bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI", "dc": "http://www.omg.org/spec/DD/20100524/DC"}


def _layout(path: Path):
    table = st.load_table(path)
    graph = st._GraphBuilder(table).build()
    return table, graph, st.layout(graph, table)


def _inside(outer: Box, inner: Box) -> bool:
    return (outer.x <= inner.x and outer.y <= inner.y and inner.x + inner.w <= outer.x + outer.w
            and inner.y + inner.h <= outer.y + outer.h)


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.stem)
def test_lanes_are_columns_and_the_flow_runs_down(path: Path) -> None:
    table, graph, geometry = _layout(path)
    lanes = [geometry.lanes[lane["role"]] for lane in table["lanes"]]
    for left, right in zip(lanes, lanes[1:]):
        assert left.x + left.w == right.x and left.y == right.y and left.h == right.h
    assert lanes[0].x == geometry.pool.x and lanes[-1].x + lanes[-1].w == geometry.pool.x + geometry.pool.w
    for flow in graph.flows:
        points = geometry.edges[flow.id]
        source, target = geometry.shapes[flow.source], geometry.shapes[flow.target]
        if target.y > source.y:  # forward: out of the bottom, into the top
            assert points[0] == (source.cx, source.y + source.h) and points[-1] == (target.cx, target.y)
        else:  # a return: out of the right side, along the side, into the right side
            assert points[0][0] == source.x + source.w and points[-1][0] == target.x + target.w


@pytest.mark.parametrize("path", TABLES, ids=lambda p: p.stem)
def test_labels_clear_of_shapes_and_each_other_inside_the_pool(path: Path) -> None:
    _table, _graph, geometry = _layout(path)
    shapes = geometry.shapes
    edge_labels = list(geometry.edge_labels.items())
    for flow_id, label in edge_labels:
        assert _inside(geometry.pool, label), flow_id
        for node_id, box in shapes.items():
            assert not label.overlaps(box), (flow_id, node_id)
        for node_id, box in geometry.labels.items():
            assert not label.overlaps(box), (flow_id, node_id)
    for index, (first, a) in enumerate(edge_labels):
        for second, b in edge_labels[index + 1:]:
            assert not a.overlaps(b), (first, second)
    for node_id, label in geometry.labels.items():
        assert label.x >= geometry.pool.x, node_id
        for other, box in shapes.items():
            assert other == node_id or not label.overlaps(box), (node_id, other)


def test_di_marks_vertical_lanes() -> None:
    root = etree.fromstring((st.PROCESSES_DIR / "V-DEC-01.bpmn").read_bytes())
    flags = {shape.get("isHorizontal") for shape in root.iterfind(".//bpmndi:BPMNShape", NS)
             if shape.get("isHorizontal") is not None}
    assert flags == {"false"}


@pytest.mark.parametrize("path", [p for p in TABLES if len(st.load_table(p)["steps"]) <= 15], ids=lambda p: p.stem)
def test_fits_one_a4_portrait_page_readably(path: Path) -> None:
    table = st.load_table(path)
    svg = etree.fromstring(render_svg_bytes(st.build_bpmn(table)).encode("utf-8"))
    _x, _y, width, height = (float(v) for v in svg.get("viewBox").split())
    scale = min(CHART_AREA_WIDTH / width, CHART_AREA_HEIGHT / height)
    assert scale >= 0.5, (table["id"], round(scale, 2))  # 12-unit text at least ~1.6 mm on paper
