"""What every stage flow shares: parameters, run names, the output root and finding upstream results by hash.

A stage run on its own never runs its upstream stage: it recomputes the content-addressed folders its inputs would
be in (from the profile and the upstream results' hashes) and fails at once, naming the stage to run, when one is
missing.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect.runtime import flow_run

from fer_core.errors import MissingUpstreamError
from fer_spec.profile import PipelineConfig, effective_ingest
from fer_spec.results import CalibratedStudent, EnsembleResult, IndexRef, StudentRun, TeacherRun
from fer_spec.settings import Settings

# The lookups import their task modules when called: a stage command (``ferflow ingest``) imports only its own.


def out_root() -> str:
    """Run outputs live under ``$FERFLOW_HOME/runs`` in content-addressed folders."""
    root = Settings.from_env().home / "runs"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


def run_name(stage: str) -> Callable[[], str]:
    """``flow_run_name`` of a stage flow: ``<profile> · <stage>`` (the config's name when one is given)."""

    def name() -> str:
        params = flow_run.parameters or {}
        cfg = params.get("config")
        if isinstance(cfg, dict):
            label = cfg.get("name", "custom")
        elif cfg is not None:
            label = cfg.name
        else:
            label = params.get("profile", "demo")
        return f"{label} · {stage}"

    return name


def _missing(stage: str, what: str, cfg: PipelineConfig) -> MissingUpstreamError:
    return MissingUpstreamError(
        f"stage {stage!r} has not run for profile {cfg.name!r}: {what} is missing. "
        f"Run `ferflow {stage.replace('_', '-')} -c <profile>` (or the `pipeline`) first"
    )


def require_index(cfg: PipelineConfig) -> IndexRef:
    """The ingested index of this profile (verified against its manifest and files)."""
    from tasks.data import existing_index

    index = existing_index.fn(effective_ingest(cfg), strict=True)  # damaged: say so, not "has not run"
    if index is None:
        raise _missing("ingest", "the dataset index", cfg)
    return index


def require_teachers(cfg: PipelineConfig, index: IndexRef) -> list[TeacherRun]:
    """Every (teacher, seed) unit of this profile, finished on this index."""
    from tasks.teachers import find_teacher

    runs, missing = [], []
    for seed in cfg.teachers.seeds:
        for t in cfg.teachers.teachers:
            run = find_teacher(t, seed, cfg.teachers.resources, index, cfg.data.preprocess, out_root())
            (runs.append(run) if run is not None else missing.append(f"{t.name} seed {seed}"))
    if missing:
        raise _missing("train_teachers", f"teacher runs {missing}", cfg)
    return runs


def require_ensemble(cfg: PipelineConfig, teachers: list[TeacherRun]) -> EnsembleResult:
    """The ensemble sweep over these teacher runs."""
    from tasks.ensemble import find_ensemble

    found = find_ensemble(cfg.ensemble, teachers, out_root())
    if found is None:
        raise _missing("tune_ensemble", "the ensemble sweep over these teachers", cfg)
    return found


def require_students(
    cfg: PipelineConfig, index: IndexRef, teachers: list[TeacherRun], ensemble: EnsembleResult
) -> list[StudentRun]:
    """The packaged family's student units (one per profile seed)."""
    from tasks.distill import find_student

    runs, missing = [], []
    for seed in cfg.student.seeds:
        run = find_student(cfg.student, seed, teachers, ensemble, index, cfg.data.preprocess, out_root())
        (runs.append(run) if run is not None else missing.append(seed))
    if missing:
        raise _missing("distill", f"student runs for seeds {missing}", cfg)
    return runs


def require_calibrated(cfg: PipelineConfig, students: list[StudentRun]) -> list[CalibratedStudent]:
    """The calibration of every packaged-family student."""
    from tasks.calibrate import find_calibrated

    found = [find_calibrated(s) for s in students]
    missing = [s.name for s, c in zip(students, found, strict=True) if c is None]
    if missing:
        raise _missing("calibrate", f"calibration of {missing}", cfg)
    return [c for c in found if c is not None]


def upstream_of_students(cfg: PipelineConfig) -> tuple[IndexRef, list[TeacherRun], EnsembleResult]:
    """Index, teachers and ensemble: what every student-side stage starts from."""
    index = require_index(cfg)
    teachers = require_teachers(cfg, index)
    return index, teachers, require_ensemble(cfg, teachers)
