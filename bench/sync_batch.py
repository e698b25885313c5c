#!/usr/bin/env python3
"""N files of 4 KiB written, then fsync each or one syncfs: the medians and
90th percentiles of 15 alternated rounds (bench/README.md, "Batches").
Usage: sync_batch.py DIR"""
import os, time, ctypes, sys, statistics
libc = ctypes.CDLL("libc.so.6", use_errno=True)
d = sys.argv[1]
def batch(n, mode, size=4096):
    fds = []
    data = os.urandom(size)
    for i in range(n):
        fd = os.open(os.path.join(d, f"f{i}"), os.O_WRONLY|os.O_CREAT|os.O_TRUNC, 0o644)
        os.write(fd, data); fds.append(fd)
    t = time.perf_counter()
    if mode == "fsync":
        for fd in fds: os.fsync(fd)
    else:
        libc.syncfs(fds[0])
    el = time.perf_counter() - t
    for fd in fds: os.close(fd)
    return el
for n in [2,4,8,12,16,24,32,64]:
    a=[];b=[]
    for _ in range(15):
        a.append(batch(n,"fsync")); b.append(batch(n,"syncfs"))
    print(f"n={n:3d} fsync-each med {statistics.median(a)*1000:7.2f} ms p90 {sorted(a)[13]*1000:7.2f} | syncfs med {statistics.median(b)*1000:7.2f} ms p90 {sorted(b)[13]*1000:7.2f}", flush=True)
