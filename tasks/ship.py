"""``ferflow ship``: publish a profile's packaged champion as the repository's shipped model (``models/<name>/``).

The champion bundle is read back from the registry (nothing is retrained), evaluated through its own ONNX model on the
index's held-out test split, and rewritten with a model card that states those figures, the data's provenance findings,
the seed statistics of the report, calibration and latency. Beside the bundle goes the exact file list it was judged on
(``<out>.heldout.csv``: path under the data root, label, SHA-256), so anyone with the same data reproduces the card.
Nothing is written unless every step succeeds.
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from prefect import task

from fer_adapters.datasets import load_index
from fer_adapters.registry import SOURCE_TAG, packaged_version
from fer_adapters.tracking import configure_tracking
from fer_core.errors import ConfigError, MissingUpstreamError
from fer_core.export.bundle import bundle_sha256, check_replaceable, load_bundle, write_bundle
from fer_core.export.calibration import read_calibration
from fer_core.export.latency import time_calls
from fer_core.export.model_card import DEFAULT_LIMITS, render_model_card
from fer_core.io import atomic_write_text, read_json, sha256_file
from fer_core.preprocess import PreprocessSpec
from fer_core.realtime.evaluate import evaluate_file_list
from fer_spec.profile import PipelineConfig, effective_ingest
from fer_spec.settings import Settings

INTENDED_USE = (
    "Real-time facial expression recognition (the 7 FER2013 classes) on a CPU: the ferflow realtime runner's default "
    "model, for demos and research. Input: a face crop from the runner's detector, preprocessed as below."
)
NOTE = "> **Note:** "  # how render_model_card writes a calibration note


def _limits(source: str, derived_copies: str) -> tuple[str, ...]:
    own = [f"Trained and judged on {source} only; expect lower accuracy on other datasets and cameras, and test on "
           "your own faces before relying on it."]  # fmt: skip
    if derived_copies != "drop":
        own.append(f"Training keeps the source's derived copies (`derived_copies: {derived_copies}`; in FER2013 "
                   "blurred disgust copies): the model may read such edits as a cue for their class; held-out figures "
                   "are on originals only.")  # fmt: skip
    return (*own, *DEFAULT_LIMITS)


def _file_list(rows: Any, data_root: Path) -> tuple[str, int]:
    """CSV text ``path,label,sha256`` of the test rows (paths under ``data_root``) and its row count."""
    test = rows[rows["split"] == "test"].sort_values("image_path")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["path", "label", "sha256"])
    root = data_root.resolve()
    for path, label in zip(test["image_path"], test["label"], strict=True):
        p = Path(path).resolve()
        if not p.is_relative_to(root):
            raise ConfigError(f"held-out image {p} is not under the data root {root}; ship from a single folder source")
        w.writerow([p.relative_to(root).as_posix(), label, sha256_file(p)])
    return buf.getvalue(), len(test)


def _latency_ms(bundle_dir: Path) -> dict[str, float]:
    """ONNX Runtime batch-1 latency on this machine, 1 thread (median and p95 of 500 calls)."""
    b = load_bundle(bundle_dir, threads=1)
    x = np.zeros((1, b.spec.channels, *b.spec.size), dtype=np.float32)
    t = time_calls(lambda: b.predict_logits(x), runs=500, warmup=50)
    return {"median": round(t["median_ms"], 3), "p95": round(t["p95_ms"], 3)}


def _variance_sources(cfg: PipelineConfig) -> str:
    """Which sources of variance the packaged family's seed statistics cover, in words (issue 21): only the student's
    seed varies across that family; its teachers and the index (so the validation split) are the same for all."""
    seeds = ", ".join(str(s) for s in cfg.student.seeds)
    fixed = ["one index (one validation split)"]
    if cfg.student.distill.teachers:
        names = ", ".join(cfg.student.distill.teachers)
        fixed.insert(0, f"the teachers' seed {cfg.teachers.seeds[0]} ({names}; every student distils from it)")
    return f"student seeds only ({len(cfg.student.seeds)}: {seeds}); fixed across them: " + " and ".join(fixed)


def _seed_rows(report: dict[str, Any] | None, student: str, cfg: PipelineConfig) -> dict[str, Any]:
    """The report's seed statistics of the family the shipped student belongs to (``student`` names it), and the
    sources of variance they cover."""
    if report is None:
        return {}
    fams = sorted(report.get("families", []), key=lambda f: -len(str(f.get("family", ""))))
    fam = next((f for f in fams if str(f.get("family")) in student), None)
    if fam is None:
        return {}
    family = fam["family"]
    keys = [k for k in fam if k.startswith(("accuracy", "macro_f1", "ece_15_after", "n_seeds"))]
    out = {f"packaged family ({family}) {k}": fam[k] for k in keys}
    out[f"packaged family ({family}) seed statistics cover"] = _variance_sources(cfg)
    head = report.get("headline", {})
    for k in ("ensemble_accuracy", "ensemble_macro_f1"):
        if k in head:
            out[f"teachers' ensemble {k.split('_', 1)[1]} (held-out originals)"] = head[k]
    return out


@task(name="ship_model", task_run_name="ship {cfg.name}")
def ship_model(cfg: PipelineConfig, out_dir: Path, report_dir: Path | None = None) -> dict[str, Any]:
    """Write the profile's packaged champion to ``out_dir`` with a full model card, and its held-out file list.

    Args:
        cfg: the profile whose pipeline (and, for seed statistics, report) has run.
        out_dir: the shipped bundle folder (replaced when it is one of ferflow's bundles; any other folder is refused).
        report_dir: the profile's report folder (default ``$FERFLOW_HOME/reports/<name>``); optional.

    Returns:
        ``bundle``, ``file_list``, ``version``, ``heldout`` (the bundle's own metrics on the held-out split).

    Raises:
        MissingUpstreamError: no packaged student was registered for the profile's index.
        ConfigError: the held-out images do not come from one folder source, or ``out_dir`` is not a bundle.
    """
    check_replaceable(out_dir, "out_dir")
    configure_tracking()
    home = Settings.from_env().home
    ing = effective_ingest(cfg)
    idx_dir = ing.out_dir
    index_path = idx_dir / ing.index_name
    if not index_path.exists():
        raise MissingUpstreamError(f"no index at {index_path}: run `ferflow pipeline --config ...` for {cfg.name!r}")
    folders = [s for s in ing.sources if s.kind == "folder"]
    if len(folders) != 1:
        raise ConfigError(f"ship needs exactly one folder source (the data root of the held-out list), {cfg.name!r} "
                          f"has {len(folders)}")  # fmt: skip
    data_root = Path(folders[0].path)
    shown_root = next(s.path for s in cfg.data.ingest.sources if s.kind == "folder")  # as the profile names it
    source = folders[0].name or data_root.name
    sha = sha256_file(index_path)
    rows = load_index(sha)  # the store's copy of this index (fer_adapters.datasets)
    client = MlflowClient()
    version, alias = packaged_version(client, cfg.package.model_name, sha)
    if version is None:
        raise MissingUpstreamError(f"no {cfg.package.model_name} version was packaged from index {sha[:12]}: run "
                                   f"`ferflow package --config ...` for {cfg.name!r}")  # fmt: skip
    report_dir = report_dir or home / "reports" / cfg.name
    report = read_json(report_dir / "report.json") if (report_dir / "report.json").is_file() else None
    ingest_findings = read_json(idx_dir / "report.json").get("findings", {})
    list_path = out_dir.parent / f"{out_dir.name}.heldout.csv"
    tmp = Path(tempfile.mkdtemp(prefix="ferflow-ship-"))
    try:
        src = Path(mlflow.artifacts.download_artifacts(version.tags["bundle_uri"], dst_path=str(tmp / "bundle")))
        text, n_test = _file_list(rows, data_root)
        (tmp / "heldout.csv").write_text(text, encoding="utf-8")
        ev = evaluate_file_list(src, tmp / "heldout.csv", data_root)
        spec = PreprocessSpec.model_validate(read_json(src / "preprocess.json"))
        calib = read_calibration(src / "calibration.json")
        counts = rows.groupby(["split", "label"]).size().unstack(fill_value=0)
        metrics = {
            f"held-out originals: accuracy (this ONNX bundle, {n_test} images)": ev["accuracy"],
            "held-out originals: macro-F1": ev["macro_f1"],
            "held-out originals: minority-F1 (disgust, fear, sad)": ev["minority_f1"],
            "held-out originals: ECE (15 bins, calibrated)": ev["ece"],
            "held-out originals: NLL (calibrated)": ev["nll"],
            "held-out originals: per-class F1": ev["per_class_f1"],
            **_seed_rows(report, version.tags.get("student", ""), cfg),
            "ONNX Runtime batch-1 latency, 1 thread, this machine (ms)": _latency_ms(src),
            "registry": f"{cfg.package.model_name} v{version.version}" + (f" @{alias}" if alias else " (no alias)"),
        }
        data = {
            "dataset": f"source {source!r}: the folder {shown_root} (its held-out split is the test split, untouched; "
                       "validation is carved from its training split)",
            "index sha256": sha,
            "held-out file list": f"{list_path.name} (path, label, SHA-256 of each of the {n_test} images)",
            "derived copies in training": ing.derived_copies,
            **{f"provenance: {k}": v for k, v in ingest_findings.items() if isinstance(v, int | float | str)},
            "counts": {s: {c: int(n) for c, n in counts.loc[s].items()} for s in counts.index},
        }  # fmt: skip
        lineage = {"source run": version.tags.get(SOURCE_TAG, "?"), "profile": f"{cfg.name} ({cfg.config_hash()})",
                   "source bundle sha256": bundle_sha256(src)}  # fmt: skip
        notes = [line.removeprefix(NOTE).strip() for line in (src / "model_card.md").read_text(encoding="utf-8")
                 .splitlines() if line.startswith(NOTE)]  # the calibration stage's notes, e.g. a T = 1 fallback
        card = render_model_card(cfg.package.model_name, data, metrics, calib, spec, INTENDED_USE,
                                 _limits(source, ing.derived_copies), lineage, calibration_notes=notes)  # fmt: skip
        stab = src / "stabilizer.json"
        write_bundle(out_dir, src / "model.onnx", src / "calibration.json", spec, card,
                     stabilizer=read_json(stab) if stab.is_file() else None, overwrite=True)  # fmt: skip
        atomic_write_text(list_path, text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"bundle": str(out_dir), "file_list": str(list_path), "version": version.version, "heldout": ev}
