"""The artifact store: one URI (a local folder or ``s3://bucket/prefix``) through ``pyarrow.fs``.

Every durable output of a unit or stage lives here under a content-addressed key (``docs/store.md``). ``pyarrow.fs``
is the filesystem layer Ray Tune already uses for its ``storage_path``, so units, stages and Tune trials reach the
same bytes through one implementation, and the adapters need no second S3 client.

S3 settings come from the standard environment: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION`` (default ``us-east-1``), the endpoint from
``AWS_ENDPOINT_URL`` or else ``MLFLOW_S3_ENDPOINT_URL`` (MinIO, moto, ...; unset = AWS; pyarrow itself ignores these
variables, so they are passed explicitly), and ``AWS_MAX_ATTEMPTS`` attempts in all, the first included (default 5).

Atomicity: an object appears whole or not at all. Local writes go to a temporary file renamed into place; an S3
object is written in one request from bytes already in memory, so a failed producer leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pyarrow.fs as pafs

from fer_core.errors import FerError
from fer_core.io import atomic_path, sha256_file

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


def s3_endpoint() -> str | None:
    """The S3 endpoint URL from the environment (``AWS_ENDPOINT_URL``, else ``MLFLOW_S3_ENDPOINT_URL``)."""
    return os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None


def s3_filesystem() -> pafs.S3FileSystem:
    """A ``pyarrow.fs.S3FileSystem`` configured from the environment (cached per endpoint, region and attempts)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    attempts = int(os.environ.get("AWS_MAX_ATTEMPTS", _DEFAULT_MAX_ATTEMPTS))
    creds = tuple(os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
    return _s3(s3_endpoint(), region, attempts, creds)


@functools.lru_cache(maxsize=8)
def _s3(endpoint: str | None, region: str, attempts: int, creds: tuple[str | None, ...]) -> pafs.S3FileSystem:
    opts: dict = {"region": region, "connect_timeout": 10, "request_timeout": 60}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        opts.update(endpoint_override=host.rstrip("/"), scheme=scheme)
    if creds[0] and creds[1]:
        opts.update(access_key=creds[0], secret_key=creds[1], session_token=creds[2])
    # pyarrow counts retries after the first attempt; AWS_MAX_ATTEMPTS counts the first one too.
    opts["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=max(0, attempts - 1))
    return pafs.S3FileSystem(**opts)


def resolve(uri: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, path inside it)`` for a local path or an ``s3://`` URI."""
    uri = str(uri)
    if is_s3(uri):
        bucket, key = split_s3(uri)
        return s3_filesystem(), f"{bucket}/{key}".rstrip("/")
    return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())


@contextlib.contextmanager
def _errors(uri: str) -> Iterator[None]:
    """Translate pyarrow's OSError into StorageError naming the URI and a fix."""
    try:
        yield
    except FileNotFoundError as e:
        raise StorageNotFoundError(f"{uri} does not exist") from e
    except OSError as e:
        hint = "; check AWS_* credentials and AWS_ENDPOINT_URL" if is_s3(uri) else ""
        raise StorageError(f"storage request for {uri} failed: {e}{hint}") from e


def write_bytes(data: bytes, uri: str | os.PathLike[str]) -> str:
    """Write ``data`` to ``uri`` whole or not at all."""
    uri = str(uri)
    fs, path = resolve(uri)
    with _errors(uri):
        if isinstance(fs, pafs.LocalFileSystem):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                with fs.open_output_stream(tmp) as out:
                    out.write(data)
                fs.move(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
        else:
            with fs.open_output_stream(path) as out:  # one object, committed on close
                out.write(data)
    return uri


def read_bytes(uri: str | os.PathLike[str]) -> bytes:
    """The whole content of a file or S3 object.

    Raises:
        StorageNotFoundError: no such object or file.
    """
    uri = str(uri)
    fs, path = resolve(uri)
    with _errors(uri), fs.open_input_stream(path) as f:
        return f.read()


def exists(uri: str | os.PathLike[str]) -> bool:
    """Whether the file or S3 object exists (a folder or prefix does not count)."""
    uri = str(uri)
    fs, path = resolve(uri)
    with _errors(uri):
        return fs.get_file_info(path).type == pafs.FileType.File


def put_file(local: str | os.PathLike[str], uri: str | os.PathLike[str]) -> str:
    """Copy a local file to ``uri`` (atomic on every backend).

    Raises:
        StorageNotFoundError: ``local`` does not exist.
    """
    src = Path(local)
    if not src.is_file():
        raise StorageNotFoundError(f"file {src} does not exist")
    return write_bytes(src.read_bytes(), uri)


def get_file(uri: str | os.PathLike[str], local: str | os.PathLike[str]) -> Path:
    """Copy ``uri`` to the local path ``local`` atomically (a failed download leaves ``local`` untouched).

    Raises:
        StorageNotFoundError: no such object or file.
    """
    data = read_bytes(uri)
    dest = Path(local)
    with atomic_path(dest) as tmp:
        Path(tmp).write_bytes(data)
    return dest


@contextlib.contextmanager
def open_uri(uri: str | os.PathLike[str], mode: str = "rb") -> Iterator[IO[bytes]]:
    """Open a file or S3 object as a binary stream.

    ``rb`` reads the whole object into memory; ``wb`` buffers in memory and writes once the block exits without an
    exception, so a failure writes nothing.

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


def join(base: str, rel: str) -> str:
    """``base/rel`` for a folder or an s3 prefix."""
    return f"{str(base).rstrip('/')}/{rel}" if is_s3(base) else str(Path(base) / rel)


def list_files(uri: str | os.PathLike[str]) -> list[str]:
    """Relative paths of every file under a folder or prefix, sorted (empty when there is none)."""
    uri = str(uri)
    fs, path = resolve(uri)
    with _errors(uri):
        if fs.get_file_info(path).type == pafs.FileType.NotFound and not is_s3(uri):
            return []
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    prefix = path.rstrip("/") + "/"
    return sorted(i.path[len(prefix) :] for i in infos if i.type == pafs.FileType.File and i.path.startswith(prefix))


def upload_dir(local_dir: str | os.PathLike[str], uri: str | os.PathLike[str]) -> list[str]:
    """Copy every file under ``local_dir`` to ``uri/<relative path>``, in sorted order.

    Raises:
        StorageNotFoundError: ``local_dir`` is not a folder.
    """
    root = Path(local_dir)
    if not root.is_dir():
        raise StorageNotFoundError(f"folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))
    return [put_file(p, join(str(uri), p.relative_to(root).as_posix())) for p in files]


def download_dir(uri: str | os.PathLike[str], local_dir: str | os.PathLike[str]) -> list[Path]:
    """Copy every file under ``uri`` (S3 prefix or local folder) into ``local_dir``, keeping relative paths.

    Raises:
        StorageNotFoundError: nothing exists under ``uri``.
        StorageError: a key would land outside ``local_dir`` (``..`` in the key).
    """
    uri, dest = str(uri), Path(local_dir).resolve()
    rels = list_files(uri)
    if not rels:
        raise StorageNotFoundError(f"nothing to download under {uri}")
    for rel in rels:  # refuse before writing anything
        if not (dest / rel).resolve().is_relative_to(dest) or ".." in rel.split("/"):
            raise StorageError(f"object {join(uri, rel)} would be written outside {dest}; refusing the '..' key")
    return [get_file(join(uri, rel), dest / rel) for rel in rels]


class Store:
    """The artifact store at one URI, addressed by relative keys (``datasets/<sha>/index.parquet``).

    Args:
        uri: a local folder or ``s3://bucket/prefix``.
        cache_dir: the node-local cache for copies of remote objects (``$FERFLOW_HOME/cache/store``).
    """

    def __init__(self, uri: str, cache_dir: Path):
        self.uri = uri if is_s3(uri) else str(Path(uri).expanduser().resolve())
        self.cache_dir = Path(cache_dir) / hashlib.sha256(self.uri.encode()).hexdigest()[:12]

    @classmethod
    def from_env(cls) -> Store:
        """The store of the settings (``FERFLOW_STORE``, default ``$FERFLOW_HOME/store``)."""
        from fer_spec.settings import Settings

        s = Settings.from_env()
        return cls(s.store, s.home / "cache" / "store")

    @property
    def is_local(self) -> bool:
        return not is_s3(self.uri)

    def url(self, key: str) -> str:
        """The full URI of ``key``."""
        return join(self.uri, key)

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """``(pyarrow filesystem, root path)``: what Ray Tune takes as ``storage_filesystem`` / ``storage_path``."""
        return resolve(self.uri)

    def exists(self, key: str) -> bool:
        return exists(self.url(key))

    def put_bytes(self, key: str, data: bytes) -> str:
        write_bytes(data, self.url(key))
        return key

    def get_bytes(self, key: str) -> bytes:
        return read_bytes(self.url(key))

    def put_file(self, key: str, local: str | os.PathLike[str]) -> str:
        put_file(local, self.url(key))
        return key

    def put_dir(self, prefix: str, local_dir: str | os.PathLike[str]) -> list[str]:
        """Upload a folder under ``prefix``; returns the keys written."""
        root = Path(local_dir)
        return [self.put_file(f"{prefix}/{p.relative_to(root).as_posix()}", p)
                for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".tmp")]  # fmt: skip

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (relative to it), sorted."""
        return list_files(self.url(prefix))

    def fetch(self, key: str, sha256: str | None = None) -> Path:
        """A local, verified copy of ``key``: the file itself for a local store, else a node-local cached copy.

        Raises:
            StorageNotFoundError: no such key.
            IntegrityMismatchError: the bytes do not hash to ``sha256``.
        """
        from fer_core.errors import IntegrityMismatchError

        if self.is_local:
            path = Path(self.url(key))
            if not path.is_file():
                raise StorageNotFoundError(f"{self.url(key)} does not exist")
        else:
            path = self.cache_dir / key
            if not path.is_file():
                data = self.get_bytes(key)
                if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
                    raise IntegrityMismatchError(f"{self.url(key)} does not hash to {sha256}: damaged in the store")
                with atomic_path(path) as tmp:
                    Path(tmp).write_bytes(data)
                return path
        if sha256 is not None and sha256_file(path) != sha256:
            raise IntegrityMismatchError(f"{path} does not hash to {sha256}; the copy of {key} is damaged")
        return path
