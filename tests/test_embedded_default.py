"""`make run`'s promise: with no environment at all (SQLite, tasks in-process, in-memory
channel layer) the demo loads, processes its tickets, and the console serves an operator."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory):
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")
    }
    env["SWITCHBOARD_VAR_DIR"] = str(tmp_path_factory.mktemp("embedded"))
    return env


def manage(env, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_demo_runs_on_the_embedded_default(embedded_env):
    manage(embedded_env, "migrate", "--noinput", "-v0")
    output = manage(embedded_env, "setup_demo", "--tickets", "16")
    assert Path(embedded_env["SWITCHBOARD_VAR_DIR"], "switchboard.sqlite3").exists()
    # A new desk earns autonomy from evidence: the shipped history's would-send
    # recommendations are listed per category, and a category short of the bound stays in
    # shadow mode, where a person decides every ticket.
    assert re.search(r"autonomy how_to\s+(shadow|earned)\s+\d+ of \d+ would-send", output), output
    assert re.search(r"runs waiting_human\s+\d+", output), output
    assert "operator     operator  password: demo-operator" in output
    # Running it again adds nothing twice.
    again = manage(embedded_env, "setup_demo", "--tickets", "16")
    assert "demo tickets: 0 ingested now" in again

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "console.asgi:application",
        ],
        cwd=ROOT,
        env=embedded_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
            for _ in range(100):
                try:
                    login_page = client.get("/login/")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert login_page.status_code == 200
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)[1]
            signed_in = client.post(
                "/login/",
                data={
                    "username": "operator",
                    "password": "demo-operator",
                    "csrfmiddlewaretoken": token,
                },
                headers={"Referer": f"{base}/login/"},
            )
            assert signed_in.status_code == 302
            queue = client.get("/approvals/")
            assert queue.status_code == 200
            assert re.search(r"\d+ open tasks?, most urgent first", queue.text)
            assert 'href="/approvals/' in queue.text
    finally:
        server.terminate()
        server.wait(timeout=10)
