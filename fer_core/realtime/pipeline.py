"""An ordered stage pipeline on threads: one thread per stage, bounded queues, a cap on items in flight, errors
delivered in order, and a shutdown that never hangs on a full or empty queue.

OpenCV decoding and DNN inference, ONNX Runtime and most numpy work release the GIL, so stages on threads overlap
on separate cores. Each stage runs on exactly one thread and the queues are FIFO, so items leave in the order the
source produced them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

_POLL_S = 0.05  # how often a blocked put/get looks at the stop flag
_JOIN_S = 10.0


@dataclass(frozen=True)
class _Failure:
    error: BaseException


_END = object()


class OrderedPipeline:
    """``source`` (iterated on its own thread) → ``stages`` (one thread each) → the caller's ``for`` loop.

    At most ``depth`` items are in flight: the source thread takes a slot before it produces an item, and the slot
    is returned when the caller asks for the next one. This bounds memory (a 1080p frame is 6 MB) and latency (an item
    waits behind at most ``depth - 1`` others). An exception in the source or a stage travels down the queues behind
    the items produced before it and is raised by the caller's loop at that point; the threads then stop.

    With ``threaded=False`` the same stages run inline on the caller's thread (the serial baseline).

    Args:
        source: iterable of items; its iterator is created and advanced on the source thread only.
        stages: ``(name, fn)`` pairs; ``fn(item)`` returns the item handed to the next stage.
        depth: items in flight at most (>= 1).
        threaded: overlap the stages on threads (``False``: run them inline).

    Use as a context manager; leaving it (normally, by ``break`` or by an exception) stops and joins every thread.
    """

    def __init__(
        self,
        source: Iterable[Any],
        stages: list[tuple[str, Callable[[Any], Any]]],
        depth: int = 3,
        threaded: bool = True,
    ):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.source, self.stages, self.depth, self.threaded = source, stages, depth, threaded
        self._stop = threading.Event()
        self._slots = threading.Semaphore(depth)
        self._queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=1) for _ in range(len(stages) + 1)]
        self._threads: list[threading.Thread] = []
        self._holding = False

    def __enter__(self) -> OrderedPipeline:
        if self.threaded:
            self._start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        workers = [("source", self._produce, ())]
        workers += [(name, self._run_stage, (fn, i)) for i, (name, fn) in enumerate(self.stages)]
        for name, target, args in workers:
            t = threading.Thread(target=target, args=args, name=f"ferflow-{name}", daemon=True)
            self._threads.append(t)
            t.start()

    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: queue.Queue[Any]) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _END

    def _produce(self) -> None:
        out = self._queues[0]
        try:
            it = iter(self.source)
            while not self._stop.is_set():
                if not self._slots.acquire(timeout=_POLL_S):
                    continue
                item = next(it, _END)
                if not self._put(out, item) or item is _END:
                    return
        except BaseException as e:  # noqa: BLE001 - delivered to the caller's loop, in order
            self._put(out, _Failure(e))

    def _run_stage(self, fn: Callable[[Any], Any], i: int) -> None:
        q_in, q_out = self._queues[i], self._queues[i + 1]
        while True:
            item = self._get(q_in)
            if item is _END and self._stop.is_set():
                return
            if item is not _END and not isinstance(item, _Failure):
                try:
                    item = fn(item)
                except BaseException as e:  # noqa: BLE001 - delivered to the caller's loop, in order
                    item = _Failure(e)
            if not self._put(q_out, item) or item is _END or isinstance(item, _Failure):
                return

    def __iter__(self) -> Iterator[Any]:
        return self._inline() if not self.threaded else self._drain()

    def _inline(self) -> Iterator[Any]:
        for item in self.source:
            for _, fn in self.stages:
                item = fn(item)
            yield item

    def _drain(self) -> Iterator[Any]:
        last = self._queues[-1]
        while True:
            if self._holding:
                self._holding = False
                self._slots.release()
            item = self._get(last)
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            self._holding = True
            yield item

    def close(self) -> None:
        """Stop every thread and wait for it (each checks the stop flag at least every 50 ms while blocked).

        A thread stuck inside a source call that never returns (a stalled camera) is left as a daemon after 10 s
        rather than hanging the caller.
        """
        self._stop.set()
        for t in self._threads:
            t.join(_JOIN_S)

    @property
    def alive_threads(self) -> list[str]:
        """Names of this pipeline's threads still running (empty after :meth:`close`)."""
        return [t.name for t in self._threads if t.is_alive()]


class BackgroundWorker:
    """One thread applying ``fn`` to submitted items in order, with a bounded queue (the annotated-video writer).

    Errors of ``fn`` are raised by the next :meth:`submit` or by :meth:`finish`.

    Args:
        fn: called once per item, in submission order.
        maxsize: items waiting at most (``submit`` blocks beyond it).
        name: thread name suffix.
    """

    def __init__(self, fn: Callable[[Any], None], maxsize: int = 2, name: str = "worker"):
        self._fn = fn
        self._q: queue.Queue[Any] = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=f"ferflow-{name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                item = self._q.get(timeout=_POLL_S)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is _END or self._stop.is_set():
                return
            if self._error is None:
                try:
                    self._fn(item)
                except BaseException as e:  # noqa: BLE001 - raised on the caller's thread
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item: Any) -> None:
        """Queue one item (blocks while the queue is full); raises an earlier error of ``fn``."""
        self._raise()
        while True:
            try:
                self._q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                self._raise()
                if not self._thread.is_alive():
                    raise RuntimeError("background worker thread died") from None

    def finish(self) -> None:
        """Process everything queued, stop the thread, and raise an error of ``fn`` if there was one."""
        self.submit(_END)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Stop without processing what is still queued."""
        self._stop.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        self._thread.join(_JOIN_S)
