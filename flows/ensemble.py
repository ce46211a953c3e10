"""``tune_ensemble``: Ray Tune over teacher weights x temperature x seeds on the teachers' cached logits."""

from __future__ import annotations

from prefect import flow

from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides
from fer_spec.results import EnsembleResult, IndexRef, TeacherRun
from flows._common import require_index, require_teachers, run_name, stage_config, stage_flow
from tasks.ensemble import tune_ensemble_task


def ensemble_stage(cfg: PipelineConfig, index: IndexRef, teachers: list[TeacherRun]) -> EnsembleResult:
    """The best ensemble by validation macro-F1 (near-ties by NLL), one MLflow parent run."""
    names = [t.name for t in cfg.teachers.teachers]
    best = tune_ensemble_task(cfg.ensemble, teachers, names, index)
    weights = ", ".join(f"{n} {w:.2f}" for n, w in zip(best.teacher_names, best.weights, strict=True))
    print(f"ensemble: {weights}, T={best.temperature}, val macro-F1 {best.metrics['macro_f1']:.3f}")
    unused = [n for n, w in zip(best.teacher_names, best.weights, strict=True) if w == 0]
    if unused:
        print(f"ensemble: {', '.join(unused)} get weight 0: no mix with them scored within "
              f"{cfg.ensemble.f1_tolerance} of the best validation macro-F1 at a lower NLL, so students that take "
              "the ensemble's weights learn from the other teachers only")
    return best


@flow(name="tune_ensemble", flow_run_name=run_name("ensemble"), log_prints=True)
@stage_flow
def tune_ensemble_flow(
    profile: Profile = "demo", overrides: RunOverrides = NO_OVERRIDES, config: PipelineConfig | None = None,
    index: IndexRef | None = None, teachers: list[TeacherRun] | None = None,
) -> EnsembleResult:
    """Tune the teachers' ensemble weights and temperature across teacher seeds (needs the teachers stage).
    """
    cfg = stage_config(profile, overrides, config)
    index = require_index(cfg, index)
    return ensemble_stage(cfg, index, require_teachers(cfg, index, teachers))
