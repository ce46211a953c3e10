"""Packaging: pick the best student from MLflow, export ONNX, verify parity, bundle, register, move aliases."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from prefect import task
from prefect.artifacts import create_markdown_artifact

from fer_core.errors import GateFailedError
from fer_core.export.bundle import verify_bundle, write_bundle
from fer_core.export.model_card import render_model_card
from fer_core.export.onnx import check_parity, export_onnx
from fer_core.export.quantize import keep_int8_if, quantize_int8
from fer_core.io import sha256_file
from fer_core.models.checkpoint import load_checkpoint
from fer_core.preprocess import PreprocessSpec
from tasks._data import dataset, load_index
from tasks._mlflow import EXPERIMENT, configure_tracking, ferflow_run

SOURCE_TAG = "ferflow.source_run"


def select_candidate(min_macro_f1: float, max_ece: float, dataset_sha256: str) -> Any:
    """The finished student run with the best last-epoch validation macro-F1 that passes the gates.

    Raises:
        GateFailedError: no run passes (the message lists the best runs and why they fail).
    """
    runs = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        filter_string=(
            "tags.`ferflow.stage` = 'distill' and attributes.status = 'FINISHED' "
            f"and tags.`ferflow.dataset_sha256` = '{dataset_sha256}'"
        ),
        order_by=["metrics.`final/macro_f1` DESC"],
        output_format="pandas",
    )
    if runs.empty:
        raise GateFailedError(f"no finished student run for dataset {dataset_sha256[:12]} in MLflow")
    f1, ece = runs.get("metrics.final/macro_f1"), runs.get("metrics.after/ece_15")
    ok = runs[(f1 >= min_macro_f1) & (ece <= max_ece)] if f1 is not None and ece is not None else runs.iloc[0:0]
    if ok.empty:
        shown = runs.head(5)[["run_id", "tags.mlflow.runName"]].assign(
            macro_f1=f1.head(5), ece_after=ece.head(5) if ece is not None else np.nan
        )
        raise GateFailedError(
            f"no student passes the gates (macro-F1 >= {min_macro_f1}, calibrated ECE <= {max_ece}); best runs:\n"
            f"{shown.to_string(index=False)}"
        )
    return ok.iloc[0]


def _existing_version(client: MlflowClient, model_name: str, run_id: str) -> Any:
    try:
        versions = client.search_model_versions(f"name = '{model_name}' and tags.`{SOURCE_TAG}` = '{run_id}'")
    except mlflow.exceptions.MlflowException:
        return None
    return versions[0] if versions else None


def _champion_f1(client: MlflowClient, model_name: str) -> float | None:
    try:
        v = client.get_model_version_by_alias(model_name, "champion")
    except mlflow.exceptions.MlflowException:
        return None
    return float(v.tags.get("macro_f1", "nan"))


def build_bundle(run: Any, spec: PreprocessSpec, index_path: str, index_sha256: str, cfg: Any, out: Path) -> dict:
    """Export the candidate's last checkpoint, verify parity on real samples, optionally INT8, write the bundle."""
    client = MlflowClient()
    run_id = run["run_id"]
    tmp = Path(tempfile.mkdtemp(prefix="ferflow-package-"))
    ckpt = next(Path(client.download_artifacts(run_id, "checkpoint", str(tmp))).glob("*.pt"))
    calib = Path(client.download_artifacts(run_id, "calibration/calibration.json", str(tmp)))
    model, meta = load_checkpoint(ckpt)
    test = dataset(index_path, index_sha256, "test", spec)
    n = min(cfg.parity_samples, len(test))
    x, y = test.get_batch(np.arange(n))
    onnx_path = export_onnx(model, spec, tmp / "model.onnx")
    parity = check_parity(model, onnx_path, x.numpy())
    quant = {"int8": "off"}
    if cfg.quantize_int8:
        from fer_core.evaluate.metrics import classification_metrics
        from fer_core.export.session import make_session

        q = quantize_int8(onnx_path, x.numpy(), tmp / "model.int8.onnx")
        f1 = {
            p.name: classification_metrics(
                y.numpy(), make_session(p).run(None, {spec.input_name: x.numpy()})[0].argmax(1)
            )["macro_f1"]
            for p in (onnx_path, q)
        }
        keep = keep_int8_if(f1[onnx_path.name], f1[q.name])
        quant = {"int8": "kept" if keep else "rejected", **{f"macro_f1_{k}": v for k, v in f1.items()}}
        onnx_path = q if keep else onnx_path
    rows = load_index(index_path, index_sha256)
    metrics = {k.removeprefix("metrics."): float(v) for k, v in run.items() if k.startswith("metrics.") and v == v}
    card = render_model_card(
        cfg.model_name,
        {"index_sha256": index_sha256, "counts": rows.groupby(["split", "label"]).size().to_dict()},
        metrics,
        json.loads(calib.read_text()),
        spec,
        lineage={
            "mlflow_run": run_id,
            "checkpoint_sha256": sha256_file(ckpt),
            "model": meta.model_name,
            "parity_max_abs_diff": parity.max_abs_diff,
            **quant,
        },
    )
    bundle = write_bundle(out, onnx_path, calib, spec, card, overwrite=True)
    verify_bundle(bundle)
    return {"bundle": str(bundle), "parity_max_abs_diff": float(parity.max_abs_diff), "parity_n": n, **quant}


@task(name="package_student")
def package_student(
    spec: PreprocessSpec, index_path: str, index_sha256: str, cfg: Any, out_root: str
) -> dict[str, Any]:
    """Select, export, bundle, log, register and alias; re-running on the same candidate registers nothing."""
    configure_tracking()
    client = MlflowClient()
    run = select_candidate(cfg.min_macro_f1, cfg.max_ece, index_sha256)
    run_id = run["run_id"]
    existing = _existing_version(client, cfg.model_name, run_id)
    bundle_dir = Path(out_root) / "bundles" / run_id
    if existing is not None and (bundle_dir / "manifest.json").exists():
        verify_bundle(bundle_dir)
        return {
            "bundle": str(bundle_dir),
            "version": existing.version,
            "registered": False,
            "aliases": list(existing.aliases),
            "candidate_run": run_id,
        }
    info = build_bundle(run, spec, index_path, index_sha256, cfg, bundle_dir)
    f1 = float(run["metrics.final/macro_f1"])
    ece = float(run["metrics.after/ece_15"])
    with ferflow_run("package", dataset_sha256=index_sha256, parent=run_id, run_name="package") as (pkg_id, sink):
        sink.log_metrics({"macro_f1": f1, "ece": ece, "parity_max_abs_diff": info["parity_max_abs_diff"]})
        client.log_artifacts(pkg_id, info["bundle"], "bundle")
        with mlflow.start_run(run_id=pkg_id):
            import onnx

            model_info = mlflow.onnx.log_model(onnx.load(str(Path(info["bundle"]) / "model.onnx")), name="model")
    version = mlflow.register_model(
        model_info.model_uri,
        cfg.model_name,
        tags={SOURCE_TAG: run_id, "macro_f1": f"{f1:.6f}", "ece": f"{ece:.6f}", "bundle_uri": f"runs:/{pkg_id}/bundle"},
    )
    champion = _champion_f1(client, cfg.model_name)
    alias = "champion" if champion is None or f1 > champion else "challenger"
    client.set_registered_model_alias(cfg.model_name, alias, version.version)
    create_markdown_artifact(
        key="package",
        markdown=f"# {cfg.model_name} v{version.version} -> @{alias}\n\nmacro-F1 {f1:.4f} (champion before: "
        f"{champion}), calibrated ECE {ece:.4f}, ONNX parity max |dlogit| {info['parity_max_abs_diff']:.2e} on "
        f"{info['parity_n']} test samples, INT8: {info['int8']}\n\nBundle: `{info['bundle']}`",
    )
    return {
        **info,
        "version": version.version,
        "alias": alias,
        "registered": True,
        "candidate_run": run_id,
        "package_run": pkg_id,
    }
