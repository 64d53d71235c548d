import copy

import pytest

from orchestration.engine.planner import NoRoute, next_node
from orchestration.engine.workflow import InvalidWorkflow, parse_definition
from orchestration.workflows.support_desk import DEFINITION


def test_the_support_desk_definition_is_valid():
    definition = parse_definition(DEFINITION)
    assert definition.start == "triage"
    assert [n.name for n in definition.nodes] == [
        "triage",
        "research",
        "draft",
        "decide",
        "review",
        "send",
    ]


def test_the_fingerprint_ignores_key_order_but_not_content():
    reordered = {"nodes": DEFINITION["nodes"], "start": "triage", "name": "support_desk"}
    assert parse_definition(reordered).fingerprint() == parse_definition(DEFINITION).fingerprint()
    changed = copy.deepcopy(DEFINITION)
    changed["nodes"][0]["title"] = "Classify"
    assert parse_definition(changed).fingerprint() != parse_definition(DEFINITION).fingerprint()


def _broken(mutate):
    data = copy.deepcopy(DEFINITION)
    mutate(data)
    with pytest.raises(InvalidWorkflow) as caught:
        parse_definition(data)
    return caught.value.errors


def test_an_edge_to_a_missing_node_is_refused():
    errors = _broken(lambda d: d["nodes"][0]["edges"].__setitem__(0, {"to": "nowhere"}))
    assert any("unknown node 'nowhere'" in e for e in errors)


def test_a_start_that_is_not_a_node_is_refused():
    errors = _broken(lambda d: d.__setitem__("start", "missing"))
    assert any("start" in e for e in errors)


def test_duplicate_node_names_are_refused():
    errors = _broken(lambda d: d["nodes"].append(copy.deepcopy(d["nodes"][0])))
    assert any("defined twice" in e for e in errors)


def test_an_agent_node_without_an_agent_is_refused():
    errors = _broken(lambda d: d["nodes"][0].pop("agent"))
    assert any("must name its agent" in e for e in errors)


def test_a_node_with_no_way_out_is_refused():
    errors = _broken(lambda d: d["nodes"][5].__setitem__("edges", []))
    assert any("no way out" in e for e in errors)


def test_an_unconditional_edge_before_a_conditional_one_is_refused():
    def mutate(d):
        d["nodes"][3]["edges"] = [{"to": "send"}, {"to": "review", "when": {"route": "human"}}]

    errors = _broken(mutate)
    assert any("unconditional edge must come last" in e for e in errors)


def test_an_unreachable_node_is_refused():
    def mutate(d):
        d["nodes"].append(
            {"name": "orphan", "kind": "agent", "agent": "x", "edges": [{"to": "end"}]}
        )

    errors = _broken(mutate)
    assert any("'orphan': cannot be reached" in e for e in errors)


def test_a_loop_that_can_never_end_is_refused():
    def mutate(d):
        d["nodes"][3]["edges"].insert(0, {"to": "spin", "when": {"route": "spin"}})
        d["nodes"].append(
            {"name": "spin", "kind": "agent", "agent": "x", "edges": [{"to": "spin"}]}
        )

    errors = _broken(mutate)
    assert any("no path from it reaches 'end'" in e for e in errors)


def test_an_unknown_node_kind_is_refused():
    errors = _broken(lambda d: d["nodes"][0].__setitem__("kind", "robot"))
    assert any("kind" in e for e in errors)


@pytest.mark.parametrize(
    ("node", "output", "expected"),
    [
        ("triage", {"category": "billing"}, "research"),
        ("decide", {"route": "auto_send"}, "send"),
        ("decide", {"route": "human"}, "review"),
        ("review", {"approved": True}, "send"),
        ("review", {"approved": False, "outcome": "rejected"}, None),
        ("send", {"outcome": "auto_sent"}, None),
    ],
)
def test_what_runs_next(node, output, expected):
    assert next_node(parse_definition(DEFINITION), node, output) == expected


def test_an_output_no_edge_accepts_is_reported():
    with pytest.raises(NoRoute, match="route='auto_send'"):
        next_node(parse_definition(DEFINITION), "decide", {"route": "maybe"})
