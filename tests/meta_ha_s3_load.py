#!/usr/bin/python3
"""S3 side of meta_ha_test: PUTs distinct objects until STOPFILE exists, one line per
acknowledged PUT ("acked KEY MD5"), then GETs every acknowledged key and prints
"verified N" or "mismatch KEY ..." lines.
Usage: meta_ha_s3_load.py ENDPOINT ACCESS SECRET BUCKET PREFIX STOPFILE"""
import hashlib
import os
import random
import sys

import boto3
import botocore.config

endpoint, access, secret, bucket, prefix, stopfile = sys.argv[1:]
s3 = boto3.client(
    "s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
    region_name="us-east-1",
    config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                  signature_version="s3v4", read_timeout=60, connect_timeout=5))
rng = random.Random(prefix)
acked = {}
i = 0
while not os.path.exists(stopfile):
    key = f"{prefix}/obj-{i:05d}"
    body = rng.randbytes(rng.choice([100, 4096, 70000, 300000]))
    i += 1
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    except Exception as e:  # not acknowledged: may or may not exist, never checked
        print(f"failed {key} {type(e).__name__}", flush=True)
        continue
    digest = hashlib.md5(body).hexdigest()
    acked[key] = digest
    print(f"acked {key} {digest}", flush=True)

bad = 0
for key, digest in acked.items():
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as e:
        print(f"mismatch {key} get failed: {e}", flush=True)
        bad += 1
        continue
    if hashlib.md5(data).hexdigest() != digest:
        print(f"mismatch {key} bytes differ ({len(data)} read)", flush=True)
        bad += 1
print(f"verified {len(acked) - bad} of {len(acked)}", flush=True)
sys.exit(1 if bad else 0)
