"""The local stack starts cleanly: Ray's worker ports never cover ferflow's own, a failed start leaves nothing."""

from __future__ import annotations

import socket

import pytest

from ferflow import stack
from tests.e2e.conftest import stack_settings


def test_worker_port_range_avoids_every_ferflow_port(tmp_path):
    s = stack_settings(tmp_path).model_copy(update={"ray_port": 10500, "prefect_port": 11800, "mlflow_port": 5000})
    lo, hi = stack.ray_worker_ports(s)
    assert (lo, hi) == (12002, 13001)  # 10002-11001 holds 10500, 11002-12001 holds 11800
    for port in (s.ray_port, s.prefect_port, s.mlflow_port, s.ray_dashboard_port):
        assert not lo <= port <= hi
    cmd = stack._command("ray", s, str(tmp_path))
    assert cmd[cmd.index("--min-worker-port") + 1] == "12002" and cmd[cmd.index("--max-worker-port") + 1] == "13001"


def test_a_failed_later_component_stops_what_this_call_started(tmp_path):
    s = stack_settings(tmp_path)
    with socket.socket() as blocker:  # MLflow's port is taken: its launch fails after Prefect's has started
        blocker.bind(("127.0.0.1", s.mlflow_port))
        blocker.listen()
        with pytest.raises(stack.StackError, match="mlflow"):
            stack.stack_up(s, components=["prefect", "mlflow"], timeout_s=60)
    status = stack.stack_status(s)
    assert status.components == {}, status.components  # Prefect's server was stopped and its record dropped
