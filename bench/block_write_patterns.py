#!/usr/bin/python3
"""How the disk takes one durable block file per write, pattern by pattern (the choice behind
docs/data-path.md "Direct writes"). 16 threads each create N files of SIZE KiB and make them
durable: buffered + fsync; O_DIRECT + fsync (extending writes); ftruncate, then O_DIRECT +
fsync; O_DIRECT|O_DSYNC; fallocate, then O_DIRECT + fdatasync. One JSON line per pattern:
MB/s and this process's CPU-seconds per GiB.

    bench/block_write_patterns.py DIR [SIZE_KIB=1024] [FILES_PER_THREAD=40]
"""
import json
import mmap
import os
import resource
import shutil
import sys
import threading
import time

PATTERNS = ("buffered", "direct", "truncate_direct", "dsync_direct", "fallocate_direct")


def run(root, pattern, size, files, threads=16):
    buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(size))

    def worker(w):
        d = os.path.join(root, f"{pattern}-{w}")
        os.makedirs(d, exist_ok=True)
        for i in range(files):
            flags = os.O_CREAT | os.O_WRONLY | os.O_EXCL
            if pattern != "buffered":
                flags |= os.O_DIRECT
            if pattern == "dsync_direct":
                flags |= os.O_DSYNC
            fd = os.open(os.path.join(d, f"{i}.blk"), flags, 0o644)
            if pattern == "truncate_direct":
                os.ftruncate(fd, size)
            if pattern == "fallocate_direct":
                os.posix_fallocate(fd, 0, size)
            os.pwritev(fd, [buf], 0)
            if pattern in ("buffered", "direct", "truncate_direct"):
                os.fsync(fd)
            elif pattern == "fallocate_direct":
                os.fdatasync(fd)
            os.close(fd)

    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.time()
    ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    seconds, r1 = time.time() - t0, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    total = threads * files * size
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root, exist_ok=True)
    return {"bench": "block_write_patterns", "pattern": pattern, "size_KiB": size >> 10,
            "MBps": round(total / seconds / 1e6), "cpu_s_per_GiB": round(cpu / (total / 2**30), 2)}


def main():
    root = os.path.join(sys.argv[1], "block-write-patterns")
    size = int(sys.argv[2] if len(sys.argv) > 2 else 1024) << 10
    files = int(sys.argv[3] if len(sys.argv) > 3 else 40)
    os.makedirs(root, exist_ok=True)
    try:
        for pattern in PATTERNS:
            print(json.dumps(run(root, pattern, size, files)), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
