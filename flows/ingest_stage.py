"""The ingest stage of a profile: render synthetic data if asked, then ingest unless a verified index exists."""

from __future__ import annotations

from prefect import flow

from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides, effective_ingest, synth_dir
from fer_spec.results import IndexRef
from flows._common import run_name, stage_config, stage_flow
from flows.ingest import ingest_flow
from tasks.data import existing_index, render_synthetic
from tasks.publish import publish_dataset_task, publish_index


def ingest_stage(cfg: PipelineConfig) -> IndexRef:
    """Render synthetic data if the profile asks, then ingest unless an identical, verified index exists."""
    if cfg.data.synth is not None:
        s = cfg.data.synth
        render_synthetic(str(synth_dir(cfg)), s.per_class, s.size, s.seed)
    ing = effective_ingest(cfg)
    data = publish_dataset_task(cfg, existing_index(ing) or ingest_flow(ing))
    return publish_index(data, cfg.publish_uri) if cfg.publish_uri else data


@flow(name="ingest_stage", flow_run_name=run_name("ingest"), log_prints=True)
@stage_flow
def ingest_pipeline_flow(
    profile: Profile = "demo", overrides: RunOverrides = NO_OVERRIDES, config: PipelineConfig | None = None
) -> IndexRef:
    """The ingest stage of a profile: dataset index, manifest, findings and balance report.
    """
    return ingest_stage(stage_config(profile, overrides, config))

