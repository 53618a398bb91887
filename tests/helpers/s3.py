"""A real S3 endpoint on the loopback address: ``moto_server``, started and stopped by the tests.

t5cls reaches it exactly as a user's bucket, through pyarrow's own S3 client configured by the
environment (`s3_environment`). The server checks credentials: it starts with IAM auth on, one
user is given an access key and full S3 rights, and any other key is refused, so bad credentials
fail as they would on AWS. Where moto is missing or its server cannot start, `start` skips the
tests that need it, saying why.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest

REGION = "us-east-1"
ADMIN_POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
SETUP_REQUESTS = 3  # create_user, put_user_policy, create_access_key: made before auth is enforced


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    key: str
    secret: str

    def environment(self, secret: str | None = None) -> dict[str, str]:
        """What pyarrow (and the AWS SDK under it) reads: credentials, region and endpoint."""
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": secret or self.secret,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def filesystem(self) -> pafs.S3FileSystem:
        """pyarrow's S3 client on this server, allowed to create buckets (the tests' set-up)."""
        scheme, _, address = self.endpoint.partition("://")
        return pafs.S3FileSystem(
            access_key=self.key,
            secret_key=self.secret,
            region=REGION,
            endpoint_override=address,
            scheme=scheme,
            allow_bucket_creation=True,
            allow_bucket_deletion=True,
            request_timeout=60,  # the SDK's 3 s is too short for a server on a loaded 2-core machine
            connect_timeout=10,
        )

    def names(self, prefix: str) -> list[str]:
        """The names of the objects under ``s3://prefix``, relative to it."""
        infos = self.filesystem().get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
        return sorted(info.path.removeprefix(prefix + "/") for info in infos if info.type == pafs.FileType.File)

    def objects(self, prefix: str) -> dict[str, bytes]:
        """Every object under ``s3://prefix``, by its name relative to the prefix."""
        filesystem = self.filesystem()
        infos = filesystem.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
        found = {}
        for info in infos:
            if info.type == pafs.FileType.File:
                with filesystem.open_input_stream(info.path) as stream:
                    found[info.path.removeprefix(prefix + "/")] = stream.read()
        return found

    def upload(self, local: Path, uri: str) -> None:
        """Copy a local file or folder to ``s3://...``."""
        filesystem = self.filesystem()
        target = uri.removeprefix("s3://")
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for path in files:
            name = target if local.is_file() else f"{target}/{path.relative_to(local).as_posix()}"
            with filesystem.open_output_stream(name) as stream:
                stream.write(path.read_bytes())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(endpoint: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"moto_server did not answer within {seconds:.0f} s")


def _user_with_key(endpoint: str) -> tuple[str, str]:
    """An IAM user with every right, and its access key (the only credentials the server accepts)."""
    import boto3

    iam = boto3.client(
        "iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="setup", aws_secret_access_key="setup"
    )
    iam.create_user(UserName="t5cls")
    iam.put_user_policy(UserName="t5cls", PolicyName="all", PolicyDocument=ADMIN_POLICY)
    key = iam.create_access_key(UserName="t5cls")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


@contextlib.contextmanager
def start(seconds: float = 30) -> Iterator[S3Server]:
    """Run ``moto_server`` on a free loopback port for the duration of the block, or skip with the reason."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as err:
        pytest.skip(f"no S3 endpoint: moto[server] is not installed ({err})")
    endpoint = f"http://127.0.0.1:{_free_port()}"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
    command = [sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1"]
    # Its log (a line per request) goes to a file: a pipe nobody reads fills up after some
    # thousand requests, and the server then hangs on its next log line.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*command, "-p", endpoint.rpartition(":")[2]], env=env, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            try:
                _wait_until_up(endpoint, process, seconds)
                key, secret = _user_with_key(endpoint)
            except Exception as err:
                pytest.skip(f"no S3 endpoint: moto_server could not start on 127.0.0.1 ({err}; {_tail(log)})")
            yield S3Server(endpoint, key, secret)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _tail(log) -> str:
    """The last line moto_server logged, for the reason of a skip."""
    log.seek(0)
    lines = log.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "it logged nothing"
