"""Detectors (YuNet on a real frame, Haar, full), eye alignment, IoU tracking, and bundle evaluation."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.data.synth import render_face
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.realtime import DETECTORS, DetectorConfig, create_detector, evaluate_bundle
from fer_core.realtime.detect import Detection
from fer_core.realtime.roi import aligned_crop, eye_angle
from fer_core.realtime.track import IoUTracker, Track, iou
from fer_core.taxonomy import FER_CLASSES
from tests.core.export.helpers import make_bundle

YUNET = Path("/work/shared/models/face_detection_yunet.onnx")
CLIP = Path("/work/shared/media/keshavoct98_vid0.mp4")


def _frame(idx: int = 30) -> np.ndarray:
    cap = cv2.VideoCapture(str(CLIP))
    cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


@pytest.mark.skipif(not (YUNET.is_file() and CLIP.is_file()), reason="shared YuNet model or clip absent")
def test_yunet_finds_the_face_with_landmarks_on_a_1080p_frame():
    frame = _frame()
    assert frame.shape[:2] == (1080, 1920)
    det = create_detector(DetectorConfig(kind="yunet", model_path=YUNET))
    faces = det.detect(frame)
    assert len(faces) >= 1
    x, y, w, h = faces[0].box
    assert 60 < w < 1200 and 0 <= x < 1920 and 0 <= y < 1080 and faces[0].score >= 0.7
    lm = faces[0].landmarks
    assert lm.shape == (5, 2)
    assert x <= lm[:, 0].min() and lm[:, 0].max() <= x + w  # landmarks mapped back to full-frame pixels
    assert lm[0, 0] < lm[1, 0]  # right eye appears left of the left eye
    haar = create_detector(DetectorConfig(kind="haar")).detect(frame)
    assert haar and iou(haar[0].box, faces[0].box) > 0.3  # both detectors agree on where the face is


def test_detector_registry_and_config_errors():
    assert DETECTORS.names() == ["full", "haar", "yunet"]
    with pytest.raises(ConfigError, match="valid: \\['full', 'haar', 'yunet'\\]"):
        create_detector(DetectorConfig(kind="dlib"))
    with pytest.raises(ConfigError, match="YuNet needs an existing model file"):
        create_detector(DetectorConfig(kind="yunet", model_path=Path("/nonexistent/yunet.onnx")))
    full = create_detector(DetectorConfig(kind="full")).detect(np.zeros((30, 40, 3), np.uint8))
    assert full[0].box == (0.0, 0.0, 40.0, 30.0)


def test_eye_alignment_levels_the_eyes():
    img = np.zeros((200, 200, 3), np.uint8)
    right, left = (70.0, 90.0), (130.0, 120.0)  # tilted by atan(30/60) ≈ 26.6°
    cv2.circle(img, (70, 90), 6, (0, 0, 255), -1)
    cv2.circle(img, (130, 120), 6, (0, 255, 0), -1)
    lm = np.array([right, left, (100, 130), (80, 150), (120, 160)], np.float32)
    assert eye_angle(lm) == pytest.approx(np.degrees(np.arctan2(30, 60)))
    crop = aligned_crop(img, (50.0, 55.0, 100.0, 100.0), lm, margin=0.2)
    assert crop.shape[:2] == (140, 140)
    ys_r, _ = np.nonzero(crop[..., 2] > 128)
    ys_l, _ = np.nonzero(crop[..., 1] > 128)
    assert abs(ys_r.mean() - ys_l.mean()) < 1.5


def test_tracker_keeps_ids_and_smooths_with_the_median():
    tr = IoUTracker(smooth=5, max_missed=1)
    a, b = (10.0, 10.0, 50.0, 50.0), (200.0, 10.0, 50.0, 50.0)
    seen, _ = tr.update([Detection(a), Detection(b)])
    assert [t.track_id for t in seen] == [0, 1]
    for dx in (2.0, -2.0, 40.0, 0.0):  # one outlier jump of 40 px
        seen, _ = tr.update([Detection((200.0, 10.0, 50.0, 50.0)), Detection((10.0 + dx, 10.0, 50.0, 50.0))])
    track0 = next(t for t in seen if t.track_id == 0)
    assert track0.box() == (10.0, 10.0, 50.0, 50.0)  # median of 10, 12, 8, 50, 10
    tr.update([])
    _, dropped = tr.update([])
    assert sorted(dropped) == [0, 1] and tr.tracks == []
    assert Track(3, deque([a])).box() == a


def test_evaluate_bundle_reports_metrics_and_no_face_counts(tmp_path):
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for c in FER_CLASSES:
        (data / c.capitalize()).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(data / c.capitalize() / f"{i}.png"), render_face(c, rng, size=48))
    bundle = make_bundle(tmp_path)
    out = evaluate_bundle(bundle, data)
    assert out["n"] == 14 and 0 <= out["accuracy"] <= 1 and out["nll"] > 0 and 0 <= out["ece"] <= 1
    assert set(out["per_class_f1"]) == set(FER_CLASSES) and out["no_face"] == 0
    json.dumps(out)
    det = evaluate_bundle(bundle, data, detect=True, detector="haar")
    assert det["n"] == 14 and 0 <= det["no_face"] <= 14 and det["no_face_rate"] == det["no_face"] / 14
    full = evaluate_bundle(bundle, data, detect=True, detector="full")
    assert full["no_face"] == 0 and full["accuracy"] == pytest.approx(out["accuracy"])  # margin clipped to frame
    (data / "Bored").mkdir()
    with pytest.raises(DataIntegrityError, match="unknown label 'Bored'"):
        evaluate_bundle(bundle, data)
