# Stale multipart uploads through the real gateway (docs/metadata.md "Client sessions and
# reaping"): `granary server --multipart-expiry-ms` aborts an upload nobody completes, its parts'
# space comes back, and ListMultipartUploads stops showing it; a completed one is untouched.
import re
import subprocess
import time

import pytest

import conftest

EXPIRY_MS = 3000


class ReapServer(conftest.Server):
    # conftest.Server (the S3 area's shared fixture) takes no extra flags; rather than change it
    # under the S3 tests, the flags are appended to the one Popen its constructor makes.
    def __init__(self):
        real_popen = subprocess.Popen

        def popen(argv, **kw):
            return real_popen(argv + ["--multipart-expiry-ms", str(EXPIRY_MS),
                                      "--client-lease-ms", "2000"], **kw)

        subprocess.Popen = popen
        try:
            super().__init__()
        finally:
            subprocess.Popen = real_popen


@pytest.fixture(scope="module")
def server():
    s = ReapServer()
    yield s
    s.stop()


def used_bytes(server, bucket):
    out = server.cli("admin", "volume", "list").stdout
    return int(re.search(rf"^{bucket} .*used-bytes=(\d+)", out, re.M).group(1))


def wait_until(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.1)  # polling metanode state, bounded by the deadline
    return cond()


def test_an_abandoned_multipart_upload_is_aborted_after_the_expiry(server):
    s3 = conftest.make_client(server)
    s3.create_bucket(Bucket="reap")
    before = used_bytes(server, "reap")
    body = b"p" * (5 << 20)
    done = s3.create_multipart_upload(Bucket="reap", Key="done")["UploadId"]
    etag = s3.upload_part(Bucket="reap", Key="done", UploadId=done, PartNumber=1,
                          Body=body)["ETag"]
    s3.complete_multipart_upload(Bucket="reap", Key="done", UploadId=done,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    with_object = used_bytes(server, "reap")
    assert with_object == before + len(body)

    stale = s3.create_multipart_upload(Bucket="reap", Key="stale")["UploadId"]
    s3.upload_part(Bucket="reap", Key="stale", UploadId=stale, PartNumber=1, Body=body)
    s3.upload_part(Bucket="reap", Key="stale", UploadId=stale, PartNumber=2, Body=b"tail")
    listed = s3.list_multipart_uploads(Bucket="reap").get("Uploads", [])
    assert [u["UploadId"] for u in listed] == [stale]
    assert used_bytes(server, "reap") == with_object + len(body) + 4

    assert wait_until(lambda: not s3.list_multipart_uploads(Bucket="reap").get("Uploads"), 30)
    assert used_bytes(server, "reap") == with_object
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.list_parts(Bucket="reap", Key="stale", UploadId=stale)
    assert s3.get_object(Bucket="reap", Key="done")["Body"].read() == body
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="reap")["Contents"]] == ["done"]
    out = server.cli("admin", "sessions").stdout
    assert re.search(r"multipart-expired=1\b", out), out
