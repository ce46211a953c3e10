"""The MLflow side of packaging: calibrated candidates ranked by validation metrics, the promotion gates, registered
versions with a signature, description and figures, and every champion/challenger move recorded.

Selection never reads the test split: candidates are ranked and gated on the validation metrics the calibrate stage
logs (``val_after/*``); held-out (test) figures only describe the chosen version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from fer_adapters.tracking import EXPERIMENT
from fer_core.errors import ConfigError, MissingUpstreamError
from fer_core.export.gates import Baselines, GateVerdict, PromotionGates, baselines, check_promotion
from fer_core.taxonomy import FER_CLASSES
from fer_spec.results import CalibratedStudent

SOURCE_TAG = "ferflow.source_run"
HISTORY_TAG = "ferflow.alias_history"
HISTORY_LINES = 50
EXPERIMENT_DESCRIPTION = (
    "ferflow: every stage of the facial-expression pipeline logs here. Filter by the tag `ferflow.stage` "
    "(ingest, train_teacher, tune_ensemble, distill, distill_sweep, nested, package, report); `ferflow.dataset_sha256` "
    "names the dataset index, `ferflow.parent` groups sweep trials. Student runs hold their checkpoint, logits, "
    "calibration (`calibration/`) and, once packaged, the ONNX model registered as a version of the student model."
)
MODEL_DESCRIPTION = (
    "Packaged FER students (7 classes: {classes}). Each version is an ONNX model logged in its student's training "
    "run, with the bundle's model card as description and tags for held-out macro-F1/accuracy, ECE before/after "
    "calibration, temperature, dataset index and bundle SHA-256. `@champion` passed the promotion gates (validation "
    "metrics above chance and the majority-class baseline, calibrated ECE under the ceiling) and beat the previous "
    "champion on the same index; `@challenger` passed the gates without beating it. The tag `ferflow.alias_history` "
    "lists every alias move. Load with `models:/{name}@champion`; the realtime runner uses the bundle (tag "
    "`bundle_uri`)."
)


@dataclass(frozen=True)
class Candidate:
    """A calibrated student run judged on validation data.

    Attributes:
        run_id: its MLflow (training) run.
        name: its run name (``student-<kind>-s<seed>``).
        val: validation ``macro_f1``, ``accuracy``, ``ece`` (calibrated), ``ece_before``, ``nll``.
        heldout: held-out split ``macro_f1``, ``accuracy``, ``ece_before``, ``ece_after`` (reported, never ranked on).
        temperature: the calibration's global T.
        verdict: the promotion gates' verdict.
        calibration_note: what a reader must know about the calibration ("" when nothing).
    """

    run_id: str
    name: str
    val: dict[str, float]
    heldout: dict[str, float]
    temperature: float
    verdict: GateVerdict
    calibration_note: str = ""


def promotion_gates(section: Any) -> PromotionGates:
    """The gates from a profile's ``package`` section (its fields named like :class:`PromotionGates` fields)."""
    return PromotionGates(**{k: getattr(section, k) for k in PromotionGates.model_fields if hasattr(section, k)})


def validation_baselines(index: pd.DataFrame) -> Baselines:
    """Chance and majority-class baselines of the index's validation split."""
    counts = index.loc[index["split"] == "val", "label"].value_counts()
    return baselines([int(counts.get(c, 0)) for c in FER_CLASSES], FER_CLASSES)


def candidate_of(cal: CalibratedStudent, gates: PromotionGates, base: Baselines) -> Candidate:
    """A calibrated student (the typed result of the calibrate stage) judged on its validation metrics."""
    val = {
        "macro_f1": cal.val_after.get("macro_f1", float("nan")),
        "accuracy": cal.val_after.get("accuracy", float("nan")),
        "ece": cal.val_after.get("ece_15", float("nan")),
        "ece_before": cal.val_before.get("ece_15", float("nan")),
        "nll": cal.val_after.get("nll", float("nan")),
    }
    heldout = {
        "macro_f1": cal.after.get("macro_f1", float("nan")),
        "accuracy": cal.after.get("accuracy", float("nan")),
        "ece_before": cal.before.get("ece_15", float("nan")),
        "ece_after": cal.after.get("ece_15", float("nan")),
    }
    note = ""
    if cal.fell_back:
        note = (f"temperature scaling at the fitted T = {cal.fitted_temperature:.3f} made validation ECE worse, so "
                "the bundle uses T = 1 (raw logits)")  # fmt: skip
    s = cal.student
    return Candidate(s.mlflow_run_id, s.name, val, heldout, cal.temperature, check_promotion(val, gates, base), note)


def select_candidate(
    calibrated: list[CalibratedStudent], gates: PromotionGates, base: Baselines
) -> tuple[Candidate, list[Candidate]]:
    """The best of exactly these calibrated students by validation metrics, and all of them ranked.

    Ranking: candidates that pass the gates first, then validation macro-F1 (higher), calibrated validation ECE and
    NLL (lower). The best may fail the gates: it is then packaged and registered but never given an alias.

    Raises:
        MissingUpstreamError: no candidate was given (run the calibrate stage first).
    """
    if not calibrated:
        raise MissingUpstreamError("no calibrated student to package; run the distill and calibrate stages first")
    cands = [candidate_of(c, gates, base) for c in calibrated]

    def key(c: Candidate) -> tuple:
        f1, ece, nll = (np.nan_to_num(c.val[k], nan=v) for k, v in (("macro_f1", -1.0), ("ece", 9.0), ("nll", 99.0)))
        return (not c.verdict.passed, -f1, ece, nll, c.run_id)

    ranked = sorted(cands, key=key)
    return ranked[0], ranked


def describe_registry(client: MlflowClient, model_name: str) -> None:
    """Give the experiment and the registered model their descriptions (creating the model if needed)."""
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None and exp.tags.get("mlflow.note.content") != EXPERIMENT_DESCRIPTION:
        client.set_experiment_tag(exp.experiment_id, "mlflow.note.content", EXPERIMENT_DESCRIPTION)
    text = MODEL_DESCRIPTION.format(classes=", ".join(FER_CLASSES), name=model_name)
    try:
        model = client.get_registered_model(model_name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(model_name, description=text)
        return
    if model.description != text:
        client.update_registered_model(model_name, description=text)


def existing_version(client: MlflowClient, model_name: str, run_id: str) -> Any:
    """The version already registered from this student run, or None."""
    try:
        versions = client.search_model_versions(f"name = '{model_name}' and tags.`{SOURCE_TAG}` = '{run_id}'")
    except mlflow.exceptions.MlflowException:
        return None
    return versions[0] if versions else None


def packaged_version(client: MlflowClient, model_name: str, index_sha256: str) -> tuple[Any, str | None]:
    """``(version, alias)`` to show for an index: ``@champion`` when it was judged on this index, else the newest
    version packaged from this index with its alias (``None`` when it was not promoted); ``(None, None)`` if none."""
    try:
        champ = client.get_model_version_by_alias(model_name, "champion")
        if champ.tags.get("index_sha256") == index_sha256:
            return champ, "champion"
    except mlflow.exceptions.MlflowException:
        pass
    try:
        versions = client.search_model_versions(f"name = '{model_name}' and tags.`index_sha256` = '{index_sha256}'")
    except mlflow.exceptions.MlflowException:
        return None, None
    if not versions:
        return None, None
    newest = max(versions, key=lambda v: int(v.version))
    return newest, (newest.aliases[0] if newest.aliases else None)


def version_tags(cand: Candidate, index_sha256: str, bundle_sha: str, bundle_uri: str) -> dict[str, str]:
    """What a person compares versions by, as registry tags (held-out and validation figures, hashes, lineage)."""
    f = {
        "heldout_macro_f1": cand.heldout["macro_f1"],
        "heldout_accuracy": cand.heldout["accuracy"],
        "heldout_ece_before": cand.heldout["ece_before"],
        "heldout_ece_after": cand.heldout["ece_after"],
        "val_macro_f1": cand.val["macro_f1"],
        "val_accuracy": cand.val["accuracy"],
        "val_ece_after": cand.val["ece"],
        "temperature": cand.temperature,
    }
    return {
        **{k: f"{v:.4f}" for k, v in f.items()},
        "index_sha256": index_sha256,
        "bundle_sha256": bundle_sha,
        "bundle_uri": bundle_uri,
        SOURCE_TAG: cand.run_id,
        "student": cand.name,
        "ferflow.gates": "passed" if cand.verdict.passed else "failed: " + "; ".join(cand.verdict.failures),
    }


def card_metrics(cand: Candidate, base: Baselines) -> dict[str, str]:
    """The model card's headline figures: held-out (reported) and validation (what selection and the gates read)."""
    h, v = cand.heldout, cand.val
    return {
        "held-out macro-F1": f"{h['macro_f1']:.4f}",
        "held-out accuracy": f"{h['accuracy']:.4f}",
        "held-out ECE, raw -> calibrated": f"{h['ece_before']:.4f} -> {h['ece_after']:.4f}",
        "validation macro-F1": f"{v['macro_f1']:.4f} (chance {base.chance_macro_f1:.3f})",
        "validation accuracy": f"{v['accuracy']:.4f} (always '{base.majority_class}': {base.majority_share:.3f})",
        "validation ECE, raw -> calibrated": f"{v['ece_before']:.4f} -> {v['ece']:.4f}",
        "temperature": f"{cand.temperature:.4f}",
        "promotion gates": "passed" if cand.verdict.passed else "failed: " + "; ".join(cand.verdict.failures),
        "student run": f"{cand.name} ({cand.run_id})",
    }


def register_version(
    client: MlflowClient, model_name: str, cand: Candidate, onnx_path: Path, example: np.ndarray,
    description: str, tags: dict[str, str],
) -> Any:  # fmt: skip
    """Log the ONNX model into the student's TRAINING run (signature and input example) and register it from there.

    Args:
        client: the tracking/registry client.
        model_name: the registered model.
        cand: the student (its run becomes the version's source run).
        onnx_path: the bundle's ``model.onnx``.
        example: a few real preprocessed inputs ``[n, C, H, W]`` (float32) for the signature and the example.
        description: the version's description (the model card's excerpt).
        tags: the version's tags (:func:`version_tags`).

    Returns:
        The created ``ModelVersion``.
    """
    import mlflow.onnx
    import onnx
    from mlflow.models import infer_signature

    from fer_core.export.session import make_session

    sess = make_session(onnx_path)
    feed = {sess.get_inputs()[0].name: example.astype(np.float32)}
    check_one_signature(client, model_name, feed)
    out = {o.name: y for o, y in zip(sess.get_outputs(), sess.run(None, feed), strict=True)}
    # Inside the run: MLflow puts a logged model in the ACTIVE experiment (Default without one), not the run's.
    with mlflow.start_run(run_id=cand.run_id, nested=mlflow.active_run() is not None):
        info = mlflow.onnx.log_model(onnx.load(str(onnx_path)), name=f"{cand.name}-onnx",
                                     signature=infer_signature(feed, out), input_example=feed,
                                     onnx_execution_providers=["CPUExecutionProvider"])  # fmt: skip
    return client.create_model_version(model_name, info.model_uri, run_id=cand.run_id, tags=tags,
                                       description=description, model_id=info.model_id)  # fmt: skip


INPUT_TAG = "ferflow.input"


def input_signature(feed: dict[str, np.ndarray]) -> str:
    """A registered model's input as text, e.g. ``input[-1, 1, 48, 48] float32`` (batch free)."""
    ((name, x),) = feed.items()
    return f"{name}[{', '.join(['-1', *(str(d) for d in x.shape[1:])])}] {x.dtype}"


def check_one_signature(client: MlflowClient, model_name: str, feed: dict[str, np.ndarray]) -> None:
    """One input signature per registered model: record it on first use, refuse a version that differs.

    Raises:
        ConfigError: the registered model holds versions of another input (both named; the fix: its own name).
    """
    from mlflow.exceptions import MlflowException

    want = input_signature(feed)
    try:
        have = client.get_registered_model(model_name).tags.get(INPUT_TAG)
    except MlflowException:  # not registered yet
        client.create_registered_model(model_name)
        have = None
    if have is None:
        client.set_registered_model_tag(model_name, INPUT_TAG, want)
    elif have != want:
        raise ConfigError(f"registered model {model_name!r} holds versions with input {have}; this student's is "
                          f"{want}. A registered model has one signature: give this profile its own "
                          "package.model_name (e.g. fer-student-<profile>)")  # fmt: skip


def decide_alias(client: MlflowClient, model_name: str, cand: Candidate, index_sha256: str) -> tuple[str | None, str]:
    """``(alias, why)``: ``champion`` when the gates pass and it beats the champion on the same index, ``challenger``
    when they pass otherwise, ``None`` when a gate fails."""
    if not cand.verdict.passed:
        return None, "not promoted: " + "; ".join(cand.verdict.failures)
    try:
        champ = client.get_model_version_by_alias(model_name, "champion")
    except mlflow.exceptions.MlflowException:
        return "champion", "passes the promotion gates; no champion yet"
    if champ.tags.get("index_sha256") != index_sha256:
        return "challenger", (
            f"passes the gates, but champion v{champ.version} was judged on another dataset index, so their "
            "validation scores do not compare; move the alias by hand if this one should replace it"
        )
    theirs = float(champ.tags.get("val_macro_f1", "nan"))
    ours = cand.val["macro_f1"]
    if ours > theirs or not np.isfinite(theirs):
        return "champion", f"passes the gates; val macro-F1 {ours:.4f} > champion v{champ.version}'s {theirs:.4f}"
    return "challenger", f"passes the gates; val macro-F1 {ours:.4f} <= champion v{champ.version}'s {theirs:.4f}"


def move_alias(
    client: MlflowClient, model_name: str, version: str, alias: str | None, why: str, package_run: str
) -> str:
    """Set ``alias`` on ``version`` (when not None) and record the move; returns the recorded line.

    The line goes to the version (``ferflow.promotion``), to the registered model's ``ferflow.alias_history``
    (newest first, last 50 moves), to the package run (tag ``ferflow.alias_move``), and a superseded champion gets
    ``ferflow.superseded_by``.
    """
    previous = None
    if alias is not None:
        try:
            previous = client.get_model_version_by_alias(model_name, alias).version
        except mlflow.exceptions.MlflowException:
            previous = None
        client.set_registered_model_alias(model_name, alias, version)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    target = f"@{alias}" if alias else "no alias"
    line = f"{when}: v{version} -> {target}" + (f" (was v{previous})" if previous else "") + f": {why}"
    client.set_model_version_tag(model_name, version, "ferflow.promotion", line)
    if alias == "champion" and previous and previous != version:
        client.set_model_version_tag(model_name, previous, "ferflow.superseded_by", f"v{version} ({when})")
    old = client.get_registered_model(model_name).tags.get(HISTORY_TAG, "")
    history = [line, *[x for x in old.splitlines() if x.strip()]][:HISTORY_LINES]
    client.set_registered_model_tag(model_name, HISTORY_TAG, "\n".join(history))
    client.set_tag(package_run, "ferflow.alias_move", line)
    return line


def gates_markdown(cand: Candidate, base: Baselines, ranked: list[Candidate]) -> str:
    """The gate checks and the candidate ranking as Markdown (for the Prefect artifact and the package run)."""
    lines = [
        f"Validation baselines: chance macro-F1 {base.chance_macro_f1:.3f}; always '{base.majority_class}' scores "
        f"accuracy {base.majority_share:.3f}, macro-F1 {base.majority_macro_f1:.3f}.\n",
        *(f"- {c}" for c in cand.verdict.summary().splitlines()),
        "\n| rank | student run | val macro-F1 | val accuracy | val ECE (calibrated) | gates |",
        "|---|---|---|---|---|---|",
    ]
    for i, c in enumerate(ranked[:10], 1):
        lines.append(f"| {i} | {c.name} (`{c.run_id[:8]}`) | {c.val['macro_f1']:.4f} | {c.val['accuracy']:.4f} | "
                     f"{c.val['ece']:.4f} | {'pass' if c.verdict.passed else 'fail'} |")  # fmt: skip
    return "\n".join(lines)
