"""The shipped model (``models/fer2013``): its bundle verifies, and its card's held-out figures reproduce from the data.

The held-out file list beside the bundle names every image by path under the FER2013 folder release and its SHA-256,
so the reproduction runs on exactly the bytes the card was computed on (``../shared/data/fer2013`` on the team's
machines; the data is never committed).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fer_core.export.bundle import load_bundle, verify_bundle
from fer_core.realtime.evaluate import evaluate_file_list

REPO = Path(__file__).resolve().parents[2]
BUNDLE = REPO / "models" / "fer2013"
FILE_LIST = REPO / "models" / "fer2013.heldout.csv"
SHARED = Path(os.environ.get("FERFLOW_SHARED_DIR", REPO.parent / "shared"))
DATA = SHARED / "data" / "fer2013"
CLIP = sorted((SHARED / "media").glob("*.mp4"))


def _card_value(card: str, starts: str) -> float:
    row = next(line for line in card.splitlines() if line.startswith(f"| {starts}"))
    return float(row.rsplit("|", 2)[1])


def test_the_shipped_bundle_matches_its_manifest_and_fits_the_size_and_latency_contract():
    manifest = verify_bundle(BUNDLE)  # every file's SHA-256 and size
    assert manifest.files["model.onnx"].size <= 20 * 2**20
    bundle = load_bundle(BUNDLE, threads=1)
    assert bundle.classes == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert bundle.spec.size == (48, 48) and bundle.spec.channels == 1
    card = (BUNDLE / "model_card.md").read_text(encoding="utf-8")
    for section in ("## Intended use", "## Metrics", "## Limits", "## Data", "## Calibration", "## Lineage"):
        assert section in card, section


@pytest.mark.skipif(not DATA.is_dir(), reason=f"the FER2013 folder release is not at {DATA}; point "
                    "FERFLOW_SHARED_DIR at the folder holding data/fer2013")
def test_the_cards_held_out_accuracy_reproduces_from_the_data_to_a_tenth_of_a_point():
    card = (BUNDLE / "model_card.md").read_text(encoding="utf-8")
    got = evaluate_file_list(BUNDLE, FILE_LIST, DATA)
    n = int(re.search(r"held-out originals: accuracy \(this ONNX bundle, (\d+) images\)", card).group(1))
    assert got["n"] == n
    assert got["accuracy"] == pytest.approx(_card_value(card, "held-out originals: accuracy"), abs=0.001)
    assert got["macro_f1"] == pytest.approx(_card_value(card, "held-out originals: macro-F1"), abs=0.001)


@pytest.mark.skipif(not CLIP, reason=f"no video clip in {SHARED / 'media'}; point FERFLOW_SHARED_DIR at the folder "
                    "holding media/*.mp4")
def test_the_realtime_runner_uses_the_shipped_model_when_no_bundle_is_given(tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "ferflow")
    out = subprocess.run([cli, "realtime", "--source", str(CLIP[0]), "--out", str(tmp_path / "rt"), "--display", "none",
                          "--max-frames", "8"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    assert summary["frames"] == 8 and summary["fps"] > 0
    start = json.loads((tmp_path / "rt" / "events.jsonl").read_text().splitlines()[0])
    assert start["type"] == "session_start" and start["classes"] == list(load_bundle(BUNDLE).classes)
