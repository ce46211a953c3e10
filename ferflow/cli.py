"""The ``ferflow`` command line: pipeline stages run their Prefect flows; local tools call fer_core directly."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="ferflow: FER training pipeline (Prefect + Ray + MLflow).", no_args_is_help=True)
data_app = typer.Typer(help="Datasets.", no_args_is_help=True)
stack_app = typer.Typer(help="The local Prefect/MLflow/Ray stack.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(stack_app, name="stack")

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="pipeline YAML (see configs/)", exists=True)]


@app.callback()
def _environment() -> None:
    """Embedded defaults, set before any Prefect/MLflow import reads them: state lives in ``$FERFLOW_HOME``."""
    home = Path(os.environ.get("FERFLOW_HOME", Path.home() / ".ferflow")).expanduser()
    os.environ.setdefault("PREFECT_HOME", str(home / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _echo_json(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="output folder (one sub-folder per class)")],
    per_class: Annotated[int, typer.Option(help="images per class")] = 60,
    size: Annotated[int, typer.Option(help="side in pixels")] = 48,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Render the synthetic embedded dataset (procedural faces; not real data)."""
    from fer_core.data.synth import render_dataset

    _echo_json(render_dataset(out, per_class=per_class, size=size, seed=seed))


@app.command()
def ingest(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="ingest or pipeline YAML", exists=True)] = None,
    source: Annotated[list[str] | None, typer.Option(help="KIND:PATH, repeatable (folder, fer2013_csv, ...)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder for the index")] = None,
) -> None:
    """Run the ``ingest`` flow."""
    from flows.config import ingest_config_from_cli
    from flows.ingest import ingest_flow

    cfg = ingest_config_from_cli(config, source or [], out)
    _echo_json(ingest_flow(cfg))


@app.command()
def validate(index: Annotated[Path, typer.Argument(help="index .parquet", exists=True)]) -> None:
    """Re-validate an index against its manifest and the files (warm runs only stat files)."""
    from fer_core.data.index import revalidate_index

    _echo_json(revalidate_index(index))


def _run_stage(stage: str, config: Path) -> None:
    from flows.config import load_pipeline_config
    from flows.pipeline import STAGE_FLOWS

    _echo_json(STAGE_FLOWS[stage](load_pipeline_config(config)))


@app.command("train-teachers")
def train_teachers(config: ConfigOpt) -> None:
    """Run the ``train_teachers`` flow (ingest is a cached dependency)."""
    _run_stage("train_teachers", config)


@app.command("tune-ensemble")
def tune_ensemble(config: ConfigOpt) -> None:
    """Run the ``tune_ensemble`` flow."""
    _run_stage("tune_ensemble", config)


@app.command()
def distill(config: ConfigOpt) -> None:
    """Run the ``distill`` flow (one student run)."""
    _run_stage("distill", config)


@app.command("distill-sweep")
def distill_sweep(config: ConfigOpt) -> None:
    """Run the ``distill_sweep`` flow (Ray Tune over strategy x loss x hyper-parameters x seeds)."""
    _run_stage("distill_sweep", config)


@app.command()
def nested(config: ConfigOpt) -> None:
    """Run the ``nested_learning`` flow."""
    _run_stage("nested_learning", config)


@app.command()
def calibrate(config: ConfigOpt) -> None:
    """Run the ``calibrate`` flow."""
    _run_stage("calibrate", config)


@app.command()
def replicate(config: ConfigOpt) -> None:
    """Run the ``replicate`` flow (N seeds of the best config vs the champion)."""
    _run_stage("replicate", config)


@app.command()
def package(config: ConfigOpt) -> None:
    """Run the ``package`` flow (best student -> ONNX bundle -> registry)."""
    _run_stage("package", config)


@app.command()
def pipeline(config: ConfigOpt) -> None:
    """Run the whole ``pipeline`` flow, each stage cached by its inputs' content hashes."""
    _run_stage("pipeline", config)


@app.command()
def report(
    config: ConfigOpt,
    out: Annotated[Path | None, typer.Option("--out", help="folder (default $FERFLOW_HOME/reports/<name>)")] = None,
) -> None:
    """Write the results report of a profile's finished pipeline (Markdown + PNGs; MLflow and Prefect artifacts)."""
    from flows.config import load_pipeline_config
    from flows.report import report_flow

    _echo_json(report_flow(load_pipeline_config(config), out_dir=None if out is None else str(out)))


@app.command()
def demo(
    config: Annotated[Path, typer.Option("--config", "-c", help="pipeline YAML")] = Path("configs/demo.yaml"),
) -> None:
    """The embedded demo: the whole pipeline on synthetic data, then the realtime runner on a synthetic video."""
    from flows.demo import demo_flow

    summary = demo_flow(str(config))
    typer.echo(summary)


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Option(help="student bundle folder", exists=True)],
    data: Annotated[Path, typer.Option(help="folder-per-class dataset", exists=True)],
    detect: Annotated[bool, typer.Option(help="run the runner's face detection and crop first")] = False,
) -> None:
    """Metrics of a bundle on a folder-per-class dataset (JSON to stdout)."""
    from fer_core.realtime.evaluate import evaluate_bundle

    _echo_json(evaluate_bundle(bundle, data, detect=detect))


@app.command()
def realtime(
    bundle: Annotated[Path, typer.Option(help="student bundle folder", exists=True)],
    source: Annotated[str, typer.Option(help="webcam index (0, 1, ...), video file or image folder")],
    out: Annotated[Path, typer.Option(help="folder for frames.csv, events.jsonl and the annotated video")] = Path(
        "realtime_out"
    ),
    detector: Annotated[str, typer.Option(help="haar | yunet | full")] = "haar",
    yunet_model: Annotated[Path | None, typer.Option(help="YuNet ONNX file (for --detector yunet)")] = None,
    display: Annotated[str, typer.Option(help="auto | window | video | none")] = "auto",
    keys_file: Annotated[Path | None, typer.Option(help="scripted key events '<frame> <key>' (headless)")] = None,
    threads: Annotated[int, typer.Option(help="ONNX Runtime threads")] = 2,
    max_frames: Annotated[int | None, typer.Option(help="stop after this many frames")] = None,
) -> None:
    """The realtime runner: detection, smoothing, ONNX inference, calibration and the stabiliser."""
    from fer_core.realtime.detect import DetectorConfig
    from fer_core.realtime.runner import RunnerConfig, run

    cfg = RunnerConfig(
        detector=DetectorConfig(kind=detector, model_path=yunet_model),
        display=display,
        keys_file=keys_file,
        threads=threads,
        max_frames=max_frames,
    )
    src: int | str = int(source) if source.isdigit() else source
    _echo_json(run(bundle, src, cfg, out).model_dump(mode="json"))


@app.command("tune-stabilizer")
def tune_stabilizer_cmd(
    bundle: Annotated[
        Path, typer.Option(help="student bundle folder (rewritten with the chosen defaults)", exists=True)
    ],
    log: Annotated[list[Path], typer.Option(help="runner log folder or frames.csv with operator labels; repeatable")],
    min_accuracy: Annotated[float, typer.Option(help="accuracy floor")] = 0.7,
) -> None:
    """Ray Tune sweep of the stabiliser over recorded, labelled logs; writes the best into the bundle."""
    from flows.stabilizer import tune_stabilizer_flow

    _echo_json(tune_stabilizer_flow(str(bundle), [str(x) for x in log], min_accuracy))


@app.command()
def score(
    log: Annotated[Path, typer.Argument(help="runner per-frame CSV (events log beside it)", exists=True)],
) -> None:
    """Protocol-Lite scoring of a runner log."""
    from fer_core.realtime.score import score as score_run

    metrics, table = score_run(log)
    typer.echo(table)
    _echo_json(metrics)


@stack_app.command("up")
def stack_up_cmd(
    artifacts: Annotated[str | None, typer.Option(help="MLflow artifact root: folder or s3://bucket/prefix")] = None,
) -> None:
    """Start and health-check the local Prefect server + worker, MLflow server and Ray head."""
    from ferflow.stack import stack_up
    from tasks.settings import Settings

    _echo_json(stack_up(Settings.from_env(), artifacts=artifacts).model_dump(mode="json"))


@stack_app.command("down")
def stack_down_cmd() -> None:
    """Stop exactly what ``stack up`` started."""
    from ferflow.stack import stack_down
    from tasks.settings import Settings

    _echo_json(stack_down(Settings.from_env()))


@stack_app.command("status")
def stack_status_cmd() -> None:
    """Report each component of the local stack."""
    from ferflow.stack import stack_status
    from tasks.settings import Settings

    _echo_json(stack_status(Settings.from_env()).model_dump(mode="json"))
