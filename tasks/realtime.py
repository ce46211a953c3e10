"""Realtime demo task: render a labelled synthetic video, run the bundle headless on it, score the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

from fer_core.data.synth import render_video
from fer_core.realtime.runner import RunnerConfig, run
from fer_core.realtime.score import score
from fer_core.realtime.stabilize import StabilizerConfig
from fer_core.taxonomy import CLASS_TO_INDEX, FER_CLASSES


def _keys_from_sidecar(sidecar: Path, out: Path) -> Path:
    """Operator label events (keys 1-7) at each segment start, as the team's protocol logs them."""
    frames = json.loads(sidecar.read_text())["frames"]
    lines, last = [], None
    for f in frames:
        if f["label"] != last:
            lines.append(f"{f['index']} {CLASS_TO_INDEX[f['label']] + 1}")
            last = f["label"]
    path = out / "keys.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@task(name="realtime_demo")
def realtime_demo(bundle: str, seconds_per_label: float, stabilizer: StabilizerConfig) -> dict[str, Any]:
    """Headless runner on a rendered synthetic video: annotated video, per-frame CSV, events log, Protocol-Lite."""
    out = Path(bundle).parent.parent / "realtime" / Path(bundle).name
    out.mkdir(parents=True, exist_ok=True)
    video = render_video(out / "synthetic.mp4", [(c, seconds_per_label) for c in FER_CLASSES], fps=15)
    keys = _keys_from_sidecar(Path(str(video) + ".json"), out)
    summary = run(bundle, str(video), RunnerConfig(display="video", keys_file=keys, stabilizer=stabilizer), out)
    metrics, table = score(out)
    create_markdown_artifact(
        key="realtime-demo",
        markdown=f"# Realtime demo\n\n{table}",
        description="The packaged bundle run headless on a rendered video, scored with Protocol-Lite",
    )
    return {
        "video": str(summary.video_path),
        "csv": str(summary.csv_path),
        "fps": summary.fps,
        "score": {k: metrics[k] for k in ("accuracy", "macro_f1", "jitter_per_min", "unknown_rate") if k in metrics},
    }
