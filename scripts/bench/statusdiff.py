#!/usr/bin/env python3
"""statusdiff.py BEFORE.json AFTER.json OUT.json: what ftpfs did between two of its
`ftpfs status --json` snapshots, for scripts/bench/wan.sh over TLS, where the delay proxy
sees only ciphertext. BEFORE may be empty (a measurement that starts before the mount).
Writes to OUT the commands sent by verb and, under "_", the logins, TLS data connections and
full TLS handshakes; prints the number of commands."""
import json, sys


def counters(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return {}
    if not text:
        return {}
    snap = json.loads(text)
    # `ftpfs status MOUNTPOINT --json` prints one mount's snapshot (a list for several).
    if isinstance(snap, list):
        snap = snap[0]
    return snap.get("counters", {})


a, b = counters(sys.argv[1]), counters(sys.argv[2])
before = a.get("commands", {})
verbs = {v: n - before.get(v, 0) for v, n in b.get("commands", {}).items() if n - before.get(v, 0) > 0}
extra = {k: b.get(k, 0) - a.get(k, 0) for k in ("logins", "tls_data_connections", "tls_full_handshakes")}
with open(sys.argv[3], "w") as f:
    json.dump({"commands": verbs, "_": extra}, f, sort_keys=True)
print(sum(verbs.values()))
