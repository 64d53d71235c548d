"""The engine core stays pure: no Django, Celery or Channels anywhere inside it."""

import ast
from pathlib import Path

import orchestration.engine

FORBIDDEN = ("django", "celery", "channels", "rest_framework", "kombu", "redis", "psycopg")


def test_the_engine_imports_no_framework():
    package = Path(orchestration.engine.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert len(list(package.rglob("*.py"))) >= 4
