"""The whole pipeline on the tiny profile with real Prefect, Ray and MLflow: flat stages, concurrent units placed on
Ray, typed results, then an all-cached re-run; stages run on their own find their inputs or name what is missing."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from fer_adapters.run_store import fetch
from fer_adapters.store import Store
from fer_core.errors import ConfigError, MissingUpstreamError
from fer_core.export.bundle import load_bundle, verify_bundle
from fer_core.logits.store import read_logits
from fer_spec.profile import load_pipeline_config

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def first_run(prefect_harness, ray_local):
    from flows.pipeline import pipeline_flow

    return pipeline_flow(profile="tiny")


def test_every_stage_hands_over_typed_content_hashes(first_run):
    out = first_run
    assert len(out.index.index_sha256) == 64
    assert [t.teacher for t in out.teachers] == ["resnet", "effnet"]
    assert out.index.pack is not None and out.index.pack.startswith(f"datasets/{out.index.index_sha256}/pixels-")
    for t in out.teachers:  # results name store keys, verified by their SHA-256 when fetched
        assert t.logits.startswith("runs/train_teacher/") and t.checkpoint.startswith(t.out_dir)
        table = read_logits(fetch(t.logits, t.logits_sha256))
        assert table.model_id.startswith("sha256:") and len(set(table.ids)) == len(table.ids)
    assert abs(sum(out.ensemble.weights) - 1.0) < 1e-6
    assert out.ensemble.teacher_names == ["resnet", "effnet"]
    c = out.calibrated[0]
    cal = json.loads(fetch(c.calibration_json, c.calibration_sha256).read_text())
    assert cal["classes"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert cal["temperature"] > 0


def test_units_run_on_ray_concurrently_and_say_where(first_run):
    client = MlflowClient()
    runs = [client.get_run(t.mlflow_run_id) for t in first_run.teachers]
    for r, t in zip(runs, first_run.teachers, strict=True):
        node = r.data.tags["ferflow.worker_node"]
        assert not node.startswith("driver") and node == t.worker_node
        assert json.loads(r.data.tags["ferflow.resources"]) == {"cpu": 1, "gpu": 0}
    (a, b) = [(r.info.start_time, r.info.end_time) for r in runs]
    assert a[0] < b[1] and b[0] < a[1], "the two teacher units (2 Ray slots, 1 CPU each) should overlap in time"


def test_pipeline_run_shows_stages_in_order_at_the_top_level(first_run):
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.sorting import FlowRunSort

    async def children():
        async with get_client() as c:
            top = await c.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=50)
            pipe = next(r for r in top if r.name == "tiny · pipeline")
            tr = await c.read_task_runs()
            parents = {t.id: t.flow_run_id for t in tr}
            subs = [r for r in top if r.parent_task_run_id and parents.get(r.parent_task_run_id) == pipe.id]
            return sorted(subs, key=lambda r: r.start_time)

    names = [r.name for r in anyio.run(children)]
    assert names[:6] == [f"tiny · {s}" for s in ("ingest", "teachers", "ensemble", "students", "calibrate", "package")]


def test_bundle_is_registered_and_usable(first_run):
    pkg = first_run.bundle
    verify_bundle(pkg.bundle)
    model = load_bundle(pkg.bundle)
    assert model.classes == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    version = MlflowClient().get_model_version("fer-student-tiny", pkg.version)
    assert version.tags["ferflow.source_run"] == pkg.candidate_run


def test_rerun_is_all_cache_hits_and_registers_nothing(first_run):
    from flows.pipeline import pipeline_flow

    client = MlflowClient()
    before = len(client.search_model_versions("name = 'fer-student-tiny'"))
    again = pipeline_flow(profile="tiny")
    assert again.students.students[0].mlflow_run_id == first_run.students.students[0].mlflow_run_id
    assert [t.mlflow_run_id for t in again.teachers] == [t.mlflow_run_id for t in first_run.teachers]
    assert again.ensemble.mlflow_run_id == first_run.ensemble.mlflow_run_id
    assert again.bundle.registered is False
    assert len(client.search_model_versions("name = 'fer-student-tiny'")) == before


def test_a_stage_on_its_own_finds_its_inputs_by_hash(first_run):
    from flows.calibrate import calibrate_flow

    cal = calibrate_flow(profile="tiny")
    assert [c.student.mlflow_run_id for c in cal] == [s.mlflow_run_id for s in first_run.students.students]


def test_a_stage_whose_upstream_never_ran_names_it_and_trains_nothing(first_run):
    from flows.ensemble import tune_ensemble_flow

    cfg = load_pipeline_config(CONFIG)
    other = cfg.model_copy(update={"teachers": cfg.teachers.model_copy(update={"seeds": [99]})})
    with pytest.raises(MissingUpstreamError, match="train_teachers.*resnet seed 99"):
        tune_ensemble_flow(config=other)


def test_a_changed_cpu_share_reuses_every_finished_unit(first_run):
    """Where a unit runs is not what it is: more CPUs (so more torch threads) for a finished stage trains nothing."""
    from flows.distill import distill_flow
    from flows.teachers import train_teachers_flow

    cfg = load_pipeline_config(CONFIG)
    more = cfg.teachers.resources.model_copy(update={"cpu": 2})
    bigger = cfg.model_copy(update={
        "teachers": cfg.teachers.model_copy(update={"resources": more}),
        "student": cfg.student.model_copy(update={"resources": more, "sweep": cfg.student.sweep.model_copy(
            update={"enabled": False}), "nested": None})})  # fmt: skip
    teachers = train_teachers_flow(config=bigger)
    assert [t.mlflow_run_id for t in teachers] == [t.mlflow_run_id for t in first_run.teachers]
    students = distill_flow(config=bigger, index=first_run.index, teachers=teachers, ensemble=first_run.ensemble)
    assert [s.mlflow_run_id for s in students.students] == [s.mlflow_run_id for s in first_run.students.students]


def test_realtime_runner_on_a_synthetic_video(first_run):
    from fer_core.realtime.stabilize import StabilizerConfig
    from tasks.realtime import realtime_demo

    live = realtime_demo.fn(first_run.bundle.bundle, 1.0, StabilizerConfig())
    assert Path(live["video"]).stat().st_size > 0
    assert Path(live["csv"]).read_text().count("\n") > 10
    assert 0.0 <= live["score"]["accuracy"] <= 1.0


def test_a_gpu_unit_on_a_gpu_less_cluster_is_refused_before_anything_trains(first_run):
    from flows.teachers import train_teachers_flow

    cfg = load_pipeline_config(CONFIG)
    gpu = cfg.teachers.resources.model_copy(update={"gpu": 1})
    wants_gpu = cfg.model_copy(update={"teachers": cfg.teachers.model_copy(update={"resources": gpu, "seeds": [7]})})
    store = Store.from_env()
    runs_before = store.list("runs/train_teacher")
    with pytest.raises(ConfigError, match=r"asks for 1 GPU but the Ray cluster has 0.*nothing was trained"):
        train_teachers_flow(config=wants_gpu)
    assert store.list("runs/train_teacher") == runs_before


def test_cpu_fallback_runs_the_unit_on_cpu_and_says_so(first_run):
    from flows.teachers import train_teachers_flow

    cfg = load_pipeline_config(CONFIG)
    gpu = cfg.teachers.resources.model_copy(update={"gpu": 1, "allow_cpu_fallback": True})
    # A seed of its own: a finished unit is reused whatever resources it is offered (its resources are not what it is)
    runs = train_teachers_flow(config=cfg.model_copy(update={"teachers": cfg.teachers.model_copy(
        update={"resources": gpu, "seeds": [5]})}))  # fmt: skip
    tags = MlflowClient().get_run(runs[0].mlflow_run_id).data.tags
    assert json.loads(tags["ferflow.resources"]) == {"cpu": 1, "gpu": 0, "cpu_fallback": True}
