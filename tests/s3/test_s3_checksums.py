# S3 additional checksums (docs/s3.md "Checksums") against a real `granary server`: every
# algorithm as a header and as an aws-chunked trailer (signed and unsigned), right and wrong,
# the trailer signature, what GET/HEAD return with x-amz-checksum-mode, multipart composites,
# copies, and boto3's own ChecksumAlgorithm=. After every refused upload the key is absent or
# unchanged.
import base64
import hashlib
import os
import zlib

import botocore.exceptions
import pytest

import s3raw
from conftest import ACCESS, SECRET


# ---------------------------------------------------------------- reference digests


def _table(poly, width):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table, (1 << width) - 1


_CRC32C = _table(0x82F63B78, 32)
_CRC64NVME = _table(0x9A6C9329AC4BC9B5, 64)


def _crc(data, spec):
    table, mask = spec
    c = mask
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ mask


def digest(alg, data):
    if alg == "crc32":
        return zlib.crc32(data).to_bytes(4, "big")
    if alg == "crc32c":
        return _crc(data, _CRC32C).to_bytes(4, "big")
    if alg == "crc64nvme":
        return _crc(data, _CRC64NVME).to_bytes(8, "big")
    return hashlib.new(alg, data).digest()


def b64(alg, data):
    return base64.b64encode(digest(alg, data)).decode()


ALGS = ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]
AWS_NAME = {"crc32": "CRC32", "crc32c": "CRC32C", "crc64nvme": "CRC64NVME", "sha1": "SHA1",
            "sha256": "SHA256"}


def test_reference_digests_match_the_catalogue_check_values():
    assert digest("crc32c", b"123456789").hex() == "e3069283"
    assert digest("crc64nvme", b"123456789").hex() == "ae8b14860a799888"


# ---------------------------------------------------------------- helpers


def put(server, bucket, key, body, headers=None, **kw):
    return s3raw.request(server.endpoint, "PUT", f"/{bucket}/{key}", body=body,
                         headers=headers or {}, access=ACCESS, secret=SECRET, **kw)


def head(server, bucket, key, mode=True):
    h = {"x-amz-checksum-mode": "ENABLED"} if mode else {}
    return s3raw.request(server.endpoint, "HEAD", f"/{bucket}/{key}", headers=h, access=ACCESS,
                         secret=SECRET)


def get(server, bucket, key, extra=None):
    h = {"x-amz-checksum-mode": "ENABLED", **(extra or {})}
    return s3raw.request(server.endpoint, "GET", f"/{bucket}/{key}", headers=h, access=ACCESS,
                         secret=SECRET)


def error_code(resp):
    start = resp.find(b"<Code>") + 6
    return resp[start:resp.find(b"</Code>")].decode()


def error_message(resp):
    start = resp.find(b"<Message>") + 9
    return resp[start:resp.find(b"</Message>")].decode()


def unsigned_trailer_put(server, bucket, key, data, trailer_lines, declared):
    body = s3raw.chunked_body(data, 50_000, None, None, None, None, signed=False,
                              trailer=trailer_lines)
    headers = {"content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data))}
    if declared:
        headers["x-amz-trailer"] = declared
    return put(server, bucket, key, body, headers,
               payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")


def signed_trailer_put(server, bucket, key, data, trailer_lines, declared, bad_sig=False):
    path = f"/{bucket}/{key}"
    headers = {"content-encoding": "aws-chunked",
               "x-amz-decoded-content-length": str(len(data)), "x-amz-trailer": declared}
    # The framed length depends only on the signatures' fixed size: sign with it known.
    framed = s3raw.chunked_body(data, 65536, b"k" * 32, "20000101T000000Z", "s", "0" * 64,
                                trailer=trailer_lines)
    headers["content-length"] = str(len(framed))
    key_, amz_date, scope, seed = s3raw.sign(
        "PUT", path, [], headers, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", ACCESS, SECRET)
    body = s3raw.chunked_body(data, 65536, key_, amz_date, scope, seed, trailer=trailer_lines,
                              trailer_sig="0" * 64 if bad_sig else None)
    return s3raw.request(server.endpoint, "PUT", path, body=body, headers=headers,
                         sign_it=False)


def assert_absent(server, bucket, key):
    status, _, _ = head(server, bucket, key, mode=False)
    assert status == 404, f"{key} exists after a refused upload"


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize("alg", ALGS)
def test_header_checksum_is_verified_stored_and_returned(server, bucket, alg):
    data = os.urandom(3000)
    hdr = f"x-amz-checksum-{alg}"
    status, h, resp = put(server, bucket, "ok", data, {hdr: b64(alg, data)})
    assert status == 200, resp
    assert h[hdr] == b64(alg, data)
    assert h["x-amz-checksum-type"] == "FULL_OBJECT"
    # HEAD and GET return it only when asked; a range never.
    status, h, _ = head(server, bucket, "ok")
    assert status == 200 and h[hdr] == b64(alg, data)
    status, h, _ = head(server, bucket, "ok", mode=False)
    assert status == 200 and hdr not in h
    status, h, body = get(server, bucket, "ok")
    assert status == 200 and body == data and h[hdr] == b64(alg, data)
    status, h, body = get(server, bucket, "ok", {"range": "bytes=0-9"})
    assert status == 206 and body == data[:10] and hdr not in h

    # A wrong value: BadDigest in AWS's words, the existing object unchanged, a new key absent.
    wrong = b64(alg, data + b"x")
    status, _, resp = put(server, bucket, "ok", b"new bytes", {hdr: wrong})
    assert status == 400 and error_code(resp) == "BadDigest"
    assert error_message(resp) == (f"The {AWS_NAME[alg]} you specified did not match the "
                                   "calculated checksum.")
    status, h, body = get(server, bucket, "ok")
    assert body == data and h[hdr] == b64(alg, data)
    status, _, resp = put(server, bucket, "bad", data, {hdr: wrong})
    assert status == 400 and error_code(resp) == "BadDigest"
    assert_absent(server, bucket, "bad")


def test_large_body_with_a_wrong_checksum_stores_nothing(server, bucket):
    # Over 1 MiB: the streaming path, where bytes reach a staged inode before the check.
    data = os.urandom(3 << 20)
    status, _, resp = put(server, bucket, "big", data,
                          {"x-amz-checksum-crc64nvme": b64("crc64nvme", data[:-1])})
    assert status == 400 and error_code(resp) == "BadDigest"
    assert_absent(server, bucket, "big")
    status, h, resp = put(server, bucket, "big", data,
                          {"x-amz-checksum-crc32c": b64("crc32c", data)})
    assert status == 200, resp
    status, h, body = get(server, bucket, "big")
    assert body == data and h["x-amz-checksum-crc32c"] == b64("crc32c", data)


def test_malformed_duplicate_and_unknown_checksums_are_invalid_requests(server, bucket):
    data = b"some bytes"
    cases = [
        {"x-amz-checksum-crc32": "not base64!"},
        {"x-amz-checksum-crc32": base64.b64encode(b"12345").decode()},  # 5 bytes, not 4
        {"x-amz-checksum-sha256": b64("sha1", data)},  # a SHA-1 in the SHA-256 header
        {"x-amz-checksum-crc32": b64("crc32", data), "x-amz-checksum-sha1": b64("sha1", data)},
        {"x-amz-sdk-checksum-algorithm": "MD7"},
        {"x-amz-sdk-checksum-algorithm": "SHA1", "x-amz-checksum-crc32": b64("crc32", data)},
    ]
    for headers in cases:
        status, _, resp = put(server, bucket, "k", data, headers)
        assert status == 400 and error_code(resp) == "InvalidRequest", (headers, resp)
        assert_absent(server, bucket, "k")


def test_algorithm_without_a_value_is_computed_and_stored(server, bucket):
    data = b"the server computes this one"
    status, h, resp = put(server, bucket, "k", data, {"x-amz-sdk-checksum-algorithm": "SHA256"})
    assert status == 200, resp
    assert h["x-amz-checksum-sha256"] == b64("sha256", data)
    assert head(server, bucket, "k")[1]["x-amz-checksum-sha256"] == b64("sha256", data)


# ---------------------------------------------------------------- trailers


@pytest.mark.parametrize("alg", ALGS)
def test_unsigned_trailer_checksum_right_and_wrong(server, bucket, alg):
    data = os.urandom(120_000)
    hdr = f"x-amz-checksum-{alg}"
    status, h, resp = unsigned_trailer_put(server, bucket, "t", data,
                                           f"{hdr}:{b64(alg, data)}", hdr)
    assert status == 200, resp
    assert h[hdr] == b64(alg, data)
    assert head(server, bucket, "t")[1][hdr] == b64(alg, data)
    status, _, resp = unsigned_trailer_put(server, bucket, "t", b"other",
                                           f"{hdr}:{b64(alg, data)}", hdr)
    assert status == 400 and error_code(resp) == "BadDigest", resp
    status, _, body = get(server, bucket, "t")
    assert body == data  # unchanged
    status, _, resp = unsigned_trailer_put(server, bucket, "t2", data,
                                           f"{hdr}:{b64(alg, b'x')}", hdr)
    assert status == 400 and error_code(resp) == "BadDigest"
    assert_absent(server, bucket, "t2")


@pytest.mark.parametrize("alg", ALGS)
def test_signed_trailer_checksum_right_and_wrong(server, bucket, alg):
    data = os.urandom(100_000)
    hdr = f"x-amz-checksum-{alg}"
    status, h, resp = signed_trailer_put(server, bucket, "s", data, f"{hdr}:{b64(alg, data)}",
                                         hdr)
    assert status == 200, resp
    assert h[hdr] == b64(alg, data)
    status, _, body = get(server, bucket, "s")
    assert body == data
    status, _, resp = signed_trailer_put(server, bucket, "s2", data,
                                         f"{hdr}:{b64(alg, data[1:])}", hdr)
    assert status == 400 and error_code(resp) == "BadDigest", resp
    assert_absent(server, bucket, "s2")


def test_wrong_trailer_signature_is_refused_and_stores_nothing(server, bucket):
    data = os.urandom(70_000)
    line = f"x-amz-checksum-crc32:{b64('crc32', data)}"
    status, _, resp = signed_trailer_put(server, bucket, "sig", data, line,
                                         "x-amz-checksum-crc32", bad_sig=True)
    assert status == 403 and error_code(resp) == "SignatureDoesNotMatch", resp
    assert_absent(server, bucket, "sig")
    # A trailer value changed after signing breaks the signature as well.
    path = f"/{bucket}/sig"
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
               "x-amz-trailer": "x-amz-checksum-crc32"}
    framed = s3raw.chunked_body(data, 65536, b"k" * 32, "20000101T000000Z", "s", "0" * 64,
                                trailer=line)
    headers["content-length"] = str(len(framed))
    key, amz_date, scope, seed = s3raw.sign(
        "PUT", path, [], headers, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", ACCESS, SECRET)
    body = s3raw.chunked_body(data, 65536, key, amz_date, scope, seed, trailer=line)
    good_value = b64("crc32", data).encode()
    forged = body.replace(good_value, b64("crc32", b"forged").encode())
    assert forged != body and len(forged) == len(body)
    status, _, resp = s3raw.request(server.endpoint, "PUT", path, body=forged, headers=headers,
                                    sign_it=False)
    assert status == 403 and error_code(resp) == "SignatureDoesNotMatch"
    assert_absent(server, bucket, "sig")
    # The untouched request is accepted.
    status, _, resp = s3raw.request(server.endpoint, "PUT", path, body=body, headers=headers,
                                    sign_it=False)
    assert status == 200, resp


def test_trailer_naming_one_algorithm_and_sending_another_is_invalid(server, bucket):
    data = os.urandom(10_000)
    cases = [
        # declared crc32, sent crc32c
        (f"x-amz-checksum-crc32c:{b64('crc32c', data)}", "x-amz-checksum-crc32"),
        # declared, not sent
        ([], "x-amz-checksum-crc32"),
        # sent, not declared
        (f"x-amz-checksum-crc32:{b64('crc32', data)}", None),
        # malformed value
        ("x-amz-checksum-sha1:AAAA", "x-amz-checksum-sha1"),
        # an unknown algorithm declared
        ("x-amz-checksum-md5:AAAA", "x-amz-checksum-md5"),
    ]
    for lines, declared in cases:
        status, _, resp = unsigned_trailer_put(server, bucket, "x", data, lines, declared)
        assert status == 400 and error_code(resp) == "InvalidRequest", (lines, declared, resp)
        assert_absent(server, bucket, "x")
    # A header checksum and a trailer one: two checksums.
    body = s3raw.chunked_body(data, 50_000, None, None, None, None, signed=False,
                              trailer=f"x-amz-checksum-crc32:{b64('crc32', data)}")
    status, _, resp = put(server, bucket, "x", body,
                          {"content-encoding": "aws-chunked",
                           "x-amz-decoded-content-length": str(len(data)),
                           "x-amz-trailer": "x-amz-checksum-crc32",
                           "x-amz-checksum-sha1": b64("sha1", data)},
                          payload_hash="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    assert status == 400 and error_code(resp) == "InvalidRequest"
    assert_absent(server, bucket, "x")


# ---------------------------------------------------------------- boto3


@pytest.mark.parametrize("alg", ["CRC32", "SHA1", "SHA256"])
def test_boto3_checksum_algorithm_round_trip(s3, bucket, alg):
    data = os.urandom(200_000)
    r = s3.put_object(Bucket=bucket, Key="b", Body=data, ChecksumAlgorithm=alg)
    assert r[f"Checksum{alg}"] == b64(alg.lower(), data)
    h = s3.head_object(Bucket=bucket, Key="b", ChecksumMode="ENABLED")
    assert h[f"Checksum{alg}"] == b64(alg.lower(), data)
    g = s3.get_object(Bucket=bucket, Key="b", ChecksumMode="ENABLED")
    assert g["Body"].read() == data and g[f"Checksum{alg}"] == b64(alg.lower(), data)
    assert f"Checksum{alg}" not in s3.head_object(Bucket=bucket, Key="b")


def test_boto3_wrong_checksum_is_bad_digest(s3, bucket):
    def corrupt(request, **_):
        assert "x-amz-checksum-crc32" in request.headers  # boto3 sends it as a header
        del request.headers["x-amz-checksum-crc32"]  # (setting a header appends one)
        request.headers["x-amz-checksum-crc32"] = b64("crc32", b"not the body")
    s3.meta.events.register_first("before-sign.s3.PutObject", corrupt)
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_object(Bucket=bucket, Key="w", Body=b"the body", ChecksumAlgorithm="CRC32")
    finally:
        s3.meta.events.unregister("before-sign.s3.PutObject", corrupt)
    assert e.value.response["Error"]["Code"] == "BadDigest"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.head_object(Bucket=bucket, Key="w")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# ---------------------------------------------------------------- multipart and copy


def test_multipart_crc32_parts_and_composite(s3, server, bucket):
    p1, p2 = os.urandom(5 << 20), os.urandom(1000)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")
    uid = up["UploadId"]
    r1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=p1,
                        ChecksumAlgorithm="CRC32")
    assert r1["ChecksumCRC32"] == b64("crc32", p1)
    # A part whose checksum is wrong is refused; one of another algorithm is invalid.
    status, _, resp = s3raw.request(
        server.endpoint, "PUT", f"/{bucket}/mp", body=p2,
        query=[("partNumber", "2"), ("uploadId", uid)],
        headers={"x-amz-checksum-crc32": b64("crc32", b"x")}, access=ACCESS, secret=SECRET)
    assert status == 400 and error_code(resp) == "BadDigest"
    status, _, resp = s3raw.request(
        server.endpoint, "PUT", f"/{bucket}/mp", body=p2,
        query=[("partNumber", "2"), ("uploadId", uid)],
        headers={"x-amz-checksum-sha1": b64("sha1", p2)}, access=ACCESS, secret=SECRET)
    assert status == 400 and error_code(resp) == "InvalidRequest"
    # No value sent: the gateway computes the upload's algorithm.
    status, h, resp = s3raw.request(
        server.endpoint, "PUT", f"/{bucket}/mp", body=p2,
        query=[("partNumber", "2"), ("uploadId", uid)], access=ACCESS, secret=SECRET)
    assert status == 200 and h["x-amz-checksum-crc32"] == b64("crc32", p2), resp
    etag2 = h["etag"]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert parts["ChecksumAlgorithm"] == "CRC32"
    assert [p["ChecksumCRC32"] for p in parts["Parts"]] == [b64("crc32", p1), b64("crc32", p2)]
    # A checksum in the Complete list that is not the part's: InvalidPart.
    listed = [{"PartNumber": 1, "ETag": r1["ETag"], "ChecksumCRC32": b64("crc32", p1)},
              {"PartNumber": 2, "ETag": etag2, "ChecksumCRC32": b64("crc32", p1)}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                     MultipartUpload={"Parts": listed})
    assert e.value.response["Error"]["Code"] == "InvalidPart"
    listed[1]["ChecksumCRC32"] = b64("crc32", p2)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                        MultipartUpload={"Parts": listed})
    composite = base64.b64encode(
        digest("crc32", digest("crc32", p1) + digest("crc32", p2))).decode() + "-2"
    assert done["ChecksumCRC32"] == composite
    h = s3.head_object(Bucket=bucket, Key="mp", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == composite
    status, h, _ = head(server, bucket, "mp")
    assert h["x-amz-checksum-type"] == "COMPOSITE"
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == p1 + p2


def test_copy_keeps_the_source_checksum(s3, server, bucket):
    data = os.urandom(5000)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ChecksumAlgorithm="SHA256")
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ChecksumSHA256"] == b64("sha256", data)
    h = s3.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert h["ChecksumSHA256"] == b64("sha256", data)
    # Asking for another algorithm would mean reading the bytes: not supported.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"},
                       ChecksumAlgorithm="CRC32")
    assert e.value.response["Error"]["Code"] == "NotImplemented"
    assert_absent(server, bucket, "dst2")


def test_upload_part_copy_computes_the_upload_algorithm(s3, bucket):
    data = os.urandom(6 << 20)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="SHA1")
    uid = up["UploadId"]
    r = s3.upload_part_copy(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1,
                            CopySource={"Bucket": bucket, "Key": "src"},
                            CopySourceRange=f"bytes=0-{(5 << 20) - 1}")
    assert r["CopyPartResult"]["ChecksumSHA1"] == b64("sha1", data[:5 << 20])
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert parts[0]["ChecksumSHA1"] == b64("sha1", data[:5 << 20])
    s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid)


def test_create_upload_with_an_unknown_or_full_object_checksum_is_refused(server, bucket):
    status, _, resp = s3raw.request(server.endpoint, "POST", f"/{bucket}/mp",
                                    query=[("uploads", "")],
                                    headers={"x-amz-checksum-algorithm": "CRC16"},
                                    access=ACCESS, secret=SECRET)
    assert status == 400 and error_code(resp) == "InvalidRequest"
    status, _, resp = s3raw.request(server.endpoint, "POST", f"/{bucket}/mp",
                                    query=[("uploads", "")],
                                    headers={"x-amz-checksum-algorithm": "CRC32",
                                             "x-amz-checksum-type": "FULL_OBJECT"},
                                    access=ACCESS, secret=SECRET)
    assert status == 501 and error_code(resp) == "NotImplemented"


def test_a_posix_rewrite_drops_the_checksum(server, s3, bucket, tmp_path):
    data = b"written through S3"
    s3.put_object(Bucket=bucket, Key="f", Body=data, ChecksumAlgorithm="CRC32")
    assert s3.head_object(Bucket=bucket, Key="f", ChecksumMode="ENABLED")["ChecksumCRC32"]
    local = tmp_path / "f"
    local.write_bytes(b"rewritten through the file system")
    server.cli("put", str(local), f"{bucket}/f")
    h = s3.head_object(Bucket=bucket, Key="f", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in h and h["ETag"].endswith('-1"')


def test_complete_with_the_object_checksum_header_must_match_the_composite(s3, server, bucket):
    p1 = os.urandom(5 << 20)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="CRC32")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=p1,
                          ChecksumAlgorithm="CRC32")["ETag"]
    xml = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag>"
           "</Part></CompleteMultipartUpload>").encode()
    composite = base64.b64encode(digest("crc32", digest("crc32", p1))).decode() + "-1"

    def complete(headers):
        return s3raw.request(server.endpoint, "POST", f"/{bucket}/mp", body=xml,
                             query=[("uploadId", uid)], headers=headers, access=ACCESS,
                             secret=SECRET)
    status, _, resp = complete({"x-amz-checksum-crc32": b64("crc32", b"other")})
    assert status == 400 and error_code(resp) == "BadDigest"
    status, _, resp = complete({"x-amz-checksum-sha1": b64("sha1", p1)})
    assert status == 400 and error_code(resp) == "InvalidRequest"
    assert_absent(server, bucket, "mp")
    status, h, resp = complete({"x-amz-checksum-crc32": composite})
    assert status == 200, resp
    assert h["x-amz-checksum-crc32"] == composite
