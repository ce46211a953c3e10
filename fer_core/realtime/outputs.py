"""The runner's output files (per-frame CSV, events JSONL, annotated video), written under hidden temporary names
and renamed into place only when the run succeeds; a failed run leaves nothing behind."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_core.errors import DataIntegrityError

CSV_NAME, EVENTS_NAME, VIDEO_NAME = "frames.csv", "events.jsonl", "annotated.mp4"


def _partial(out_dir: Path, name: str) -> Path:
    # the real suffix stays last: OpenCV picks the video container from it
    return out_dir / f".partial.{os.getpid()}.{name}"


class RunOutputs:
    """Open the run's files under temporary names in ``out_dir`` (created if needed).

    Args:
        out_dir: the run folder.
        header: the CSV header row.

    :meth:`commit` renames every file into place (an earlier run's files are replaced only then); :meth:`discard`
    removes them, and the folder too when this run created it and it is left empty.
    """

    def __init__(self, out_dir: Path, header: Sequence[str]):
        self.out_dir = out_dir
        self._created = not out_dir.exists()
        out_dir.mkdir(parents=True, exist_ok=True)
        self._names = [CSV_NAME, EVENTS_NAME]
        self._csv_f = self._ev_f = None
        self.writer: cv2.VideoWriter | None = None
        try:
            self._csv_f = open(_partial(out_dir, CSV_NAME), "w", newline="", encoding="utf-8")  # noqa: SIM115
            self._ev_f = open(_partial(out_dir, EVENTS_NAME), "w", encoding="utf-8")  # noqa: SIM115
        except BaseException:
            self.discard()
            raise
        self.csv = csv.writer(self._csv_f)
        self.csv.writerow(header)

    def event(self, ts: float, frame: int, kind: str, **fields: Any) -> None:
        """Append one event line ``{"t", "frame", "type", ...}``."""
        self._ev_f.write(json.dumps({"t": round(ts, 6), "frame": frame, "type": kind, **fields}) + "\n")

    def write_video(self, img: np.ndarray, fps: float) -> None:
        """Append one annotated frame (the writer opens on the first frame, at its size).

        Raises:
            DataIntegrityError: OpenCV cannot open an mp4v writer here.
        """
        if self.writer is None:
            path = _partial(self.out_dir, VIDEO_NAME)
            self._names.append(VIDEO_NAME)
            size = (img.shape[1], img.shape[0])
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            if not self.writer.isOpened():
                raise DataIntegrityError(f"cannot open a video writer for {path} (mp4v, {size[0]}x{size[1]})")
        self.writer.write(img)

    def _close_files(self) -> None:
        for f in (self._csv_f, self._ev_f):
            if f is not None and not f.closed:
                f.close()
        if self.writer is not None:
            self.writer.release()

    def commit(self) -> Path | None:
        """Close and rename every file into place; returns the annotated video's path (or ``None``)."""
        self._close_files()
        for name in self._names:
            os.replace(_partial(self.out_dir, name), self.out_dir / name)
        return self.out_dir / VIDEO_NAME if VIDEO_NAME in self._names else None

    def discard(self) -> None:
        """Close and delete this run's temporary files; remove the folder if this run created it and it is empty."""
        self._close_files()
        for name in (CSV_NAME, EVENTS_NAME, VIDEO_NAME):
            _partial(self.out_dir, name).unlink(missing_ok=True)
        if self._created:
            try:
                self.out_dir.rmdir()
            except OSError:
                pass  # not empty: someone else's files are there
