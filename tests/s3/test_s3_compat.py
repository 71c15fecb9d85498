# What real clients and conformance suites trip over (issue 22), against a real
# `granary server`, through boto3 (Debian's 1.26, with its default signer where that matters)
# and hand-built requests for what no client sends on purpose. Every answer is checked for the
# status and code S3 gives; docs/s3.md cites the S3 API reference for the subtle ones.
import datetime
import email.utils
import hashlib
import os
import time
import urllib.error
import urllib.request

import boto3
import botocore
import botocore.config
import botocore.exceptions
import pytest

import s3raw
from conftest import ACCESS, SECRET, make_client


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def status_of(excinfo):
    return excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"]


def error(fn):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn()
    return status_of(e), code_of(e)


def anonymous(server):
    return boto3.client(
        "s3", endpoint_url=server.endpoint, region_name="us-east-1",
        config=botocore.config.Config(signature_version=botocore.UNSIGNED,
                                      s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


def raw(server, method, path, **kw):
    return s3raw.request(server.endpoint, method, path, access=ACCESS, secret=SECRET, **kw)


def wait_for(check, what, timeout=10):
    """The gateway caches bucket records for two seconds: wait (bounded) until `check` holds."""
    deadline = time.time() + timeout
    while True:
        try:
            if check():
                return
        except botocore.exceptions.ClientError:
            pass
        if time.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)  # polling a cache's expiry, bounded by the deadline


@pytest.fixture(scope="module")
def other(server):
    access, secret = server.new_key()
    return access, make_client(server, access=access, secret=secret)


# ---------------------------------------------------------------- 1. SigV2

def test_boto3_default_presigner_uses_sigv2_and_works(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="pre/a b.txt", Body=b"presigned v2")
    # No signature_version: what a notebook gets from boto3.client("s3", endpoint_url=...).
    plain = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS,
                         aws_secret_access_key=SECRET, region_name="us-east-1")
    url = plain.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "pre/a b.txt"},
                                       ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url, url
    assert urllib.request.urlopen(url, timeout=10).read() == b"presigned v2"
    # A presigned PUT (the client sends no Content-Type, as the URL was signed without one).
    put = plain.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "pre/up"},
                                       ExpiresIn=300)
    path, query = put.split(server.endpoint, 1)[1].split("?", 1)
    import http.client
    conn = http.client.HTTPConnection(server.endpoint.split("//")[1], timeout=10)
    conn.request("PUT", f"{path}?{query}", body=b"uploaded", headers={})
    assert conn.getresponse().status == 200
    conn.close()
    assert s3.get_object(Bucket=bucket, Key="pre/up")["Body"].read() == b"uploaded"
    # Tampered: another key under the same signature.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url.replace("pre/a%20b.txt", "pre/up"), timeout=10)
    body = e.value.read()
    assert e.value.code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert b"<StringToSign>" in body  # what the server signed, to debug a client


def test_sigv2_query_expiry_and_bad_parameters(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="q", Body=b"x")
    now = int(time.time())
    st, _, b = s3raw.presigned_v2(server.endpoint, "GET", f"/{bucket}/q", ACCESS, SECRET, now + 60)
    assert st == 200 and b == b"x"
    st, _, b = s3raw.presigned_v2(server.endpoint, "GET", f"/{bucket}/q", ACCESS, SECRET, now - 10)
    assert st == 403 and b"<Code>AccessDenied</Code>" in b and b"Request has expired" in b
    st, _, b = s3raw.request(server.endpoint, "GET", f"/{bucket}/q", sign_it=False,
                             query=[("AWSAccessKeyId", ACCESS), ("Signature", "x"),
                                    ("Expires", "soon")])
    assert st == 403 and b"<Code>AccessDenied</Code>" in b
    st, _, b = s3raw.presigned_v2(server.endpoint, "GET", f"/{bucket}/q", "NOSUCHKEY", SECRET,
                                  now + 60)
    assert st == 403 and b"<Code>InvalidAccessKeyId</Code>" in b


def test_sigv2_header_auth_through_boto3_and_by_hand(server, bucket):
    # botocore's HmacV1Auth header signer. Debian's botocore 1.29 signs an operation whose model
    # URI holds a query ("/{Bucket}?acl") with that query twice ("/b?acl?acl"), which S3 would
    # refuse too; the sub-resource operations are covered by s3cmd and a current boto3 in
    # clients_test.sh, and by hand below.
    v2 = make_client(server, signature_version="s3")
    body = os.urandom(70_000)
    v2.put_object(Bucket=bucket, Key="v2/obj a", Body=body, Metadata={"k": "v"},
                  ContentType="text/plain", ACL="private")
    g = v2.get_object(Bucket=bucket, Key="v2/obj a", ResponseContentType="x/y")
    assert g["Body"].read() == body and g["ContentType"] == "x/y"
    assert v2.head_object(Bucket=bucket, Key="v2/obj a")["Metadata"] == {"k": "v"}
    assert [o["Key"] for o in v2.list_objects(Bucket=bucket, Prefix="v2/")["Contents"]] == [
        "v2/obj a"]
    v2.delete_object(Bucket=bucket, Key="v2/obj a")
    v2.create_bucket(Bucket="sigv2-bucket")
    v2.delete_bucket(Bucket="sigv2-bucket")
    # By hand: a clock two hours off, no date, a wrong secret, a malformed header.
    old = datetime.datetime.utcnow() - datetime.timedelta(hours=2)
    st, _, b = s3raw.request_v2(server.endpoint, "GET", f"/{bucket}", ACCESS, SECRET, when=old)
    assert st == 403 and b"<Code>RequestTimeTooSkewed</Code>" in b
    st, _, b = s3raw.request(server.endpoint, "GET", f"/{bucket}", sign_it=False,
                             headers={"authorization": f"AWS {ACCESS}:c2lnbmF0dXJl"})
    assert st == 403 and b"<Code>AccessDenied</Code>" in b
    st, _, b = s3raw.request_v2(server.endpoint, "GET", f"/{bucket}", ACCESS, "wrong-secret")
    assert st == 403 and b"<Code>SignatureDoesNotMatch</Code>" in b
    st, _, b = s3raw.request(server.endpoint, "GET", f"/{bucket}", sign_it=False,
                             headers={"authorization": "AWS nocolon"})
    assert st == 400 and b"<Code>InvalidArgument</Code>" in b
    # A sub-resource is signed: ?acl, with x-amz-date instead of Date (empty date line).
    import base64, hmac
    amz_date = email.utils.format_datetime(datetime.datetime.now(datetime.timezone.utc),
                                           usegmt=True)
    sts = f"GET\n\n\n\nx-amz-date:{amz_date}\n/{bucket}?acl="
    sig = base64.b64encode(hmac.new(SECRET.encode(), sts.encode(), hashlib.sha1).digest()).decode()
    st, _, b = s3raw.request(server.endpoint, "GET", f"/{bucket}", sign_it=False,
                             query=[("acl", "")],
                             headers={"x-amz-date": amz_date, "authorization": f"AWS {ACCESS}:{sig}"})
    assert st == 200 and b"<AccessControlPolicy" in b, b


# ---------------------------------------------------------------- 2. DeleteObjects keys

def test_delete_objects_keeps_whitespace_keys_and_names_keys_in_errors(s3, bucket):
    names = [" ", "\t", "   ", " lead", "trail ", "dir/ "]
    for k in names:
        s3.put_object(Bucket=bucket, Key=k, Body=b"w")
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(listed) == sorted(names)
    r = s3.delete_objects(Bucket=bucket,
                          Delete={"Objects": [{"Key": k} for k in names + ["a//b"]]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(names)
    assert [(e["Key"], e["Code"]) for e in r["Errors"]] == [("a//b", "InvalidArgument")]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    # Quiet: only errors come back.
    s3.put_object(Bucket=bucket, Key=" ", Body=b"w")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": " "}], "Quiet": True})
    assert "Deleted" not in r and "Errors" not in r
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_a_bucket_holding_a_whitespace_key_can_be_emptied_and_deleted(s3):
    s3.create_bucket(Bucket="ws-bucket-empty")
    s3.put_object(Bucket="ws-bucket-empty", Key=" ", Body=b"x")
    keys = [{"Key": o["Key"]} for o in s3.list_objects_v2(Bucket="ws-bucket-empty")["Contents"]]
    s3.delete_objects(Bucket="ws-bucket-empty", Delete={"Objects": keys})
    s3.delete_bucket(Bucket="ws-bucket-empty")


# ---------------------------------------------------------------- 3. repeated Complete

def test_repeated_complete_returns_the_first_result(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp/again")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mp/again", UploadId=up, PartNumber=1,
                        Body=b"a" * (5 << 20))["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp/again", UploadId=up, PartNumber=2,
                        Body=b"b")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]}
    first = s3.complete_multipart_upload(Bucket=bucket, Key="mp/again", UploadId=up,
                                         MultipartUpload=parts)
    again = s3.complete_multipart_upload(Bucket=bucket, Key="mp/again", UploadId=up,
                                         MultipartUpload=parts)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert again["ETag"] == first["ETag"] and again["Key"] == "mp/again"
    # Other parts than the first time's: the upload is gone.
    st, code = error(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/again", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]}))
    assert (st, code) == (404, "NoSuchUpload")
    # Another key with that upload id.
    st, code = error(lambda: s3.complete_multipart_upload(
        Bucket=bucket, Key="mp/other", UploadId=up, MultipartUpload=parts))
    assert (st, code) == (404, "NoSuchUpload")
    st, code = error(lambda: s3.list_parts(Bucket=bucket, Key="mp/again", UploadId=up))
    assert (st, code) == (404, "NoSuchUpload")
    # An abort that arrives after the completion: 204, and the object stays.
    s3.abort_multipart_upload(Bucket=bucket, Key="mp/again", UploadId=up)
    assert s3.head_object(Bucket=bucket, Key="mp/again")["ContentLength"] == (5 << 20) + 1


# ---------------------------------------------------------------- 4. ACLs and anonymous access

def test_public_read_object_and_anonymous_access(server, s3, bucket):
    anon = anonymous(server)
    s3.put_object(Bucket=bucket, Key="pub", Body=b"for all", ACL="public-read")
    s3.put_object(Bucket=bucket, Key="priv", Body=b"secret bytes")
    assert anon.get_object(Bucket=bucket, Key="pub")["Body"].read() == b"for all"
    assert anon.head_object(Bucket=bucket, Key="pub")["ContentLength"] == 7
    url = f"{server.endpoint}/{bucket}/pub"
    assert urllib.request.urlopen(url, timeout=10).read() == b"for all"
    # S3: response-* overrides "cannot be used with an unsigned (anonymous) request".
    assert error(lambda: anon.get_object(Bucket=bucket, Key="pub",
                                         ResponseContentType="x/y")) == (400, "InvalidRequest")
    assert error(lambda: anon.get_object(Bucket=bucket, Key="priv")) == (403, "AccessDenied")
    # The bucket is private: a missing key is 403 (no stranger learns which keys exist).
    assert error(lambda: anon.get_object(Bucket=bucket, Key="nope")) == (403, "AccessDenied")
    assert error(lambda: anon.list_objects_v2(Bucket=bucket)) == (403, "AccessDenied")
    assert error(lambda: anon.put_object(Bucket=bucket, Key="x", Body=b"")) == (403, "AccessDenied")
    assert error(lambda: anon.get_object(Bucket="no-such-bucket-x", Key="k")) == (
        404, "NoSuchBucket")
    assert error(lambda: anon.list_buckets()) == (403, "AccessDenied")
    acl = s3.get_object_acl(Bucket=bucket, Key="pub")
    grants = {(g["Grantee"].get("URI") or g["Grantee"]["ID"], g["Permission"])
              for g in acl["Grants"]}
    assert grants == {(ACCESS, "FULL_CONTROL"),
                      ("http://acs.amazonaws.com/groups/global/AllUsers", "READ")}
    s3.put_object_acl(Bucket=bucket, Key="pub", ACL="private")
    assert error(lambda: anon.get_object(Bucket=bucket, Key="pub")) == (403, "AccessDenied")
    assert s3.get_object_acl(Bucket=bucket, Key="priv")["Grants"] == [
        {"Grantee": {"ID": ACCESS, "DisplayName": ACCESS, "Type": "CanonicalUser"},
         "Permission": "FULL_CONTROL"}]


def test_public_bucket_lists_anonymously_and_answers_no_such_key(server, s3):
    anon = anonymous(server)
    s3.create_bucket(Bucket="acl-public-bucket", ACL="public-read")
    try:
        s3.put_object(Bucket="acl-public-bucket", Key="k", Body=b"1")
        assert [o["Key"] for o in anon.list_objects_v2(Bucket="acl-public-bucket")["Contents"]] == ["k"]
        anon.head_bucket(Bucket="acl-public-bucket")
        # Listable: a missing key is 404 NoSuchKey; the object itself is still private.
        assert error(lambda: anon.get_object(Bucket="acl-public-bucket", Key="nope")) == (
            404, "NoSuchKey")
        assert error(lambda: anon.get_object(Bucket="acl-public-bucket", Key="k")) == (
            403, "AccessDenied")
        acl = s3.get_bucket_acl(Bucket="acl-public-bucket")
        assert {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"},
                "Permission": "READ"} in acl["Grants"]
        s3.put_bucket_acl(Bucket="acl-public-bucket", ACL="private")
        wait_for(lambda: error(lambda: anon.list_objects_v2(Bucket="acl-public-bucket")) == (
            403, "AccessDenied"), "private bucket refuses anonymous listing")
        # public-read-write: anonymous writes; the object belongs to the bucket's owner.
        s3.put_bucket_acl(Bucket="acl-public-bucket", ACL="public-read-write")
        wait_for(lambda: anon.put_object(Bucket="acl-public-bucket", Key="anon", Body=b"a"),
                 "anonymous PUT allowed")
        assert s3.get_object_acl(Bucket="acl-public-bucket", Key="anon")["Owner"]["ID"] == ACCESS
        assert s3.get_object(Bucket="acl-public-bucket", Key="anon")["Body"].read() == b"a"
    finally:
        for k in ("k", "anon"):
            s3.delete_object(Bucket="acl-public-bucket", Key=k)
        s3.delete_bucket(Bucket="acl-public-bucket")


def test_grants_to_keys_and_authenticated_read(server, s3, bucket, other):
    other_key, o = other
    s3.put_object(Bucket=bucket, Key="g", Body=b"granted", GrantRead=f'id="{other_key}"')
    assert o.get_object(Bucket=bucket, Key="g")["Body"].read() == b"granted"
    assert error(lambda: o.list_objects_v2(Bucket=bucket)) == (403, "AccessDenied")
    assert error(lambda: o.get_object_acl(Bucket=bucket, Key="g")) == (403, "AccessDenied")
    s3.put_object(Bucket=bucket, Key="auth", Body=b"signed", ACL="authenticated-read")
    assert o.get_object(Bucket=bucket, Key="auth")["Body"].read() == b"signed"
    assert error(lambda: anonymous(server).get_object(Bucket=bucket, Key="auth")) == (
        403, "AccessDenied")
    # A bucket grant of WRITE lets the other key write; under ObjectWriter (no controls) it
    # owns what it wrote, and the bucket's owner still reads it.
    s3.put_bucket_acl(Bucket=bucket, GrantWrite=f'id="{other_key}"',
                      GrantFullControl=f'id="{ACCESS}"')
    wait_for(lambda: o.put_object(Bucket=bucket, Key="by-other", Body=b"o"), "granted write")
    assert s3.get_object_acl(Bucket=bucket, Key="by-other")["Owner"]["ID"] == other_key
    assert s3.get_object(Bucket=bucket, Key="by-other")["Body"].read() == b"o"
    owners = {o["Key"]: o["Owner"]["ID"] for o in s3.list_objects(Bucket=bucket)["Contents"]}
    assert owners["by-other"] == other_key and owners["g"] == ACCESS
    # Grants name keys that exist; canned ACLs are S3's; not both at once.
    assert error(lambda: s3.put_object(Bucket=bucket, Key="bad", Body=b"",
                                       GrantRead='id="NO-SUCH-KEY"')) == (400, "InvalidArgument")
    st, _, b = raw(server, "PUT", f"/{bucket}/bad", headers={"x-amz-acl": "public-ready"})
    assert st == 400 and b"<Code>InvalidArgument</Code>" in b
    st, _, b = raw(server, "PUT", f"/{bucket}/bad",
                   headers={"x-amz-acl": "public-read", "x-amz-grant-read": f'id="{other_key}"'})
    assert st == 400 and b"<Code>InvalidRequest</Code>" in b
    # An ACL document: the other key may read the ACL too.
    s3.put_object_acl(Bucket=bucket, Key="g", AccessControlPolicy={
        "Owner": {"ID": ACCESS},
        "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": ACCESS}, "Permission": "FULL_CONTROL"},
                   {"Grantee": {"Type": "CanonicalUser", "ID": other_key}, "Permission": "READ_ACP"}]})
    assert len(o.get_object_acl(Bucket=bucket, Key="g")["Grants"]) == 2
    assert error(lambda: o.get_object(Bucket=bucket, Key="g")) == (403, "AccessDenied")


def test_object_ownership_controls(server, s3, bucket):
    assert error(lambda: s3.get_bucket_ownership_controls(Bucket=bucket)) == (
        404, "OwnershipControlsNotFoundError")
    s3.put_object(Bucket=bucket, Key="was-public", Body=b"p", ACL="public-read")
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    anon = anonymous(server)
    # ACLs are disabled: they no longer grant anything, and setting one is refused.
    wait_for(lambda: error(lambda: anon.get_object(Bucket=bucket, Key="was-public")) == (
        403, "AccessDenied"), "enforced ownership ignores the object ACL")
    assert error(lambda: s3.put_object(Bucket=bucket, Key="x", Body=b"", ACL="public-read")) == (
        400, "AccessControlListNotSupported")
    assert error(lambda: s3.put_object(Bucket=bucket, Key="x", Body=b"", ACL="private")) == (
        400, "AccessControlListNotSupported")
    assert error(lambda: s3.put_object_acl(Bucket=bucket, Key="was-public", ACL="private")) == (
        400, "AccessControlListNotSupported")
    assert error(lambda: s3.put_bucket_acl(Bucket=bucket, ACL="public-read")) == (
        400, "AccessControlListNotSupported")
    s3.put_object(Bucket=bucket, Key="x", Body=b"", ACL="bucket-owner-full-control")
    # Reading an ACL shows the bucket owner's full control.
    assert s3.get_object_acl(Bucket=bucket, Key="was-public")["Grants"] == [
        {"Grantee": {"ID": ACCESS, "DisplayName": ACCESS, "Type": "CanonicalUser"},
         "Permission": "FULL_CONTROL"}]
    s3.delete_bucket_ownership_controls(Bucket=bucket)
    wait_for(lambda: anon.get_object(Bucket=bucket, Key="was-public")["Body"].read() == b"p",
             "the stored ACL applies again")
    st, _, b = raw(server, "PUT", "/enforced-acl-bucket",
                   headers={"x-amz-object-ownership": "BucketOwnerEnforced",
                            "x-amz-acl": "public-read"})
    assert st == 400 and b"<Code>InvalidBucketAclWithObjectOwnership</Code>" in b


# ---------------------------------------------------------------- 5. bucket names

def test_bucket_names_follow_s3s_rules(server):
    for name in ["192.168.5.4", "a.-b", "a-.b", "xn--abc", "ab", "a..b", "-ab", "ab-",
                 "Upper", "a_b", "x" * 64, "bucket-s3alias", "sthree-b"]:
        st, _, b = raw(server, "PUT", f"/{name}")
        assert st == 400 and b"<Code>InvalidBucketName</Code>" in b, name
    st, _, b = raw(server, "PUT", "/192.168.5.4a")
    assert st == 200, b
    assert raw(server, "DELETE", "/192.168.5.4a")[0] == 204


# ---------------------------------------------------------------- 6. ListBuckets pages

def test_list_buckets_pagination(server, s3):
    names = [f"lb-page-{i}" for i in range(3)]
    for n in names:
        s3.create_bucket(Bucket=n)
    try:
        import xml.etree.ElementTree as ET
        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"

        def page(**q):
            st, _, b = raw(server, "GET", "/", query=list(q.items()))
            assert st == 200, b
            root = ET.fromstring(b)
            token = root.find(f"{ns}ContinuationToken")
            return ([n.text for n in root.iter(f"{ns}Name")],
                    token.text if token is not None else None, root.find(f"{ns}Prefix"))

        got, token, prefix = page(**{"max-buckets": "2", "prefix": "lb-page-"})
        assert got == names[:2] and token and prefix.text == "lb-page-"
        got, token, _ = page(**{"max-buckets": "2", "prefix": "lb-page-",
                                "continuation-token": token})
        assert got == names[2:] and token is None
        # Without parameters, every bucket (of this key) as before.
        assert set(names) <= {b["Name"] for b in s3.list_buckets()["Buckets"]}
        for bad in ("0", "10001", "x"):
            st, _, b = raw(server, "GET", "/", query=[("max-buckets", bad)])
            assert st == 400 and b"<Code>InvalidArgument</Code>" in b, bad
        st, _, b = raw(server, "GET", "/", query=[("continuation-token", "!!")])
        assert st == 400 and b"<Code>InvalidArgument</Code>" in b
    finally:
        for n in names:
            s3.delete_bucket(Bucket=n)


# ---------------------------------------------------------------- 7. parts and attributes

def test_get_and_head_by_part_number(server, s3, bucket):
    p1, p2 = os.urandom(5 << 20), os.urandom(3000)
    up = s3.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="parts", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="parts", UploadId=up, PartNumber=2, Body=p2)["ETag"]
    etag = s3.complete_multipart_upload(
        Bucket=bucket, Key="parts", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                   {"PartNumber": 2, "ETag": e2}]})["ETag"]
    g = s3.get_object(Bucket=bucket, Key="parts", PartNumber=2)
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert g["Body"].read() == p2 and g["PartsCount"] == 2 and g["ETag"] == etag
    assert g["ContentRange"] == f"bytes {5 << 20}-{(5 << 20) + 2999}/{(5 << 20) + 3000}"
    assert s3.get_object(Bucket=bucket, Key="parts", PartNumber=1)["Body"].read() == p1
    h = s3.head_object(Bucket=bucket, Key="parts", PartNumber=1)
    assert h["ContentLength"] == 5 << 20 and h["PartsCount"] == 2
    assert error(lambda: s3.get_object(Bucket=bucket, Key="parts", PartNumber=3)) == (
        416, "InvalidPartNumber")
    s3.put_object(Bucket=bucket, Key="single", Body=b"one part")
    g = s3.get_object(Bucket=bucket, Key="single", PartNumber=1)
    assert g["Body"].read() == b"one part" and "PartsCount" not in g
    assert error(lambda: s3.get_object(Bucket=bucket, Key="single", PartNumber=2)) == (
        416, "InvalidPartNumber")
    for bad in ("0", "10001", "x"):
        st, _, b = raw(server, "GET", f"/{bucket}/parts", query=[("partNumber", bad)])
        assert st == 400 and b"<Code>InvalidArgument</Code>" in b, bad
    st, _, b = raw(server, "GET", f"/{bucket}/parts", query=[("partNumber", "1")],
                   headers={"range": "bytes=0-1"})
    assert st == 400 and b"<Code>InvalidRequest</Code>" in b


def test_get_object_attributes(server, s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="attrs", ChecksumAlgorithm="CRC32")["UploadId"]
    e = [s3.upload_part(Bucket=bucket, Key="attrs", UploadId=up, PartNumber=i, Body=body,
                        ChecksumAlgorithm="CRC32")
         for i, body in ((1, b"a" * (5 << 20)), (2, b"b" * 10))]
    s3.complete_multipart_upload(
        Bucket=bucket, Key="attrs", UploadId=up,
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": r["ETag"],
                                    "ChecksumCRC32": r["ChecksumCRC32"]} for i, r in enumerate(e)]})
    a = s3.get_object_attributes(Bucket=bucket, Key="attrs",
                                 ObjectAttributes=["ETag", "Checksum", "ObjectParts",
                                                   "StorageClass", "ObjectSize"])
    head = s3.head_object(Bucket=bucket, Key="attrs")
    assert a["ETag"] == head["ETag"].strip('"')
    assert a["ObjectSize"] == (5 << 20) + 10 and a["StorageClass"] == "STANDARD"
    assert a["Checksum"]["ChecksumCRC32"].endswith("-2")
    parts = a["ObjectParts"]
    assert parts["TotalPartsCount"] == 2 and not parts["IsTruncated"]
    assert [(p["PartNumber"], p["Size"], p["ChecksumCRC32"]) for p in parts["Parts"]] == [
        (1, 5 << 20, e[0]["ChecksumCRC32"]), (2, 10, e[1]["ChecksumCRC32"])]
    page = s3.get_object_attributes(Bucket=bucket, Key="attrs", ObjectAttributes=["ObjectParts"],
                                    MaxParts=1)["ObjectParts"]
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 1
    assert [p["PartNumber"] for p in page["Parts"]] == [1]
    page = s3.get_object_attributes(Bucket=bucket, Key="attrs", ObjectAttributes=["ObjectParts"],
                                    MaxParts=1, PartNumberMarker=1)["ObjectParts"]
    assert [p["PartNumber"] for p in page["Parts"]] == [2] and not page["IsTruncated"]
    s3.put_object(Bucket=bucket, Key="plain", Body=b"12345", ChecksumAlgorithm="SHA256")
    a = s3.get_object_attributes(Bucket=bucket, Key="plain",
                                 ObjectAttributes=["ObjectParts", "Checksum", "ObjectSize"])
    assert "ObjectParts" not in a and a["ObjectSize"] == 5
    # (boto3 1.26 does not know ChecksumType; newer ones read FULL_OBJECT)
    assert a["Checksum"]["ChecksumSHA256"]
    assert a["Checksum"].get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT"
    st, _, b = raw(server, "GET", f"/{bucket}/plain", query=[("attributes", "")])
    assert st == 400 and b"<Code>InvalidRequest</Code>" in b
    st, _, b = raw(server, "GET", f"/{bucket}/plain", query=[("attributes", "")],
                   headers={"x-amz-object-attributes": "ETag,Colour"})
    assert st == 400 and b"<Code>InvalidArgument</Code>" in b
    assert error(lambda: s3.get_object_attributes(Bucket=bucket, Key="none",
                                                  ObjectAttributes=["ETag"])) == (404, "NoSuchKey")


# ---------------------------------------------------------------- 8. unsupported subresources

def test_unsupported_subresources_are_501_naming_the_operation(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="o", Body=b"the object's bytes")
    for method, path, sub, op in [("GET", f"/{bucket}/o", "torrent", "GetObjectTorrent"),
                                  ("GET", f"/{bucket}/o", "retention", "GetObjectRetention"),
                                  ("PUT", f"/{bucket}/o", "legal-hold", "PutObjectLegalHold"),
                                  ("POST", f"/{bucket}/o", "restore", "RestoreObject"),
                                  ("GET", f"/{bucket}", "policy", "GetBucketPolicy"),
                                  ("PUT", f"/{bucket}", "lifecycle", "PutBucketLifecycleConfiguration"),
                                  ("DELETE", f"/{bucket}", "website", "DeleteBucketWebsite"),
                                  ("GET", f"/{bucket}", "tagging", "GetBucketTagging")]:
        st, _, b = raw(server, method, path, query=[(sub, "")])
        assert st == 501, (sub, st, b)
        assert b"<Code>NotImplemented</Code>" in b and op.encode() in b, b
        assert b"the object's bytes" not in b
    st, _, b = raw(server, "GET", f"/{bucket}/o", query=[("versionId", "3HL4kqtJlcpXroDTDm")])
    assert st == 400 and b"<Code>InvalidArgument</Code>" in b
    assert s3.get_object(Bucket=bucket, Key="o", VersionId="null")["Body"].read() == (
        b"the object's bytes")
    # An unknown parameter that is no S3 sub-resource is ignored, as S3 ignores it.
    st, _, b = raw(server, "GET", f"/{bucket}/o", query=[("x-id", "GetObject")])
    assert st == 200 and b == b"the object's bytes"


# ---------------------------------------------------------------- 9. tagging

def test_object_tagging(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="project=granary&stage=")
    g = s3.get_object(Bucket=bucket, Key="t")
    assert g["TagCount"] == 2
    tags = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("project", "granary"), ("stage", "")]
    etag = g["ETag"]
    s3.put_object_tagging(Bucket=bucket, Key="t",
                          Tagging={"TagSet": [{"Key": "only", "Value": " one "}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == [
        {"Key": "only", "Value": " one "}]
    assert s3.head_object(Bucket=bucket, Key="t")["ETag"] == etag  # the bytes are untouched
    r = s3.delete_object_tagging(Bucket=bucket, Key="t")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"] == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="t")
    eleven = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    assert error(lambda: s3.put_object_tagging(Bucket=bucket, Key="t",
                                               Tagging={"TagSet": eleven})) == (400, "BadRequest")
    assert error(lambda: s3.put_object_tagging(
        Bucket=bucket, Key="t", Tagging={"TagSet": [{"Key": "k" * 129, "Value": ""}]})) == (
        400, "InvalidTag")
    assert error(lambda: s3.put_object(Bucket=bucket, Key="t2", Body=b"",
                                       Tagging="a=1&a=2")) == (400, "InvalidArgument")
    assert error(lambda: s3.get_object_tagging(Bucket=bucket, Key="missing")) == (404, "NoSuchKey")
    assert error(lambda: s3.put_object_tagging(
        Bucket=bucket, Key="missing", Tagging={"TagSet": []})) == (404, "NoSuchKey")
    # Multipart uploads and copies carry tags too.
    up = s3.create_multipart_upload(Bucket=bucket, Key="mt", Tagging="from=upload")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="mt", UploadId=up, PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="mt", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert s3.get_object_tagging(Bucket=bucket, Key="mt")["TagSet"] == [
        {"Key": "from", "Value": "upload"}]
    s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/mt")
    assert s3.get_object_tagging(Bucket=bucket, Key="copy")["TagSet"] == [
        {"Key": "from", "Value": "upload"}]
    s3.copy_object(Bucket=bucket, Key="copy2", CopySource=f"{bucket}/mt",
                   TaggingDirective="REPLACE", Tagging="new=1")
    assert s3.get_object_tagging(Bucket=bucket, Key="copy2")["TagSet"] == [
        {"Key": "new", "Value": "1"}]


# ---------------------------------------------------------------- 10. CORS

def test_cors_rules_preflight_and_actual_requests(server, s3, bucket):
    ep = server.endpoint

    def options(path, **headers):
        return s3raw.request(ep, "OPTIONS", path, sign_it=False, headers=headers)

    assert error(lambda: s3.get_bucket_cors(Bucket=bucket)) == (404, "NoSuchCORSConfiguration")
    st, _, b = options(f"/{bucket}/k", origin="https://nb.example.com",
                       **{"access-control-request-method": "PUT"})
    assert st == 403 and b"<Code>AccessForbidden</Code>" in b and b"not enabled" in b
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [
        {"AllowedOrigins": ["https://*.example.com"], "AllowedMethods": ["GET", "PUT"],
         "AllowedHeaders": ["x-amz-*", "content-type"], "ExposeHeaders": ["ETag"],
         "MaxAgeSeconds": 3000},
        {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]})
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["https://*.example.com"] and rules[0]["MaxAgeSeconds"] == 3000

    def preflight_ok():
        st, h, _ = options(f"/{bucket}/k", origin="https://nb.example.com",
                           **{"access-control-request-method": "PUT",
                              "access-control-request-headers": "X-Amz-Date, Content-Type"})
        return st == 200 and h
    wait_for(preflight_ok, "preflight allowed")
    h = preflight_ok()
    assert h["access-control-allow-origin"] == "https://nb.example.com"
    assert h["access-control-allow-methods"] == "GET, PUT"
    assert h["access-control-allow-headers"] == "x-amz-date, content-type"
    assert h["access-control-max-age"] == "3000"
    assert h["access-control-allow-credentials"] == "true"
    assert h["access-control-expose-headers"] == "ETag"
    # No Origin: 400; no rule for the origin, the method or a header: 403.
    st, _, b = options(f"/{bucket}/k")
    assert st == 400 and b"<Code>BadRequest</Code>" in b
    st, _, b = options(f"/{bucket}/k", origin="https://evil.test",
                       **{"access-control-request-method": "PUT"})
    assert st == 403 and b"<Code>AccessForbidden</Code>" in b and b"not allowed" in b
    st, _, _ = options(f"/{bucket}/k", origin="https://nb.example.com",
                       **{"access-control-request-method": "DELETE"})
    assert st == 403
    st, _, _ = options(f"/{bucket}/k", origin="https://nb.example.com",
                       **{"access-control-request-method": "PUT",
                          "access-control-request-headers": "authorization"})
    assert st == 403
    st, h, _ = options(f"/{bucket}", origin="https://anywhere.test",
                       **{"access-control-request-method": "GET"})
    assert st == 200 and h["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in h
    st, _, b = options("/no-such-cors-bucket/k", origin="https://nb.example.com",
                       **{"access-control-request-method": "GET"})
    assert st == 403 and b"Bucket not found" in b
    # An actual request from an allowed origin carries the headers, errors too.
    s3.put_object(Bucket=bucket, Key="k", Body=b"cors")
    st, h, b = raw(server, "GET", f"/{bucket}/k", headers={"origin": "https://nb.example.com"})
    assert st == 200 and b == b"cors"
    assert h["access-control-allow-origin"] == "https://nb.example.com"
    st, h, _ = raw(server, "GET", f"/{bucket}/missing", headers={"origin": "https://x.example.com"})
    assert st == 404 and h["access-control-allow-origin"] == "https://x.example.com"
    st, h, _ = raw(server, "PUT", f"/{bucket}/k2", headers={"origin": "https://evil.test"})
    assert st == 200 and "access-control-allow-origin" not in h
    s3.delete_bucket_cors(Bucket=bucket)
    assert error(lambda: s3.get_bucket_cors(Bucket=bucket)) == (404, "NoSuchCORSConfiguration")
    st, _, b = raw(server, "PUT", f"/{bucket}", query=[("cors", "")],
                   body=b"<CORSConfiguration><CORSRule><AllowedMethod>MYMETHOD</AllowedMethod>"
                        b"<AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>")
    assert st == 400 and b"<Code>InvalidRequest</Code>" in b and b"MYMETHOD" in b


# ---------------------------------------------------------------- 11. the embedded server

def test_server_exports_volume_default_as_bucket_default(server, s3, tmp_path, other):
    assert "default" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    local = tmp_path / "readme.txt"
    local.write_bytes(b"one file, two doors")
    server.cli("put", str(local), "default/docs/readme.txt")
    assert s3.get_object(Bucket="default", Key="docs/readme.txt")["Body"].read() == (
        b"one file, two doors")
    s3.put_object(Bucket="default", Key="docs/from-s3.txt", Body=b"via s3")
    out = tmp_path / "back.txt"
    server.cli("get", "default/docs/from-s3.txt", str(out))
    assert out.read_bytes() == b"via s3"
    # It is the server key's bucket: others neither see it nor may take its name.
    _, o = other
    assert "default" not in [b["Name"] for b in o.list_buckets()["Buckets"]]
    assert error(lambda: o.create_bucket(Bucket="default")) == (409, "BucketAlreadyExists")
    assert error(lambda: s3.create_bucket(Bucket="default")) == (409, "BucketAlreadyOwnedByYou")
    s3.delete_objects(Bucket="default", Delete={"Objects": [{"Key": "docs/readme.txt"},
                                                            {"Key": "docs/from-s3.txt"}]})
