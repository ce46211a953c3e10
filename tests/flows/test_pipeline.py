"""The whole pipeline on the tiny profile with real Prefect, Ray and MLflow: every stage, then an all-cached re-run."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from fer_core.export.bundle import load_bundle, verify_bundle
from fer_core.logits.store import read_logits

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml")


@pytest.fixture(scope="module")
def first_run(prefect_harness, ray_local):
    from flows.pipeline import pipeline_flow

    return pipeline_flow(config_path=CONFIG)


def test_every_stage_hands_over_content_hashes(first_run):
    out = first_run
    assert len(out["data"]["index_sha256"]) == 64
    assert [t["teacher"] for t in out["teachers"]] == ["resnet", "effnet"]
    for t in out["teachers"]:
        table = read_logits(t["logits"])
        assert table.model_id.startswith("sha256:") and len(set(table.ids)) == len(table.ids)
    assert abs(sum(out["ensemble"]["weights"]) - 1.0) < 1e-6
    cal = json.loads(Path(out["calibration"][0]["calibration_json"]).read_text())
    assert cal["classes"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert cal["temperature"] > 0


def test_bundle_is_registered_as_champion_and_usable(first_run):
    pkg = first_run["package"]
    verify_bundle(pkg["bundle"])
    model = load_bundle(pkg["bundle"])
    assert model.classes == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    version = MlflowClient().get_model_version_by_alias("fer-student", "champion")
    assert version.tags["ferflow.source_run"] == pkg["candidate_run"]
    assert version.tags["bundle_uri"].startswith("runs:/")


def test_rerun_is_all_cache_hits_and_registers_nothing(first_run):
    from flows.pipeline import pipeline_flow

    client = MlflowClient()
    before = len(client.search_model_versions("name = 'fer-student'"))
    again = pipeline_flow(config_path=CONFIG)
    assert again["students"][0]["mlflow_run_id"] == first_run["students"][0]["mlflow_run_id"]  # cached, not retrained
    assert [t["mlflow_run_id"] for t in again["teachers"]] == [t["mlflow_run_id"] for t in first_run["teachers"]]
    assert again["ensemble"]["mlflow_run_id"] == first_run["ensemble"]["mlflow_run_id"]
    assert again["package"]["registered"] is False
    assert len(client.search_model_versions("name = 'fer-student'")) == before


def test_realtime_runner_on_a_synthetic_video(first_run):
    from fer_core.realtime.stabilize import StabilizerConfig
    from tasks.realtime import realtime_demo

    live = realtime_demo.fn(first_run["package"]["bundle"], 1.0, StabilizerConfig())
    assert Path(live["video"]).stat().st_size > 0
    assert Path(live["csv"]).read_text().count("\n") > 10
    assert 0.0 <= live["score"]["accuracy"] <= 1.0
