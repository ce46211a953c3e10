"""``package``: the best of the calibrated students it is given → ONNX bundle → registry version and alias."""

from __future__ import annotations

from prefect import flow

from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides, effective_ingest
from fer_spec.results import BundleRef, CalibratedStudent, IndexRef
from flows._common import (
    require_calibrated,
    require_index,
    require_students,
    run_name,
    stage_config,
    stage_flow,
    upstream_of_students,
)
from tasks.package import package_student
from tasks.publish import publish_bundle


def data_note(cfg: PipelineConfig) -> str:
    """What the profile's students were trained on, for the model card (never a default that may be wrong)."""
    names = ", ".join(s.name or s.kind for s in effective_ingest(cfg).sources)
    if cfg.data.synth is not None:
        return f"synthetic faces drawn by `ferflow data synth` (profile {cfg.name!r}, sources: {names}), not real faces"
    return f"the profile {cfg.name!r} sources: {names}"


def package_stage(cfg: PipelineConfig, index: IndexRef, calibrated: list[CalibratedStudent]) -> BundleRef:
    """Rank exactly ``calibrated``, export and verify ONNX, write the bundle, register it, move the alias, publish."""
    pkg = package_student(cfg.package, index, cfg.data.preprocess, calibrated, data_note(cfg))
    if cfg.publish_uri and pkg.alias is not None:  # only promoted bundles are published for other machines
        pkg = pkg.model_copy(update={"published_bundle": publish_bundle(pkg.bundle, cfg.publish_uri)})
    why = "" if pkg.alias else " (not promoted: see the package artifact's gates)"
    print(f"bundle {pkg.bundle} -> {cfg.package.model_name} v{pkg.version} @{pkg.alias or 'unchanged'}{why}")
    return pkg


@flow(name="package", flow_run_name=run_name("package"), log_prints=True)
@stage_flow
def package_flow(
    profile: Profile = "demo", overrides: RunOverrides = NO_OVERRIDES, config: PipelineConfig | None = None,
    index: IndexRef | None = None, calibrated: list[CalibratedStudent] | None = None,
) -> BundleRef:
    """Package the best calibrated student of the packaged family for the realtime runner (needs calibrate)."""
    cfg = stage_config(profile, overrides, config)
    index = require_index(cfg, index)
    if calibrated is None:
        _, teachers, ensemble = upstream_of_students(cfg, index)
        calibrated = require_calibrated(cfg, require_students(cfg, index, teachers, ensemble))
    return package_stage(cfg, index, calibrated)
