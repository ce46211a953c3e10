"""The ingest stage of a profile: render synthetic data if asked, then ingest unless a verified index exists."""

from __future__ import annotations

from prefect import flow

from fer_spec.profile import PipelineConfig, Profile, RunOverrides, effective_ingest, resolve_profile, synth_dir
from fer_spec.results import IndexRef
from flows._common import run_name
from flows.ingest import ingest_flow
from tasks.data import existing_index, render_synthetic
from tasks.publish import publish_index


def ingest_stage(cfg: PipelineConfig) -> IndexRef:
    """Render synthetic data if the profile asks, then ingest unless an identical, verified index exists."""
    if cfg.data.synth is not None:
        s = cfg.data.synth
        render_synthetic(str(synth_dir(cfg)), s.per_class, s.size, s.seed)
    ing = effective_ingest(cfg)
    data = existing_index(ing) or ingest_flow(ing)
    return publish_index(data, cfg.publish_uri) if cfg.publish_uri else data


@flow(name="ingest_stage", flow_run_name=run_name("ingest"), log_prints=True)
def ingest_pipeline_flow(
    profile: Profile = "demo", overrides: RunOverrides | None = None, config: PipelineConfig | None = None
) -> IndexRef:
    """The ingest stage of a profile: dataset index, manifest, findings and balance report.

    Args:
        profile: The shipped profile to run (configs/PROFILE.yaml).
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply).
    """
    return ingest_stage(resolve_profile(profile, overrides, config))

