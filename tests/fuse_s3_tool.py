#!/usr/bin/python3
"""S3 side of fuse_s3_test: one boto3 operation per call, its result on stdout.
Usage: fuse_s3_tool.py ENDPOINT ACCESS SECRET (mkbucket B | put B K FILE | get B K FILE | head B K)"""
import sys

import boto3
import botocore.config

endpoint, access, secret, op, *args = sys.argv[1:]
s3 = boto3.client(
    "s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
    region_name="us-east-1",
    config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                  signature_version="s3v4"))
if op == "mkbucket":
    s3.create_bucket(Bucket=args[0])
    print("ok")
elif op == "put":
    with open(args[2], "rb") as f:
        s3.put_object(Bucket=args[0], Key=args[1], Body=f.read())
    print("ok")
elif op == "get":
    body = s3.get_object(Bucket=args[0], Key=args[1])
    data = body["Body"].read()
    with open(args[2], "wb") as f:
        f.write(data)
    print(f"content_length={body['ContentLength']} read={len(data)}")
elif op == "head":
    h = s3.head_object(Bucket=args[0], Key=args[1])
    print(f"content_length={h['ContentLength']}")
else:
    sys.exit(f"unknown op {op}")
