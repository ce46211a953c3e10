"""Table-driven bad inputs across every command: exit code, the culprit named, no traceback, nothing written.

Each case builds real files in ``tmp_path`` and returns ``(argv, culprit)``; the command runs in-process (typer's
CliRunner). Cases that need a flow run share the session's Prefect test server and also check the captured
process output (Prefect logs to the real stderr).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ferflow.cli import app

from . import _builders as b

runner = CliRunner()
FRAMES = "timestamp_s,frame,w,h,smoothed_label\n"
Make = Callable[[Path, dict, dict], tuple[list[str], str]]


@dataclass(frozen=True)
class Case:
    id: str
    make: Make
    code: int
    flow: bool = False


def _ingest(src: str, t: Path) -> list[str]:
    return ["ingest", "--source", src, "--out", str(t / "out")]


def _folder_with(t: Path, make_bad) -> tuple[list[str], str]:
    """A good folder dataset plus one bad entry made by ``make_bad(root) -> culprit``."""
    root = b.dataset(t / "data")
    return _ingest(f"folder:{root}", t), make_bad(root)


def _validate_after(change, culprit: str | None = None) -> Make:
    """``ferflow validate`` on a real index after ``change(index_path, data_root)`` (which may return the culprit)."""

    def make(t, env, shared):
        idx = b.index(t)
        named = change(idx, t / "data")
        return ["validate", str(idx)], culprit or named

    return make


def _evaluate_on(change, culprit: str) -> Make:
    """``ferflow evaluate`` with a copy of the shared bundle and a good dataset, after ``change(bundle, data)``."""

    def make(t, env, shared):
        bundle, data = b.copy_bundle(shared["bundle"], t), b.dataset(t / "eval", per_class=1)
        change(bundle, data)
        return ["evaluate", "--bundle", str(bundle), "--data", str(data)], culprit

    return make


def _realtime(extra: list[str], culprit: str, tamper: bool = False) -> Make:
    def make(t, env, shared):
        bundle = b.copy_bundle(shared["bundle"], t)
        if tamper:
            (bundle / "model.onnx").write_bytes((bundle / "model.onnx").read_bytes() + b"\0")
        frames = b.dataset(t / "frames", classes=("x",), per_class=2) / "x"
        return ["realtime", "--bundle", str(bundle), "--source", str(frames), "--out", str(t / "rt"),
                "--display", "none", *extra], culprit  # fmt: skip

    return make


def _realtime_from(t: Path, shared: dict, source: str) -> tuple[list[str], str]:
    bundle = b.copy_bundle(shared["bundle"], t)
    return ["realtime", "--bundle", str(bundle), "--source", source, "--out", str(t / "rt"), "--display", "none"], \
        Path(source).name


def _stage(cmd: str, body: str | bytes | None = None, edit=None) -> Make:
    """A stage command on a profile given as raw text/bytes, or the tiny profile after ``edit(dict)``."""

    def make(t, env, shared):
        if body is None:
            path = b.profile(t, edit)
        else:
            path = t / "p.yaml"
            (path.write_bytes if isinstance(body, bytes) else path.write_text)(body)
        return [cmd, "--config", str(path)], "p.yaml"

    return make


def _score(culprit: str, frames: str | None = None, events: str | bytes | None = None, fifo: str | None = None) -> Make:
    """``ferflow score`` on a run folder holding the given ``frames.csv`` / ``events.jsonl`` texts (or a FIFO)."""

    def make(t, env, shared):
        run = t / "run"
        run.mkdir()
        for name, body in (("frames.csv", frames), ("events.jsonl", events)):
            if body is not None:
                (run / name).write_bytes(body if isinstance(body, bytes) else body.encode())
        if fifo:
            b.fifo(run / fifo)
        return ["score", str(run)], culprit

    return make


def _env(**values) -> Callable[[Path, dict], None]:
    return lambda t, env: env.update(values)


def _stack(cmd: str, culprit: str, **values) -> Make:
    def make(t, env, shared):
        env.update(values)
        return ["stack", cmd], culprit

    return make


def _tamper(idx, data):
    idx.write_bytes(idx.read_bytes() + b"\0")


def _not_parquet(idx, data):
    import hashlib

    idx.write_bytes(b"PAR1 junk")
    b.edit_manifest(idx, index_sha256=hashlib.sha256(b"PAR1 junk").hexdigest())


def _swap_for_symlink(idx, data):
    (t := data.parent / "outside.png").write_bytes((data / "happy" / "img0.png").read_bytes())
    (data / "happy" / "img0.png").unlink()
    os.symlink(t, data / "happy" / "img0.png")


def _port_in_use(t, env, shared):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    shared.setdefault("sockets", []).append(sock)
    # the stack may create its state folder in the home before the port check refuses: the home is not an output
    env.update(FERFLOW_HOME=str(t.parent / "home"), FERFLOW_PREFECT_PORT=str(sock.getsockname()[1]),
               FERFLOW_MLFLOW_PORT=str(b.free_port()), FERFLOW_RAY_PORT=str(b.free_port()))  # fmt: skip
    return ["stack", "up"], f"port {sock.getsockname()[1]}"


def _corrupt_stack_state(t, env, shared):
    home = t.parent / "home"
    (home / "stack").mkdir(parents=True)
    (home / "stack" / "state.json").write_text("{not json")
    env["FERFLOW_HOME"] = str(home)
    return ["stack", "status"], "state.json"


def _unreachable_prefect(t, env, shared):
    port = b.free_port()
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    return _ingest(f"folder:{b.dataset(t / 'data')}", t), f"127.0.0.1:{port}"


def _profile_case(cmd: str, edit, culprit: str) -> Make:
    """A stage command on the tiny profile after ``edit(dict)``, refused at profile validation naming ``culprit``."""
    return lambda t, e, s: ([cmd, "--config", str(b.profile(t, edit))], culprit)


def _ship_over_own_files(t, env, shared):
    mine = t / "mine"
    (mine / "drafts").mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    return ["ship", "--config", str(b.profile(t)), "--out", str(mine)], "mine is not a ferflow bundle"


def _stack_state(body: str, culprit: str) -> Make:
    def make(t, env, shared):
        (t.parent / "home" / "stack").mkdir(parents=True)
        (t.parent / "home" / "stack" / "state.json").write_text(body)
        env["FERFLOW_HOME"] = str(t.parent / "home")
        return ["stack", "status"], culprit

    return make


CASES: list[Case] = [
    # ship: never replaces a folder that is not one of its bundles (checked before anything runs)
    Case("ship-out-is-someones-folder", _ship_over_own_files, 2),
    # profiles: refused whole before any flow
    Case("profile-negative-teacher-seed", _profile_case("train-teachers", lambda c: c["teachers"].update(seeds=[-1]),
                                                        "teachers.seeds.0"), 2),  # fmt: skip
    Case("profile-negative-synth-seed", _profile_case("pipeline", lambda c: c["data"]["synth"].update(seed=-1),
                                                      "data.synth.seed"), 2),  # fmt: skip
    Case("profile-duplicate-seeds", _profile_case("distill", lambda c: c["student"].update(seeds=[0, 0]),
                                                  "[0] listed more than once"), 2),  # fmt: skip
    Case("profile-negative-train-seed", _profile_case("train-teachers", lambda c: c["student"]["train"].update(
        seed=-5), "student.train.seed: -5 is not a seed"), 2),
    Case("profile-negative-ingest-seed", _profile_case("report", lambda c: c["data"]["ingest"].update(seed=-2),
                                                       "data.ingest.seed"), 2),  # fmt: skip
    Case("pipeline-config-empty", _stage("pipeline", "# nothing yet\n"), 2),
    Case("pipeline-config-empty-says-so", lambda t, e, s: (["pipeline", "--config", str(_text(t, ""))], "is empty"), 2),
    Case("ingest-config-empty", lambda t, e, s: (["ingest", "--config", str(_text(t, "\n"))], "is empty"), 2),

    # the command line itself
    Case("unknown-command", lambda t, e, s: (["bogus"], "bogus"), 2),
    Case("unknown-option", lambda t, e, s: (["validate", "--nope", "x"], "--nope"), 2),
    # validate: an index that no longer matches
    Case("validate-missing-index", lambda t, e, s: (["validate", str(t / "nope.parquet")], "nope.parquet"), 2),
    Case("validate-index-is-folder", lambda t, e, s: (["validate", str(t)], str(t)), 2),
    Case("validate-no-manifest", _validate_after(lambda i, d: b.manifest(i).unlink(), "has no manifest"), 3),
    Case("validate-index-tampered", _validate_after(_tamper, "does not match its manifest"), 3),
    Case("validate-manifest-not-json", _validate_after(lambda i, d: b.manifest(i).write_text("{oops"),
                                                       "not valid JSON"), 3),  # fmt: skip
    Case("validate-manifest-a-list", _validate_after(lambda i, d: b.manifest(i).write_text("[1, 2]"),
                                                     "lacks the index fields"), 3),  # fmt: skip
    Case("validate-counts-tampered", _validate_after(lambda i, d: b.edit_manifest(i, counts={}), "counts differ"), 3),
    Case("validate-not-parquet", _validate_after(_not_parquet, "not a ferflow index"), 2),
    Case("validate-content-changed", _validate_after(lambda i, d: b.png(d / "happy" / "img1.png", b.face(999)),
                                                     "happy/img1.png  content changed"), 3),  # fmt: skip
    Case("validate-file-deleted", _validate_after(lambda i, d: (d / "sad" / "img2.png").unlink(),
                                                  "sad/img2.png  file not found"), 3),  # fmt: skip
    Case("validate-symlink-escape", _validate_after(_swap_for_symlink, "symlink escape"), 3),
    Case("validate-replaced-by-fifo", _validate_after(lambda i, d: b.fifo(d / "angry" / "img0.png"),
                                                      "angry/img0.png  a FIFO"), 3),  # fmt: skip
    Case("validate-zero-byte", _validate_after(lambda i, d: (d / "angry" / "img1.png").write_bytes(b""),
                                               "angry/img1.png  zero-byte file"), 3),  # fmt: skip
    Case("validate-rows-tampered", _validate_after(lambda i, d: b.edit_manifest(i, rows=999), "says 999"), 3),
    Case("validate-workers-zero", lambda t, e, s: (["validate", "--workers", "0", str(t)], "--workers"), 2),
    # ingest: refused before any flow starts
    Case("ingest-nothing-given", lambda t, e, s: (["ingest", "--out", str(t / "out")], "--source KIND:PATH"), 2),
    Case("ingest-source-no-colon", lambda t, e, s: (["ingest", "--source", "folder", "--out", str(t / "o")],
                                                   "'folder'"), 2),  # fmt: skip
    Case("ingest-unknown-kind", lambda t, e, s: (_ingest(f"bogus:{t}", t), "'bogus'"), 2),
    Case("ingest-source-missing", lambda t, e, s: (_ingest(f"folder:{t / 'nope'}", t), "nope does not exist"), 2),
    Case("ingest-folder-is-file", lambda t, e, s: (_ingest(f"folder:{b.png(t / 'a.png', b.face(1))}", t),
                                                  "a.png is not a folder"), 2),  # fmt: skip
    Case("ingest-csv-is-folder", lambda t, e, s: (_ingest(f"csv:{t}", t), "a folder, not a regular file"), 2),
    Case("ingest-csv-is-fifo", lambda t, e, s: (_ingest(f"csv:{b.fifo(t / 'l.csv')}", t), "FIFO"), 2),
    Case("ingest-out-is-file", lambda t, e, s: (["ingest", "--source", f"folder:{b.dataset(t / 'd')}", "--out",
                                                 str(b.png(t / 'o.png', b.face(2)))], "o.png is a file"), 2),
    Case("ingest-config-and-source", lambda t, e, s: (["ingest", "--config", str(b.profile(t)), "--source",
                                                       f"folder:{t}"], "not both"), 2),  # fmt: skip
    Case("ingest-config-missing", lambda t, e, s: (["ingest", "--config", str(t / "c.yaml")], "c.yaml"), 2),
    Case("ingest-config-bad-yaml", lambda t, e, s: (["ingest", "--config", str(_text(t, "a: [1, 2\n"))],
                                                    "not valid YAML at line"), 2),  # fmt: skip
    Case("ingest-config-a-list", lambda t, e, s: (["ingest", "--config", str(_text(t, "- 1\n"))],
                                                  "must hold a mapping"), 2),  # fmt: skip
    Case("ingest-config-not-utf8", lambda t, e, s: (["ingest", "--config", str(_text(t, b"a: \xff\xfe\n"))],
                                                    "not UTF-8"), 2),  # fmt: skip
    Case("ingest-config-unknown-key", lambda t, e, s: (
        ["ingest", "--config", str(_text(t, f"sources: [{{kind: folder, path: {t}}}]\nout_dir: {t}/o\nbogus: 1\n"))],
        "bogus"), 2),
    Case("ingest-config-bad-gate", lambda t, e, s: (
        ["ingest", "--config", str(_text(t, f"sources: [{{kind: folder, path: {t}}}]\nout_dir: {t}/o\n"
                                            "max_bad_fraction: 2\n"))], "max_bad_fraction"), 2),
    Case("ingest-config-negative-reject-side", lambda t, e, s: (
        ["ingest", "--config", str(_text(t, f"sources: [{{kind: folder, path: {t}}}]\nout_dir: {t}/o\n"
                                            "reject_side: -1\n"))], "reject_side"), 2),
    Case("ingest-prefect-unreachable", _unreachable_prefect, 5),
    # evaluate
    Case("evaluate-bundle-missing", lambda t, e, s: (["evaluate", "--bundle", str(t / "nb"), "--data", str(t)],
                                                     "nb"), 2),  # fmt: skip
    Case("evaluate-bundle-is-file", lambda t, e, s: (["evaluate", "--bundle", str(b.png(t / "x.png", b.face(1))),
                                                      "--data", str(t)], "x.png"), 2),  # fmt: skip
    Case("evaluate-bundle-no-manifest", _evaluate_on(lambda bu, d: (bu / "manifest.json").unlink(), "manifest"), 3),
    Case("evaluate-bundle-tampered", _evaluate_on(
        lambda bu, d: (bu / "model.onnx").write_bytes((bu / "model.onnx").read_bytes() + b"\0"), "model.onnx"), 3),
    Case("evaluate-calibration-classes-swapped", _evaluate_on(lambda bu, d: b.swap_classes(bu),
                                                              "outputs the classes in the order"), 3),  # fmt: skip
    Case("evaluate-data-missing", _evaluate_on(lambda bu, d: shutil.rmtree(d), "eval"), 2),
    Case("evaluate-unknown-class", _evaluate_on(lambda bu, d: b.png(d / "contempt" / "a.png", b.face(5)),
                                                "contempt"), 2),  # fmt: skip
    Case("evaluate-text-file", _evaluate_on(lambda bu, d: (d / "happy" / "notes.txt").write_text("x"), "notes.txt"),
         2),
    Case("evaluate-fifo-image", _evaluate_on(lambda bu, d: b.fifo(d / "sad" / "pipe.png"), "pipe.png"), 2),
    Case("evaluate-empty-dataset", _evaluate_on(lambda bu, d: [shutil.rmtree(p) for p in d.iterdir()],
                                                "holds no image"), 2),  # fmt: skip
    # realtime
    Case("realtime-bundle-tampered", _realtime([], "model.onnx", tamper=True), 3),
    Case("realtime-source-missing", lambda t, e, s: _realtime_from(t, s, str(t / "nope.mp4")), 2),
    Case("realtime-camera-index-huge", lambda t, e, s: (_realtime_from(t, s, "99999999999")[0],
                                                        "camera index 99999999999 is out of range"), 2),  # fmt: skip
    Case("realtime-threads-zero", _realtime(["--threads", "0"], "--threads"), 2),
    Case("realtime-display-bogus", _realtime(["--display", "bogus"], "display"), 2),
    Case("realtime-max-frames-zero", _realtime(["--max-frames", "0"], "--max-frames"), 2),
    Case("realtime-keys-file-missing", lambda t, e, s: _realtime(["--keys-file", str(t / "k.txt")], "k.txt")(t, e, s),
         2),
    Case("realtime-yunet-model-missing", lambda t, e, s: _realtime(
        ["--detector", "yunet", "--yunet-model", str(t / "y.onnx")], "y.onnx")(t, e, s), 2),
    # score
    Case("score-log-missing", lambda t, e, s: (["score", str(t / "none.csv")], "none.csv"), 2),
    Case("score-frames-fifo", _score("FIFO", fifo="frames.csv"), 2),
    Case("score-events-missing", _score("events.jsonl", frames=FRAMES + "0,0,1,1,happy\n"), 2),
    Case("score-events-bad-json", _score("events.jsonl:1", frames=FRAMES + "0,0,1,1,happy\n", events="{oops\n"), 2),
    Case("score-frames-header-only", _score("has no rows", frames=FRAMES, events=""), 2),
    Case("score-frames-other-columns", _score("frames.csv", frames="a,b\n1,2\n", events=""), 2),
    Case("score-frames-not-a-number", _score("row 2", frames=FRAMES + "noon,0,1,1,happy\n", events=""), 2),
    Case("score-events-not-utf8", _score("events.jsonl", frames=FRAMES + "0,0,1,1,happy\n", events=b"\xff\xfe{}"), 2),
    Case("score-events-not-an-object", _score("events.jsonl:1", frames=FRAMES + "0,0,1,1,happy\n", events="[1]\n"), 2),
    Case("score-label-time-not-a-number", _score("events.jsonl:1", frames=FRAMES + "0,0,1,1,happy\n",
                                                 events='{"type": "true_label", "t": "x", "label": "happy"}\n'), 2),
    # data synth
    Case("synth-per-class-zero", lambda t, e, s: (["data", "synth", "--out", str(t / "s"), "--per-class", "0"],
                                                  "--per-class"), 2),  # fmt: skip
    Case("synth-size-too-small", lambda t, e, s: (["data", "synth", "--out", str(t / "s"), "--size", "8"], "--size"),
         2),
    Case("synth-out-is-file", lambda t, e, s: (["data", "synth", "--out", str(b.png(t / "f.png", b.face(1)))],
                                               "f.png"), 2),  # fmt: skip
    Case("synth-seed-negative", lambda t, e, s: (["data", "synth", "--out", str(t / "s"), "--seed", "-1"], "--seed"),
         2),
    # stage commands with bad profiles (refused before any flow)
    Case("teachers-config-missing", lambda t, e, s: (["train-teachers", "--config", str(t / "p.yaml")], "p.yaml"), 2),
    Case("pipeline-config-bad-yaml", _stage("pipeline", "name: [unclosed\n"), 2),
    Case("teachers-config-a-list", _stage("train-teachers", "- a\n- b\n"), 2),
    Case("distill-config-not-utf8", _stage("distill", b"name: \xff\n"), 2),
    Case("pipeline-config-unknown-key", _stage("pipeline", edit=lambda c: c.update(bogus=1)), 2),
    Case("teachers-config-no-teachers", _stage("train-teachers", edit=lambda c: c["teachers"].update(teachers=[])),
         2),
    Case("calibrate-config-is-folder", lambda t, e, s: (["calibrate", "--config", str(t)], str(t)), 2),
    Case("report-config-bad-yaml", _stage("report", ": : :\n"), 2),
    Case("tune-stabilizer-log-missing", lambda t, e, s: (["tune-stabilizer", "--bundle", str(t), "--log",
                                                          str(t / "nolog")], "nolog"), 2),  # fmt: skip
    # the local stack
    Case("stack-port-not-a-number", _stack("status", "FERFLOW_PREFECT_PORT", FERFLOW_PREFECT_PORT="abc"), 2),
    Case("stack-port-out-of-range", _stack("up", "FERFLOW_MLFLOW_PORT", FERFLOW_MLFLOW_PORT="70000"), 2),
    Case("stack-port-zero", _stack("down", "FERFLOW_RAY_PORT", FERFLOW_RAY_PORT="0"), 2),
    Case("stack-ports-clash", _stack("up", "share port", FERFLOW_PREFECT_PORT="4555", FERFLOW_MLFLOW_PORT="4555"), 2),
    Case("stack-bad-auth-mode", _stack("up", "FERFLOW_RAY_AUTH_MODE", FERFLOW_RAY_AUTH_MODE="open"), 2),
    Case("stack-bad-cpus", _stack("up", "FERFLOW_RAY_NUM_CPUS", FERFLOW_RAY_NUM_CPUS="-2"), 2),
    Case("stack-corrupt-state", _corrupt_stack_state, 2),
    Case("stack-state-missing-field", _stack_state('{"components": {"prefect": {"pid": 12}}}',
                                                   "components.prefect.start_ticks is missing"), 2),  # fmt: skip
    Case("stack-state-unknown-component", _stack_state('{"components": {"bogus": {}}}', "'bogus'"), 2),
    Case("stack-port-in-use", _port_in_use, 5),
]


def _text(t: Path, body: str | bytes) -> Path:
    path = t / "c.yaml"
    (path.write_bytes if isinstance(body, bytes) else path.write_text)(body)
    return path


FLOW_CASES: list[Case] = [
    Case("ingest-header-only-csv", lambda t, e, s: (_ingest(f"csv:{b.labels_csv(t, [])}", t), "no data rows"), 2,
         flow=True),
    Case("ingest-csv-missing-column", lambda t, e, s: (
        _ingest(f"csv:{b.labels_csv(t, ['good0.png'], header='path')}", t), "missing column(s) ['label']"), 2,
        flow=True),
    Case("ingest-csv-duplicate-row", lambda t, e, s: (
        _ingest(f"csv:{b.labels_csv(t, ['good0.png,sad', 'good1.png,happy', 'good0.png,sad'])}", t),
        "labels.csv:4: duplicate of row 2"), 2, flow=True),
    Case("ingest-csv-not-utf8", lambda t, e, s: (_ingest(f"csv:{_bad_bytes_csv(t)}", t), "are not UTF-8"), 2,
         flow=True),
    Case("ingest-fifo-image", lambda t, e, s: _folder_with(t, lambda r: b.fifo(r / "sad" / "pipe.png") and "FIFO"), 2,
         flow=True),
    Case("ingest-1x1-image", lambda t, e, s: _folder_with(
        t, lambda r: b.png(r / "happy" / "dot.png", b.face(7)[:1, :1]) and "image is 1x1"), 2, flow=True),
    Case("ingest-newline-in-name", lambda t, e, s: _folder_with(
        t, lambda r: b.png(r / "happy" / "a\nb.png", b.face(8)) and "happy/a\\nb.png"), 2, flow=True),
    Case("ingest-non-utf8-name", lambda t, e, s: _folder_with(t, lambda r: _non_utf8_file(r) and "\\xff"), 2,
         flow=True),
    Case("ingest-empty-class-folders", lambda t, e, s: (
        _ingest(f"folder:{_empty_classes(t)}", t), "empty class folder"), 2, flow=True),
    Case("ingest-fer2013-bad-pixels", lambda t, e, s: (_ingest(f"fer2013_csv:{_fer_csv(t)}", t),
                                                       "fer.csv:3: pixels are not 2304"), 2, flow=True),  # fmt: skip
    Case("report-before-any-run", lambda t, e, s: _report_before_runs(t), 4, flow=True),
    Case("tune-stabilizer-unlabelled-log", lambda t, e, s: _unlabelled_log(t, s), 2, flow=True),
    Case("teachers-before-ingest", lambda t, e, s: (["train-teachers", "--config", str(b.profile(t))],
                                                    "ferflow ingest"), 4, flow=True),  # fmt: skip
]


def _ingested(t: Path) -> Path:
    """The tiny profile with its own index, made by ``ferflow ingest -c`` (which renders its synthetic faces). Its own
    synthetic seed, so its index hash is no other test's (the session shares one MLflow store)."""

    def own_faces(cfg: dict) -> None:
        cfg["data"]["synth"]["seed"] = 9173

    profile = b.profile(t, own_faces)
    result = runner.invoke(app, ["ingest", "--config", str(profile)])
    _console_to_fd2()  # that call configured Prefect's console on its own (now closed) stream
    assert result.exit_code == 0, result.output
    return profile


def _report_before_runs(t: Path) -> tuple[list[str], str]:
    """An index exists but no stage ran on it: missing upstream (as ship says), and no report folder is left."""
    profile = _ingested(t)
    return ["report", "--config", str(profile), "--out", str(t / "reports" / "r")], "no finished run"


def _unlabelled_log(t: Path, shared: dict) -> tuple[list[str], str]:
    from fer_core.taxonomy import FER_CLASSES

    bundle = b.copy_bundle(shared["bundle"], t)
    rows = [f"{i / 15},{i},0,0,0,40,40,,," + ",".join(["0.142857"] * 7) for i in range(20)]
    header = "timestamp_s,frame,track_id,x,y,w,h,true_label,smoothed_label," + ",".join(f"p_{c}" for c in FER_CLASSES)
    (t / "frames.csv").write_text("\n".join([header, *rows]) + "\n")
    return ["tune-stabilizer", "--bundle", str(bundle), "--log", str(t / "frames.csv")], "no labelled frame"


def _bad_bytes_csv(t: Path) -> Path:
    path = b.labels_csv(t, ["good0.png,sad"])
    path.write_bytes(path.read_bytes() + b"good1.png,h\xe9ppy\n")
    return path


def _non_utf8_file(root: Path) -> Path:
    name = os.fsdecode(b"caf\xff.png")
    return b.png(root / "sad" / name, b.face(9))


def _empty_classes(t: Path) -> Path:
    for cls in ("happy", "sad"):
        (t / "empty" / cls).mkdir(parents=True)
    return t / "empty"


def _fer_csv(t: Path) -> Path:
    px = " ".join(str(v) for v in b.face(3, 48).ravel())
    path = t / "src" / "fer.csv"
    path.parent.mkdir()
    path.write_text(f"emotion,pixels,Usage\n3,{px},Training\n4,1 2 3,Training\n")
    return path


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    state = {"bundle": b.bundle(tmp_path_factory.mktemp("bundle"))}
    yield state
    for sock in state.get("sockets", []):
        sock.close()


def _check(case: Case, tmp_path: Path, shared: dict, capfd=None) -> None:
    t = tmp_path / "t"
    t.mkdir()
    env: dict = {}
    argv, culprit = case.make(t, env, shared)
    before = b.snapshot(t)
    result = runner.invoke(app, argv, env=env)
    text = result.output + ("".join(capfd.readouterr()) if capfd else "")
    assert result.exit_code == case.code, f"{case.id}: exit {result.exit_code}\n{text}\n{result.exception!r}"
    assert culprit in text, f"{case.id}: {culprit!r} not named in\n{text}"
    assert "Traceback" not in text and "╭─" not in text, text
    after = b.snapshot(t)
    assert after == before, f"{case.id} wrote {sorted(set(after) ^ set(before))}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused(case, tmp_path, shared):
    _check(case, tmp_path, shared)


def _console_to_fd2() -> None:
    """Prefect's console handler keeps the stream it was configured with; a CliRunner closes its own after each
    call, so point the handler at the process's stderr (captured by ``capfd``)."""
    import logging
    import sys

    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *[logging.getLogger(n) for n in logging.root.manager.loggerDict]]
    for handler in {h for lg in loggers for h in getattr(lg, "handlers", [])}:
        if isinstance(handler, PrefectConsoleHandler):
            handler.stream = sys.__stderr__  # setStream would flush the closed one
            handler.console.file = sys.__stderr__


@pytest.fixture
def prefect_console_on_fd2(prefect_harness):
    _console_to_fd2()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", FLOW_CASES, ids=[c.id for c in FLOW_CASES])
def test_bad_input_inside_a_flow_is_refused(case, tmp_path, shared, prefect_console_on_fd2, capfd):
    _check(case, tmp_path, shared, capfd)


def test_the_suite_is_large_and_distinct():
    ids = [c.id for c in CASES + FLOW_CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)
    assert {c.code for c in CASES + FLOW_CASES} == {2, 3, 4, 5}


def test_json_output_of_a_failed_validate(tmp_path):
    idx = b.index(tmp_path)
    (tmp_path / "data" / "sad" / "img0.png").unlink()
    result = runner.invoke(app, ["validate", "--json", str(idx)])
    assert result.exit_code == 3
    out = json.loads(result.stdout)
    assert out["ok"] is False and out["problems"] == [
        {"path": str(tmp_path / "data" / "sad" / "img0.png"), "reason": "file not found"}]
