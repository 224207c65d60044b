"""Trial artifacts shared through an S3-compatible object store (AWS S3, MinIO, Ceph, R2 ...).

``--artifacts s3://bucket/prefix`` keeps working files where they always are (``studies/<name>/``),
and mirrors them to ``s3://bucket/prefix/<name>/``: a completed trial's folder is uploaded before
the trial is told COMPLETE (``trial.json`` last, so a folder with it is whole), and export on any
machine downloads the folder it needs. The endpoint and credentials come from the usual AWS
settings: ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, or a profile.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from automl_tl.errors import UserError
from automl_tl.runtime.atomic_files import replace_file

SCHEME = "s3://"
MARKER = "trial.json"  # uploaded last: its presence means the folder is complete


def is_s3(location: str | None) -> bool:
    return bool(location) and str(location).startswith(SCHEME)


def split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``bucket``, ``a/b``)."""
    bucket, _, prefix = url[len(SCHEME):].partition("/")
    if not bucket:
        raise UserError(f"--artifacts {url}: name a bucket, as in s3://my-bucket/automl-tl.")
    return bucket, prefix.strip("/")


class S3Mirror:
    """Uploads and downloads one study's artifact folders under ``s3://bucket/prefix``."""

    def __init__(self, url: str, client: Any = None) -> None:
        self.url = url.rstrip("/")
        self.bucket, self.prefix = split_s3(self.url)
        self.client = client or self._client()

    def _client(self) -> Any:
        try:
            import boto3
        except ModuleNotFoundError:
            raise UserError(
                f"--artifacts {self.url}: S3 artifact stores need boto3. Install it with: pip install 'automl-tl[s3]'."
            ) from None
        client = boto3.client("s3")
        try:
            client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise UserError(
                f"--artifacts {self.url}: cannot reach bucket {self.bucket!r} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200]}). Check AWS_ENDPOINT_URL and the credentials in the environment."
            ) from None
        return client

    def _key(self, relative: str) -> str:
        return str(PurePosixPath(self.prefix, relative)) if self.prefix else relative

    def push_folder(self, local: Path, relative: str) -> None:
        """Upload every file of ``local`` under ``relative``, the marker file last."""
        files = sorted(p for p in local.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == MARKER)
        for path in files:
            self.client.upload_file(str(path), self.bucket, self._key(f"{relative}/{path.relative_to(local).as_posix()}"))

    def pull_folder(self, relative: str, local: Path) -> bool:
        """Download a complete folder into ``local``; False when the store has no complete copy."""
        prefix = self._key(relative) + "/"
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        if prefix + MARKER not in keys:
            return False
        local.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{local.name}.", dir=local.parent))
        try:
            for key in keys:
                relative_path = PurePosixPath(key[len(prefix):])
                if relative_path.is_absolute() or ".." in relative_path.parts:
                    raise UserError(f"Refusing artifact key {key!r} in {self.url}: it points outside its trial folder.")
                target = staging.joinpath(*relative_path.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(self.bucket, key, str(target))
            if local.exists():
                shutil.rmtree(local)
            staging.rename(local)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True

    def push_file(self, path: Path, relative: str) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(relative))

    def pull_file(self, relative: str, path: Path) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(relative))
        except Exception:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, lambda partial: self.client.download_file(self.bucket, self._key(relative), str(partial)),
                     partial=path.with_name(path.name + ".partial"))
        return True
