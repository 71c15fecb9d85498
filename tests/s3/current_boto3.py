# A current boto3 (clients_test.sh runs this when the machine has one, >= 1.35): SigV2 through
# botocore's signer on every kind of operation (Debian's 1.29 mis-signs sub-resources, see
# test_s3_compat.py), its default presigner, a repeated CompleteMultipartUpload, and ListBuckets
# pages through MaxBuckets and the paginator. Usage: current_boto3.py ENDPOINT, with
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY set.
import os, sys, urllib.request
import boto3, botocore
from botocore.config import Config
ep = sys.argv[1]
a, s = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
print("boto3", boto3.__version__)
v2 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=a, aws_secret_access_key=s,
                  region_name="us-east-1",
                  config=Config(signature_version="s3", s3={"addressing_style": "path"},
                                retries={"max_attempts": 1}))
b = "new-boto3-v2"
v2.create_bucket(Bucket=b)
v2.put_object(Bucket=b, Key="k", Body=b"v2 body", ACL="public-read", Tagging="t=1")
assert v2.get_object_tagging(Bucket=b, Key="k")["TagSet"] == [{"Key": "t", "Value": "1"}]
assert len(v2.get_object_acl(Bucket=b, Key="k")["Grants"]) == 2
assert [o["Key"] for o in v2.list_objects_v2(Bucket=b)["Contents"]] == ["k"]
up = v2.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
e = v2.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=b"p")["ETag"]
parts = {"Parts": [{"PartNumber": 1, "ETag": e}]}
first = v2.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload=parts)
again = v2.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload=parts)
assert first["ETag"] == again["ETag"]
v2.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": [
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]})
assert v2.get_bucket_cors(Bucket=b)["CORSRules"][0]["AllowedMethods"] == ["GET"]
a2 = v2.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=["ObjectParts", "ETag"])
assert a2["ObjectParts"]["TotalPartsCount"] == 1, a2
# The default presigner of a client made without a signature_version.
plain = boto3.client("s3", endpoint_url=ep, aws_access_key_id=a, aws_secret_access_key=s,
                     region_name="us-east-1")
url = plain.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=60)
print("presigned:", url.split("?")[1].split("=")[0])
assert urllib.request.urlopen(url, timeout=10).read() == b"v2 body"
# ListBuckets pages (MaxBuckets, ContinuationToken, Prefix): botocore 1.35+.
if "MaxBuckets" in plain.meta.service_model.operation_model("ListBuckets").input_shape.members:
    for n in ("pg-a", "pg-b", "pg-c"):
        plain.create_bucket(Bucket=n)
    seen, token = [], None
    while True:
        kw = {"ContinuationToken": token} if token else {}
        page = plain.list_buckets(MaxBuckets=2, Prefix="pg-", **kw)
        seen += [x["Name"] for x in page["Buckets"]]
        assert page["Prefix"] == "pg-"
        token = page.get("ContinuationToken")
        if not token:
            break
    assert seen == ["pg-a", "pg-b", "pg-c"], seen
    names = [x["Name"] for pg in plain.get_paginator("list_buckets").paginate(
        PaginationConfig={"PageSize": 1}) for x in pg["Buckets"]]
    assert {"pg-a", "pg-b", "pg-c", b} <= set(names), names
    for n in ("pg-a", "pg-b", "pg-c"):
        plain.delete_bucket(Bucket=n)
    print("list_buckets pages ok")
for k in ("k", "mp"):
    v2.delete_object(Bucket=b, Key=k)
v2.delete_bucket(Bucket=b)
print("new boto3 ok")
