"""Synthetic embedded dataset: procedural grey faces whose brows, eyes, nose and mouth encode the 7 FER expressions.

Everything here is SYNTHETIC: drawn cartoons, not photographs of people. They exist so the whole pipeline (ingest,
training, distillation, packaging, the realtime runner) can run end to end on a laptop with no download. Numbers
measured on them say nothing about real-world FER accuracy.

A face is an identity (face shape, skin and hair tone, feature spacing) × an expression (brow raise and slant, eye
opening, mouth curve/opening/width, nose wrinkle, asymmetry, with per-sample intensity jitter) × a pose (small
rotation, translation, scale, yaw-like squeeze) × a scene (plain background, lighting gradient, sensor noise). Faces are
drawn at 4× and downscaled with ``INTER_AREA`` (anti-aliasing). Shading is Haar-friendly (dark eye sockets and brows,
bright forehead, cheeks and nose bridge, dark hair), so OpenCV's frontal-face cascade finds most of them.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from fer_core.errors import ConfigError
from fer_core.io import atomic_write_bytes, atomic_write_json
from fer_core.taxonomy import CLASS_TO_INDEX, FER_CLASSES

_SS = 4  # supersampling factor


@dataclass(frozen=True)
class Identity:
    """Who the face is; fractions are of the face half-width ``rx`` or half-height ``ry``."""

    aspect: float  # rx / ry
    skin: float
    hair: float | None
    hairline: float  # × ry above the centre
    eye_dx: float  # × rx
    eye_y: float  # × ry (negative = up)
    eye_w: float  # × rx
    brow_gap: float  # × ry above the eye
    brow_thick: float  # × ry
    nose_len: float  # × ry below the eye line
    mouth_y: float  # × ry
    mouth_w: float  # × rx
    lip: float  # lip tone as a fraction of skin


@dataclass(frozen=True)
class Expression:
    """How the face moves; distances are × ``ry`` unless noted."""

    brow_raise: float = 0.0
    brow_inner: float = 0.0  # inner brow end: + up (sad, fear), − down-in (angry)
    eye_open: float = 1.0
    curve: float = 0.0  # mouth corners: + up (smile), − down
    mouth_open: float = 0.0
    mouth_width: float = 1.0  # × identity mouth width
    o_mouth: bool = False
    wrinkle: float = 0.0  # nose wrinkle + raised upper lip (disgust)
    asym: float = 0.0  # one-sided upper-lip raise
    folds: float = 0.0  # nasolabial folds (smile)


@dataclass(frozen=True)
class Pose:
    angle: float = 0.0  # degrees
    squeeze: float = 1.0  # horizontal scale (yaw-like)
    yaw: float = 0.0  # feature shift × rx
    dx: float = 0.0  # × frame width
    dy: float = 0.0  # × frame height
    scale: float = 1.0


@dataclass(frozen=True)
class Scene:
    background: float
    light: float  # gradient strength
    light_dir: float  # radians
    noise: float  # Gaussian sigma, grey levels


_BASE: dict[str, Expression] = {
    "neutral": Expression(),
    "happy": Expression(brow_raise=0.01, eye_open=0.8, curve=0.16, mouth_open=0.07, mouth_width=1.25, folds=1.0),
    "sad": Expression(brow_inner=0.09, eye_open=0.85, curve=-0.1, mouth_width=0.9),
    "angry": Expression(brow_raise=-0.05, brow_inner=-0.1, eye_open=0.75, curve=-0.015, mouth_width=0.72),
    "surprise": Expression(brow_raise=0.11, brow_inner=0.02, eye_open=1.6, mouth_open=0.24, mouth_width=0.6,
                           o_mouth=True),
    "fear": Expression(brow_raise=0.07, brow_inner=0.08, eye_open=1.45, curve=-0.04, mouth_open=0.07, mouth_width=1.3),
    "disgust": Expression(brow_raise=-0.03, brow_inner=-0.04, eye_open=0.7, curve=-0.05, mouth_width=0.9, wrinkle=1.0,
                          asym=0.07, mouth_open=0.03),
}  # fmt: skip


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw a random face identity."""
    u = rng.uniform
    return Identity(
        aspect=u(0.70, 0.84),
        skin=u(120, 205),
        hair=None if rng.random() < 0.12 else u(15, 85),
        hairline=u(0.52, 0.70),
        eye_dx=u(0.36, 0.46),
        eye_y=u(-0.12, -0.03),
        eye_w=u(0.17, 0.22),
        brow_gap=u(0.15, 0.21),
        brow_thick=u(0.035, 0.06),
        nose_len=u(0.30, 0.38),
        mouth_y=u(0.44, 0.54),
        mouth_w=u(0.28, 0.36),
        lip=u(0.55, 0.75),
    )


def sample_expression(label: str, rng: np.random.Generator) -> Expression:
    """The label's prototype with a random intensity (0.75-1.2×) and small independent jitter."""
    if label not in _BASE:
        raise ConfigError(f"unknown expression {label!r}; valid: {list(FER_CLASSES)}")
    base = _BASE[label]
    k = rng.uniform(0.75, 1.2)
    j = lambda s: rng.normal(0.0, s)  # noqa: E731
    return replace(
        base,
        brow_raise=base.brow_raise * k + j(0.012),
        brow_inner=base.brow_inner * k + j(0.012),
        eye_open=1.0 + (base.eye_open - 1.0) * k + j(0.06),
        curve=base.curve * k + j(0.012),
        mouth_open=max(0.0, base.mouth_open * k + j(0.01)),
        mouth_width=1.0 + (base.mouth_width - 1.0) * k + j(0.04),
        wrinkle=base.wrinkle * k,
        asym=base.asym * k * rng.choice([-1.0, 1.0]),
        folds=base.folds * k,
    )


def sample_pose(rng: np.random.Generator) -> Pose:
    u = rng.uniform
    return Pose(
        angle=u(-8, 8), squeeze=u(0.88, 1.0), yaw=u(-0.06, 0.06), dx=u(-0.04, 0.04), dy=u(-0.04, 0.04),
        scale=u(0.9, 1.08),
    )  # fmt: skip


def sample_scene(rng: np.random.Generator, skin: float) -> Scene:
    bg = rng.uniform(30, 235)
    while abs(bg - skin) < 35:  # a face that melts into the background is not a fair sample
        bg = rng.uniform(30, 235)
    return Scene(background=bg, light=rng.uniform(0.0, 0.25), light_dir=rng.uniform(0, 2 * math.pi),
                 noise=rng.uniform(0.0, 5.0))  # fmt: skip


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


def _curve(x0: float, x1: float, y_mid: float, y_end_l: float, y_end_r: float, n: int = 24) -> np.ndarray:
    """Points of a quadratic through the two ends and the middle, as int32 ``[n, 1, 2]``."""
    t = np.linspace(-1.0, 1.0, n)
    xs = x0 + (x1 - x0) * (t + 1) / 2
    ends = np.where(t < 0, y_end_l, y_end_r)
    ys = y_mid + (ends - y_mid) * t**2
    return np.round(np.stack([xs, ys], 1)).astype(np.int32).reshape(-1, 1, 2)


def _blobs(shape: tuple[int, int], blobs: list[tuple[float, float, float, float, float]]) -> np.ndarray:
    """Multiplicative shading map: product of ``1 + amp·exp(−d²)`` for ``(x, y, sx, sy, amp)`` Gaussian blobs."""
    h, w = shape
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    out = np.ones(shape, np.float32)
    for x0, y0, sx, sy, amp in blobs:
        out += amp * np.exp(-(((xs - x0) / sx) ** 2) - ((ys - y0) / sy) ** 2)
    return out


def _draw_face(ident: Identity, ex: Expression, shape: tuple[int, int], cx: float, cy: float, ry: float, yaw: float):
    """Face layer (float grey) and its coverage mask on a canvas of ``shape``, upright, centred at ``(cx, cy)``."""
    face = np.zeros(shape, np.float32)
    mask = np.zeros(shape, np.uint8)
    rx = ry * ident.aspect
    skin = ident.skin
    neck = (_pt(cx - 0.45 * rx, cy + 0.6 * ry), _pt(cx + 0.45 * rx, shape[0] + 10))
    cv2.rectangle(face, *neck, skin * 0.8, -1)
    cv2.rectangle(mask, *neck, 255, -1)
    cv2.ellipse(face, _pt(cx, cy), _pt(rx, ry), 0, 0, 360, skin, -1)
    cv2.ellipse(mask, _pt(cx, cy), _pt(rx, ry), 0, 0, 360, 255, -1)
    fx = cx + yaw * rx  # features shift with yaw, the outline does not
    ey = cy + ident.eye_y * ry
    edx = ident.eye_dx * rx
    shade = [
        (fx - edx, ey, 0.22 * rx, 0.14 * ry, -0.32),  # eye sockets
        (fx + edx, ey, 0.22 * rx, 0.14 * ry, -0.32),
        (fx, cy - 0.45 * ry, 0.7 * rx, 0.22 * ry, 0.12),  # forehead
        (fx - 0.5 * rx, cy + 0.2 * ry, 0.22 * rx, 0.18 * ry, 0.10),  # cheeks
        (fx + 0.5 * rx, cy + 0.2 * ry, 0.22 * rx, 0.18 * ry, 0.10),
        (fx, ey + 0.12 * ry, 0.07 * rx, 0.22 * ry, 0.12),  # nose bridge
        (fx, ey + ident.nose_len * ry + 0.04 * ry, 0.18 * rx, 0.05 * ry, -0.25),  # under-nose shadow
        (cx, cy + 0.98 * ry, 0.7 * rx, 0.12 * ry, -0.3),  # jaw shadow
    ]
    face *= _blobs(shape, shade)
    if ident.hair is not None:
        hair = np.zeros(shape, np.uint8)
        cv2.ellipse(hair, _pt(cx, cy - 0.08 * ry), _pt(rx * 1.06, ry * 1.0), 0, 180, 360, 255, -1)
        hair[int(cy - ident.hairline * ry + 0.15 * ry * abs(yaw)) :] = 0
        cv2.ellipse(mask, _pt(cx, cy - 0.08 * ry), _pt(rx * 1.06, ry * 1.0), 0, 180, 360, 255, -1)
        face[hair > 0] = ident.hair
    _draw_brows_eyes(face, ident, ex, fx, ey, rx, ry)
    _draw_nose_mouth(face, ident, ex, fx, ey, cy, rx, ry)
    return face, mask


def _draw_brows_eyes(face: np.ndarray, ident: Identity, ex: Expression, fx: float, ey: float, rx: float, ry: float):
    skin = ident.skin
    th = max(1, int(round(ident.brow_thick * ry)))
    by = ey - (ident.brow_gap + ex.brow_raise) * ry
    ew = ident.eye_w * rx
    eh = ew * 0.42 * max(0.2, ex.eye_open)
    for side in (-1.0, 1.0):
        ex0 = fx + side * ident.eye_dx * rx
        inner = (fx + side * 0.14 * rx, by - ex.brow_inner * ry + 0.02 * ry)
        mid = (fx + side * 0.42 * rx, by - 0.03 * ry)
        outer = (fx + side * 0.68 * rx, by + 0.03 * ry + 0.3 * ex.brow_inner * ry)
        pts = np.round(np.array([inner, mid, outer])).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(face, [pts], False, skin * 0.28, th, cv2.LINE_8)
        cv2.ellipse(face, _pt(ex0, ey), _pt(ew, eh), 0, 0, 360, min(250.0, skin * 1.15 + 25), -1)
        iris = max(1.0, min(eh * 0.95, ew * 0.5))
        cv2.circle(face, _pt(ex0, ey), int(round(iris)), skin * 0.2, -1)
        cv2.ellipse(face, _pt(ex0, ey), _pt(ew, eh), 0, 180, 360, skin * 0.25, max(1, th // 2))


def _draw_nose_mouth(face, ident: Identity, ex: Expression, fx: float, ey: float, cy: float, rx: float, ry: float):
    skin = ident.skin
    ny = ey + ident.nose_len * ry
    lw = max(1, int(round(0.02 * ry)))
    for side in (-1.0, 1.0):
        cv2.ellipse(face, _pt(fx + side * 0.09 * rx, ny), _pt(0.05 * rx, 0.025 * ry), 0, 0, 360, skin * 0.35, -1)
    if ex.wrinkle > 0:
        for k in range(3):  # horizontal creases across the bridge
            y = ey + (0.08 + 0.05 * k) * ry
            pts = _curve(fx - 0.1 * rx, fx + 0.1 * rx, y, y + 0.02 * ry, y + 0.02 * ry, 8)
            cv2.polylines(face, [pts], False, skin * (1 - 0.4 * min(1.0, ex.wrinkle)), lw)
    my = cy + ident.mouth_y * ry
    mw = ident.mouth_w * rx * ex.mouth_width
    lip = skin * ident.lip
    if ex.folds > 0 or ex.wrinkle > 0:
        for side in (-1.0, 1.0):
            x_end = fx + side * (mw + 0.04 * rx)
            pts = _curve(fx + side * 0.16 * rx, x_end, ny + 0.05 * ry, ny, my - ex.curve * ry, 10)
            cv2.polylines(face, [pts], False, skin * 0.6, lw)
    if ex.o_mouth:
        cv2.ellipse(face, _pt(fx, my), _pt(mw, 0.06 * ry + ex.mouth_open * ry / 2), 0, 0, 360, lip, -1)
        cv2.ellipse(face, _pt(fx, my), _pt(mw * 0.7, ex.mouth_open * ry / 2), 0, 0, 360, skin * 0.12, -1)
        return
    yl, yr = my - ex.curve * ry, my - ex.curve * ry
    y_up = my - ex.mouth_open * ry / 2
    up_l, up_r = yl - ex.mouth_open * ry * 0.2, yr - ex.mouth_open * ry * 0.2
    if ex.asym > 0:
        up_r -= ex.asym * ry
    elif ex.asym < 0:
        up_l += ex.asym * ry
    upper = _curve(fx - mw, fx + mw, y_up - ex.wrinkle * 0.03 * ry, up_l, up_r)
    lower = _curve(fx - mw, fx + mw, my + ex.mouth_open * ry / 2, yl, yr)
    if ex.mouth_open > 0.015 or ex.asym != 0:
        cv2.fillPoly(face, [np.concatenate([upper, lower[::-1]])], skin * 0.12)
    lip_th = max(1, int(round(0.035 * ry * (1.4 if ex.mouth_width < 0.8 else 1.0))))
    cv2.polylines(face, [upper], False, lip, lip_th)
    cv2.polylines(face, [lower], False, lip, lip_th)


def render_frame(
    ident: Identity,
    ex: Expression,
    pose: Pose,
    scene: Scene,
    hw: tuple[int, int],
    face_h: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw one face into a frame.

    Args:
        ident, ex, pose, scene: what to draw.
        hw: output ``(H, W)``.
        face_h: face height (chin to crown) in output pixels before ``pose.scale``.
        rng: source of the sensor noise.

    Returns:
        uint8 grey ``[H, W]``.
    """
    h, w = hw
    big = (h * _SS, w * _SS)
    ry = face_h * _SS * pose.scale / 2
    cx, cy = big[1] / 2, big[0] / 2 + 0.04 * ry
    face, mask = _draw_face(ident, ex, big, cx, cy, ry, pose.yaw)
    m = cv2.getRotationMatrix2D((cx, cy), pose.angle, 1.0)
    m[0] *= pose.squeeze
    m[0, 2] += cx * (1 - pose.squeeze) + pose.dx * big[1]
    m[1, 2] += pose.dy * big[0]
    face = cv2.warpAffine(face, m, (big[1], big[0]), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(mask, m, (big[1], big[0]), flags=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    img = scene.background * (1 - alpha) + face * alpha
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xs / w - 0.5) * math.cos(scene.light_dir) + (ys / h - 0.5) * math.sin(scene.light_dir)) * 2
    img = img * (1 + scene.light * ramp) + rng.normal(0.0, 1.0, (h, w)).astype(np.float32) * scene.noise
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def render_face(label: str, rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """A random synthetic face showing ``label``, framed like a FER2013 crop.

    Args:
        label: one of :data:`fer_core.taxonomy.FER_CLASSES`.
        rng: the only source of randomness (same state → same image).
        size: side in pixels.

    Returns:
        uint8 grey ``[size, size]``.

    Raises:
        ConfigError: unknown label or size below 16.
    """
    if size < 16:
        raise ConfigError(f"size must be at least 16 px, got {size}")
    ident = sample_identity(rng)
    ex = sample_expression(label, rng)
    pose = sample_pose(rng)
    scene = sample_scene(rng, ident.skin)
    return render_frame(ident, ex, pose, scene, (size, size), 0.84 * size, rng)


def render_dataset(out_dir: Path, per_class: int = 60, size: int = 48, seed: int = 0) -> dict[str, int]:
    """Write ``out_dir/<class>/<class>_<i>.png`` (grey uint8 PNG) for every class, atomically.

    Each image draws from its own ``SeedSequence([seed, class index, i])``, so the same seed gives byte-identical
    files whatever ``per_class`` is, and another seed gives different ones.

    Args:
        out_dir: destination folder (created).
        per_class: images per class.
        size: image side in pixels.
        seed: base seed.

    Returns:
        Images written per class.

    Raises:
        ConfigError: ``per_class`` < 1 or ``size`` < 16.
    """
    if per_class < 1:
        raise ConfigError(f"per_class must be >= 1, got {per_class}")
    counts: dict[str, int] = {}
    for label in FER_CLASSES:
        for i in range(per_class):
            rng = np.random.default_rng(np.random.SeedSequence([seed, CLASS_TO_INDEX[label], i]))
            ok, buf = cv2.imencode(".png", render_face(label, rng, size))
            if not ok:
                raise ConfigError(f"PNG encoding failed for {label} #{i}")
            atomic_write_bytes(Path(out_dir) / label / f"{label}_{i}.png", buf.tobytes())
        counts[label] = per_class
    return counts


def _video_plan(labels_seq: list[tuple[str, float]], fps: int) -> list[int]:
    """The segment index of every frame; validates the sequence."""
    if fps < 1:
        raise ConfigError(f"fps must be >= 1, got {fps}")
    if not labels_seq:
        raise ConfigError("labels_seq is empty; give at least one (label, seconds) pair")
    frames: list[int] = []
    t_end = 0.0
    for i, (label, seconds) in enumerate(labels_seq):
        if label not in CLASS_TO_INDEX:
            raise ConfigError(f"labels_seq[{i}]: unknown label {label!r}; valid: {list(FER_CLASSES)}")
        if not seconds > 0:
            raise ConfigError(f"labels_seq[{i}]: seconds must be > 0, got {seconds}")
        t_end += float(seconds)
        while len(frames) < round(t_end * fps):
            frames.append(i)
    return frames


def _drift(t: float) -> Pose:
    """Gentle head motion at time ``t`` seconds (slow sines, so consecutive frames stay close)."""
    return Pose(
        angle=4 * math.sin(0.9 * t),
        squeeze=0.96 + 0.03 * math.sin(0.5 * t),
        yaw=0.03 * math.sin(0.7 * t),
        dx=0.05 * math.sin(0.6 * t),
        dy=0.03 * math.sin(1.1 * t),
    )


def _write_mp4(out_path: Path, frames: Iterable[np.ndarray], fps: int, wh: tuple[int, int]) -> None:
    """Encode BGR frames to ``out_path`` via a temp ``.mp4`` beside it (the writer picks the container by suffix)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".mp4", dir=out_path.parent)
    os.close(fd)
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), wh)
    try:
        if not writer.isOpened():
            raise ConfigError(f"cv2.VideoWriter could not open {tmp} (mp4v, {wh}); is OpenCV built with FFmpeg?")
        for frame in frames:
            writer.write(frame)
        writer.release()
        os.replace(tmp, out_path)
    except BaseException:
        writer.release()
        Path(tmp).unlink(missing_ok=True)
        raise


def render_video(
    out_path: Path,
    labels_seq: list[tuple[str, float]],
    fps: int = 15,
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
) -> Path:
    """Write a synthetic face video (mp4, ``mp4v``) and a sidecar ``<out_path>.json`` with the true label per frame.

    One identity on a plain background, ~160 px tall at 240 px frame height, drifting and tilting gently; each
    ``(label, seconds)`` segment shows that expression (intensity drawn once per segment; the label switches at the
    segment boundary). The sidecar holds ``synthetic: true``, ``fps``, ``size``, ``seed``, ``segments`` and
    ``frames`` (``index``, ``t`` in seconds, ``label``).

    Args:
        out_path: destination ``.mp4``; written atomically (temp file + rename), as is the sidecar.
        labels_seq: ``[(label, seconds), ...]``.
        fps: frames per second.
        size: frame ``(width, height)``.
        seed: seed of the identity, expressions, motion and noise.

    Returns:
        ``out_path``.

    Raises:
        ConfigError: unknown label, non-positive duration or fps, or the writer could not open.
    """
    seg_of_frame = _video_plan(labels_seq, fps)
    out_path = Path(out_path)
    w, h = size
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7919]))
    ident = sample_identity(rng)
    scene = replace(sample_scene(rng, ident.skin), light=0.1, noise=2.0)
    exprs = [sample_expression(label, rng) for label, _ in labels_seq]
    frames = (
        cv2.cvtColor(
            render_frame(ident, exprs[seg], _drift(i / fps), scene, (h, w), h * 2 / 3, rng), cv2.COLOR_GRAY2BGR
        )
        for i, seg in enumerate(seg_of_frame)
    )
    _write_mp4(out_path, frames, fps, (w, h))
    segments, t0 = [], 0.0
    for label, seconds in labels_seq:
        segments.append({"label": label, "start_s": t0, "end_s": t0 + float(seconds)})
        t0 += float(seconds)
    sidecar = {
        "synthetic": True, "fps": fps, "size": [w, h], "seed": seed, "segments": segments,
        "frames": [{"index": i, "t": i / fps, "label": labels_seq[seg][0]} for i, seg in enumerate(seg_of_frame)],
    }  # fmt: skip
    atomic_write_json(out_path.with_suffix(out_path.suffix + ".json"), sidecar)
    return out_path
