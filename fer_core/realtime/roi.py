"""Face region of interest: square crop with margin, optionally rotated so the eyes are level (YuNet landmarks).

Shared by the realtime runner and ``evaluate_bundle(detect=True)`` so both crop faces the same way.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from fer_core.preprocess import crop_face, square_box


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle in degrees of the line from the right eye to the left eye (image coordinates; 0 = level)."""
    (rx, ry), (lx, ly) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(ly - ry, lx - rx))


def aligned_crop(frame_bgr: np.ndarray, box: tuple[float, ...], landmarks: np.ndarray, margin: float) -> np.ndarray:
    """Square crop (same side as :func:`fer_core.preprocess.square_box`) rotated about the box centre so the
    eyes are level; one ``warpAffine`` of the crop only, never of the whole frame."""
    x, y, w, h = box
    side = max(1, round(max(w, h) * (1.0 + 2.0 * margin)))
    cx, cy = x + w / 2.0, y + h / 2.0
    m = cv2.getRotationMatrix2D((cx, cy), eye_angle(landmarks), 1.0)
    m[0, 2] += side / 2.0 - cx
    m[1, 2] += side / 2.0 - cy
    return cv2.warpAffine(frame_bgr, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def face_roi(
    frame_bgr: np.ndarray,
    box: tuple[float, ...],
    margin: float,
    landmarks: np.ndarray | None = None,
    align: bool = False,
) -> np.ndarray:
    """The crop handed to :func:`fer_core.preprocess.preprocess_face`: aligned when asked and landmarks exist,
    else :func:`fer_core.preprocess.crop_face`."""
    if align and landmarks is not None:
        return aligned_crop(frame_bgr, box, landmarks, margin)
    return crop_face(frame_bgr, box, margin)


__all__ = ["aligned_crop", "eye_angle", "face_roi", "square_box"]
