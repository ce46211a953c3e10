"""A real `mlflow server` (started by the stack) keeps artifacts in S3 (moto on loopback); the client has no S3."""

from __future__ import annotations

import socket

import pytest

from fer_spec.settings import Settings
from ferflow.stack import stack_down, stack_up

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_proxies_artifacts_into_the_bucket(s3_bucket, moto_client, monkeypatch, tmp_path):
    from mlflow import MlflowClient

    home = tmp_path / "home"
    settings = Settings(home=home, tracking_uri="", ray_address=None, ray_object_store_mb=256,
                        prefect_port=_free_port(), mlflow_port=_free_port(), ray_port=_free_port(),
                        ray_dashboard_port=_free_port(), artifacts=f"s3://{s3_bucket}/mlartifacts")  # fmt: skip
    status = stack_up(settings, components=("mlflow",), timeout_s=120)
    try:
        assert status.components["mlflow"].healthy
        # Only the server needs S3: drop every S3 setting from the client side before logging.
        for name in ("AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name, raising=False)
        client = MlflowClient(tracking_uri=status.env["MLFLOW_TRACKING_URI"])
        experiment_id = client.create_experiment("s3-artifacts")
        run = client.create_run(experiment_id, tags={"ferflow.stage": "test"})
        payload = tmp_path / "calibration.json"
        payload.write_text('{"temperature": 1.5}')
        client.log_artifact(run.info.run_id, str(payload), artifact_path="bundle")
        client.log_metric(run.info.run_id, "macro_f1", 0.5)
        client.set_terminated(run.info.run_id)

        keys = [o["Key"] for o in moto_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
        hits = [k for k in keys if k.endswith("/bundle/calibration.json")]
        assert len(hits) == 1, keys
        assert hits[0].startswith("mlartifacts/") and run.info.run_id in hits[0]
        assert moto_client.get_object(Bucket=s3_bucket, Key=hits[0])["Body"].read() == b'{"temperature": 1.5}'
        listed = [f.path for f in client.list_artifacts(run.info.run_id, "bundle")]
        assert listed == ["bundle/calibration.json"]
    finally:
        assert stack_down(settings) == ["mlflow"]
