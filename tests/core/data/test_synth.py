"""Synthetic dataset: determinism, completeness, face-detector plausibility, learnability, video + sidecar."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from fer_core.data.synth import render_dataset, render_face, render_video
from fer_core.errors import ConfigError
from fer_core.taxonomy import FER_CLASSES


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert render_dataset(a, per_class=3, size=32, seed=5) == {k: 3 for k in FER_CLASSES}
    render_dataset(b, per_class=3, size=32, seed=5)
    render_dataset(c, per_class=3, size=32, seed=6)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert fa == fb
    assert fa.keys() == fc.keys()
    assert all(fa[k] != fc[k] for k in fa)


def test_class_folders_complete_and_images_are_grey_uint8(tmp_path):
    render_dataset(tmp_path, per_class=4, size=40, seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FER_CLASSES)
    for label in FER_CLASSES:
        names = sorted(p.name for p in (tmp_path / label).iterdir())
        assert names == sorted(f"{label}_{i}.png" for i in range(4))
        img = cv2.imread(str(tmp_path / label / f"{label}_0.png"), cv2.IMREAD_UNCHANGED)
        assert img.dtype == np.uint8 and img.shape == (40, 40)
        assert img.std() > 10  # a face, not a flat tile


def test_image_independent_of_per_class(tmp_path):
    render_dataset(tmp_path / "small", per_class=2, size=32, seed=1)
    render_dataset(tmp_path / "big", per_class=5, size=32, seed=1)
    assert (tmp_path / "small/fear/fear_1.png").read_bytes() == (tmp_path / "big/fear/fear_1.png").read_bytes()


def test_bad_arguments_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown expression 'joy'"):
        render_face("joy", np.random.default_rng(0), 48)
    with pytest.raises(ConfigError, match="per_class"):
        render_dataset(tmp_path, per_class=0)
    with pytest.raises(ConfigError, match="seconds must be > 0"):
        render_video(tmp_path / "v.mp4", [("happy", 0.0)])


def test_haar_frontal_detector_finds_most_synthetic_faces():
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    hits = 0
    for k, label in enumerate(FER_CLASSES * 2):
        rng = np.random.default_rng([3, k])
        img = render_face(label, rng, 160 + 10 * k)
        hits += len(cascade.detectMultiScale(img, 1.1, 5, minSize=(40, 40))) > 0
    assert hits >= 11, f"Haar found {hits}/14 synthetic faces"


def _make(per_class: int, stream: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for k, label in enumerate(FER_CLASSES):
        for i in range(per_class):
            xs.append(render_face(label, np.random.default_rng([stream, k, i]), size))
            ys.append(k)
    x = torch.from_numpy(np.stack(xs))[:, None].float() / 255.0
    return (x - 0.5) / 0.25, torch.tensor(ys)


def test_tiny_cnn_learns_expressions_well_above_chance():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    xt, yt = _make(40, 1, 32)
    xv, yv = _make(15, 2, 32)

    def block(cin: int, cout: int) -> list[torch.nn.Module]:
        return [torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.BatchNorm2d(cout), torch.nn.ReLU()]

    net = torch.nn.Sequential(
        *block(1, 16), torch.nn.MaxPool2d(2), *block(16, 32), torch.nn.MaxPool2d(2), *block(32, 64),
        torch.nn.AdaptiveAvgPool2d(3), torch.nn.Flatten(), torch.nn.Dropout(0.3), torch.nn.Linear(576, 7),
    )  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(36):
        net.train()
        perm = torch.randperm(len(yt), generator=g)
        for b in range(0, len(yt), 32):
            i = perm[b : b + 32]
            flip = (torch.rand(len(i), generator=g) < 0.5).view(-1, 1, 1, 1)
            loss = torch.nn.functional.cross_entropy(net(torch.where(flip, xt[i].flip(-1), xt[i])), yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(xv).argmax(1) == yv).float().mean().item()
    assert acc >= 0.5, f"val accuracy {acc:.3f} (chance 1/7)"


def test_video_frames_match_sidecar_and_show_a_face(tmp_path):
    out = render_video(tmp_path / "clip.mp4", [("happy", 0.4), ("sad", 0.6)], fps=10, seed=2)
    side = json.loads((tmp_path / "clip.mp4.json").read_text())
    assert side["synthetic"] is True and side["fps"] == 10 and side["size"] == [320, 240]
    assert [f["label"] for f in side["frames"]] == ["happy"] * 4 + ["sad"] * 6
    assert side["segments"][1] == {"label": "sad", "start_s": 0.4, "end_s": 1.0}
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    assert len(frames) == 10 and frames[0].shape == (240, 320, 3)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    boxes = cascade.detectMultiScale(cv2.cvtColor(frames[5], cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(60, 60))
    assert len(boxes) >= 1 and 100 <= max(b[3] for b in boxes) <= 240
    assert not list(tmp_path.glob(".*"))  # no temp files left behind
