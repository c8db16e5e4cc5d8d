#!/usr/bin/env python3
"""pasvrange.py [COUNT]: print "LO HI", COUNT (default 64) consecutive TCP ports that are
free now, for an FTP server's passive range and the delay proxy in front of it.

The problem: the benchmarks used to pick a random range in 40000-60063, which lies inside
Linux's ephemeral range (32768-60999 by default). Any outgoing connection of an earlier
step (curl, lftp, rclone, ftpfs itself) or one of its TIME_WAIT remains could hold one of
those ports, and then the delay proxy, which must listen on every port of the range,
could not start. Here the range is chosen below the ephemeral range (read from /proc), and
every port in it is checked by binding it on the wildcard address, which fails if any
socket on any address holds the port. A bounded number of tries; exit 1 if none is free."""
import random, socket, sys

count = int(sys.argv[1]) if len(sys.argv) > 1 else 64
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        eph_lo, eph_hi = (int(x) for x in f.read().split())
except OSError:
    eph_lo, eph_hi = 32768, 60999
# Below the ephemeral range when there is room, else above it.
if eph_lo - count > 10000:
    lo_min, lo_max = 10000, eph_lo - count
else:
    lo_min, lo_max = eph_hi + 1, 65535 - count


def free(port):
    for family, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addr, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


for _ in range(200):
    lo = random.randint(lo_min, lo_max)
    if all(free(p) for p in range(lo, lo + count)):
        print(lo, lo + count - 1)
        sys.exit(0)
print("pasvrange.py: no free range of %d ports found" % count, file=sys.stderr)
sys.exit(1)
