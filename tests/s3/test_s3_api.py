# The S3 API through boto3 (and hand-built requests where boto3 cannot misbehave on purpose)
# against a real `granary server`. Each test states what a user of S3 would notice.
import base64
import datetime
import hashlib
import os
import time
import urllib.request

import botocore.exceptions
import pytest

import s3raw
from conftest import ACCESS, SECRET, make_client


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def status_of(excinfo):
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def keys(s3, bucket, **kw):
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, **kw).get("Contents", [])]


def with_headers(s3, event, headers):
    """Adds raw headers to the next calls of `event` (boto3 1.26 has no IfNoneMatch on PUT)."""
    def add(request, **_):
        for k, v in headers.items():
            request.headers[k] = v
    s3.meta.events.register_first(f"before-sign.s3.{event}", add)
    return lambda: s3.meta.events.unregister(f"before-sign.s3.{event}", add)


# ---------------------------------------------------------------- buckets

def test_bucket_lifecycle_and_listing(s3, server):
    s3.create_bucket(Bucket="life-bucket")
    assert "life-bucket" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="life-bucket")
    assert s3.get_bucket_location(Bucket="life-bucket").get("LocationConstraint") is None
    assert "Status" not in s3.get_bucket_versioning(Bucket="life-bucket")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.create_bucket(Bucket="life-bucket")
    assert code_of(e) == "BucketAlreadyOwnedByYou"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        # The server exports its volume `default` as this key's bucket `default`.
        s3.create_bucket(Bucket="default")
    assert code_of(e) == "BucketAlreadyOwnedByYou"
    s3.put_object(Bucket="life-bucket", Key="x", Body=b"1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.delete_bucket(Bucket="life-bucket")
    assert code_of(e) == "BucketNotEmpty"
    s3.delete_object(Bucket="life-bucket", Key="x")
    s3.delete_bucket(Bucket="life-bucket")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_bucket(Bucket="life-bucket")
    assert status_of(e) == 404
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert code_of(e) == "NoSuchBucket"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.create_bucket(Bucket="Bad_Name")
    assert code_of(e) == "InvalidBucketName"


# ---------------------------------------------------------------- objects

def test_put_get_head_with_metadata(s3, bucket):
    body = os.urandom(100_000)
    r = s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=body, ContentType="text/plain",
                      ContentEncoding="identity", CacheControl="max-age=60",
                      ContentDisposition='attachment; filename="o.bin"',
                      Metadata={"owner": "alice", "run": "42"})
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()
    g = s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert g["Body"].read() == body
    assert g["ETag"] == r["ETag"]
    assert g["ContentType"] == "text/plain"
    assert g["CacheControl"] == "max-age=60"
    assert g["ContentDisposition"] == 'attachment; filename="o.bin"'
    assert g["ContentEncoding"] == "identity"
    assert g["Metadata"] == {"owner": "alice", "run": "42"}
    h = s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert h["ContentLength"] == len(body)
    assert h["ETag"] == r["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir/missing")
    assert code_of(e) == "NoSuchKey"
    # The implicit directory is not an object.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir")
    assert code_of(e) == "NoSuchKey"


def test_empty_object_and_overwrite(s3, bucket):
    s3.put_object(Bucket=bucket, Key="e", Body=b"")
    assert s3.get_object(Bucket=bucket, Key="e")["Body"].read() == b""
    s3.put_object(Bucket=bucket, Key="e", Body=b"second")
    assert s3.get_object(Bucket=bucket, Key="e")["Body"].read() == b"second"


def test_puts_round_trip_on_both_sides_of_the_small_put_size(s3, bucket):
    # Up to 1 MiB a PUT is buffered and written in two metanode operations; above, streamed.
    for n in (1, 4095, 4096, 4097, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, (4 << 20) + 5):
        data = os.urandom(n)
        put = s3.put_object(Bucket=bucket, Key=f"sized/{n}", Body=data)
        assert put["ETag"] == '"%s"' % hashlib.md5(data).hexdigest(), n
        got = s3.get_object(Bucket=bucket, Key=f"sized/{n}")
        assert got["ContentLength"] == n
        assert got["Body"].read() == data, n
    # Replacing a small object with a small object serves the new bytes.
    s3.put_object(Bucket=bucket, Key="sized/1", Body=b"Z")
    assert s3.get_object(Bucket=bucket, Key="sized/1")["Body"].read() == b"Z"


def test_ranges(s3, bucket):
    body = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    g = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert g["Body"].read() == body[10:20]
    assert g["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == body[-5:]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=10000-")["Body"].read() == body[10000:]
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=0-999999")["Body"].read() == body
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert code_of(e) == "InvalidRange"
    assert status_of(e) == 416


def test_conditional_get_and_head(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"data")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"data"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert status_of(e) == 412
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status_of(e) == 304
    future = datetime.datetime.utcnow() + datetime.timedelta(days=1)
    past = datetime.datetime.utcnow() - datetime.timedelta(days=1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfModifiedSince=future)
    assert status_of(e) == 304
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfUnmodifiedSince=past)
    assert status_of(e) == 412
    s3.head_object(Bucket=bucket, Key="c", IfModifiedSince=past)


def test_conditional_put_creates_only_if_absent_and_replaces_only_that_version(s3, bucket):
    undo = with_headers(s3, "PutObject", {"If-None-Match": "*"})
    try:
        first = s3.put_object(Bucket=bucket, Key="ckpt/latest", Body=b"v1")["ETag"]
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket=bucket, Key="ckpt/latest", Body=b"v2")
        assert status_of(e) == 412
        assert code_of(e) == "PreconditionFailed"
    finally:
        undo()
    assert s3.get_object(Bucket=bucket, Key="ckpt/latest")["Body"].read() == b"v1"
    undo = with_headers(s3, "PutObject", {"If-Match": first})
    try:
        second = s3.put_object(Bucket=bucket, Key="ckpt/latest", Body=b"v2")["ETag"]
        # The same If-Match again: the version it names is gone.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket=bucket, Key="ckpt/latest", Body=b"v3")
        assert code_of(e) == "PreconditionFailed"
    finally:
        undo()
    assert second != first
    assert s3.get_object(Bucket=bucket, Key="ckpt/latest")["Body"].read() == b"v2"
    undo = with_headers(s3, "PutObject", {"If-Match": second})
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket=bucket, Key="ckpt/absent", Body=b"x")
        assert code_of(e) == "NoSuchKey"
    finally:
        undo()
    assert keys(s3, bucket) == ["ckpt/latest"]


def test_copy_object_with_metadata_directive(s3, bucket):
    body = os.urandom(3 << 20)
    src = s3.put_object(Bucket=bucket, Key="src", Body=body, ContentType="a/b",
                        Metadata={"k": "v"})["ETag"]
    r = s3.copy_object(Bucket=bucket, Key="copies/one", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == src
    g = s3.get_object(Bucket=bucket, Key="copies/one")
    assert g["Body"].read() == body
    assert g["Metadata"] == {"k": "v"} and g["ContentType"] == "a/b"
    s3.copy_object(Bucket=bucket, Key="copies/two", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", ContentType="c/d", Metadata={"n": "m"})
    g = s3.get_object(Bucket=bucket, Key="copies/two")
    assert g["Metadata"] == {"n": "m"} and g["ContentType"] == "c/d"
    assert g["Body"].read() == body
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert code_of(e) == "InvalidRequest"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/nope")
    assert code_of(e) == "NoSuchKey"
    # The source is untouched by deleting a copy.
    s3.delete_object(Bucket=bucket, Key="copies/one")
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == body


def test_delete_objects_and_implicit_directories(s3, bucket):
    for k in ["a/b/c", "a/b/d", "a/e", "f"]:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a/b/c"}, {"Key": "a/b/d"},
                                                             {"Key": "nope"}]},
                          BypassGovernanceRetention=True)
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a/b/c", "a/b/d", "nope"]
    assert keys(s3, bucket) == ["a/e", "f"]
    lst = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in lst.get("CommonPrefixes", [])] == ["a/"]
    s3.delete_object(Bucket=bucket, Key="a/e")
    s3.delete_object(Bucket=bucket, Key="f")
    s3.delete_object(Bucket=bucket, Key="never-existed")  # 204 as S3 does
    lst = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert lst["KeyCount"] == 0  # PUT+DELETE leaves an empty bucket: no directories stay


def test_key_and_directory_conflicts(s3, bucket):
    s3.put_object(Bucket=bucket, Key="p/q", Body=b"1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="p", Body=b"2")
    assert status_of(e) == 409 and code_of(e) == "ObjectExistsAsDirectory"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="p/q/r", Body=b"3")
    assert status_of(e) == 409 and code_of(e) == "ParentIsObject"
    # A directory marker: a key ending in '/' with no body.
    s3.put_object(Bucket=bucket, Key="empty-dir/", Body=b"")
    assert "empty-dir/" in keys(s3, bucket)
    assert s3.head_object(Bucket=bucket, Key="empty-dir/")["ContentLength"] == 0
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.put_object(Bucket=bucket, Key="other-dir/", Body=b"body")
    assert status_of(e) == 400
    s3.delete_object(Bucket=bucket, Key="empty-dir/")
    assert keys(s3, bucket) == ["p/q"]


# ---------------------------------------------------------------- listing

def test_listing_order_prefix_delimiter_and_pagination(s3, bucket):
    names = ["x", "x-a", "x.b", "x/y", "x/z/1", "y", "a b", "a+b", "ü/é"]
    names.remove("x")  # "x" cannot be both an object and the directory of "x/y"
    for k in names:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    # S3 order is byte order of the full key: directory x sorts as "x/" (after "x-a", "x.b").
    assert keys(s3, bucket) == sorted(names, key=lambda s: s.encode())
    lst = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in lst["Contents"]] == ["a b", "a+b", "x-a", "x.b", "y"]
    assert [p["Prefix"] for p in lst["CommonPrefixes"]] == ["x/", "ü/"]
    lst = s3.list_objects_v2(Bucket=bucket, Prefix="x/", Delimiter="/")
    assert [o["Key"] for o in lst["Contents"]] == ["x/y"]
    assert [p["Prefix"] for p in lst["CommonPrefixes"]] == ["x/z/"]
    assert keys(s3, bucket, Prefix="x") == ["x-a", "x.b", "x/y", "x/z/1"]
    assert keys(s3, bucket, StartAfter="x.b") == ["x/y", "x/z/1", "y", "ü/é"]
    # v2 pagination with continuation tokens.
    got, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=2, **kw)
        got += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert got == sorted(names, key=lambda s: s.encode())
    # v1 with markers.
    got, marker = [], ""
    while True:
        page = s3.list_objects(Bucket=bucket, MaxKeys=3, Marker=marker)
        got += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        marker = page.get("NextMarker", got[-1])
    assert got == sorted(names, key=lambda s: s.encode())
    # encoding-type=url
    page = s3.list_objects_v2(Bucket=bucket, EncodingType="url", Prefix="a")
    import urllib.parse
    assert [urllib.parse.unquote_plus(o["Key"]) for o in page["Contents"]] == ["a b", "a+b"]
    assert page["Contents"][1]["Key"] == "a%2Bb"
    assert s3.list_objects_v2(Bucket=bucket, MaxKeys=0)["KeyCount"] == 0
    v = s3.list_object_versions(Bucket=bucket)
    assert [x["Key"] for x in v["Versions"]] == sorted(names, key=lambda s: s.encode())
    assert all(x["VersionId"] == "null" and x["IsLatest"] for x in v["Versions"])


def test_paginator_over_many_keys(s3, bucket):
    for i in range(25):
        s3.put_object(Bucket=bucket, Key=f"k/{i:03d}", Body=b"")
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                              PaginationConfig={"PageSize": 7}))
    assert len(pages) == 4
    assert [o["Key"] for p in pages for o in p["Contents"]] == [f"k/{i:03d}" for i in range(25)]


# ---------------------------------------------------------------- multipart

def test_multipart_upload_complete_list_and_copy_part(s3, bucket):
    part1 = os.urandom(5 << 20)
    part2 = os.urandom(5 << 20)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp/obj", ContentType="x/y",
                                    Metadata={"m": "1"})
    uid = up["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    e1 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=2, Body=part2)["ETag"]
    s3.put_object(Bucket=bucket, Key="copy-src", Body=b"0123456789")
    e3 = s3.upload_part_copy(Bucket=bucket, Key="mp/obj", UploadId=uid, PartNumber=3,
                             CopySource=f"{bucket}/copy-src",
                             CopySourceRange="bytes=2-5")["CopyPartResult"]["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 << 20), (2, 5 << 20), (3, 4)]
    # Not visible before completion.
    with pytest.raises(botocore.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key="mp/obj")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp/obj", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2},
                                                                {"PartNumber": 1, "ETag": e1}]})
    assert code_of(e) == "InvalidPartOrder"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp/obj", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]})
    assert code_of(e) == "InvalidPart"
    r = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/obj", UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
                                   {"PartNumber": 3, "ETag": e3}]})
    md5s = b"".join(bytes.fromhex(x.strip('"')) for x in (e1, e2, e3))
    assert r["ETag"] == '"%s-3"' % hashlib.md5(md5s).hexdigest()
    g = s3.get_object(Bucket=bucket, Key="mp/obj")
    assert g["Body"].read() == part1 + part2 + b"2345"
    assert g["Metadata"] == {"m": "1"} and g["ContentType"] == "x/y"
    assert g["ETag"] == r["ETag"]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # A range across the part boundary.
    g = s3.get_object(Bucket=bucket, Key="mp/obj", Range=f"bytes={(5 << 20) - 3}-{(5 << 20) + 2}")
    assert g["Body"].read() == part1[-3:] + part2[:3]


def test_multipart_abort_leaves_nothing(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ab/x")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ab/x", UploadId=uid, PartNumber=1, Body=b"z" * 1000)
    e2 = s3.upload_part(Bucket=bucket, Key="ab/x", UploadId=uid, PartNumber=2, Body=b"y")["ETag"]
    e1 = s3.list_parts(Bucket=bucket, Key="ab/x", UploadId=uid)["Parts"][0]["ETag"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="ab/x", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                                                {"PartNumber": 2, "ETag": e2}]})
    assert code_of(e) == "EntityTooSmall"
    s3.abort_multipart_upload(Bucket=bucket, Key="ab/x", UploadId=uid)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="ab/x", UploadId=uid)
    assert code_of(e) == "NoSuchUpload"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="ab/x", UploadId=uid, PartNumber=2, Body=b"z")
    assert code_of(e) == "NoSuchUpload"
    assert keys(s3, bucket) == []


def test_multipart_via_transfer_manager(s3, bucket, tmp_path):
    import boto3.s3.transfer
    data = os.urandom(20 << 20)
    src = tmp_path / "big"
    src.write_bytes(data)
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20)
    s3.upload_file(str(src), bucket, "tm/big", Config=cfg)
    dst = tmp_path / "back"
    s3.download_file(bucket, "tm/big", str(dst), Config=cfg)
    assert dst.read_bytes() == data
    assert s3.head_object(Bucket=bucket, Key="tm/big")["ETag"].endswith('-3"')


# ---------------------------------------------------------------- auth

def test_presigned_urls_and_expiry(s3, bucket, server):
    s3.put_object(Bucket=bucket, Key="pre", Body=b"presigned")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"},
                                    ExpiresIn=60)
    assert urllib.request.urlopen(url, timeout=10).read() == b"presigned"
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre2"},
                                    ExpiresIn=60)
    req = urllib.request.Request(put, data=b"up", method="PUT")
    urllib.request.urlopen(req, timeout=10)
    assert s3.get_object(Bucket=bucket, Key="pre2")["Body"].read() == b"up"
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre"},
                                        ExpiresIn=1)
    time.sleep(2.1)  # the URL must expire: waiting out its one-second lifetime is the test
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(expired, timeout=10)
    assert e.value.code == 403
    assert b"<Code>AccessDenied</Code>" in e.value.read()
    tampered = url.replace("Key=pre", "Key=pre").replace("/pre?", "/pre2?")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered, timeout=10)
    assert e.value.code == 403 and b"SignatureDoesNotMatch" in e.value.read()


def test_wrong_secret_unknown_key_and_anonymous(server, bucket):
    bad = make_client(server, secret="wrong-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.list_objects_v2(Bucket=bucket)
    assert code_of(e) == "SignatureDoesNotMatch" and status_of(e) == 403
    unknown = make_client(server, access="NOSUCHKEY", secret="x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unknown.list_buckets()
    assert code_of(e) == "InvalidAccessKeyId" and status_of(e) == 403
    status, _, body = s3raw.request(server.endpoint, "GET", f"/{bucket}", sign_it=False)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body


def test_other_owners_key_sees_nothing_until_granted(server, s3, bucket):
    access, secret = server.new_key()
    other = make_client(server, access=access, secret=secret)
    s3.put_object(Bucket=bucket, Key="private", Body=b"secret bytes")
    assert bucket not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    for call in (lambda: other.get_object(Bucket=bucket, Key="private"),
                 lambda: other.list_objects_v2(Bucket=bucket),
                 lambda: other.put_object(Bucket=bucket, Key="intrude", Body=b"x")):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code_of(e) == "AccessDenied"
        assert "secret bytes" not in str(e.value.response)
    server.cli("admin", "bucket", "grant", bucket, "--key", access, "--access", "read")
    deadline = time.time() + 10
    while True:  # the gateway caches bucket records for two seconds
        try:
            body = other.get_object(Bucket=bucket, Key="private")["Body"].read()
            break
        except botocore.exceptions.ClientError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    assert body == b"secret bytes"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        other.put_object(Bucket=bucket, Key="intrude", Body=b"x")
    assert code_of(e) == "AccessDenied"
    assert keys(s3, bucket) == ["private"]


# ---------------------------------------------------------------- hand-built requests

def test_aws_chunked_signed_and_unsigned_trailer_uploads(server, s3, bucket):
    data = os.urandom(200_000)
    # STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 64 KiB chunks.
    path = f"/{bucket}/chunked/signed"
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    # The framing length depends on the signatures' fixed size only: sign with it known.
    framed_len = len(s3raw.chunked_body(data, 65536, b"k" * 32, "20000101T000000Z",
                                        "s", "0" * 64))
    headers["content-length"] = str(framed_len)
    key, amz_date, scope, seed = s3raw.sign("PUT", path, [], headers,
                                            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", ACCESS, SECRET)
    body = s3raw.chunked_body(data, 65536, key, amz_date, scope, seed)
    status, h, resp = s3raw.request(server.endpoint, "PUT", path, body=body, headers=headers,
                                    sign_it=False)
    assert status == 200, resp
    assert h["etag"] == '"%s"' % hashlib.md5(data).hexdigest()
    assert s3.get_object(Bucket=bucket, Key="chunked/signed")["Body"].read() == data
    # A tampered chunk: the signature chain breaks, nothing is published.
    bad = bytearray(body)
    bad[len(bad) // 2] ^= 1
    status, _, resp = s3raw.request(server.endpoint, "PUT", f"/{bucket}/chunked/tampered",
                                    body=bytes(bad), headers=dict(headers), sign_it=False)
    assert status == 403 and b"SignatureDoesNotMatch" in resp
    # STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer, as current SDKs send.
    import binascii
    crc = base64.b64encode(binascii.crc32(data).to_bytes(4, "big")).decode()
    body = s3raw.chunked_body(data, 50_000, None, None, None, None, signed=False,
                              trailer=f"x-amz-checksum-crc32:{crc}")
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": "x-amz-checksum-crc32"}
    status, _, resp = s3raw.request(server.endpoint, "PUT", f"/{bucket}/chunked/trailer",
                                    body=body, headers=headers, access=ACCESS, secret=SECRET,
                                    payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    assert status == 200, resp
    assert s3.get_object(Bucket=bucket, Key="chunked/trailer")["Body"].read() == data
    assert keys(s3, bucket) == ["chunked/signed", "chunked/trailer"]


def test_bad_inputs_get_exact_errors_and_leave_no_object(server, s3, bucket):
    ep = server.endpoint

    def put(key, body=b"abc", **kw):
        return s3raw.request(ep, "PUT", f"/{bucket}/{key}", body=body, access=ACCESS,
                             secret=SECRET, **kw)

    # Payload hash that does not match the body.
    status, _, resp = put("h1", payload_hash=hashlib.sha256(b"other").hexdigest())
    assert status == 400 and b"XAmzContentSHA256Mismatch" in resp
    # Wrong Content-MD5, and a malformed one.
    wrong = base64.b64encode(hashlib.md5(b"zzz").digest()).decode()
    status, _, resp = put("h2", headers={"content-md5": wrong})
    assert status == 400 and b"<Code>BadDigest</Code>" in resp
    status, _, resp = put("h3", headers={"content-md5": "nope"})
    assert status == 400 and b"<Code>InvalidDigest</Code>" in resp
    # Keys that are not file paths.
    for key in ["a/../b", "./x", "a//b", "x" * 256]:
        status, _, resp = put(key)
        assert status == 400, key
        assert (b"InvalidArgument" in resp or b"KeyTooLongError" in resp), resp
    status, _, resp = put("k" * 1100)
    assert status == 400 and b"KeyTooLongError" in resp
    # Malformed XML.
    status, _, resp = s3raw.request(ep, "POST", f"/{bucket}", body=b"<Delete><Object>",
                                    query=[("delete", "")], access=ACCESS, secret=SECRET)
    assert status == 400 and b"<Code>MalformedXML</Code>" in resp
    status, _, resp = s3raw.request(ep, "POST", f"/{bucket}", body=b"<Nope/>",
                                    query=[("delete", "")], access=ACCESS, secret=SECRET)
    assert status == 400 and b"<Code>MalformedXML</Code>" in resp
    # Oversize object (declared): refused before any byte is stored.
    status, _, resp = put("huge", body=b"", headers={"content-length": str(6 << 30)})
    assert status == 400 and b"<Code>EntityTooLarge</Code>" in resp
    # Absurd headers.
    status, _, resp = put("h4", headers={"x-amz-meta-big": "v" * 40000})
    assert status == 400 and b"RequestHeaderSectionTooLarge" in resp
    # A clock far off.
    old = datetime.datetime.utcnow() - datetime.timedelta(hours=2)
    status, _, resp = put("h5", when=old)
    assert status == 403 and b"RequestTimeTooSkewed" in resp
    # Error documents carry Code, Message, Resource, RequestId.
    assert b"<Resource>" in resp and b"<RequestId>" in resp and b"<Message>" in resp
    assert keys(s3, bucket) == []


def test_truncated_body_leaves_no_object(server, s3, bucket):
    path = f"/{bucket}/trunc"
    headers = {"content-length": "100000"}
    s3raw.sign("PUT", path, [], headers, "UNSIGNED-PAYLOAD", ACCESS, SECRET)
    host = server.endpoint.split("//")[1]
    head = f"PUT {path} HTTP/1.1\r\nhost: {host}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    got = s3raw.raw_exchange(server.endpoint, head.encode() + b"x" * 5000)
    assert got.startswith(b"HTTP/1.1 400") and b"IncompleteBody" in got
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=bucket, Key="trunc")
    assert status_of(e) == 404
    assert keys(s3, bucket) == []


def test_virtual_host_style(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="vh", Body=b"virtual")
    # The server runs without --domain: a Host naming the bucket is path style only. This
    # checks the path-style fallback; the --domain case is covered by the C++ test.
    status, _, body = s3raw.request(server.endpoint, "GET", f"/{bucket}/vh", access=ACCESS,
                                    secret=SECRET)
    assert status == 200 and body == b"virtual"


# ---------------------------------------------------------------- same bytes as files

def test_s3_objects_are_files_and_files_are_objects(server, s3, bucket, tmp_path):
    data = os.urandom(3 << 20)
    s3.put_object(Bucket=bucket, Key="models/v1/weights.bin", Body=data)
    out = tmp_path / "out.bin"
    server.cli("get", f"{bucket}/models/v1/weights.bin", str(out))
    assert out.read_bytes() == data
    ls = server.cli("ls", f"{bucket}/models/v1").stdout
    assert "weights.bin" in ls
    # A file written through libgranary (the CLI) is an object with size, ETag, Last-Modified.
    local = tmp_path / "posix.bin"
    local.write_bytes(b"p" * 12345)
    server.cli("put", str(local), f"{bucket}/posix/written.bin")
    h = s3.head_object(Bucket=bucket, Key="posix/written.bin")
    assert h["ContentLength"] == 12345
    assert h["ETag"].endswith('-1"')
    assert abs((h["LastModified"].replace(tzinfo=None) - datetime.datetime.utcnow()).total_seconds()) < 120
    assert s3.get_object(Bucket=bucket, Key="posix/written.bin")["Body"].read() == b"p" * 12345
    listed = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed["posix/written.bin"]["Size"] == 12345
    assert listed["posix/written.bin"]["ETag"] == h["ETag"]
    # Rewriting through POSIX changes the ETag.
    local.write_bytes(b"q" * 12345)
    server.cli("put", str(local), f"{bucket}/posix/written.bin")
    h2 = s3.head_object(Bucket=bucket, Key="posix/written.bin")
    assert h2["ETag"] != h["ETag"] and h2["ETag"].endswith('-1"')
    server.cli("rm", f"{bucket}/posix/written.bin")
    server.cli("rm", f"{bucket}/posix")
    s3.delete_object(Bucket=bucket, Key="models/v1/weights.bin")
    # The S3 delete removed the implicit directories it emptied.
    assert server.cli("ls", f"{bucket}/models", check=False).returncode != 0
