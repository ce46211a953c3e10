"""Stage flow run names: ``<profile> · <stage>``, except a deployment run's name a person chose (kept)."""

from types import SimpleNamespace

import pytest

import flows._common as common


@pytest.mark.parametrize(
    ("given", "deployment", "params", "expected"),
    [
        ("crimson-lemur", "d1", {"profile": "tiny"}, "tiny · teachers"),  # the server's generated name: replaced
        ("nightly check after the fix", "d1", {"profile": "tiny"}, "nightly check after the fix"),  # chosen: kept
        ("mu4-nerendra-g", "d1", {"profile": "tiny"}, "mu4-nerendra-g"),  # the UI form's name, submitted: kept
        ("crimson-lemur", None, {"profile": "tiny"}, "tiny · teachers"),  # a subflow or a direct call
        ("nightly check", None, {"profile": "tiny"}, "tiny · teachers"),
        ("", "d1", {"config": {"name": "custom-run"}}, "custom-run · teachers"),
        (None, None, {}, "demo · teachers"),
    ],
)
def test_chosen_names_of_deployment_runs_are_kept(monkeypatch, given, deployment, params, expected):
    monkeypatch.setattr(common, "flow_run", SimpleNamespace(name=given, parameters=params))
    monkeypatch.setattr(common, "deployment", SimpleNamespace(id=deployment))
    assert common.run_name("teachers")() == expected


def test_the_runtime_attributes_read_exist_outside_a_run():
    """The names read above are real ``prefect.runtime`` attributes (a missing one crashed a deployment run)."""
    import prefect.runtime.deployment
    import prefect.runtime.flow_run

    assert prefect.runtime.deployment.id is None and prefect.runtime.flow_run.parameters == {}
    assert common.run_name("teachers")() == "demo · teachers"

