#!/usr/bin/env python3
"""Random 4 KiB reads, timed one by one; prints "median_ms p90_ms".

  randread.py file PATH SEED            pread()s on a file (a mount)
  randread.py ftp HOST PORT NAME SEED   plain REST+RETR on one logged-in FTP connection
                                        (user alice, password from FTPFS_PASSWORD; explicit
                                        TLS, certificate unchecked, with BENCH_TLS=1)

The same SEED gives the same $RANDREAD_N (default 200) offsets, and every read is checked
against the source file given in $BENCH_SOURCE."""
import ftplib, os, random, statistics, sys, time

N, SIZE = int(os.environ.get("RANDREAD_N", "200")), 4096
src = open(os.environ["BENCH_SOURCE"], "rb")
total = os.fstat(src.fileno()).st_size
mode = sys.argv[1]
rng = random.Random(int(sys.argv[-1]))
offsets = [rng.randrange(0, total - SIZE) for _ in range(N)]
times = []
if mode == "file":
    fd = os.open(sys.argv[2], os.O_RDONLY)
    for off in offsets:
        t = time.perf_counter()
        got = os.pread(fd, SIZE, off)
        times.append(time.perf_counter() - t)
        assert got == os.pread(src.fileno(), SIZE, off), f"wrong bytes at {off}"
else:
    host, port, name = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    tls = os.environ.get("BENCH_TLS") == "1"
    if tls:
        import ssl
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ftp = ftplib.FTP_TLS(context=ctx)
    else:
        ftp = ftplib.FTP()
    ftp.connect(host, port, timeout=30)
    ftp.login("alice", os.environ["FTPFS_PASSWORD"])
    if tls:
        ftp.prot_p()
    ftp.voidcmd("TYPE I")
    for off in offsets:
        t = time.perf_counter()
        conn = ftp.transfercmd("RETR " + name, rest=off)
        got = b""
        while len(got) < SIZE:
            chunk = conn.recv(SIZE - len(got))
            if not chunk:
                break
            got += chunk
        conn.close()
        # The transfer's final reply: 226, 426 (we closed early, as intended), or, from
        # pure-ftpd after an early close, a 1xx line with its statistics.
        try:
            ftp.getresp()
        except (ftplib.error_temp, ftplib.error_perm):
            pass
        times.append(time.perf_counter() - t)
        assert got == os.pread(src.fileno(), SIZE, off), f"wrong bytes at {off}"
    ftp.quit()
times.sort()
print(f"{statistics.median(times) * 1000:.3f} {times[int(len(times) * 0.9)] * 1000:.3f}")
