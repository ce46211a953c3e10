"""Frame sources for the realtime runner: webcam index, video file, image folder; each yields
``(frame_idx, timestamp_s, frame_bgr)``."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from fer_core.errors import ConfigError, DataIntegrityError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
Frame = tuple[int, float, np.ndarray]


def special_file_kind(path: Path) -> str | None:
    """``None`` for a regular file (or a link to one), else what it is (``"FIFO"``, ``"socket"``, ...).

    Checked by ``stat`` alone: opening a FIFO to read it would block until something writes to it.
    """
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return f"unreadable entry ({e.strerror or e})"
    if stat.S_ISREG(mode):
        return None
    kinds = {stat.S_ISFIFO: "FIFO", stat.S_ISSOCK: "socket", stat.S_ISCHR: "character device",
             stat.S_ISBLK: "block device", stat.S_ISDIR: "folder"}  # fmt: skip
    return next((name for test, name in kinds.items() if test(mode)), "special file")


class FrameSource:
    """Iterable of frames; ``fps`` is the nominal rate (``0`` when unknown) and ``close()`` frees the device."""

    fps: float = 0.0
    name: str = ""

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the capture device or file."""


MAX_CAMERA_INDEX = 9999  # OpenCV takes a C int: a camera id plus a back-end offset (e.g. 200 + id for V4L2)


class CaptureSource(FrameSource):
    """A ``cv2.VideoCapture`` over a camera index or a video file.

    Timestamps: the container's ``CAP_PROP_POS_MSEC`` for files (falling back to ``idx / fps``); wall-clock time since
    the first frame for cameras.
    """

    def __init__(self, target: int | Path):
        self.is_camera = isinstance(target, int)
        self.name = f"camera {target}" if self.is_camera else str(target)
        if not self.is_camera and not Path(target).is_file():
            raise ConfigError(f"video file {target} does not exist")
        if self.is_camera and not 0 <= target <= MAX_CAMERA_INDEX:  # larger ones overflow OpenCV with a traceback
            raise ConfigError(f"camera index {target} is out of range 0..{MAX_CAMERA_INDEX}; pass the index of an "
                              "existing camera (0 is the first), a video file or an image folder")  # fmt: skip
        self._cap = cv2.VideoCapture(target if self.is_camera else str(target))
        if not self._cap.isOpened():
            self._cap.release()
            if self.is_camera:
                raise ConfigError(
                    f"camera index {target} cannot be opened (no such device, or it is busy); list cameras with "
                    "`v4l2-ctl --list-devices` (Linux) and pass an existing index, or pass a video file instead"
                )
            raise DataIntegrityError(f"video file {target} cannot be decoded by OpenCV (corrupt or unsupported codec)")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        if not self.is_camera:
            ok, first = self._cap.read()
            if not ok:
                self._cap.release()
                raise DataIntegrityError(f"video file {target} opened but no frame could be decoded")
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def __iter__(self) -> Iterator[Frame]:
        t0 = time.perf_counter()
        idx = 0
        while True:
            ok, frame = self._cap.read()
            if not ok:
                return
            if self.is_camera:
                ts = time.perf_counter() - t0
            else:
                ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
                ts = ms / 1000.0 if ms > 0 or idx == 0 else (idx / self.fps if self.fps else float(idx))
            yield idx, ts, frame
            idx += 1

    def close(self) -> None:
        self._cap.release()


class FolderSource(FrameSource):
    """Images of a folder in sorted file-name order, timestamped at ``fps`` (default 30).

    Raises:
        ConfigError: the folder does not exist or holds no image.
        DataIntegrityError: an entry named like an image is a FIFO, socket, device or folder (refused up front,
            without opening it); an image cannot be decoded (raised when that frame is reached, naming the file).
    """

    def __init__(self, folder: Path, fps: float = 30.0):
        if not folder.is_dir():
            raise ConfigError(f"image folder {folder} does not exist")
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise ConfigError(f"image folder {folder} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        special = [(str(p), f"{kind}, not an image file") for p in self.files if (kind := special_file_kind(p))]
        if special:
            raise DataIntegrityError(
                f"image folder {folder} holds {len(special)} entr{'y' if len(special) == 1 else 'ies'} named like "
                f"images that are not regular files (first: {special[0][0]}, a {special[0][1]}); remove them",
                special,
            )
        self.fps = fps
        self.name = str(folder)

    def __iter__(self) -> Iterator[Frame]:
        for idx, path in enumerate(self.files):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                raise DataIntegrityError(f"image {path} cannot be decoded", [(str(path), "unreadable image")])
            yield idx, idx / self.fps, frame


def open_source(source: int | str | os.PathLike[str]) -> FrameSource:
    """Open a webcam (an int, or a string of digits), a video file, or an image folder.

    Raises:
        ConfigError: a camera that does not exist or a path that does not exist.
        DataIntegrityError: a video that cannot be decoded.
    """
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return CaptureSource(int(source))
    path = Path(source)
    if path.is_dir():
        return FolderSource(path)
    return CaptureSource(path)
