"""A command finds a running local stack and uses all of it: real loopback servers stand in for its components."""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ferflow._startup import local_stack_env, prepare_prefect


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200 if self.path.endswith("/health") else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args):
        pass


@pytest.fixture()
def servers():
    http = [ThreadingHTTPServer(("127.0.0.1", 0), _Health) for _ in range(2)]
    for s in http:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    ray = socket.socket()
    ray.bind(("127.0.0.1", 0))
    ray.listen()
    yield {"prefect": http[0], "mlflow": http[1], "ray": ray}
    for s in http:
        s.shutdown()
        s.server_close()
    ray.close()


def _state(home, servers):
    p = servers["prefect"].server_address[1]
    m = servers["mlflow"].server_address[1]
    r = servers["ray"].getsockname()[1]
    components = {
        "prefect": {"url": f"http://127.0.0.1:{p}/api", "client_env": {"PREFECT_API_URL": f"http://127.0.0.1:{p}/api"}},
        "mlflow": {"url": f"http://127.0.0.1:{m}", "client_env": {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{m}"}},
        "ray": {"url": f"127.0.0.1:{r}",
                "client_env": {"FERFLOW_RAY_ADDRESS": f"127.0.0.1:{r}", "RAY_AUTH_MODE": "token"}},
    }  # fmt: skip
    (home / "stack").mkdir(parents=True, exist_ok=True)
    (home / "stack" / "state.json").write_text(json.dumps({"components": components}))
    return p, m, r


def test_every_healthy_component_is_adopted_and_a_down_one_is_not(tmp_path, servers):
    p, m, r = _state(tmp_path, servers)
    assert local_stack_env(tmp_path) == {
        "PREFECT_API_URL": f"http://127.0.0.1:{p}/api",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{m}",
        "FERFLOW_RAY_ADDRESS": f"127.0.0.1:{r}",
        "RAY_AUTH_MODE": "token",
    }
    servers["mlflow"].shutdown()
    servers["mlflow"].server_close()
    servers["ray"].close()
    assert local_stack_env(tmp_path) == {"PREFECT_API_URL": f"http://127.0.0.1:{p}/api"}
    (tmp_path / "stack" / "state.json").write_text("{not json")
    assert local_stack_env(tmp_path) == {}


def test_a_command_takes_the_stack_but_an_explicit_setting_wins(tmp_path, servers, monkeypatch):
    p, m, r = _state(tmp_path, servers)
    for var in ("PREFECT_API_URL", "FERFLOW_RAY_ADDRESS", "RAY_AUTH_MODE"):
        monkeypatch.setenv(var, "")  # recorded, so what prepare_prefect sets is undone after the test
        monkeypatch.delenv(var)
    monkeypatch.setenv("FERFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")  # the user's choice
    said = []
    assert prepare_prefect(say=said.append) == "stack"
    assert os.environ["PREFECT_API_URL"] == f"http://127.0.0.1:{p}/api"
    assert os.environ["FERFLOW_RAY_ADDRESS"] == f"127.0.0.1:{r}"
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///elsewhere.db"
    assert said == [f"using the local stack's Prefect server at http://127.0.0.1:{p}/api (and its Ray)"]
