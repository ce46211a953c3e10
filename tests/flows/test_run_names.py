"""Stage flow run names: ``<profile> · <stage>`` for runs Prefect named itself, a person's typed name kept."""

from types import SimpleNamespace

import pytest

import flows._common as common


@pytest.mark.parametrize(
    ("given", "params", "expected"),
    [
        ("crimson-lemur", {"profile": "tiny"}, "tiny · teachers"),  # Prefect's generated name: replaced
        ("theta3-mundahla", {"profile": "tiny"}, "tiny · teachers"),  # what the UI's run form prefills: replaced
        ("nightly check after the fix", {"profile": "tiny"}, "nightly check after the fix"),  # typed: kept
        ("", {"config": {"name": "custom-run"}}, "custom-run · teachers"),
        (None, {}, "demo · teachers"),
    ],
)
def test_typed_names_are_kept_generated_ones_replaced(monkeypatch, given, params, expected):
    monkeypatch.setattr(common, "flow_run", SimpleNamespace(name=given, parameters=params))
    assert common.run_name("teachers")() == expected
