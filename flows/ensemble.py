"""``tune_ensemble``: Ray Tune over teacher weights x temperature x seeds on the teachers' cached logits."""

from __future__ import annotations

from prefect import flow

from fer_spec.profile import PipelineConfig, Profile, RunOverrides, resolve_profile
from fer_spec.results import EnsembleResult, IndexRef, TeacherRun
from flows._common import out_root, require_index, require_teachers, run_name
from tasks.ensemble import tune_ensemble_task


def ensemble_stage(cfg: PipelineConfig, index: IndexRef, teachers: list[TeacherRun]) -> EnsembleResult:
    """The best ensemble by validation macro-F1 (near-ties by NLL), one MLflow parent run."""
    names = [t.name for t in cfg.teachers.teachers]
    best = tune_ensemble_task(cfg.ensemble, teachers, names, index, out_root())
    weights = ", ".join(f"{n} {w:.2f}" for n, w in zip(best.teacher_names, best.weights, strict=True))
    print(f"ensemble: {weights}, T={best.temperature}, val macro-F1 {best.metrics['macro_f1']:.3f}")
    return best


@flow(name="tune_ensemble", flow_run_name=run_name("ensemble"), log_prints=True)
def tune_ensemble_flow(
    profile: Profile = "demo", overrides: RunOverrides | None = None, config: PipelineConfig | None = None
) -> EnsembleResult:
    """Tune the teachers' ensemble weights and temperature across teacher seeds (needs the teachers stage).

    Args:
        profile: The shipped profile to run (configs/PROFILE.yaml).
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply).
    """
    cfg = resolve_profile(profile, overrides, config)
    index = require_index(cfg)
    return ensemble_stage(cfg, index, require_teachers(cfg, index))
