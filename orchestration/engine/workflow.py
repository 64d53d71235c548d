"""Workflow definitions: a graph of agent and human nodes joined by conditional edges.

A definition is plain data (it is stored as JSON on each workflow version) and is validated
as a whole before it is used, so a run never discovers a dangling edge half-way through.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

END = "end"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class NodeKind(StrEnum):
    AGENT = "agent"
    HUMAN = "human"


@dataclass(frozen=True)
class Condition:
    """Holds when the node's output has ``key`` equal to ``value``."""

    key: str
    value: str | bool | int

    def holds(self, output: Mapping[str, Any]) -> bool:
        return self.key in output and output[self.key] == self.value


@dataclass(frozen=True)
class Edge:
    to: str
    when: Condition | None = None


@dataclass(frozen=True)
class Node:
    name: str
    kind: NodeKind
    edges: tuple[Edge, ...]
    agent: str | None = None
    title: str = ""


class InvalidWorkflow(ValueError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    start: str
    nodes: tuple[Node, ...]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "start": self.start,
            "nodes": [
                {
                    "name": n.name,
                    "kind": str(n.kind),
                    "agent": n.agent,
                    "title": n.title,
                    "edges": [
                        {"to": e.to}
                        if e.when is None
                        else {"to": e.to, "when": {e.when.key: e.when.value}}
                        for e in n.edges
                    ],
                }
                for n in self.nodes
            ],
        }

    def fingerprint(self) -> str:
        """A hash of the definition; equal definitions hash equal whatever their key order."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def parse_definition(data: Mapping[str, Any]) -> WorkflowDefinition:
    """Build a definition from its JSON form, or raise InvalidWorkflow listing every fault."""
    errors: list[str] = []
    nodes: list[Node] = []
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise InvalidWorkflow(["nodes: a workflow needs a non-empty list of nodes"])
    for index, raw in enumerate(raw_nodes):
        where = f"nodes[{index}]"
        if not isinstance(raw, Mapping):
            errors.append(f"{where}: must be an object")
            continue
        try:
            kind = NodeKind(str(raw.get("kind")))
        except ValueError:
            errors.append(f"{where}.kind: must be one of {', '.join(NodeKind)}")
            continue
        edges: list[Edge] = []
        for e_index, raw_edge in enumerate(raw.get("edges") or []):
            when = raw_edge.get("when") if isinstance(raw_edge, Mapping) else None
            condition = None
            if when is not None:
                if not isinstance(when, Mapping) or len(when) != 1:
                    errors.append(f"{where}.edges[{e_index}].when: must hold exactly one key")
                    continue
                ((key, value),) = when.items()
                condition = Condition(str(key), value)
            to = raw_edge.get("to") if isinstance(raw_edge, Mapping) else None
            if not isinstance(to, str):
                errors.append(f"{where}.edges[{e_index}].to: must name a node or '{END}'")
                continue
            edges.append(Edge(to=to, when=condition))
        nodes.append(
            Node(
                name=str(raw.get("name", "")),
                kind=kind,
                agent=raw.get("agent"),
                title=str(raw.get("title", "")),
                edges=tuple(edges),
            )
        )
    if errors:
        raise InvalidWorkflow(errors)
    definition = WorkflowDefinition(
        name=str(data.get("name", "")), start=str(data.get("start", "")), nodes=tuple(nodes)
    )
    problems = validate(definition)
    if problems:
        raise InvalidWorkflow(problems)
    return definition


def validate(definition: WorkflowDefinition) -> list[str]:
    """Every reason the definition cannot run; an empty list means it can."""
    errors: list[str] = []
    if not _NAME.match(definition.name):
        errors.append("name: lower-case letters, digits and underscores, starting with a letter")
    names = [n.name for n in definition.nodes]
    seen: set[str] = set()
    for name in names:
        if not _NAME.match(name) or name == END:
            errors.append(f"node {name!r}: invalid name")
        if name in seen:
            errors.append(f"node {name!r}: defined twice")
        seen.add(name)
    if definition.start not in seen:
        errors.append(f"start: {definition.start!r} is not a node")
    for node in definition.nodes:
        if node.kind is NodeKind.AGENT and not node.agent:
            errors.append(f"node {node.name!r}: an agent node must name its agent")
        if node.kind is NodeKind.HUMAN and node.agent:
            errors.append(f"node {node.name!r}: a human node has no agent")
        if not node.edges:
            errors.append(f"node {node.name!r}: has no way out (add an edge to '{END}')")
        for index, edge in enumerate(node.edges):
            if edge.to != END and edge.to not in seen:
                errors.append(f"node {node.name!r}: edge to unknown node {edge.to!r}")
            if edge.when is None and index != len(node.edges) - 1:
                errors.append(f"node {node.name!r}: an unconditional edge must come last")
    if errors:
        return errors
    reachable = _reachable_from(definition, definition.start)
    for name in names:
        if name not in reachable:
            errors.append(f"node {name!r}: cannot be reached from the start")
    for node in definition.nodes:
        if END not in _reachable_from(definition, node.name):
            errors.append(f"node {node.name!r}: no path from it reaches '{END}'")
    return errors


def _reachable_from(definition: WorkflowDefinition, origin: str) -> set[str]:
    found: set[str] = set()
    frontier = [origin]
    while frontier:
        current = frontier.pop()
        if current in found:
            continue
        found.add(current)
        if current != END:
            frontier.extend(edge.to for edge in definition.node(current).edges)
    return found
