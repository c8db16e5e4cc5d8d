#!/usr/bin/env python3
"""renames.py DIR N: renames f0..fN-1 to g0..gN-1, then unlinks them; checks each step
and prints "rename_seconds unlink_seconds"."""
import os, sys, time

d, n = sys.argv[1], int(sys.argv[2])
t = time.perf_counter()
for i in range(n):
    os.rename(f"{d}/f{i}", f"{d}/g{i}")
r = time.perf_counter() - t
names = set(os.listdir(d))
assert all(f"g{i}" in names and f"f{i}" not in names for i in range(n)), "renames lost"
t = time.perf_counter()
for i in range(n):
    os.unlink(f"{d}/g{i}")
u = time.perf_counter() - t
assert not any(x.startswith("g") for x in os.listdir(d)), "unlinks lost"
print(f"{r:.4f} {u:.4f}")
