"""The ``ferflow`` command line: pipeline stages run their Prefect flows; local tools call fer_core directly.

Imports are lazy: ``--help``, ``validate``, ``evaluate``, ``realtime`` and ``score`` load neither Prefect, Ray nor
MLflow. Every refusal (a ``FerError``) prints one short message and exits with its class's code (``ferflow._errors``).
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ferflow._errors import EXIT_INTEGRITY, RefusingGroup, exit_table_text
from ferflow._startup import embedded_defaults, stderr

EPILOG = ("\b\nExit codes:\n" + exit_table_text()
          + "\n\nA refusal prints no traceback; `ferflow --debug <command>` does.")  # fmt: skip
app = typer.Typer(help="ferflow: FER training pipeline (Prefect + Ray + MLflow).", no_args_is_help=True,
                  cls=RefusingGroup, epilog=EPILOG, pretty_exceptions_show_locals=False,
                  rich_markup_mode=None)  # fmt: skip
data_app = typer.Typer(help="Datasets.", no_args_is_help=True, cls=RefusingGroup)
stack_app = typer.Typer(help="The local Prefect/MLflow/Ray stack.", no_args_is_help=True, cls=RefusingGroup)
app.add_typer(data_app, name="data")
app.add_typer(stack_app, name="stack")

#: The model ferflow ships (trained by `make reference`, published by `ferflow ship`): the runner's default bundle.
SHIPPED_BUNDLE = Path(__file__).resolve().parents[1] / "models" / "fer2013"
BundleOpt = Annotated[Path | None, typer.Option(help="student bundle folder (default: the shipped models/fer2013)",
                                                file_okay=False)]  # fmt: skip

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="pipeline YAML (see configs/)", exists=True,
                                         dir_okay=False)]  # fmt: skip


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks of refusals too")] = False,
) -> None:
    """Embedded defaults, set before any Prefect/Ray import reads them: state lives in ``$FERFLOW_HOME``."""
    ctx.meta["ferflow.debug"] = debug
    embedded_defaults()
    # Everything the command built lives until the process ends: moving it out of the collector's view skips the
    # full collection Python runs at shutdown (measured 1.7 s after `ferflow ingest`, benchmarks/bench_startup.py).
    ctx.call_on_close(gc.freeze)


def _json_default(o: object) -> object:
    """Stage results are pydantic models: print their JSON form; anything else as text."""
    dump = getattr(o, "model_dump", None)
    return dump(mode="json") if callable(dump) else str(o)


def _echo_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


def _flows_ready() -> None:
    """Choose the Prefect server (env, running local stack, or the embedded one started early) and quiet refusals."""
    from ferflow._startup import prepare_prefect, quiet_logging

    prepare_prefect(say=stderr)
    quiet_logging()


def _run_flow(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from ferflow._startup import wait_for_prefect

    wait_for_prefect()
    return fn(*args, **kwargs)


def _read_profile(path: Path) -> dict[str, Any]:
    """Parse a YAML profile into a mapping, refusing unreadable files and bad YAML before any heavy import."""
    import yaml

    from fer_core.errors import ConfigError, printable

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {printable(path)} is not UTF-8 text (byte {e.start}); give a YAML file") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config {printable(path)} is not valid YAML{where}: "
                          f"{getattr(e, 'problem', None) or e}; fix the syntax") from e  # fmt: skip
    if data is None:  # empty, or comments only
        raise ConfigError(f"config {printable(path)} is empty; write a profile (see configs/demo.yaml)")
    if not isinstance(data, dict):
        raise ConfigError(f"config {printable(path)} must hold a mapping at the top level, got "
                          f"{type(data).__name__}; see configs/demo.yaml")  # fmt: skip
    return data


def _load_profile(path: Path) -> Any:
    """The profile, validated whole (as every flow does) before any server starts or any work runs."""
    _read_profile(path)
    from fer_spec.profile import load_pipeline_config, validate_profile

    cfg = load_pipeline_config(path)
    validate_profile(cfg)
    return cfg


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="output folder (one sub-folder per class)", file_okay=False)],
    per_class: Annotated[int, typer.Option(help="images per class", min=1)] = 60,
    size: Annotated[int, typer.Option(help="side in pixels", min=16, max=1024)] = 48,
    seed: Annotated[int, typer.Option(help="random seed", min=0)] = 0,
) -> None:
    """Render the synthetic embedded dataset (procedural faces; not real data)."""
    from fer_core.data.synth import render_dataset

    _echo_json(render_dataset(out, per_class=per_class, size=size, seed=seed))


def _ingest_config(config: Path | None, sources: list[str], out: Path | None) -> Any:
    """``--config FILE`` (an ingest config or a pipeline profile) or ``--source KIND:PATH ... --out DIR``."""
    from fer_core.config import validate_config
    from fer_core.data.ingest import IngestConfig
    from fer_core.errors import ConfigError

    if config is not None:
        if sources or out is not None:
            raise ConfigError("give either --config FILE or --source/--out, not both")
        data = _read_profile(config)
        if isinstance(data.get("data"), dict):  # a pipeline profile: only its ingest section (no torch import)
            return validate_config(data["data"].get("ingest"), IngestConfig, where=f"{config}: data.ingest")
        return validate_config(data, IngestConfig, where=str(config))
    if not sources or out is None:
        raise ConfigError("give --config FILE, or --source KIND:PATH (repeatable) and --out DIR")
    specs = []
    for s in sources:
        kind, sep, path = s.partition(":")
        if not sep or not path or not kind:
            raise ConfigError(f"--source must be KIND:PATH (e.g. folder:data/fer2013), got {s!r}")
        specs.append({"kind": kind, "path": path})
    return validate_config({"sources": specs, "out_dir": str(out)}, IngestConfig, where="--source/--out")


def _preflight_ingest(cfg: Any) -> None:
    """Checks that need no flow: every source exists with the right type, and the output is a folder."""
    from fer_core.data.adapters import check_source
    from fer_core.errors import ConfigError, printable

    for spec in cfg.sources:
        check_source(spec)
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {printable(out)} is a file; give a folder for the index")


def _ingest_profile(config: Path) -> Any:
    from fer_spec.profile import SYNTH_SOURCE, effective_ingest

    cfg = _load_profile(config)
    ing = effective_ingest(cfg)
    rendered = [s.path for s, given in zip(ing.sources, cfg.data.ingest.sources, strict=True)
                if str(given.path) == SYNTH_SOURCE]  # fmt: skip
    _preflight_ingest(ing.model_copy(update={"sources": [s for s in ing.sources if s.path not in rendered]}))
    _flows_ready()
    from flows.ingest_stage import ingest_pipeline_flow

    return _run_flow(ingest_pipeline_flow, config=cfg)


@app.command()
def ingest(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="ingest or pipeline YAML", exists=True,
                                                dir_okay=False)] = None,  # fmt: skip
    source: Annotated[list[str] | None, typer.Option(help="KIND:PATH, repeatable (folder, fer2013_csv, ...)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder for the index")] = None,
) -> None:
    """Run the ``ingest`` flow; the index reference goes to stdout, every drop and flag to stderr.

    A pipeline profile runs that profile's ingest stage: its synthetic faces are rendered first (``@synth``) and the
    index lands where the profile's later stages look for it (``$FERFLOW_HOME`` for a relative ``out_dir``).
    """
    if config is not None and not source and out is None and isinstance(_read_profile(config).get("data"), dict):
        ref = _ingest_profile(config)
    else:
        cfg = _ingest_config(config, source or [], out)
        _preflight_ingest(cfg)
        _flows_ready()
        from flows.ingest import ingest_flow

        ref = _run_flow(ingest_flow, cfg)
    _echo_json(ref)
    from ferflow._summary import ingest_summary

    stderr(ingest_summary(ref.index_path, ref.report_json))


@app.command()
def validate(
    index: Annotated[Path, typer.Argument(help="index .parquet", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="print the problems as JSON")] = False,
    workers: Annotated[int | None, typer.Option(help="validation processes (default: all cores)", min=1)] = None,
) -> None:
    """Re-validate an index against its manifest and the files; exit 3 on any mismatch (warm runs only stat files)."""
    from fer_core.data.index import revalidate_index
    from ferflow._summary import problem_table

    problems = revalidate_index(index, workers=workers)
    if as_json:
        _echo_json({"index": str(index), "ok": not problems,
                    "problems": [{"path": p, "reason": r} for p, r in problems]})  # fmt: skip
    else:
        typer.echo(problem_table(index, problems))
    if problems:
        raise typer.Exit(EXIT_INTEGRITY)


def _run_stage(stage: str, config: Path) -> None:
    cfg = _load_profile(config)
    _flows_ready()
    from flows.pipeline import STAGE_FLOWS

    _echo_json(_run_flow(STAGE_FLOWS[stage], config=cfg))


#: The stage commands: (command, ``flows.pipeline.STAGE_FLOWS`` key, help). Each runs that flow with ``--config``.
STAGE_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("train-teachers", "train_teachers", "Run the ``train_teachers`` flow (needs the ingest stage's index)."),
    ("tune-ensemble", "tune_ensemble", "Run the ``tune_ensemble`` flow."),
    ("distill", "distill", "Run the ``distill`` flow (one student run)."),
    ("distill-sweep", "distill_sweep",
     "Run the ``distill_sweep`` flow (Ray Tune over strategy x loss x hyper-parameters x seeds)."),
    ("nested", "nested_learning", "Run the ``nested_learning`` flow."),
    ("calibrate", "calibrate", "Run the ``calibrate`` flow."),
    ("replicate", "replicate", "Run the ``replicate`` flow (N seeds of the best config vs the champion)."),
    ("package", "package", "Run the ``package`` flow (best student -> ONNX bundle -> registry)."),
    ("pipeline", "pipeline", "Run the whole ``pipeline`` flow, each stage cached by its inputs' content hashes."),
)  # fmt: skip


def _stage_command(stage: str, doc: str) -> Any:
    def command(config: ConfigOpt) -> None:
        _run_stage(stage, config)

    command.__doc__ = doc
    command.__name__ = stage
    return command


for _name, _stage, _doc in STAGE_COMMANDS:
    app.command(_name)(_stage_command(_stage, _doc))


@app.command()
def report(
    config: ConfigOpt,
    out: Annotated[Path | None, typer.Option("--out", help="folder (default $FERFLOW_HOME/reports/<name>)")] = None,
) -> None:
    """Write the results report of a profile's finished pipeline (Markdown + PNGs; MLflow and Prefect artifacts)."""
    cfg = _load_profile(config)
    _flows_ready()
    from flows.report import report_flow

    _echo_json(_run_flow(report_flow, config=cfg, out_dir=None if out is None else str(out)))


@app.command()
def ship(
    config: ConfigOpt,
    out: Annotated[Path, typer.Option("--out", help="the shipped bundle folder", file_okay=False)] = SHIPPED_BUNDLE,
    report_dir: Annotated[Path | None, typer.Option(help="the profile's report folder (seed statistics)",
                                                    file_okay=False)] = None,  # fmt: skip
) -> None:
    """Publish the profile's packaged champion (held-out figures through ONNX, full model card) to --out."""
    from fer_core.export.bundle import check_replaceable

    check_replaceable(out, "--out")  # before any work: a folder of someone's files is never replaced
    cfg = _load_profile(config)
    _flows_ready()
    from flows.ship import ship_flow

    _echo_json(_run_flow(ship_flow, str(out), config=cfg, report_dir=None if report_dir is None else str(report_dir)))


@app.command()
def demo(
    config: Annotated[Path, typer.Option("--config", "-c", help="pipeline YAML", exists=True,
                                         dir_okay=False)] = Path("configs/demo.yaml"),  # fmt: skip
) -> None:
    """The embedded demo: the whole pipeline on synthetic data, then the realtime runner on a synthetic video."""
    cfg = _load_profile(config)
    _flows_ready()
    from flows.demo import demo_flow

    typer.echo(_run_flow(demo_flow, config=cfg))


def _bundle_or_shipped(bundle: Path | None) -> Path:
    """The given bundle folder, or the shipped model; a missing folder is refused naming it."""
    from fer_core.errors import ConfigError, printable

    path = SHIPPED_BUNDLE if bundle is None else bundle
    if not path.is_dir():
        what = "the shipped model" if bundle is None else "--bundle"
        raise ConfigError(f"{what} {printable(path)} is not a folder; give --bundle DIR (a bundle from `ferflow "
                          "package`, or models/fer2013 of a full checkout)")  # fmt: skip
    return path


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="folder-per-class dataset", exists=True, file_okay=False)],
    detect: Annotated[bool, typer.Option(help="run the runner's face detection and crop first")] = False,
    bundle: BundleOpt = None,
) -> None:
    """Metrics of a bundle (default: the shipped model) on a folder-per-class dataset (JSON to stdout)."""
    from fer_core.realtime.evaluate import evaluate_bundle

    _echo_json(evaluate_bundle(_bundle_or_shipped(bundle), data, detect=detect))


def _model(cls: type, where: str, **values: Any) -> Any:
    from fer_core.config import validate_config

    return validate_config(values, cls, where=where)


@app.command()
def realtime(
    source: Annotated[str, typer.Option(help="webcam index (0, 1, ...), video file or image folder")],
    out: Annotated[Path, typer.Option(help="folder for frames.csv, events.jsonl and the annotated video",
                                      file_okay=False)] = Path("realtime_out"),  # fmt: skip
    detector: Annotated[str, typer.Option(help="haar | yunet | full")] = "haar",
    yunet_model: Annotated[Path | None, typer.Option(help="YuNet ONNX file (for --detector yunet)", exists=True,
                                                     dir_okay=False)] = None,  # fmt: skip
    display: Annotated[str, typer.Option(help="auto | window | video | none")] = "auto",
    keys_file: Annotated[Path | None, typer.Option(help="scripted key events '<frame> <key>' (headless)",
                                                   exists=True, dir_okay=False)] = None,  # fmt: skip
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads", min=1)] = 2,
    max_frames: Annotated[int | None, typer.Option(help="stop after this many frames", min=1)] = None,
    bundle: BundleOpt = None,
) -> None:
    """The realtime runner (default model: the shipped one): detection, ONNX inference, calibration, stabiliser."""
    from fer_core.errors import DataIntegrityError, printable
    from fer_core.realtime.detect import DetectorConfig
    from fer_core.realtime.runner import RunnerConfig, run

    det = _model(DetectorConfig, "--detector/--yunet-model", kind=detector, model_path=yunet_model)
    cfg = _model(RunnerConfig, "the realtime options", detector=det, display=display, keys_file=keys_file,
                 threads=threads, max_frames=max_frames)  # fmt: skip
    src: int | str = int(source) if source.isdigit() else source
    if isinstance(src, str) and not os.path.exists(src):
        raise DataIntegrityError(f"--source {printable(src)} does not exist; give a webcam index, a video file or "
                                 "an image folder", [(printable(src), "not found")])  # fmt: skip
    _echo_json(run(_bundle_or_shipped(bundle), src, cfg, out).model_dump(mode="json"))


@app.command("tune-stabilizer")
def tune_stabilizer_cmd(
    bundle: Annotated[Path, typer.Option(help="student bundle folder (rewritten with the chosen defaults)",
                                         exists=True, file_okay=False)],  # fmt: skip
    log: Annotated[list[Path], typer.Option(help="runner log folder or frames.csv with operator labels; repeatable",
                                            exists=True)],  # fmt: skip
    min_accuracy: Annotated[float, typer.Option(help="accuracy floor", min=0.0, max=1.0)] = 0.7,
) -> None:
    """Ray Tune sweep of the stabiliser over recorded, labelled logs; writes the best into the bundle."""
    _flows_ready()
    from flows.stabilizer import tune_stabilizer_flow

    _echo_json(_run_flow(tune_stabilizer_flow, str(bundle), [str(x) for x in log], min_accuracy))


@app.command()
def score(
    log: Annotated[Path, typer.Argument(help="runner log folder, or its per-frame CSV (events log beside it)",
                                        exists=True)],  # fmt: skip
) -> None:
    """Protocol-Lite scoring of a runner log."""
    from fer_core.data.validate import require_regular_file
    from fer_core.realtime.score import score as score_run

    frames = log / "frames.csv" if log.is_dir() else log
    for path in (frames, frames.parent / "events.jsonl"):
        if path.exists() or path == log:  # a FIFO would block the reader forever; absent files: score names them
            require_regular_file(path, what="runner log")
    metrics, table = score_run(log)
    typer.echo(table)
    _echo_json(metrics)


def _stack_settings() -> Any:
    """The stack's settings, refusing malformed or clashing ports and counts by their variable's name."""
    from fer_core.errors import ConfigError

    ports = {}
    for var in ("FERFLOW_PREFECT_PORT", "FERFLOW_MLFLOW_PORT", "FERFLOW_RAY_PORT", "FERFLOW_RAY_DASHBOARD_PORT",
                "FERFLOW_RAY_NUM_CPUS", "FERFLOW_RAY_OBJECT_STORE_MB"):  # fmt: skip
        raw = os.environ.get(var)
        if raw is None:
            continue
        top = 65535 if var.endswith("_PORT") else 1 << 20
        if not raw.strip().isdigit() or not 1 <= int(raw) <= top:
            raise ConfigError(f"{var}={raw!r} is not an integer in 1..{top}; fix or unset it")
        if var.endswith("_PORT"):
            ports[var] = int(raw)
    _check_stack_state()
    mode = os.environ.get("FERFLOW_RAY_AUTH_MODE", "token")
    if mode not in ("token", "disabled"):
        raise ConfigError(f"FERFLOW_RAY_AUTH_MODE={mode!r}: choose 'token' or 'disabled'")
    from fer_spec.settings import Settings

    settings = Settings.from_env()
    used = {"FERFLOW_PREFECT_PORT": settings.prefect_port, "FERFLOW_MLFLOW_PORT": settings.mlflow_port,
            "FERFLOW_RAY_PORT": settings.ray_port, "FERFLOW_RAY_DASHBOARD_PORT": settings.ray_dashboard_port}
    clash = [v for v in used if list(used.values()).count(used[v]) > 1]
    if clash:
        raise ConfigError(f"{clash} share port {used[clash[0]]}; give each stack component its own port")
    return settings


def _check_stack_state() -> None:
    """A damaged ``state.json`` is refused naming its field before any component is touched."""
    from ferflow._startup import ferflow_home
    from ferflow.stack import read_state

    read_state(ferflow_home() / "stack" / "state.json")


@stack_app.command("up")
def stack_up_cmd(
    artifacts: Annotated[str | None, typer.Option(help="MLflow artifact root: folder or s3://bucket/prefix")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole status as JSON")] = False,
) -> None:
    """Start and health-check the local Prefect server + worker, MLflow server and Ray head.

    Prints the ``export`` lines a shell needs to use the stack (``eval "$(ferflow stack up)"``); progress goes to
    stderr.
    """
    settings = _stack_settings()
    from ferflow.stack import stack_up

    status = stack_up(settings, artifacts=artifacts, on_event=stderr)
    if as_json:
        _echo_json(status.model_dump(mode="json"))
    else:
        stderr(status.ui_lines())  # for the person; stdout stays the `export` lines a shell evaluates
        typer.echo(status.export_lines())


@stack_app.command("down")
def stack_down_cmd() -> None:
    """Stop exactly what ``stack up`` started."""
    settings = _stack_settings()
    from ferflow.stack import stack_down

    _echo_json(stack_down(settings))


@stack_app.command("status")
def stack_status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="print the whole status as JSON")] = False,
) -> None:
    """Report each component of the local stack (health, address, pid) and the URLs of its web UIs."""
    settings = _stack_settings()
    from ferflow.stack import stack_status

    status = stack_status(settings)
    if as_json:
        _echo_json(status.model_dump(mode="json"))
    else:
        typer.echo(status.table())


if __name__ == "__main__":
    app()
