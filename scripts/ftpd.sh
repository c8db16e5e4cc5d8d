#!/usr/bin/env bash
# Starts pure-ftpd on 127.0.0.1:PORT serving DIR to user alice (password "secret"), in the
# background, and prints its PID. For the demo and the benchmarks; tests start their own.
#   scripts/ftpd.sh DIR PORT STATEDIR
# The password hash is MD5-crypt on purpose: pure-pw's default argon2 costs seconds of CPU
# per login on a small machine. This server is for loopback use only.
set -euo pipefail
dir=$(realpath "$1"); port=$2; state=$3
mkdir -p "$state"
chmod 755 "$dir"
# The virtual user is uid 65534: it must own the tree to write to it.
chown -R 65534:65534 "$dir"
printf 'alice:$1$ftpfs0$TRVeXEx8mDlte8C9nnX4I1:65534:65534::%s/./::::::::::::\n' "$dir" > "$state/passwd"
pure-pw mkdb "$state/pdb" -f "$state/passwd" >/dev/null
# FTPD_PASSIVE=LOW:HIGH fixes the passive port range (for the benchmark's delay proxy);
# FTPD_ARGS adds flags, split on spaces (the WAN benchmark's rate limit and TLS).
# shellcheck disable=SC2086
/usr/sbin/pure-ftpd "-S127.0.0.1,$port" "-lpuredb:$state/pdb" -E -H -A -D -4 -c 64 -C 64 \
  ${FTPD_PASSIVE:+-p "$FTPD_PASSIVE"} ${FTPD_ARGS:-} >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$pid"; exit 0; fi
  sleep 0.1
done
kill "$pid" 2>/dev/null || true
echo "pure-ftpd did not start on port $port" >&2
exit 1
