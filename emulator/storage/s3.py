"""S3 for the emulator: a moto server on 127.0.0.1 started on demand, or any endpoint the user names.

All transfers are real boto3 calls over HTTP. Locations in specs may be ``s3://bucket/key`` URIs or
local paths (the emulator's local extension); :func:`is_s3` tells them apart.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import botocore.exceptions

from emulator.config import EmulatorConfig
from emulator.errors import InputNotFound, InvalidConfig, S3Error

logger = logging.getLogger(__name__)

_DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def is_s3(location: str) -> bool:
    """True for ``s3://`` URIs (anything else is a local path)."""
    return location.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/part`` -> ``("bucket", "key/part")``."""
    if not is_s3(uri):
        raise S3Error(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise S3Error(f"{uri!r} names no bucket; write s3://BUCKET/KEY")
    return bucket, key


def join_uri(base: str, *parts: str) -> str:
    """Join a local path or S3 URI with further path parts, with exactly one '/' between them."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


class S3:
    """S3 access through one endpoint; the moto server is started only when first needed."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self._config = config or EmulatorConfig()
        self._endpoint = self._config.s3_endpoint_url
        self._server: Any = None
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        """The endpoint in use, starting the local moto server if none was named."""
        with self._lock:
            if self._endpoint is None:
                self._endpoint = self._start_moto()
            return self._endpoint

    def _start_moto(self) -> str:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request log lines on the user's terminal
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        logger.info("started a moto S3 server on http://%s:%s", host, port)
        return f"http://{host}:{port}"

    @property
    def client(self) -> Any:
        """A boto3 S3 client for the endpoint."""
        if self._client is None:
            endpoint = self.endpoint_url
            creds: dict[str, str] = {}
            if self._server is not None or not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
                creds = dict(_DUMMY_CREDENTIALS)
            session = _boto_session(ignore_profile=bool(creds))
            self._client = session.client(
                "s3",
                endpoint_url=endpoint,
                region_name=self._config.region,
                config=_botocore_config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
                **creds,
            )
        return self._client

    def close(self) -> None:
        """Stop the moto server if this object started it."""
        if self._server is not None:
            self._server.stop()
            self._server = None
            self._endpoint = self._config.s3_endpoint_url
            self._client = None

    def __enter__(self) -> S3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------------------------------
    def list_keys(self, uri: str) -> list[tuple[str, int]]:
        """Every (key, size) under the prefix of ``uri``, sorted by key."""
        bucket, prefix = split_s3(uri)
        out: list[tuple[str, int]] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                out.extend((o["Key"], int(o["Size"])) for o in page.get("Contents", []))
        except botocore.exceptions.ClientError as exc:
            raise S3Error(f"cannot list {uri}: {_code(exc)}; create the bucket and upload the data first") from None
        except botocore.exceptions.EndpointConnectionError:
            raise S3Error(f"no S3 endpoint answers at {self.endpoint_url}; start it or fix --s3-endpoint") from None
        return sorted(out)

    def download_prefix(self, uri: str, dest: Path, keys: list[str] | None = None) -> list[Path]:
        """Download every object under ``uri`` (or just ``keys``) into ``dest``, paths relative to the prefix."""
        bucket, prefix = split_s3(uri)
        chosen = keys if keys is not None else [k for k, _ in self.list_keys(uri)]
        chosen = [k for k in chosen if not k.endswith("/")]
        if not chosen:
            raise InputNotFound(f"no objects under {uri}; upload the data there or fix the S3Uri")
        paths = []
        for key in chosen:
            rel = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self.download_file(f"s3://{bucket}/{key}", target)
            paths.append(target)
        return paths

    def download_file(self, uri: str, target: Path) -> None:
        """Download one object to a local file."""
        bucket, key = split_s3(uri)
        try:
            self.client.download_file(bucket, key, str(target))
        except botocore.exceptions.ClientError as exc:
            raise InputNotFound(f"cannot download {uri}: {_code(exc)}; check that the object exists") from None

    def open_read(self, uri: str) -> IO[bytes]:
        """A streaming reader of one object."""
        bucket, key = split_s3(uri)
        try:
            body: IO[bytes] = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except botocore.exceptions.ClientError as exc:
            raise InputNotFound(f"cannot read {uri}: {_code(exc)}; check that the object exists") from None
        return body

    def read_bytes(self, uri: str) -> bytes:
        """A whole (small) object."""
        with self.open_read(uri) as body:
            return body.read()

    # -- writing ---------------------------------------------------------------------------------------
    def upload_file(self, path: Path, uri: str) -> None:
        """Upload one local file (multipart for big files), creating the bucket on a local moto server."""
        bucket, key = split_s3(uri)
        self._ensure_bucket(bucket)
        try:
            self.client.upload_file(str(path), bucket, key)
        except (botocore.exceptions.ClientError, _upload_failed()) as exc:
            raise S3Error(f"cannot upload {path} to {uri}: {exc}") from None

    def upload_fileobj(self, fileobj: IO[bytes], uri: str) -> None:
        """Upload a stream (multipart, bounded memory)."""
        bucket, key = split_s3(uri)
        self._ensure_bucket(bucket)
        try:
            self.client.upload_fileobj(fileobj, bucket, key)
        except (botocore.exceptions.ClientError, _upload_failed()) as exc:
            raise S3Error(f"cannot upload to {uri}: {exc}") from None

    def put_bytes(self, uri: str, data: bytes) -> None:
        """Write a small object."""
        bucket, key = split_s3(uri)
        self._ensure_bucket(bucket)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, uri: str) -> None:
        """Delete one object (one that is not there is fine)."""
        bucket, key = split_s3(uri)
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            raise S3Error(f"cannot delete {uri}: {_code(exc)}") from None

    def upload_dir(self, directory: Path, uri: str) -> list[str]:
        """Upload every regular file under ``directory`` (symlinks are not followed, as on the platform)."""
        uploaded = []
        for path in _walk_files(directory):
            target = join_uri(uri, path.relative_to(directory).as_posix())
            self.upload_file(path, target)
            uploaded.append(target)
        return uploaded

    def _ensure_bucket(self, bucket: str) -> None:
        client = self.client  # starts the local moto server if this object is to use one
        if self._server is None:
            return  # a real or user-run endpoint: the bucket is the user's business
        try:
            client.head_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError:
            client.create_bucket(Bucket=bucket)


# boto3 is imported on first use (~0.1-0.3 s): a job without S3 never pays it, and the CLI starts faster.
def _botocore_config(**options: Any) -> Any:
    import botocore.config

    return botocore.config.Config(**options)


def _upload_failed() -> type[Exception]:
    import boto3.exceptions

    return boto3.exceptions.S3UploadFailedError


def _boto_session(*, ignore_profile: bool) -> Any:
    """A boto3 session; with ``ignore_profile`` (dummy credentials for moto) AWS_PROFILE is not even read.

    Raises:
        InvalidConfig: AWS_PROFILE (or AWS_DEFAULT_PROFILE) names a profile that does not exist.
    """
    import boto3.session
    import botocore.session

    if ignore_profile:
        core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        return boto3.session.Session(botocore_session=core)
    try:
        return boto3.session.Session()  # the stubs' overloads do not take **credentials
    except botocore.exceptions.ProfileNotFound as exc:
        raise InvalidConfig(
            f"{exc}: AWS_PROFILE names no profile in ~/.aws/config or ~/.aws/credentials; fix or unset AWS_PROFILE"
        ) from None


def _walk_files(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            if not path.is_symlink():
                yield path


def _code(exc: botocore.exceptions.ClientError) -> str:
    err = exc.response.get("Error", {})
    return f"{err.get('Code', '?')} {err.get('Message', '')}".strip()
