#!/usr/bin/env python3
"""wantable.py RESULTS.tsv RTT_MS RANDOM_READS SERVER_RATE TLS: the markdown tables of
scripts/bench/wan.sh from its measurements (client, workload, run, seconds, commands, data
connections, ok|FAILED per line). Medians over the runs; a workload with any failed run
shows FAILED. The floors are derived in BENCHMARKS.md (section "WAN"): round trips at the
least for a correct client on one connection, one command at a time / on 5 connections with
a data connection prepared ahead on each.

Rows of client "ftpfs-tls" (wan.sh --both) are ftpfs over FTPS in the same run: a further
table compares them with the plain rows (issue 15's FTPS target: within one round trip per
data connection of plain FTP). Commands over TLS are ftpfs's own count (`ftpfs status`; the
results' 8th column says "ftpfs"), since the proxy sees only ciphertext."""
import json, os, statistics, sys
from collections import defaultdict

path, rtt, randn, server_rate, tls = sys.argv[1], int(sys.argv[2]) / 1000, int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
mib_s = server_rate / 1048576

# workload: (label, floor on 1 connection / on 5 connections, in round trips unless noted)
WORKLOADS = {
    "mount": ("mount until live", "2.5 / 2.5" + (" + TLS" if tls else "")),
    "find": ("`find` of 41 dirs / 1000 files, cold", "83 / 10"),
    "ls": ("`ls -l` of 1000 entries, cold", "3 / 2"),
    "stat": ("`stat` of 50 files in an unlisted directory", "3 / 2"),
    "cp": ("`cp -r` of 100 × 4 KiB files in 5 dirs, until all are on the server", "208 / 108 (28 if `close` may return first)"),
    "cp-return": ("the same, until `cp` returns", ""),
    "append": ("20 × `echo >>`, until on the server", "41 / 21"),
    "append-return": ("the same, until the last `echo` returns", ""),
    "grep": ("`grep -r` over 200 small files in 8 dirs, cold", "419 / 44"),
    "grep1000": ("the same over 1000 files in 40 dirs (one run)", "2083 / 210"),
    "seq": ("sequential read of 32 MiB", "3 + transfer"),
    "rand": (f"random 4 KiB `pread`, median of {randn} (commands and connections per read)", "3 / 2 (1 pipelined)"),
    "throttled": (f"64 MiB read, server limits each session to {mib_s:g} MiB/s",
                  f"{64 / mib_s:.1f} s / {64 / mib_s / 5:.1f} s"),
}
CLIENTS = ["ftpfs", "ftpfs-tls", "rclone", "lftp", "plain", "lftp5"]


def client_label(c, w):
    if c == "ftpfs":
        return "**ftpfs**"
    if c == "ftpfs-tls":
        return "**ftpfs over FTPS**"
    if c == "rclone":
        return "rclone mount" + (" (`--vfs-cache-mode writes`)" if w.startswith(("cp", "append")) else "")
    if c == "lftp":
        return {"mount": "lftp: connect, log in, `NOOP`", "grep": "lftp `mirror`, then grep"}.get(w, "lftp")
    if c == "plain":
        return {"rand": "Python ftplib `REST`+`RETR`", "append": "Python ftplib `APPE`"}[w]
    return {"find": "lftp `mirror --dry-run --parallel=5`", "grep": "lftp `mirror --parallel=5`, then grep",
            "grep1000": "lftp `mirror --parallel=5`, then grep", "cp": "lftp `mirror -R --parallel=5`",
            "seq": "lftp `pget -n 4`", "throttled": "lftp `pget -n 4`"}[w]


rows = defaultdict(list)
source = {}
for line in open(path):
    c, w, run, secs, cmds, dconns, ok, *src = line.rstrip("\n").split("\t")
    rows[(c, w)].append((float(secs), cmds, dconns, ok))
    source[(c, w)] = src[0] if src else "proxy"


def median(xs):
    return statistics.median(xs) if xs else None


def summary(c, w):
    r = rows.get((c, w))
    if not r:
        return None
    failed = any(x[3] != "ok" for x in r)
    secs = median([x[0] for x in r])
    div = randn if w == "rand" else 1
    cmds = median([int(x[1]) / div for x in r]) if r[0][1] != "" else None
    dconns = median([int(x[2]) / div for x in r]) if r[0][2] != "" else None
    return failed, secs, cmds, dconns


def num(x):
    if x is None:
        return ""
    return f"{x:.0f}" if x == int(x) else f"{x:.1f}"


# At a glance: seconds (÷ RTT) per client, as in the table.
print("| workload | ftpfs | rclone mount | lftp (or ftplib) | lftp `--parallel=5` / `pget -n 4` | floor, RTT: 1 / 5 connections |")
print("|---|---|---|---|---|---|")
for w, (label, floor) in WORKLOADS.items():
    cells = []
    for cs in (["ftpfs"], ["rclone"], ["lftp", "plain"], ["lftp5"]):
        s = next((summary(c, w) for c in cs if summary(c, w)), None)
        if s is None:
            cells.append("")
        elif s[0]:
            cells.append("FAILED")
        else:
            cells.append(f"{s[1]:.2f} s ({s[1] / rtt:.1f})")
    if any(cells):
        print(f"| {label} | " + " | ".join(cells) + f" | {floor} |")
print()
print("| workload | floor, round trips: 1 connection / 5 connections | client | seconds | ÷ RTT | commands | data connections |")
print("|---|---|---|---|---|---|---|")
for w, (label, floor) in WORKLOADS.items():
    first = True
    for c in CLIENTS:
        s = summary(c, w)
        if s is None:
            continue
        failed, secs, cmds, dconns = s
        cells = [label if first else "", floor if first else "", client_label(c, w)]
        if failed:
            cells += ["FAILED", "", "", ""]
        else:
            encrypted = (tls or c == "ftpfs-tls") and source.get((c, w)) == "proxy"
            cmd_cell = "encrypted" if encrypted and cmds is not None else num(cmds)
            cells += [f"{secs:.3f}" if secs < 10 else f"{secs:.2f}", f"{secs / rtt:.1f}", cmd_cell, num(dconns)]
        print("| " + " | ".join(cells) + " |")
        first = False


def profile(log):
    """Commands by verb, sessions used, and the most commands awaiting their reply at once
    on one session (pipelining) and across sessions (parallel work), from a proxy log."""
    verbs, busy, sessions, prelim = defaultdict(int), defaultdict(int), set(), set()
    deepest = widest = 0
    for line in open(log):
        f = line.split(" ", 4)
        if f[2] == "C":
            verbs[f[3].strip()] += 1
            sessions.add(f[1])
            busy[f[1]] += 1
        elif f[2] == "R":
            # A 1xx is preliminary, but pure-ftpd ends an abandoned RETR with a second one.
            if f[3].startswith("1") and f[1] not in prelim:
                prelim.add(f[1])
                continue
            prelim.discard(f[1])
            busy[f[1]] = max(0, busy[f[1]] - 1)
        else:
            continue
        deepest = max(deepest, busy[f[1]])
        widest = max(widest, sum(1 for v in busy.values() if v))
    by = ", ".join(f"{v} {n}" for v, n in sorted(verbs.items(), key=lambda x: (-x[1], x[0])))
    return by, len(sessions), deepest, widest


if len(sys.argv) > 6 and not tls:
    print()
    print("ftpfs's commands in run 1 (from the proxy's log): by verb; control connections that sent")
    print("commands; the most commands awaiting a reply at once on one connection (more than 1 is")
    print("pipelining) and connections with a command awaiting its reply at once (parallel work).")
    print()
    print("| workload | commands by verb | connections | in flight, one connection | connections busy at once |")
    print("|---|---|---|---|---|")
    for w, (label, _) in WORKLOADS.items():
        log = os.path.join(sys.argv[6], f"ftpfs-{w}-1.log")
        if not os.path.exists(log) or w.endswith("-return"):
            continue
        by, n, deepest, widest = profile(log)
        print(f"| {label} | {by} | {n} | {deepest} | {widest} |")


def verbs_of(log):
    """ftpfs's own count (statusdiff.py's file): commands by verb and the TLS figures."""
    with open(log) as f:
        d = json.load(f)
    by = ", ".join(f"{v} {n}" for v, n in sorted(d["commands"].items(), key=lambda x: (-x[1], x[0])))
    return by, d["_"]


tls_client = "ftpfs" if tls else "ftpfs-tls"
if len(sys.argv) > 6 and any(c == tls_client for c, _ in rows):
    print()
    print("ftpfs over FTPS in run 1, as ftpfs counted it (`ftpfs status --json` before and after):")
    print("commands by verb, logins, data connections with a TLS handshake, and full TLS handshakes")
    print("(certificate checked: one per login; any more is a data connection that did not resume).")
    print()
    print("| workload | commands by verb | logins | TLS data connections | full handshakes |")
    print("|---|---|---|---|---|")
    for w, (label, _) in WORKLOADS.items():
        log = os.path.join(sys.argv[6], f"{tls_client}-{w}-1.verbs")
        if not os.path.exists(log):
            continue
        by, x = verbs_of(log)
        print(f"| {label} | {by} | {x['logins']} | {x['tls_data_connections']} | {x['tls_full_handshakes']} |")

def handshakes(w):
    """Median over the runs of the TLS data connections ftpfs counted (per read for rand)."""
    n = []
    for run in range(1, 100):
        log = os.path.join(sys.argv[6], f"ftpfs-tls-{w}-{run}.verbs") if len(sys.argv) > 6 else ""
        if not os.path.exists(log):
            break
        n.append(verbs_of(log)[1]["tls_data_connections"] / (randn if w == "rand" else 1))
    # An old ftpfs without the counter reports 0 for every run.
    return median(n) if n and any(n) else None


if any(c == "ftpfs-tls" for c, _ in rows):
    print()
    print("Plain FTP against FTPS, same run, medians: the difference in round trips against the data")
    print("connections the FTPS transfers used (TLS handshakes ftpfs counted). Target (issue 15): FTPS")
    print("within one round trip per data connection of plain FTP" + ("; per read for the random reads" if ("ftpfs", "rand") in rows else "") + ".")
    print()
    print("| workload | plain: s (÷ RTT) | FTPS: s (÷ RTT) | difference, RTT | FTPS data connections | commands plain / FTPS | target |")
    print("|---|---|---|---|---|---|---|")
    for w, (label, _) in WORKLOADS.items():
        p, t = summary("ftpfs", w), summary("ftpfs-tls", w)
        if p is None or t is None:
            continue
        if p[0] or t[0]:
            print(f"| {label} | {'FAILED' if p[0] else ''} | {'FAILED' if t[0] else ''} | | | | |")
            continue
        diff = (t[1] - p[1]) / rtt
        # The data connections the FTPS transfers used, as ftpfs counted their handshakes
        # (the proxy counts connections when opened: one prepared before the clock started
        # is missed, one prepared at its end counted); the proxy's count otherwise.
        used = handshakes(w)
        dconns = used if used is not None else (t[3] or 0)
        if w == "mount":
            verdict = "not in this target (login)"
        else:
            verdict = "met" if diff <= dconns else "**missed**"
        print(f"| {label} | {p[1]:.3f} ({p[1] / rtt:.1f}) | {t[1]:.3f} ({t[1] / rtt:.1f}) | {diff:+.1f} | "
              f"{num(dconns)} | {num(p[2])} / {num(t[2])} | {verdict} |")
