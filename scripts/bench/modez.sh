#!/usr/bin/env bash
# MODE Z vs MODE S over a slow link: a compressible (text) and an incompressible (random)
# 32 MiB file, read and written through ftpfs with -o compress=on and compress=off, with
# proftpd 1.3.8 and mod_deflate
# (DeflateEngine on), through scripts/bench/delayproxy.py capped at $RATE bytes/s per
# connection and direction. Every read and write is checked by sha256; the server's
# command log confirms which mode each read used. Prints a markdown table.
#
#   scripts/bench/modez.sh            # RATE=4194304 (4 MiB/s), RUNS=1, target/debug/ftpfs
#   RATE=1048576 RUNS=3 FTPFS_BIN=target/release/ftpfs scripts/bench/modez.sh
#
# Needs proftpd unpacked by scripts/install-deps.sh. Loopback only; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${RATE:-4194304}
RUNS=${RUNS:-1}
PROFTPD=/opt/ftpfs-test/proftpd
ftpfs=${FTPFS_BIN:-$PWD/target/debug/ftpfs}
[ -x "$ftpfs" ] || cargo build
[ -x "$PROFTPD/usr/sbin/proftpd" ] || { echo "proftpd not installed (scripts/install-deps.sh)" >&2; exit 1; }

B=$(mktemp -d /tmp/ftpfs-modez.XXXXXX)
data=$B/data
mkdir -p "$data" "$B/mnt"
chmod 755 "$B" "$data"
ftpd_pid=
proxy_pid=
ftpfs_pid=
cleanup() {
  grep -q " $B/mnt " /proc/self/mountinfo && fusermount3 -uz "$B/mnt" 2>/dev/null || true
  [ -n "$ftpfs_pid" ] && kill "$ftpfs_pid" 2>/dev/null || true
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  [ -n "$ftpd_pid" ] && kill "$ftpd_pid" 2>/dev/null || true
  rm -rf "$B"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pasv_lo=$((port + 1)); pasv_hi=$((port + 8))
echo "preparing data in $data" >&2
python3 - "$data/text32.txt" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    i = 0
    while f.tell() < 32 * 1024 * 1024:
        f.write(f"{i:08} 2026-12-02T06:00:00Z GET /static/img/logo.png 200 {i * 7 % 50000} \"Mozilla/5.0\"\n")
        i += 1
    f.truncate(32 * 1024 * 1024)
EOF
head -c 32M /dev/urandom > "$data/rand32.bin"

cat > "$B/passwd" <<EOF
alice:\$1\$ftpfs0\$TRVeXEx8mDlte8C9nnX4I1:$(id -u):$(id -g)::$data:/bin/sh
EOF
chmod 600 "$B/passwd"
cat > "$B/proftpd.conf" <<EOF
ServerType standalone
ServerName "ftpfs modez bench"
DefaultAddress 127.0.0.1
SocketBindTight on
Port $port
PassivePorts $pasv_lo $pasv_hi
UseIPv6 off
ModulePath $PROFTPD/usr/lib/proftpd
LoadModule mod_deflate.c
ScoreboardFile $B/scoreboard
PidFile $B/proftpd.pid
DelayTable none
WtmpLog off
UseReverseDNS off
UseFtpUsers off
<IfModule mod_ctrls.c>
  ControlsEngine off
</IfModule>
<IfModule mod_auth_pam.c>
  AuthPAM off
</IfModule>
SystemLog $B/system.log
TransferLog none
AuthOrder mod_auth_file.c
AuthUserFile $B/passwd
RequireValidShell off
RootLogin on
DefaultRoot ~
Umask 022
LogFormat commands "%m %J %s"
ExtendedLog $B/commands.log ALL commands
<IfModule mod_deflate.c>
  DeflateEngine on
</IfModule>
<Directory />
  AllowOverwrite on
</Directory>
EOF
LD_LIBRARY_PATH=$PROFTPD/usr/lib/x86_64-linux-gnu "$PROFTPD/usr/sbin/proftpd" -n -q -c "$B/proftpd.conf" 2> "$B/proftpd.err" &
ftpd_pid=$!
ports=("$port"); for p in $(seq "$pasv_lo" "$pasv_hi"); do ports+=("$p"); done
DELAYPROXY_RATE=$RATE python3 scripts/bench/delayproxy.py 127.0.0.2 127.0.0.1 0 "${ports[@]}" > "$B/proxy.out" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do grep -q ready "$B/proxy.out" && break; sleep 0.1; done
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

mounts=0
mount_ftpfs() {
  mounts=$((mounts + 1))
  FTPFS_PASSWORD=secret "$ftpfs" mount -f "ftp://alice@127.0.0.2:$port" "$B/mnt" \
    -o "compress=$1,spool_dir=$B/spool,recovery_dir=$B/recovered,dir_cache_ttl=0" \
    --log-file "$B/ftpfs-$mounts.log" &
  ftpfs_pid=$!
  for _ in $(seq 200); do grep -q " $B/mnt " /proc/self/mountinfo && return; sleep 0.05; done
  echo "mount did not come up" >&2; cat "$B/ftpfs-$mounts.log" >&2; exit 1
}
umount_ftpfs() {
  fusermount3 -u "$B/mnt"
  for _ in $(seq 200); do kill -0 "$ftpfs_pid" 2>/dev/null || break; sleep 0.05; done
  ftpfs_pid=
}

declare -A result
for f in text32.txt rand32.bin; do
  want=$(sha256sum < "$data/$f")
  for mode in off on; do
    runs=()
    for _ in $(seq "$RUNS"); do
      mount_ftpfs "$mode"
      z0=$(grep -c '^MODE Z 200' "$B/commands.log" || true)
      s=$(now); got=$(sha256sum < "$B/mnt/$f"); e=$(now)
      [ "$got" = "$want" ] || { echo "read of $f (compress=$mode) is wrong" >&2; exit 1; }
      z1=$(grep -c '^MODE Z 200' "$B/commands.log" || true)
      umount_ftpfs
      if [ "$mode" = on ] && [ "$z1" -le "$z0" ]; then echo "read of $f did not use MODE Z" >&2; exit 1; fi
      if [ "$mode" = off ] && [ "$z1" -ne "$z0" ]; then echo "compress=off used MODE Z" >&2; exit 1; fi
      runs+=("$(secs "$s" "$e")")
    done
    result[read,$f,$mode]=$(median "${runs[@]}")
  done
  # A fresh mount per write: each compressed one meets the server's MODE Z upload as
  # it is (Debian 12's proftpd aborts them, bug #1896), then the plain resend.
  for mode in off on; do
    runs=()
    for i in $(seq "$RUNS"); do
      mount_ftpfs "$mode"
      s=$(now); cp "$data/$f" "$B/mnt/copy-$i-$f"; e=$(now)
      umount_ftpfs
      [ "$(sha256sum < "$data/copy-$i-$f")" = "$want" ] || { echo "write of $f is wrong" >&2; exit 1; }
      rm -f "$data/copy-$i-$f"
      runs+=("$(secs "$s" "$e")")
    done
    result[write,$f,$mode]=$(median "${runs[@]}")
  done
done
zfail=$(cat "$B"/ftpfs-*.log | grep -c 'failed its check' || true)
ratio=$(python3 -c "import zlib; d=open('$data/text32.txt','rb').read(); print(f'{len(d)/len(zlib.compress(d, 6)):.1f}')")

mib=$(python3 -c "print(f'{$RATE / 1048576:g}')")
echo
echo "32 MiB files from proftpd 1.3.8 + mod_deflate through a ${mib} MiB/s link (delayproxy.py),"
echo "seconds, median of $RUNS; text compresses ${ratio}:1 with zlib level 6."
echo
echo "| file | read, compress=off | read, compress=on | write, compress=off | write, compress=on |"
echo "|---|---|---|---|---|"
for f in text32.txt rand32.bin; do
  echo "| $f | ${result[read,$f,off]} | ${result[read,$f,on]} | ${result[write,$f,off]} | ${result[write,$f,on]} |"
done
echo
echo "MODE Z uploads that failed the check and were sent again plain: $zfail of $((2 * RUNS))."
