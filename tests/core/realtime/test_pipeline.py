"""The ordered stage pipeline: order kept under jittery stages, items in flight bounded, errors delivered in order,
every thread gone after a normal end, an early stop, or an error anywhere."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from fer_core.realtime.latency import LatencyHistogram
from fer_core.realtime.pipeline import BackgroundWorker, OrderedPipeline

pytestmark = pytest.mark.timeout(60)


def _jitter(seed: int):
    rng = np.random.default_rng(seed)
    delays = rng.uniform(0, 0.002, 1000)

    def fn(item):
        time.sleep(delays[item[0] % 1000])
        return (*item, seed)

    return fn


def _ferflow_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ferflow-")]


@pytest.mark.parametrize("threaded", [True, False])
def test_items_leave_in_source_order_through_every_stage(threaded):
    src = ((i,) for i in range(150))
    with OrderedPipeline(src, [("a", _jitter(1)), ("b", _jitter(2))], depth=4, threaded=threaded) as pipe:
        out = list(pipe)
    assert out == [(i, 1, 2) for i in range(150)]
    assert _ferflow_threads() == []


def test_items_in_flight_never_exceed_depth():
    lock, state = threading.Lock(), {"made": 0, "done": 0, "peak": 0}

    def source():
        for i in range(80):
            with lock:
                state["made"] += 1
                state["peak"] = max(state["peak"], state["made"] - state["done"])
            yield (i,)

    with OrderedPipeline(source(), [("a", _jitter(3))], depth=3) as pipe:
        for _ in pipe:
            time.sleep(0.002)  # a slow consumer: the source would run far ahead without the bound
            with lock:
                state["done"] += 1
    assert state["made"] == 80
    assert state["peak"] == 3  # reached (the stages overlap) but never exceeded


@pytest.mark.parametrize("where", ["source", "stage"])
def test_an_error_arrives_after_the_items_before_it_and_stops_every_thread(where):
    def source():
        for i in range(10):
            if where == "source" and i == 4:
                raise OSError("disk gone at item 4")
            yield (i,)

    def stage(item):
        if where == "stage" and item[0] == 4:
            raise OSError("disk gone at item 4")
        return item

    seen = []
    with pytest.raises(OSError, match="item 4"):
        with OrderedPipeline(source(), [("a", stage), ("b", _jitter(5))], depth=2) as pipe:
            for item in pipe:
                seen.append(item[0])
    assert seen == [0, 1, 2, 3]
    assert _ferflow_threads() == []


def test_stopping_early_or_failing_in_the_consumer_never_hangs():
    endless = ((i,) for i in itertools.count())
    with OrderedPipeline(endless, [("a", lambda x: x)], depth=2) as pipe:
        for item in pipe:
            if item[0] == 5:
                break
    assert pipe.alive_threads == []
    with pytest.raises(KeyError):
        with OrderedPipeline(((i,) for i in itertools.count()), [("a", lambda x: x)], depth=2) as pipe:
            for _ in pipe:
                raise KeyError("consumer failed while the source was blocked on a full queue")
    assert pipe.alive_threads == [] and _ferflow_threads() == []


def test_background_worker_keeps_order_and_reports_errors():
    got = []
    w = BackgroundWorker(got.append, maxsize=1)
    for i in range(30):
        w.submit(i)
    w.finish()
    assert got == list(range(30))

    def fail(i):
        if i == 2:
            raise ValueError("encoder failed on item 2")

    w = BackgroundWorker(fail, maxsize=1)
    with pytest.raises(ValueError, match="item 2"):
        for i in range(50):
            w.submit(i)
        w.finish()
    w.abort()
    assert _ferflow_threads() == []


def test_latency_histogram_percentiles_match_exact_ones_within_a_bin():
    values = np.random.default_rng(0).lognormal(2.0, 0.8, 5000)
    h = LatencyHistogram()
    for v in values:
        h.add(float(v))
    for q in (50, 99):
        exact = float(np.sort(values)[int(np.ceil(q / 100 * len(values))) - 1])  # nearest rank
        assert h.percentile(q) == pytest.approx(exact, rel=0.012)
    assert h.max == values.max() and h.n == 5000
    h.reset()
    assert h.summary() == {"p50": 0.0, "p99": 0.0, "max": 0.0}
