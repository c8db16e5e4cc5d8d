#!/usr/bin/env python3
"""smallfiles.py HOST PORT REMOTE_DIR SRC_DIR TREE_DIR: the FTP commands that copying small
files costs at the least, sent by a plain client (ftplib) on one logged-in connection, one
after another, as a program copying file by file must wait for each result:

  1. every file in SRC_DIR with one STOR each (what `cp` of new files needs);
  2. TREE_DIR as `tar x` restores it: MKD per directory, then STOR, SITE CHMOD and MFMT
     per file (tar sets each file's mode and time).

Checks the server's listing after each part and prints "cp_seconds untar_seconds
untar_entries". Login is not timed. Credentials: user alice, password from $FTP_PASSWORD.
"""
import ftplib, io, os, sys, time

host, port, remote, src, tree = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ftp = ftplib.FTP()
ftp.connect(host, port, timeout=30)
ftp.login("alice", os.environ["FTP_PASSWORD"])
ftp.voidcmd("TYPE I")
ftp.mkd(f"{remote}/cp")

names = sorted(os.listdir(src))
blobs = [(n, open(os.path.join(src, n), "rb").read()) for n in names]
t = time.perf_counter()
for n, data in blobs:
    ftp.storbinary(f"STOR {remote}/cp/{n}", io.BytesIO(data))
cp = time.perf_counter() - t


def listed(d):
    return sorted(b for b in (os.path.basename(p) for p in ftp.nlst(d)) if b not in (".", ".."))


assert listed(f"{remote}/cp") == names, "cp lost files"

plan = []  # ("d", path) or ("f", path, data, mode, mtime), parents first
for root, dirs, files in os.walk(tree):
    dirs.sort()
    rel = os.path.relpath(root, os.path.dirname(tree))
    plan.append(("d", rel))
    for f in sorted(files):
        p = os.path.join(root, f)
        st = os.stat(p)
        plan.append(("f", f"{rel}/{f}", open(p, "rb").read(), st.st_mode & 0o7777, st.st_mtime))
ftp.mkd(f"{remote}/tar")
t = time.perf_counter()
for step in plan:
    if step[0] == "d":
        ftp.mkd(f"{remote}/tar/{step[1]}")
    else:
        _, rel, data, mode, mtime = step
        path = f"{remote}/tar/{rel}"
        ftp.storbinary(f"STOR {path}", io.BytesIO(data))
        ftp.voidcmd(f"SITE CHMOD {mode:o} {path}")
        ftp.voidcmd(f"MFMT {time.strftime('%Y%m%d%H%M%S', time.gmtime(mtime))} {path}")
untar = time.perf_counter() - t
files = sum(1 for s in plan if s[0] == "f")
got = sum(len(listed(f"{remote}/tar/{s[1]}")) for s in plan if s[0] == "d" and s[1].count("/") == 1)
assert got == files, f"untar lost files: {got} of {files}"
ftp.quit()
print(f"{cp:.4f} {untar:.4f} {len(plan)}")
