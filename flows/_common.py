"""What every stage flow shares: the profile parameters, run names, and finding upstream results in the store.

``pipeline`` hands each stage the typed results of the stages before it. A stage run on its own (a deployment, a
command) never runs its upstream stage: it recomputes the store keys its inputs would be under (from the profile and
the upstream results' hashes) and fails at once, naming the stage to run, when one is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar, get_args

from prefect.runtime import deployment, flow_run

from fer_adapters.placement import PROFILE
from fer_core.errors import MissingUpstreamError
from fer_spec.profile import PipelineConfig, Profile, RunOverrides, profile_path, resolve_profile
from fer_spec.results import CalibratedStudent, EnsembleResult, IndexRef, StudentRun, TeacherRun

# The lookups import their task modules when called: a stage command (``ferflow ingest``) imports only its own.

F = TypeVar("F", bound=Callable)

PROFILE_ARGS = """
        profile: The shipped profile to run (configs/PROFILE.yaml).
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply)."""
UPSTREAM_ARGS = {
    "index": "Upstream: the ingest stage's dataset (the pipeline hands it over; empty: looked up in the store).",
    "teachers": "Upstream: the teacher runs (the pipeline hands them over; empty: looked up in the store).",
    "ensemble": "Upstream: the ensemble sweep's result (the pipeline hands it over; empty: looked up in the store).",
    "students": "Upstream: the students to calibrate (the pipeline hands them over; empty: looked up in the store).",
    "calibrated": "Upstream: the calibrated candidates (the pipeline hands them over; empty: the packaged family's, "
                  "looked up in the store).",
}


def stage_flow(fn: F) -> F:
    """Give a stage flow the shared ``Args:`` lines of its profile and upstream parameters (the UI shows them)."""
    doc = (fn.__doc__ or "").rstrip()
    params = fn.__code__.co_varnames[: fn.__code__.co_argcount]
    extra = PROFILE_ARGS + "".join(f"\n        {p}: {UPSTREAM_ARGS[p]}" for p in params if p in UPSTREAM_ARGS)
    fn.__doc__ = doc.replace("    Args:", "    Args:" + extra, 1) if "Args:" in doc else f"{doc}\n\n    Args:{extra}\n"
    return fn


def stage_config(profile: str, overrides: RunOverrides | None, config: PipelineConfig | None) -> PipelineConfig:
    """The profile a stage runs, validated whole before anything runs; every MLflow run of the stage (its Ray units
    and Tune trials too) is tagged ``ferflow.profile`` with its name."""
    cfg = resolve_profile(profile, overrides, config)
    PROFILE.set(cfg.name)
    return cfg


# The server names a deployment run created without a name "adjective-animal" (coolname).
_SERVER_NAME = re.compile(r"^[a-z]+-[a-z]+$")


def run_name(stage: str) -> Callable[[], str]:
    """``flow_run_name`` of a stage flow: ``<profile> · <stage>`` (the config's name when one is given), except for a
    deployment run created with a name of its own (the UI's run form, ``prefect deployment run --name``,
    ``run_deployment(flow_run_name=...)``): a person chose that one, and it is kept."""

    def name() -> str:
        given = flow_run.name
        if given and deployment.id and not _SERVER_NAME.match(given):
            return given
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
    shipped = profile_path(cfg.name) if cfg.name in get_args(Profile) else None
    where = f"configs/{shipped.name}" if shipped is not None else "the same profile file"
    command = "ingest" if stage == "ingest" else stage.replace("_", "-")
    return MissingUpstreamError(
        f"stage {stage!r} has not run for profile {cfg.name!r}: {what} is missing from the artifact store. "
        f"Run `ferflow {command} -c {where}` (or `ferflow pipeline -c {where}`) with the same FERFLOW_STORE first"
    )


def require_index(cfg: PipelineConfig, index: IndexRef | None = None) -> IndexRef:
    """The profile's published dataset (the pipeline's, or the ingest stage's result in the store)."""
    if index is not None:
        return index
    from tasks.publish import find_ingested

    found = find_ingested(cfg)
    if found is None:
        raise _missing("ingest", "the published dataset", cfg)
    return found


def require_teachers(cfg: PipelineConfig, index: IndexRef, teachers: list[TeacherRun] | None = None
                     ) -> list[TeacherRun]:  # fmt: skip
    """Every (teacher, seed) unit of this profile, finished on this index."""
    if teachers is not None:
        return teachers
    from tasks.teachers import find_teacher

    runs, missing = [], []
    for seed in cfg.teachers.seeds:
        for t in cfg.teachers.teachers:
            run = find_teacher(t, seed, index, cfg.data.preprocess)
            (runs.append(run) if run is not None else missing.append(f"{t.name} seed {seed}"))
    if missing:
        raise _missing("train_teachers", f"teacher runs {missing}", cfg)
    return runs


def require_ensemble(cfg: PipelineConfig, teachers: list[TeacherRun], ensemble: EnsembleResult | None = None
                     ) -> EnsembleResult:  # fmt: skip
    """The ensemble sweep over these teacher runs."""
    if ensemble is not None:
        return ensemble
    from tasks.ensemble import find_ensemble

    found = find_ensemble(cfg.ensemble, teachers)
    if found is None:
        raise _missing("tune_ensemble", "the ensemble sweep over these teachers", cfg)
    return found


def require_students(
    cfg: PipelineConfig, index: IndexRef, teachers: list[TeacherRun], ensemble: EnsembleResult,
    students: list[StudentRun] | None = None,
) -> list[StudentRun]:  # fmt: skip
    """The packaged family's student units (one per profile seed)."""
    if students is not None:
        return students
    from tasks.distill import find_student

    runs, missing = [], []
    for seed in cfg.student.seeds:
        run = find_student(cfg.student, seed, teachers, ensemble, index, cfg.data.preprocess)
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


def upstream_of_students(
    cfg: PipelineConfig, index: IndexRef | None = None, teachers: list[TeacherRun] | None = None,
    ensemble: EnsembleResult | None = None,
) -> tuple[IndexRef, list[TeacherRun], EnsembleResult]:  # fmt: skip
    """Index, teachers and ensemble: what every student-side stage starts from (given, or found in the store)."""
    index = require_index(cfg, index)
    teachers = require_teachers(cfg, index, teachers)
    return index, teachers, require_ensemble(cfg, teachers, ensemble)
