"""The students stage: ``distill`` (the packaged family's seed units, plus the sweep and Nested Learning when the
profile enables them, all submitted at once), and ``distill_sweep`` / ``nested_learning`` on their own."""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from fer_adapters.units import check_placeable
from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides
from fer_spec.results import EnsembleResult, IndexRef, StudentRun, StudentsResult, SweepResult, TeacherRun
from flows._common import run_name, stage_config, stage_flow, upstream_of_students
from flows.teachers import UNIT_SUBMITTERS
from tasks.distill import distill_student, distill_sweep_task
from tasks.nested import nested_student


def students_stage(
    cfg: PipelineConfig, index: IndexRef, teachers: list[TeacherRun], ensemble: EnsembleResult,
    seeds: list[int] | None = None,
) -> StudentsResult:  # fmt: skip
    """Every student unit of the profile submitted concurrently: seeds, sweep trials, Nested Learning seeds."""
    st, spec = cfg.student, cfg.data.preprocess
    check_placeable("student", st.resources)  # refuse before submitting; Ray starts in this thread
    units = [distill_student.submit(st, s, teachers, ensemble, index, spec) for s in seeds or st.seeds]
    sweep = distill_sweep_task.submit(st, teachers, ensemble, index, spec) if st.sweep.enabled else None
    nested_seeds = st.seeds if st.nested else []
    nested = [nested_student.submit(st, s, teachers, ensemble, index, spec) for s in nested_seeds]
    students: list[StudentRun] = [u.result() for u in units]
    for s in students:
        print(f"student {s.name}: val macro-F1 {s.val_metrics['macro_f1']:.3f} on {s.worker_node}")
    return StudentsResult(
        students=students, sweep=sweep.result() if sweep else None, nested=[n.result() for n in nested]
    )


@flow(
    name="distill",
    flow_run_name=run_name("students"),
    task_runner=ThreadPoolTaskRunner(max_workers=UNIT_SUBMITTERS),
    log_prints=True,
)
@stage_flow
def distill_flow(
    profile: Profile = "demo", overrides: RunOverrides = NO_OVERRIDES, config: PipelineConfig | None = None,
    index: IndexRef | None = None, teachers: list[TeacherRun] | None = None, ensemble: EnsembleResult | None = None,
) -> StudentsResult:
    """Distil the profile's student for each seed from the teachers' logits (needs teachers and ensemble)."""
    cfg = stage_config(profile, overrides, config)
    return students_stage(cfg, *upstream_of_students(cfg, index, teachers, ensemble))


@flow(name="distill_sweep", flow_run_name=run_name("distillation sweep"), log_prints=True)
@stage_flow
def distill_sweep_flow(
    profile: Profile = "demo", overrides: RunOverrides = NO_OVERRIDES, config: PipelineConfig | None = None,
    index: IndexRef | None = None, teachers: list[TeacherRun] | None = None, ensemble: EnsembleResult | None = None,
) -> SweepResult:
    """Ray Tune over strategy x loss x alpha/beta/T x seeds; the aggregate compares each family with the baseline."""
    cfg = stage_config(profile, overrides, config)
    index, teachers, ensemble = upstream_of_students(cfg, index, teachers, ensemble)
    sweep = distill_sweep_task(cfg.student, teachers, ensemble, index, cfg.data.preprocess)
    for row in sweep.table:
        print(row)
    return sweep


@flow(
    name="nested_learning",
    flow_run_name=run_name("nested learning"),
    task_runner=ThreadPoolTaskRunner(max_workers=UNIT_SUBMITTERS),
    log_prints=True,
)
@stage_flow
def nested_learning_flow(
    profile: Profile = "demo", overrides: RunOverrides = NO_OVERRIDES, config: PipelineConfig | None = None,
    index: IndexRef | None = None, teachers: list[TeacherRun] | None = None, ensemble: EnsembleResult | None = None,
) -> list[StudentRun]:
    """Nested Learning students (memory-bounded deep optimizer), one unit per seed."""
    cfg = stage_config(profile, overrides, config)
    index, teachers, ensemble = upstream_of_students(cfg, index, teachers, ensemble)
    st = cfg.student
    futures = [nested_student.submit(st, s, teachers, ensemble, index, cfg.data.preprocess) for s in st.seeds]
    return [f.result() for f in futures]
