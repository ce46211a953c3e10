"""Publishing the index and a bundle to S3 (moto's server on loopback), and fetching the bundle back intact."""

from fer_adapters.store import exists, read_bytes
from fer_core.data.adapters import SourceSpec
from fer_core.data.ingest import IngestConfig, run_ingest
from fer_core.data.synth import render_dataset
from fer_core.export.bundle import verify_bundle
from fer_spec.results import IndexRef
from tasks.publish import fetch_bundle, publish_bundle, publish_index
from tests.core.export.helpers import make_bundle


def test_index_and_bundle_round_trip_through_s3(s3_bucket, tmp_path):
    render_dataset(tmp_path / "synth", per_class=3, size=32, seed=0)
    res = run_ingest(IngestConfig(sources=[SourceSpec(kind="folder", path=tmp_path / "synth")], out_dir=tmp_path / "i",
                                  min_side=16, fractions=(0.34, 0.33, 0.33)))  # fmt: skip
    from fer_core.io import sha256_file

    data = IndexRef(index_path=str(res.index_path), index_sha256=sha256_file(res.index_path), manifest={},
                    report_json=str(res.report_dir / "report.json"), balance_png="")
    out = publish_index.fn(data, f"s3://{s3_bucket}/ferflow")
    assert read_bytes(out.published_index) == res.index_path.read_bytes()
    assert exists(out.published_index + ".manifest.json")

    bundle = make_bundle(tmp_path)
    uri = publish_bundle.fn(str(bundle), f"s3://{s3_bucket}/ferflow")
    local = fetch_bundle(uri, str(tmp_path / "fetched"))
    verify_bundle(local)  # every byte matches the manifest after the round trip
