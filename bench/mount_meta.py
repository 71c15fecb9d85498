#!/usr/bin/python3
"""Small-file metadata rate on a directory: THREADS threads each create FILES empty files
(open O_CREAT|O_EXCL + close), then stat them, then unlink them. Prints one JSON object with
the aggregate rates. Usage: mount_meta.py DIR THREADS FILES"""
import json
import os
import sys
import threading
import time

root, threads, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def phase(fn):
    workers = [threading.Thread(target=fn, args=(t,)) for t in range(threads)]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return threads * files / (time.monotonic() - start)


def create(t):
    for i in range(files):
        os.close(os.open(os.path.join(root, f"t{t}-f{i}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


def stat(t):
    for i in range(files):
        os.stat(os.path.join(root, f"t{t}-f{i}"))


def unlink(t):
    for i in range(files):
        os.unlink(os.path.join(root, f"t{t}-f{i}"))


rates = {"creates_per_s": phase(create), "stats_per_s": phase(stat), "unlinks_per_s": phase(unlink)}
print(json.dumps({k: round(v, 1) for k, v in rates.items()}))
