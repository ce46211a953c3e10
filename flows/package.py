"""``package``: the best calibrated student → ONNX bundle → registry version and alias."""

from __future__ import annotations

from prefect import flow

from fer_spec.profile import PipelineConfig, Profile, RunOverrides, resolve_profile
from fer_spec.results import BundleRef, IndexRef
from flows._common import out_root, require_calibrated, require_students, run_name, upstream_of_students
from tasks.package import package_student
from tasks.publish import publish_bundle


def package_stage(cfg: PipelineConfig, index: IndexRef) -> BundleRef:
    """Select by the gates, export and verify ONNX, write the bundle, register it, move the alias, publish."""
    pkg = package_student(cfg.package, index, cfg.data.preprocess, out_root())
    if cfg.publish_uri and pkg.alias is not None:  # only promoted bundles are published for other machines
        pkg = pkg.model_copy(update={"published_bundle": publish_bundle(pkg.bundle, cfg.publish_uri)})
    print(f"bundle {pkg.bundle} -> {cfg.package.model_name} v{pkg.version} @{pkg.alias or 'unchanged'}")
    return pkg


@flow(name="package", flow_run_name=run_name("package"), log_prints=True)
def package_flow(
    profile: Profile = "demo", overrides: RunOverrides | None = None, config: PipelineConfig | None = None
) -> BundleRef:
    """Package the best calibrated student for the realtime runner (needs the calibrate stage).

    Args:
        profile: The shipped profile to run (configs/PROFILE.yaml).
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply).
    """
    cfg = resolve_profile(profile, overrides, config)
    index, teachers, ensemble = upstream_of_students(cfg)
    require_calibrated(cfg, require_students(cfg, index, teachers, ensemble))
    return package_stage(cfg, index)
