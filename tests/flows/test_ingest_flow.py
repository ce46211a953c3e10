"""The ingest flow on real Prefect: synthetic faces in, index + manifest + report out; bad input writes nothing."""

from pathlib import Path

import pytest

from fer_core.data.adapters import SourceSpec
from fer_core.data.index import read_index
from fer_core.data.ingest import IngestConfig
from fer_core.data.synth import render_dataset
from fer_core.errors import GateFailedError


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    render_dataset(root, per_class=8, size=48, seed=1)
    return root


def test_ingest_flow_writes_index_manifest_report(prefect_harness, synth, tmp_path):
    from flows.ingest import ingest_flow

    cfg = IngestConfig(
        sources=[SourceSpec(kind="folder", path=synth)], out_dir=tmp_path / "out", fractions=(0.6, 0.2, 0.2)
    )
    out = ingest_flow(cfg)
    index = read_index(out.index_path)  # verifies the manifest
    assert len(index) == 56
    assert set(index["split"]) == {"train", "val", "test"}
    assert Path(out.balance_png).stat().st_size > 0
    assert index.groupby("group_id")["split"].nunique().max() == 1  # no group crosses splits


def test_failed_gate_writes_nothing(prefect_harness, synth, tmp_path):
    from flows.ingest import ingest_flow

    bad = tmp_path / "bad"
    (bad / "happy").mkdir(parents=True)
    (bad / "happy" / "broken.jpg").write_bytes(b"not an image at all")
    cfg = IngestConfig(
        sources=[SourceSpec(kind="folder", path=synth), SourceSpec(kind="folder", path=bad, name="bad")],
        out_dir=tmp_path / "out",
    )
    with pytest.raises(GateFailedError, match="broken.jpg"):
        ingest_flow(cfg)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
