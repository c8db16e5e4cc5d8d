#!/usr/bin/env python3
"""appends.py HOST PORT PATH N: N appends of one line each ("line 1".."line N") to PATH with
APPE, one after another on one logged-in connection, as a plain client (Python ftplib) that
waits for each result; what `echo line >> file` needs at the least. The first append creates
the file. Prints the seconds the appends took (login not timed). User alice, password from
$FTPFS_PASSWORD; explicit TLS (certificate unchecked) with BENCH_TLS=1."""
import ftplib, io, os, ssl, sys, time

host, port, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
if os.environ.get("BENCH_TLS") == "1":
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ftp = ftplib.FTP_TLS(context=ctx)
else:
    ftp = ftplib.FTP()
ftp.connect(host, port, timeout=30)
ftp.login("alice", os.environ["FTPFS_PASSWORD"])
if isinstance(ftp, ftplib.FTP_TLS):
    ftp.prot_p()
ftp.voidcmd("TYPE I")
t = time.perf_counter()
for i in range(1, n + 1):
    ftp.storbinary(f"APPE {path}", io.BytesIO(f"line {i}\n".encode()))
print(f"{time.perf_counter() - t:.4f}")
ftp.quit()
