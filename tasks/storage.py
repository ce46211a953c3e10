"""Read and write artifacts at a local path or an ``s3://bucket/key`` URI with one set of functions.

S3 goes through boto3 with the standard environment: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN`` / ``AWS_PROFILE``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION`` (default ``us-east-1``), and the
endpoint from ``AWS_ENDPOINT_URL`` or else ``MLFLOW_S3_ENDPOINT_URL`` (MinIO, moto, ...; unset = AWS). Transient
failures (503 SlowDown, throttling, connection resets) are retried by botocore's ``standard`` mode, up to
``AWS_MAX_ATTEMPTS`` attempts in all, the first included (default 5).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from fer_core.errors import FerError
from fer_core.io import atomic_path, atomic_write_bytes

_DEFAULT_MAX_ATTEMPTS = 5


class StorageError(FerError):
    """An artifact could not be read or written (bad URI, access denied, object missing)."""


class StorageNotFoundError(StorageError, FileNotFoundError):
    """The file or S3 object does not exist."""


def is_s3(uri: str | os.PathLike[str]) -> bool:
    """Whether ``uri`` is an ``s3://`` URI (anything else is a local path)."""
    return str(uri).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``.

    Raises:
        StorageError: not an s3 URI, or no bucket name.
    """
    if not is_s3(uri):
        raise StorageError(f"{uri!r} is not an s3:// URI; expected s3://bucket/key")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise StorageError(f"{uri!r} has no bucket; expected s3://bucket/key")
    return bucket, key


def s3_client() -> Any:
    """A boto3 S3 client configured from the environment, with standard-mode retries.

    Returns:
        ``botocore.client.S3``.
    """
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    attempts = int(os.environ.get("AWS_MAX_ATTEMPTS", _DEFAULT_MAX_ATTEMPTS))
    # total_max_attempts counts the first try, like AWS_MAX_ATTEMPTS; Config's max_attempts would count retries only.
    retries = {"mode": "standard", "total_max_attempts": attempts}
    config = Config(retries=retries, connect_timeout=10, read_timeout=60)
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, config=config)


@contextlib.contextmanager
def _s3_errors(uri: str) -> Iterator[None]:
    """Translate botocore errors into StorageError naming the URI, the endpoint and a fix."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in {"404", "NoSuchKey", "NotFound"}:
            raise StorageNotFoundError(f"S3 object {uri} does not exist") from e
        if code == "NoSuchBucket":
            raise StorageNotFoundError(f"bucket of {uri} does not exist; create it or fix the URI") from e
        raise StorageError(f"S3 request for {uri} failed ({code}): {e}; check AWS_* credentials and endpoint") from e
    except BotoCoreError as e:
        raise StorageError(f"S3 request for {uri} failed: {e}; check AWS_ENDPOINT_URL / MLFLOW_S3_ENDPOINT_URL") from e


def _local_missing(path: Path) -> StorageNotFoundError:
    return StorageNotFoundError(f"file {path} does not exist")


def put_file(local: str | os.PathLike[str], uri: str | os.PathLike[str]) -> str:
    """Copy a local file to ``uri`` (s3 object or local path; local writes are atomic).

    Returns:
        ``uri`` as a string.

    Raises:
        StorageNotFoundError: ``local`` does not exist.
        StorageError: the upload failed after retries.
    """
    src = Path(local)
    if not src.is_file():
        raise _local_missing(src)
    uri = str(uri)
    if is_s3(uri):
        bucket, key = split_s3(uri)
        with _s3_errors(uri):
            s3_client().upload_file(str(src), bucket, key)
    else:
        with atomic_path(uri) as tmp:
            shutil.copyfile(src, tmp)
    return uri


def get_file(uri: str | os.PathLike[str], local: str | os.PathLike[str]) -> Path:
    """Copy ``uri`` to the local path ``local`` atomically (a failed download leaves ``local`` untouched).

    Raises:
        StorageNotFoundError: no such object or file.
        StorageError: the download failed after retries.
    """
    uri, dest = str(uri), Path(local)
    if not is_s3(uri):
        if not Path(uri).is_file():
            raise _local_missing(Path(uri))
        with atomic_path(dest) as tmp:
            shutil.copyfile(uri, tmp)
        return dest
    bucket, key = split_s3(uri)
    with atomic_path(dest) as tmp, _s3_errors(uri):
        s3_client().download_file(bucket, key, str(tmp))
    return dest


def exists(uri: str | os.PathLike[str]) -> bool:
    """Whether the file or S3 object exists (an S3 "folder" prefix does not count)."""
    uri = str(uri)
    if not is_s3(uri):
        return Path(uri).is_file()
    bucket, key = split_s3(uri)
    try:
        with _s3_errors(uri):
            s3_client().head_object(Bucket=bucket, Key=key)
    except StorageNotFoundError:
        return False
    return True


def read_bytes(uri: str | os.PathLike[str]) -> bytes:
    """The whole content of a file or S3 object.

    Raises:
        StorageNotFoundError: no such object or file.
    """
    uri = str(uri)
    if not is_s3(uri):
        try:
            return Path(uri).read_bytes()
        except FileNotFoundError as e:
            raise _local_missing(Path(uri)) from e
    bucket, key = split_s3(uri)
    with _s3_errors(uri):
        return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()


def write_bytes(data: bytes, uri: str | os.PathLike[str]) -> str:
    """Write ``data`` to ``uri`` (atomic for local paths; an S3 PUT is atomic by nature)."""
    uri = str(uri)
    if is_s3(uri):
        bucket, key = split_s3(uri)
        with _s3_errors(uri):
            s3_client().put_object(Bucket=bucket, Key=key, Body=data)
    else:
        atomic_write_bytes(uri, data)
    return uri


@contextlib.contextmanager
def open_uri(uri: str | os.PathLike[str], mode: str = "rb") -> Iterator[IO[bytes]]:
    """Open a file or S3 object as a binary stream.

    ``rb`` reads the whole object into memory (artifacts here are indexes, manifests, small models); ``wb``
    buffers in memory and writes once the block exits without an exception, so a failure writes nothing.

    Raises:
        StorageError: a mode other than ``rb`` / ``wb``.
    """
    if mode == "rb":
        with io.BytesIO(read_bytes(uri)) as stream:
            yield stream
    elif mode == "wb":
        buffer = io.BytesIO()
        yield buffer
        write_bytes(buffer.getvalue(), uri)
    else:
        raise StorageError(f"open_uri mode {mode!r} is not supported; use 'rb' or 'wb'")


def _join(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel}" if is_s3(base) else str(Path(base) / rel)


def upload_dir(local_dir: str | os.PathLike[str], uri: str | os.PathLike[str]) -> list[str]:
    """Copy every file under ``local_dir`` to ``uri/<relative path>``, in sorted order.

    Returns:
        The destination URIs written.

    Raises:
        StorageNotFoundError: ``local_dir`` is not a folder.
    """
    root = Path(local_dir)
    if not root.is_dir():
        raise StorageNotFoundError(f"folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return [put_file(p, _join(str(uri), p.relative_to(root).as_posix())) for p in files]


def _list_s3(uri: str) -> list[str]:
    bucket, prefix = split_s3(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    keys: list[str] = []
    with _s3_errors(uri):
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"][len(prefix) :] for obj in page.get("Contents", []))
    return sorted(k for k in keys if k and not k.endswith("/"))


def download_dir(uri: str | os.PathLike[str], local_dir: str | os.PathLike[str]) -> list[Path]:
    """Copy every file under ``uri`` (S3 prefix or local folder) into ``local_dir``, keeping relative paths.

    Returns:
        The local files written, sorted.

    Raises:
        StorageNotFoundError: nothing exists under ``uri``.
        StorageError: a key would land outside ``local_dir`` (``..`` in the key).
    """
    uri, dest = str(uri), Path(local_dir).resolve()
    if is_s3(uri):
        rels = _list_s3(uri)
    else:
        root = Path(uri)
        rels = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
    if not rels:
        raise StorageNotFoundError(f"nothing to download under {uri}")
    written = []
    for rel in rels:
        target = (dest / rel).resolve()
        if not target.is_relative_to(dest):
            raise StorageError(f"object {_join(uri, rel)} would be written outside {dest}; refusing the '..' key")
        written.append(get_file(_join(uri, rel), target))
    return written
