"""Packaging against a real MLflow (SQLite in tmp_path): selection on validation metrics only, chance-relative gates,
the version's source run, signature, description and tags, and recorded alias moves."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from fer_adapters.registry import packaged_version
from fer_core.calibrate.calibration_file import write_calibration_json
from fer_core.data.adapters import SourceSpec
from fer_core.data.ingest import IngestConfig, run_ingest
from fer_core.data.synth import render_dataset
from fer_core.io import sha256_file
from fer_core.models.backbones import create_model
from fer_core.models.checkpoint import CheckpointMeta, save_checkpoint
from fer_core.models.config import ModelConfig
from fer_core.preprocess import PreprocessSpec
from fer_core.taxonomy import FER_CLASSES

# ~2 min on a loaded 2-core machine: each packaging exports ONNX and MLflow validates the logged model's example.
pytestmark = pytest.mark.slow

SPEC = PreprocessSpec(size=(32, 32), channels=1, color="gray", mean=(0.5,), std=(0.5,))
GOOD_VAL = {"macro_f1": 0.55, "accuracy": 0.6, "ece_15": 0.03, "nll": 1.1}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny synthetic index, one untrained test_resnet checkpoint, and an empty MLflow on SQLite."""
    root = tmp_path_factory.mktemp("pkg")
    render_dataset(root / "synth", per_class=6, size=32, seed=1)
    src = SourceSpec(kind="folder", path=root / "synth", name="synth")
    res = run_ingest(IngestConfig(sources=[src], out_dir=root / "index", fractions=(0.5, 0.25, 0.25), workers=1,
                                  min_side=16))  # fmt: skip
    cfg = ModelConfig(name="test_resnet", in_chans=1, img_size=32)
    ckpt = save_checkpoint(root / "last.pt", create_model(cfg), CheckpointMeta.for_model(cfg, classes=FER_CLASSES))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("FERFLOW_HOME", str(root / "home"))
        from fer_adapters.tracking import configure_tracking

        configure_tracking()
        from fer_adapters.datasets import publish_dataset

        sha = sha256_file(res.index_path)
        publish_dataset(str(res.index_path), sha, SPEC)  # the store the package task reads (FERFLOW_HOME/store)
        yield {"root": root, "index": res.index_path, "sha": sha, "ckpt": ckpt, "candidates": []}


def student(world, name: str, val: dict, heldout_f1: float) -> str:
    """A finished, calibrated student as the distill and calibrate stages hand it over: its MLflow run, its
    checkpoint and calibration in the store, and the typed result (added to the world's candidates)."""
    from fer_adapters.run_store import RunFolder
    from fer_adapters.runs import ferflow_run
    from fer_spec.results import CalibratedStudent, StudentRun

    cal = world["root"] / name / "calibration.json"
    cal.parent.mkdir(parents=True, exist_ok=True)
    write_calibration_json(cal, FER_CLASSES, 1.3, {"ece_15": 0.09}, {"ece_15": 0.02})
    with ferflow_run("distill", dataset_sha256=world["sha"], run_name=name) as (run_id, sink):
        sink.log_artifact(world["ckpt"], "checkpoint")
        sink.log_artifact(cal, "calibration")
        heldout = {"after/macro_f1": heldout_f1, "after/accuracy": heldout_f1, "before/ece_15": 0.09,
                   "after/ece_15": 0.02}  # fmt: skip
        calibration = {"val_before/ece_15": 0.08, "calibration/temperature": 1.3, "calibration/fell_back": 0.0}
        sink.log_metrics({**{f"val_after/{k}": v for k, v in val.items()}, **heldout, **calibration})
    folder = RunFolder(f"runs/test/{name}")
    ckpt_key = folder.store.put_file(f"{folder.key}/last.pt", world["ckpt"])
    cal_key = folder.store.put_file(f"{folder.key}/calibration/calibration.json", cal)
    run = StudentRun(name=name, seed=0, checkpoint=ckpt_key, checkpoint_sha256=sha256_file(world["ckpt"]),
                     logits="", logits_sha256="", mlflow_run_id=run_id, val_metrics={"macro_f1": val["macro_f1"]},
                     class_f1=[0.0] * 7, out_dir=folder.key, kind="pairwise-kd")  # fmt: skip
    world["candidates"].append(CalibratedStudent(
        student=run, calibration_json=cal_key, calibration_sha256=sha256_file(cal), temperature=1.3,
        before={"ece_15": 0.09}, after={"macro_f1": heldout_f1, "accuracy": heldout_f1, "ece_15": 0.02},
        val_before={"ece_15": 0.08}, val_after=val))  # fmt: skip
    return run_id


def package(world, model_name: str, monkeypatch, **gates):
    """Run the package task's body; returns its result and the Markdown of its Prefect artifact."""
    import tasks.package as pkg
    from fer_spec.profile import PackageSection
    from fer_spec.results import IndexRef

    shown = []
    monkeypatch.setattr(pkg, "create_markdown_artifact", lambda **kw: shown.append(kw))
    cfg = PackageSection(model_name=model_name, parity_samples=8, **gates)
    index = IndexRef(index_path=str(world["index"]), index_sha256=world["sha"], manifest={}, report_json="",
                     balance_png="")  # fmt: skip
    out = pkg.package_student.fn(cfg, index, SPEC, list(world["candidates"]), "synthetic faces (test)")
    assert len(shown) == 1 and shown[0]["description"], shown
    return out, shown[0]["markdown"]


def test_selection_reads_validation_only_and_the_version_comes_from_the_training_run(world, monkeypatch):
    test_star = student(world, "student-kd-s1", {**GOOD_VAL, "macro_f1": 0.40}, heldout_f1=0.95)
    val_best = student(world, "student-kd-s2", GOOD_VAL, heldout_f1=0.50)
    out, md = package(world, "fer-a", monkeypatch, min_macro_f1=0.3, max_ece=0.05)
    assert out.candidate_run == val_best != test_star  # the test split's best never decides
    assert out.alias == "champion" and out.registered
    client = MlflowClient()
    v = client.get_model_version("fer-a", out.version)
    assert v.run_id == val_best  # the registry's "source run" is the student's training run
    assert v.description.startswith("# Model card: fer-a") and "validation macro-F1" in v.description
    assert v.tags["val_macro_f1"] == "0.5500" and v.tags["heldout_macro_f1"] == "0.5000"
    assert v.tags["heldout_ece_before"] == "0.0900" and v.tags["heldout_ece_after"] == "0.0200"
    assert v.tags["temperature"] == "1.3000" and v.tags["index_sha256"] == world["sha"]
    bundle = Path(out.bundle)
    assert v.tags["bundle_sha256"] == sha256_file(bundle / "manifest.json")
    assert v.tags["ferflow.gates"] == "passed" and "@champion" in v.tags["ferflow.promotion"]
    info = mlflow.models.get_model_info(f"models:/fer-a/{out.version}")
    inputs = info.signature.inputs.to_dict()
    assert list(inputs[0]["tensor-spec"]["shape"]) == [-1, 1, 32, 32] and info.signature.outputs.to_dict()
    assert info.saved_input_example_info is not None
    assert "Promotion gates (validation only)" in md and "NOT promoted" not in md
    model = client.get_registered_model("fer-a")
    assert "@champion" in model.description and "@champion" in model.tags["ferflow.alias_history"]
    assert "ferflow.stage" in client.get_experiment_by_name("ferflow").tags["mlflow.note.content"]
    card = (bundle / "model_card.md").read_text()
    assert "| validation macro-F1 | 0.5500 (chance 0.143) |" in card and "| promotion gates | passed |" in card


def test_a_better_student_takes_the_champion_alias_and_the_move_is_recorded(world, monkeypatch):
    first, _ = package(world, "fer-b", monkeypatch, min_macro_f1=0.3, max_ece=0.05)
    again, _ = package(world, "fer-b", monkeypatch, min_macro_f1=0.3, max_ece=0.05)
    assert again.registered is False and again.version == first.version  # nothing new to register
    better = student(world, "student-kd-s3", {**GOOD_VAL, "macro_f1": 0.7}, heldout_f1=0.6)
    out, md = package(world, "fer-b", monkeypatch, min_macro_f1=0.3, max_ece=0.05)
    assert out.candidate_run == better and out.alias == "champion"
    client = MlflowClient()
    history = client.get_registered_model("fer-b").tags["ferflow.alias_history"].splitlines()
    assert len(history) == 2 and f"v{out.version} -> @champion (was v{first.version})" in history[0]
    assert "0.7000 > champion" in history[0]
    assert client.get_model_version("fer-b", first.version).tags["ferflow.superseded_by"].startswith(f"v{out.version}")
    assert client.get_run(out.package_run).data.tags["ferflow.alias_move"] == history[0]
    shown, alias = packaged_version(client, "fer-b", world["sha"])
    assert (str(shown.version), alias) == (out.version, "champion")
    assert history[0] in md


def test_a_near_chance_student_is_registered_but_never_promoted(world, monkeypatch):
    sha = world["sha"]
    world_b = {**world, "candidates": []}  # only this student is a candidate
    student(world_b, "student-weak-s1", {"macro_f1": 0.085, "accuracy": 0.18, "ece_15": 0.0142, "nll": 1.9}, 0.09)
    out, md = package(world_b, "fer-c", monkeypatch, min_macro_f1=0.0, max_ece=1.0)  # every configured floor at 0
    assert out.alias is None and out.registered
    client = MlflowClient()
    v = client.get_model_version("fer-c", out.version)
    assert v.aliases == [] and v.tags["ferflow.gates"].startswith("failed: FAIL: val macro-F1 0.0850")
    assert "-> no alias: not promoted" in v.tags["ferflow.promotion"]
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias("fer-c", "champion")
    shown, alias = packaged_version(client, "fer-c", sha)  # what a report shows for this index
    assert (str(shown.version), alias) == (str(v.version), None)
    assert md.startswith("# fer-c v1: NOT promoted") and "chance 0.143 + margin 0.10" in md
    assert json.loads(json.dumps(out.details))["alias_move"].endswith(v.tags["ferflow.promotion"].split(": ", 1)[1])
