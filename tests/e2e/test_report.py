"""``report`` on a finished tiny pipeline with a seed study: real Prefect, Ray Tune, MLflow and ONNX Runtime."""

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from fer_core.ensemble.fusion import fuse_probs
from fer_core.errors import MissingUpstreamError
from fer_core.evaluate.metrics import classification_metrics
from fer_core.logits.store import align_logits, read_logits
from fer_core.taxonomy import CLASS_TO_INDEX
from fer_spec.profile import load_pipeline_config

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"
SEEDS = [42, 43]


def _study_config():
    cfg = load_pipeline_config(CONFIG)
    student = cfg.student.model_copy(update={
        "seeds": SEEDS,
        "sweep": cfg.student.sweep.model_copy(update={
            "enabled": True, "losses": ["ce", "kd"], "seeds": SEEDS, "scheduler": "fifo"}),
    })  # fmt: skip
    package = cfg.package.model_copy(update={"model_name": "fer-student-study"})
    return cfg.model_copy(update={"name": "tiny-study", "student": student, "package": package})


@pytest.fixture(scope="module")
def study(prefect_harness, ray_local, tmp_path_factory):
    from flows.pipeline import pipeline_flow
    from flows.report import report_flow

    cfg = _study_config()
    out = pipeline_flow(config=cfg)
    rep = report_flow(config=cfg, out_dir=str(tmp_path_factory.mktemp("report")))
    return cfg, out, rep


@pytest.mark.slow
def test_report_has_every_section_and_figure(study):
    _, _, rep = study
    md = Path(rep["report"]).read_text()
    for heading in (
        "Data findings",
        "Targets",
        "Teachers and ensemble",
        "Students",
        "Calibration",
        "Abstention",
        "Latency",
        "Confusion",
    ):
        assert heading in md, heading
    for png in (
        "confusion_ensemble",
        "confusion_packaged_student",
        "reliability_before",
        "reliability_after",
        "families",
    ):
        assert (Path(rep["report"]).parent / f"{png}.png").stat().st_size > 1000
        assert f"({png}.png)" in md


@pytest.mark.slow
def test_every_family_has_every_seed_and_p_values(study):
    import json

    _, _, rep = study
    data = json.loads((Path(rep["report"]).parent / "report.json").read_text())
    fams = {f["family"]: f for f in data["families"]}
    assert set(fams) == {"ce", "pairwise-kd", "pairwise-dkd"}  # the packaged family (dkd) + the sweep's
    assert all(f["n_seeds"] == len(SEEDS) for f in fams.values())
    assert fams["pairwise-kd"]["p_macro_f1"] is not None and "p_macro_f1" in fams["pairwise-dkd"]


@pytest.mark.slow
def test_ensemble_numbers_match_an_independent_recomputation(study):
    """The report's ensemble accuracy equals fuse_probs over the teachers' stored test logits at the tuned config."""
    cfg, out, rep = study
    from fer_adapters.datasets import load_index
    from fer_adapters.run_store import fetch

    idx = load_index(out.index.index_sha256)
    test = idx[idx["split"] == "test"]
    z = np.stack([align_logits(read_logits(fetch(t.logits, t.logits_sha256)), test["sample_id"].tolist(),
                               allow_extra=True) for t in out.teachers])  # fmt: skip
    p = fuse_probs(z, np.asarray(out.ensemble.weights), out.ensemble.temperature)
    acc = classification_metrics(test["label"].map(CLASS_TO_INDEX).to_numpy(), p.argmax(1))["accuracy"]
    assert rep["headline"]["ensemble_accuracy"] == pytest.approx(acc, abs=1e-9)


@pytest.mark.slow
def test_report_is_logged_to_mlflow_and_prefect(study):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _, _, rep = study
    arts = {a.path for a in MlflowClient().list_artifacts(rep["mlflow_run_id"], "report")}
    assert "report/report.md" in arts and "report/families.png" in arts

    async def latest():
        async with get_client() as c:
            return await c.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["report-tiny-study"]))
            )

    import asyncio

    found = asyncio.run(latest())
    assert found and "Students" in found[0].data


@pytest.mark.slow
def test_report_without_runs_names_what_is_missing(study, tmp_path):
    from tasks.report import build_report

    cfg = _study_config()
    ing = cfg.data.ingest.model_copy(update={"out_dir": tmp_path / "nothing"})
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"ingest": ing})})
    with pytest.raises(MissingUpstreamError, match="no index at"):
        build_report.fn(cfg)


@pytest.mark.slow
def test_ship_publishes_the_champion_with_a_card_that_its_file_list_reproduces(study, tmp_path):
    from fer_adapters.datasets import load_index
    from fer_core.export.bundle import verify_bundle
    from fer_core.io import sha256_file
    from fer_core.realtime.evaluate import evaluate_file_list
    from fer_spec.profile import effective_ingest
    from flows.ship import ship_flow

    cfg, _, rep = study
    out = tmp_path / "models" / "tiny"
    res = ship_flow(str(out), config=cfg, report_dir=str(Path(rep["report"]).parent))
    verify_bundle(out)
    listed = (tmp_path / "models" / "tiny.heldout.csv").read_text().splitlines()
    ing = effective_ingest(cfg)
    index_path = ing.out_dir / ing.index_name
    index = load_index(sha256_file(index_path))
    assert listed[0] == "path,label,sha256" and len(listed) - 1 == int((index["split"] == "test").sum())
    again = evaluate_file_list(out, tmp_path / "models" / "tiny.heldout.csv", ing.sources[0].path)
    assert again["accuracy"] == res["heldout"]["accuracy"] and again["n"] == len(listed) - 1
    card = (out / "model_card.md").read_text()
    row = next(x for x in card.splitlines() if x.startswith("| held-out originals: accuracy"))
    assert float(row.rsplit("|", 2)[1]) == pytest.approx(again["accuracy"], abs=5e-5)
    assert "packaged family" in card and "ONNX Runtime batch-1 latency" in card and "index sha256" in card
    cover = next(x for x in card.splitlines() if "seed statistics cover" in x)  # issue 21: the variance sources
    assert f"student seeds only ({len(cfg.student.seeds)}:" in cover and "one index" in cover
