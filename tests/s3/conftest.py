# Fixtures for the S3 tests: one `granary server` (metanode + 3 datanodes + S3 gateway) on
# loopback ports for the session, and clients configured for it.
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import boto3
import botocore.config
import pytest

GRANARY = os.environ.get("GRANARY_BINARY", "build/bin/granary")
ACCESS, SECRET = "GRANARYTESTKEY", "granary-test-secret-0123456789"


class Server:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="granary-s3-test-")
        self.log = open(os.path.join(self.dir, "server.log"), "w+")
        self.proc = subprocess.Popen(
            [GRANARY, "server", "--data", os.path.join(self.dir, "data"), "--meta",
             "127.0.0.1:0", "--s3", "127.0.0.1:0", "--access-key", ACCESS, "--secret-key",
             SECRET],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            self.log.seek(0)
            text = self.log.read()
            if re.search(r"^ready$", text, re.M):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("granary server exited:\n" + text)
            time.sleep(0.05)  # polling the log for the ready line, bounded by the deadline
        else:
            raise RuntimeError("granary server not ready:\n" + text)
        self.endpoint = re.search(r"s3=(\S+)", text).group(1)
        self.meta = re.search(r"meta=(\S+)", text).group(1)

    def cli(self, *args, check=True):
        r = subprocess.run([GRANARY, *args, "--meta", self.meta], capture_output=True, text=True,
                           timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError(f"granary {args}: {r.stdout}{r.stderr}")
        return r

    def new_key(self):
        out = self.cli("admin", "key", "create").stdout
        return (re.search(r"access_key=(\S+)", out).group(1),
                re.search(r"secret_key=(\S+)", out).group(1))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server():
    s = Server()
    yield s
    s.stop()


def make_client(server, access=ACCESS, secret=SECRET, **cfg):
    cfg.setdefault("signature_version", "s3v4")  # "s3": SigV2 (test_s3_compat.py)
    return boto3.client(
        "s3", endpoint_url=server.endpoint, aws_access_key_id=access,
        aws_secret_access_key=secret, region_name="us-east-1",
        config=botocore.config.Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}, **cfg))


@pytest.fixture(scope="session")
def s3(server):
    return make_client(server)


_count = [0]


@pytest.fixture
def bucket(s3):
    _count[0] += 1
    name = f"test-{os.getpid()}-{_count[0]}"
    s3.create_bucket(Bucket=name)
    yield name
    # Empty it whatever the test left.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
    s3.delete_bucket(Bucket=name)
