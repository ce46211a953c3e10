"""The embedded demo: the whole pipeline on synthetic data, then the realtime runner headless on a synthetic video."""

from __future__ import annotations

from prefect import flow

from fer_spec.profile import PipelineConfig, Profile
from flows._common import run_name, stage_config
from flows.pipeline import pipeline_flow
from tasks.demo import demo_summary
from tasks.realtime import realtime_demo


@flow(name="demo", flow_run_name=run_name("demo"), log_prints=True)
def demo_flow(profile: Profile = "demo", config: PipelineConfig | None = None) -> str:
    """Run ``pipeline`` embedded, then the runner on a rendered video; return where to look.

    Args:
        profile: The shipped profile to run (configs/PROFILE.yaml).
        config: Advanced: a whole typed configuration used instead of the profile.
    """
    cfg = stage_config(profile, None, config)
    out = pipeline_flow(config=cfg)
    live = realtime_demo(out.bundle.bundle, cfg.realtime.video_seconds_per_label, cfg.realtime.stabilizer)
    return demo_summary(out, live)
