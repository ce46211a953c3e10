"""Ray jobs are named after the flow run that connects (the dashboard's Name column reads metadata.job_name)."""

from types import SimpleNamespace

import prefect.runtime

import fer_adapters.ray_cluster as rc


def test_the_job_is_named_after_the_flow_run(monkeypatch):
    monkeypatch.setattr(prefect.runtime, "flow_run", SimpleNamespace(name="tiny · pipeline"))
    assert rc.job_name() == "ferflow · tiny · pipeline"


def test_outside_a_flow_the_job_is_plain_ferflow(monkeypatch):
    monkeypatch.setattr(prefect.runtime, "flow_run", SimpleNamespace(name=None))
    assert rc.job_name() == "ferflow"


def test_ray_init_gets_the_name_in_its_job_config(monkeypatch):
    seen = {}
    monkeypatch.setattr(rc.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(rc.ray, "init", lambda **kw: seen.update(kw))
    monkeypatch.setattr(prefect.runtime, "flow_run", SimpleNamespace(name="demo · teachers"))
    rc.ensure_ray(num_cpus=1)
    assert seen["job_config"].metadata == {"job_name": "ferflow · demo · teachers"}
    assert seen["_node_ip_address"] == "127.0.0.1"
