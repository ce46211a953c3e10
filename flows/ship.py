"""``ship``: publish a profile's packaged champion as the repository's shipped model, with its full model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from fer_spec.profile import NO_OVERRIDES, PipelineConfig, Profile, RunOverrides
from flows._common import run_name, stage_config
from tasks.ship import ship_model


@flow(name="ship", flow_run_name=run_name("ship"), log_prints=True)
def ship_flow(
    out_dir: str,
    profile: Profile = "demo",
    overrides: RunOverrides = NO_OVERRIDES,
    config: PipelineConfig | None = None,
    report_dir: str | None = None,
) -> dict[str, Any]:
    """Evaluate the profile's packaged champion on its held-out split through ONNX and write it to ``out_dir``.

    Args:
        out_dir: The shipped bundle folder (e.g. models/fer2013); its held-out file list goes beside it.
        profile: The shipped profile whose pipeline ran (configs/PROFILE.yaml).
        overrides: Optional changes to the profile: seeds, epochs, sweep on/off, publish URI.
        config: Advanced: a whole typed configuration used instead of the profile (the overrides still apply).
        report_dir: The profile's report folder, for the seed statistics (default: $FERFLOW_HOME/reports/PROFILE).
    """
    cfg = stage_config(profile, overrides, config)
    res = ship_model(cfg, Path(out_dir), Path(report_dir) if report_dir else None)
    h = res["heldout"]
    print(f"shipped {res['bundle']} (registry v{res['version']}): held-out accuracy {h['accuracy']:.4f}, "
          f"macro-F1 {h['macro_f1']:.4f}, ECE {h['ece']:.4f} on {h['n']} images; list {res['file_list']}")
    return res
