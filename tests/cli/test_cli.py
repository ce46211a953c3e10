"""The command line: typer commands run in-process (CliRunner) on real files."""

import json

from typer.testing import CliRunner

from ferflow.cli import app

runner = CliRunner()


def test_data_synth_is_deterministic(tmp_path):
    a = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "a"), "--per-class", "3", "--seed", "5"])
    b = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "b"), "--per-class", "3", "--seed", "5"])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert json.loads(a.output) == {c: 3 for c in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")}
    for f in (tmp_path / "a").rglob("*.png"):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()


def test_ingest_needs_a_source_or_a_config(tmp_path):
    out = runner.invoke(app, ["ingest", "--out", str(tmp_path)])
    assert out.exit_code == 2
    assert "--source KIND:PATH" in out.stderr and "Traceback" not in out.output


def test_bad_source_spec_is_refused(tmp_path):
    out = runner.invoke(app, ["ingest", "--source", "folder-without-colon", "--out", str(tmp_path)])
    assert out.exit_code == 2 and "KIND:PATH" in out.stderr and "'folder-without-colon'" in out.stderr


def test_a_finished_command_leaves_its_objects_out_of_the_shutdown_collection(tmp_path):
    import gc

    gc.unfreeze()
    try:
        out = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "s"), "--per-class", "1", "--seed", "0"])
        assert out.exit_code == 0, out.output
        assert gc.get_freeze_count() > 0  # gc.freeze ran when the command's context closed
    finally:
        gc.unfreeze()


def test_the_stage_commands_come_from_one_table_over_the_stage_flows():
    from ferflow.cli import STAGE_COMMANDS
    from flows.pipeline import STAGE_FLOWS

    names = [c.name for c in app.registered_commands]
    for command, stage, doc in STAGE_COMMANDS:
        assert stage in STAGE_FLOWS and names.count(command) == 1, command
        out = runner.invoke(app, [command, "--help"], terminal_width=200)
        assert out.exit_code == 0 and doc.split(" (")[0].rstrip(".") in out.output and "--config" in out.output
    assert len(STAGE_COMMANDS) == 9
