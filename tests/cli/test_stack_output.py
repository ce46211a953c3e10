"""`stack status` reads as text (JSON on --json) and `stack up` tells a person where the UIs are."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ferflow.cli import app
from ferflow.stack import ComponentStatus, StackStatus

runner = CliRunner()


def _status() -> StackStatus:
    comps = {"prefect": ComponentStatus(name="prefect", pid=10, alive=True, healthy=True,
                                        url="http://127.0.0.1:4200/api", startup_s=6.5),
             "ray": ComponentStatus(name="ray", pid=11, alive=False, healthy=False, url="127.0.0.1:6379",
                                    detail="not running")}  # fmt: skip
    return StackStatus(home="/h", components=comps, env={"PREFECT_API_URL": "http://127.0.0.1:4200/api"},
                       uis={"Prefect UI": "http://127.0.0.1:4200"})  # fmt: skip


def test_the_table_names_each_component_its_state_and_the_uis():
    lines = _status().table().splitlines()
    assert lines[0] == "stack in /h: NOT healthy"
    assert lines[1].split() == ["prefect", "healthy", "http://127.0.0.1:4200/api", "(pid", "10,", "up", "in", "6.5",
                                "s)"]  # fmt: skip
    assert lines[2].split()[:2] == ["ray", "down"] and lines[2].endswith("not running")
    assert lines[-1] == "Prefect UI  http://127.0.0.1:4200"


def test_status_without_a_stack_says_so_and_json_stays_available(tmp_path):
    env = {"FERFLOW_HOME": str(tmp_path / "home")}
    out = runner.invoke(app, ["stack", "status"], env=env)
    assert out.exit_code == 0 and out.stdout.startswith("no stack recorded in ") and "ferflow stack up" in out.stdout
    out = runner.invoke(app, ["stack", "status", "--json"], env=env)
    assert out.exit_code == 0 and json.loads(out.stdout)["components"] == {}
