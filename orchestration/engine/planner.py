"""What runs next: the decision taken after every finished step."""

from collections.abc import Mapping
from typing import Any

from orchestration.engine.workflow import END, WorkflowDefinition


class NoRoute(Exception):
    """No edge of the node accepts the output it produced."""


def next_node(
    definition: WorkflowDefinition, node_name: str, output: Mapping[str, Any]
) -> str | None:
    """The node to run after ``node_name`` produced ``output``; None when the run is finished.

    Edges are tried in their written order and the first whose condition holds wins.
    """
    node = definition.node(node_name)
    for edge in node.edges:
        if edge.when is None or edge.when.holds(output):
            return None if edge.to == END else edge.to
    conditions = ", ".join(f"{e.when.key}={e.when.value!r}" for e in node.edges if e.when)
    raise NoRoute(f"node {node_name!r} produced an output matching none of: {conditions}")
