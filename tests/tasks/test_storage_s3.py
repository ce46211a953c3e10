"""fer_adapters.store against a real S3 endpoint on loopback (moto server mode) and against local folders."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fer_adapters import store as storage
from fer_adapters.store import StorageError, StorageNotFoundError
from fer_core.io import sha256_file


def _index_and_manifest(folder):
    """A tiny index-like Parquet file and its manifest (index SHA-256 + counts), as the lead pushes them."""
    folder.mkdir(parents=True, exist_ok=True)
    index = folder / "index.parquet"
    table = pa.table({"sample_id": ["a" * 64, "b" * 64, "c" * 64], "label": ["happy", "sad", "happy"],
                      "split": ["train", "train", "val"]})  # fmt: skip
    pq.write_table(table, index)
    manifest = folder / "index.manifest.json"
    manifest.write_text(json.dumps({"index_sha256": sha256_file(index), "counts": {"happy": 2, "sad": 1}}))
    return index, manifest


@pytest.fixture(params=["s3", "local"])
def base(request, tmp_path):
    """The same tests run on an s3:// prefix in a fresh moto bucket and on a local folder."""
    if request.param == "s3":
        return f"s3://{request.getfixturevalue('s3_bucket')}/datasets/v1"
    return str(tmp_path / "remote" / "datasets" / "v1")


def test_index_and_manifest_round_trip(base, tmp_path):
    index, manifest = _index_and_manifest(tmp_path / "src")
    assert not storage.exists(f"{base}/index.parquet")
    storage.put_file(index, f"{base}/index.parquet")
    storage.put_file(manifest, f"{base}/index.manifest.json")
    assert storage.exists(f"{base}/index.parquet")

    back = storage.get_file(f"{base}/index.parquet", tmp_path / "dst" / "index.parquet")
    assert sha256_file(back) == sha256_file(index)
    assert pq.read_table(back).column("label").to_pylist() == ["happy", "sad", "happy"]
    fetched_manifest = json.loads(storage.read_bytes(f"{base}/index.manifest.json"))
    assert fetched_manifest["index_sha256"] == sha256_file(back)


def test_open_uri_writes_only_on_success(base):
    uri = f"{base}/notes.txt"
    with storage.open_uri(uri, "wb") as f:
        f.write(b"hello ")
        f.write(b"world")
    with storage.open_uri(uri) as f:
        assert f.read() == b"hello world"
    with pytest.raises(RuntimeError), storage.open_uri(f"{base}/half.txt", "wb") as f:
        f.write(b"partial")
        raise RuntimeError("producer failed")
    assert not storage.exists(f"{base}/half.txt")


def test_dir_round_trip_keeps_relative_paths(base, tmp_path):
    src = tmp_path / "bundle"
    (src / "sub" / "deeper").mkdir(parents=True)
    files = {"model.onnx": b"\x00\x01onnx", "sub/calibration.json": b"{}", "sub/deeper/card.md": b"# card"}
    for rel, data in files.items():
        (src / rel).write_bytes(data)
    written = storage.upload_dir(src, f"{base}/bundle")
    assert len(written) == 3
    got = storage.download_dir(f"{base}/bundle", tmp_path / "out")
    assert {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes() for p in got} == files


def test_missing_object_is_a_clear_error(base, tmp_path):
    with pytest.raises(StorageNotFoundError, match="does not exist"):
        storage.read_bytes(f"{base}/nope.json")
    with pytest.raises(StorageNotFoundError):
        storage.get_file(f"{base}/nope.json", tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()
    with pytest.raises(StorageNotFoundError, match="nothing to download"):
        storage.download_dir(f"{base}/empty", tmp_path / "out")


def test_download_dir_refuses_keys_escaping_the_target(s3_bucket, moto_client, tmp_path):
    moto_client.put_object(Bucket=s3_bucket, Key="p/../../escape.txt", Body=b"x")
    with pytest.raises(StorageError, match="outside"):
        storage.download_dir(f"s3://{s3_bucket}/p", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_object_lands_in_the_bucket_under_the_key(s3_bucket, moto_client, tmp_path):
    (tmp_path / "m.json").write_bytes(b'{"k": 1}')
    storage.put_file(tmp_path / "m.json", f"s3://{s3_bucket}/a/b/m.json")
    assert moto_client.get_object(Bucket=s3_bucket, Key="a/b/m.json")["Body"].read() == b'{"k": 1}'


def test_bad_uris_are_rejected():
    with pytest.raises(StorageError, match="no bucket"):
        storage.split_s3("s3:///key")
    with pytest.raises(StorageError, match="not supported"), storage.open_uri("/tmp/x", "a"):
        pass


def test_transient_503_is_retried(s3_bucket, moto_client, flaky_s3, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", flaky_s3.url)
    flaky_s3.fail_first = 1
    (tmp_path / "idx.bin").write_bytes(b"index bytes")
    storage.put_file(tmp_path / "idx.bin", f"s3://{s3_bucket}/retry/idx.bin")

    statuses = [status for _, _, status in flaky_s3.seen]
    assert statuses[0] == 503 and 200 in statuses[1:], flaky_s3.seen
    assert moto_client.get_object(Bucket=s3_bucket, Key="retry/idx.bin")["Body"].read() == b"index bytes"


def test_503_without_retries_fails_loudly(s3_bucket, flaky_s3, monkeypatch):
    """Control for the test above: with a single attempt the same 503 surfaces as a StorageError."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", flaky_s3.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    flaky_s3.fail_first = 1
    with pytest.raises(StorageError, match="SlowDown|SLOW_DOWN|503"):
        storage.write_bytes(b"x", f"s3://{s3_bucket}/retry/once.bin")
    assert len(flaky_s3.seen) == 1
