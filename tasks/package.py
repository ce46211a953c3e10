"""Packaging: rank the calibrated students it is given, export the best to ONNX, verify, bundle, register, alias."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.tracking import MlflowClient
from prefect import task
from prefect.artifacts import create_markdown_artifact

from fer_adapters.datasets import dataset, load_index, model_input
from fer_adapters.registry import (
    Candidate,
    card_metrics,
    decide_alias,
    describe_registry,
    existing_version,
    gates_markdown,
    move_alias,
    promotion_gates,
    register_version,
    select_candidate,
    validation_baselines,
    version_tags,
)
from fer_adapters.run_store import fetch
from fer_adapters.runs import ferflow_run
from fer_adapters.store import Store
from fer_adapters.tracking import configure_tracking
from fer_core.export.bundle import bundle_sha256, verify_bundle, write_bundle
from fer_core.export.gates import Baselines
from fer_core.export.model_card import DEFAULT_LIMITS, card_excerpt, render_model_card
from fer_core.export.onnx import check_parity, export_onnx
from fer_core.export.quantize import keep_int8_if, quantize_int8
from fer_core.io import sha256_file
from fer_core.models.checkpoint import load_checkpoint
from fer_core.preprocess import PreprocessSpec
from fer_spec.profile import PackageSection
from fer_spec.results import BundleRef, CalibratedStudent, IndexRef
from fer_spec.settings import Settings


def build_bundle(
    chosen: CalibratedStudent, cand: Candidate, base: Baselines, spec: PreprocessSpec, index_sha256: str, cfg: Any,
    out: Path, data_note: str,
) -> tuple[dict[str, Any], np.ndarray]:
    """Export the candidate's last checkpoint, verify parity, optionally INT8, write the bundle with its model card.

    Parity and the INT8 decision use validation samples (no decision here reads the test split).

    Returns:
        ``(info, example)``: bundle path and export figures, and two preprocessed inputs for the MLflow signature.
    """
    tmp = Path(tempfile.mkdtemp(prefix="ferflow-package-"))
    try:
        return _build_in(tmp, chosen, cand, base, spec, index_sha256, cfg, out, data_note)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the bundle holds copies of everything kept


def _build_in(
    tmp: Path, chosen: CalibratedStudent, cand: Candidate, base: Baselines, spec: PreprocessSpec, index_sha256: str,
    cfg: Any, out: Path, data_note: str,
) -> tuple[dict[str, Any], np.ndarray]:  # fmt: skip
    run_id = cand.run_id
    ckpt = fetch(chosen.student.checkpoint, chosen.student.checkpoint_sha256)
    calib = fetch(chosen.calibration_json, chosen.calibration_sha256)
    model, meta = load_checkpoint(ckpt)
    val = model_input(dataset(index_sha256, "val", spec), meta.img_size, meta.in_chans)
    spec = val.spec  # the model's input (the bundle's preprocess.json), which may differ from the stored pack
    n = min(cfg.parity_samples, len(val))
    x, y = val.get_batch(np.arange(n))
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
    rows = load_index(index_sha256)
    counts = {str(k): {str(c): int(n) for c, n in g.items()} for k, g in rows.groupby("split")["label"].value_counts()
              .unstack(fill_value=0).iterrows()}  # fmt: skip
    card = render_model_card(
        cfg.model_name,
        {"index_sha256": index_sha256, "counts": counts, "description": data_note},
        card_metrics(cand, base),
        json.loads(calib.read_text()),
        spec,
        lineage={
            "mlflow_run": run_id,
            "checkpoint_sha256": sha256_file(ckpt),
            "model": meta.model_name,
            "parity_max_abs_diff": parity.max_abs_diff,
            **quant,
        },
        calibration_notes=[cand.calibration_note] if cand.calibration_note else [],
        limits=(f"Trained on {data_note}; expect lower accuracy on other faces, cameras and lighting: test on your "
                "own faces before relying on it.", *DEFAULT_LIMITS[1:]) if data_note else DEFAULT_LIMITS,
    )
    bundle = write_bundle(out, onnx_path, calib, spec, card, overwrite=True)
    verify_bundle(bundle)
    info = {"bundle": str(bundle), "parity_max_abs_diff": float(parity.max_abs_diff), "parity_n": n, **quant}
    return info, x[:2].numpy()


def _already_registered(model_name: str, existing: Any, bundle_dir: Path, cand: Candidate, gates_md: str) -> BundleRef:
    """The chosen student was packaged before: verify its bundle, say so, register nothing."""
    verify_bundle(bundle_dir)
    aliases = ", ".join(f"@{a}" for a in existing.aliases) or "no alias"
    create_markdown_artifact(
        key="package",
        markdown=f"# {model_name} v{existing.version} ({aliases}): already registered\n\nThe best calibrated student "
        f"is still `{cand.run_id}` ({cand.name}); nothing new was registered.\n\n{gates_md}",
        description=f"Packaging of {model_name}: the chosen student was registered before",
    )
    return BundleRef(
        bundle=str(bundle_dir),
        version=str(existing.version),
        alias=existing.aliases[0] if existing.aliases else None,
        registered=False,
        candidate_run=cand.run_id,
        details={"model_name": model_name, "gates": cand.verdict.summary()},
    )


@task(name="package_student", task_run_name="package {cfg.model_name}")
def package_student(cfg: PackageSection, index: IndexRef, spec: PreprocessSpec, calibrated: list[CalibratedStudent],
                    data_note: str = "") -> BundleRef:  # fmt: skip
    """Rank exactly ``calibrated``, then export, bundle, log, register and alias the best; re-running on the same
    candidate registers nothing.

    Args:
        cfg: the profile's package section (gates, registered model name).
        index: the dataset the students were trained on.
        spec: the students' input preprocessing.
        calibrated: the candidates (the packaged family's calibrated students); nothing else is considered.
        data_note: what the students were trained on, for the model card (the profile's sources).
    """
    index_sha256 = index.index_sha256
    configure_tracking()
    client = MlflowClient()
    base = validation_baselines(load_index(index_sha256))
    cand, ranked = select_candidate(calibrated, promotion_gates(cfg), base)
    chosen = next(c for c in calibrated if c.student.mlflow_run_id == cand.run_id)
    run_id = cand.run_id
    existing = existing_version(client, cfg.model_name, run_id)
    bundle_dir = Settings.from_env().home / "bundles" / run_id
    if existing is not None and (bundle_dir / "manifest.json").exists():
        return _already_registered(cfg.model_name, existing, bundle_dir, cand, gates_markdown(cand, base, ranked))
    describe_registry(client, cfg.model_name)
    info, example = build_bundle(chosen, cand, base, spec, index_sha256, cfg, bundle_dir, data_note)
    bundle = Path(info["bundle"])
    bundle_key = f"bundles/{sha256_file(bundle / 'manifest.json')}"
    Store.from_env().put_dir(bundle_key, bundle)  # what any node (the realtime runner's machine too) fetches
    gates_md = gates_markdown(cand, base, ranked)
    with ferflow_run("package", dataset_sha256=index_sha256, parent=run_id, run_name=f"package {cand.name}") as (
        pkg_id,
        sink,
    ):
        sink.log_metrics({**{f"val/{k}": v for k, v in cand.val.items()},
                          **{f"heldout/{k}": v for k, v in cand.heldout.items()},
                          "parity_max_abs_diff": info["parity_max_abs_diff"]})  # fmt: skip
        client.log_artifacts(pkg_id, str(bundle), "bundle")
        sink.log_text(gates_md, "promotion_gates.md")
        tags = version_tags(cand, index_sha256, bundle_sha256(bundle), f"runs:/{pkg_id}/bundle")
        card = (bundle / "model_card.md").read_text(encoding="utf-8")
        version = register_version(client, cfg.model_name, cand, bundle / "model.onnx", example, card_excerpt(card),
                                   tags)  # fmt: skip
        alias, why = decide_alias(client, cfg.model_name, cand, index_sha256)
        move = move_alias(client, cfg.model_name, str(version.version), alias, why, pkg_id)
    head = (
        f"{cfg.model_name} v{version.version} -> @{alias}"
        if alias
        else f"{cfg.model_name} v{version.version}: NOT promoted"
    )
    create_markdown_artifact(
        key="package",
        markdown=(
            f"# {head}\n\n{move}\n\nStudent run `{run_id}` ({cand.name}); held-out macro-F1 "
            f"{cand.heldout['macro_f1']:.4f}, accuracy {cand.heldout['accuracy']:.4f}; T = {cand.temperature:.3f}. "
            f"ONNX parity max |dlogit| {info['parity_max_abs_diff']:.2e} on {info['parity_n']} validation samples; "
            f"INT8: {info['int8']}.\n\n## Promotion gates (validation only)\n\n{gates_md}\n\nBundle: `{bundle}`"
        ),
        description=f"Packaging of {cfg.model_name}: the chosen student, its gates and where its alias moved",
    )
    return BundleRef(
        bundle=info["bundle"],
        version=str(version.version),
        alias=alias,
        registered=True,
        candidate_run=run_id,
        package_run=pkg_id,
        bundle_key=bundle_key,
        details={
            "model_name": cfg.model_name,
            **{k: v for k, v in info.items() if k != "bundle"},
            "alias_move": move,
            "gates": cand.verdict.summary(),
        },
    )
