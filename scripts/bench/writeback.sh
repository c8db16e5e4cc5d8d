#!/usr/bin/env bash
# The write-back benchmark (issue 16's targets): ftpfs (default: `close` waits for the
# server), ftpfs `-o writeback` and `rclone mount --vfs-cache-mode writes`, each measured to
# RETURN (the copy command exits) and to be ON THE SERVER (every file on the server's disk
# with its content: the server's directory polled, sha256 of each file, bounded), against
# one pure-ftpd on loopback, in one run:
#   untar  the ~1,400-entry archive of scripts/bench.sh (40 dirs x 34 files of 0-8000
#          random bytes, `tar -cf`), `tar -xf` into the mount, on loopback;
#   cp     `cp -r` of 100 x 4 KiB files in 5 directories through scripts/bench/delayproxy.py
#          (RTT/2 each way, as scripts/bench/wan.sh), with the proxy's command count.
# For ftpfs -o writeback also the time `sync MOUNTPOINT` takes to return after the copy
# (it waits for the queue), run beside the poll. Every measurement is on a fresh mount with
# its own spool and recovery (rclone: cache) directories; afterwards the server must hold
# exactly the expected files (no temporary names left) and ftpfs's journal and recovery
# directories must be empty, or the row says FAILED.
#
#   scripts/bench/writeback.sh [--runs N] [--rtt MS] [--only untar,cp] [--clients LIST]
#                              [--state-dir DIR] [--ftpfs-opts OPTS]
#
#   --runs N        runs per workload and client (default 3); the table gives medians
#   --rtt MS        round-trip time the proxy adds for cp (default 50)
#   --only LIST     workloads: untar cp (default both)
#   --clients LIST  ftpfs ftpfs-wb rclone (default all three)
#   --state-dir DIR where the mounts' spool, recovery and cache directories go (default:
#                   the run's directory in /tmp); a tmpfs there shows what the fsyncs of
#                   the write-back journal cost
#   --ftpfs-opts OPTS more -o options for both ftpfs clients (e.g. connections=10)
#
# BENCH_FTPFS=PATH measures that ftpfs binary instead of this tree's release build (a
# before/after comparison in one sitting; the header then names it).
# The table goes to stdout and to $BENCH_OUT (default target/bench-writeback.md), the raw
# figures to target/bench-writeback.tsv, and to target/bench-writeback-logs/ the proxy's
# log of each cp (commands, replies, data connections, a mark where cp returned) and each
# client's log (RUST_LOG=ftpfs=debug for more). Exits 1 when any measurement failed.
# Loopback only; every wait is bounded; everything started here is stopped (by PID) and
# removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=3 RTT=50 ONLY="untar cp" CLIENTS="ftpfs ftpfs-wb rclone" STATE_BASE= FTPFS_OPTS=
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --rtt) RTT=$2; shift 2 ;;
    --only) ONLY=${2//,/ }; shift 2 ;;
    --clients) CLIENTS=${2//,/ }; shift 2 ;;
    --state-dir) STATE_BASE=$2; shift 2 ;;
    --ftpfs-opts) FTPFS_OPTS=$2; shift 2 ;;
    *) sed -n '17,27p' "$0" >&2; exit 2 ;;
  esac
done
OUT=${BENCH_OUT:-target/bench-writeback.md}
TSV=${OUT%.md}.tsv
LOGS=${OUT%.md}-logs
POLL_TIMEOUT=${POLL_TIMEOUT:-300}   # seconds a copy may take to be on the server
want() { [[ " $ONLY " == *" $1 "* ]]; }

for t in rclone pure-ftpd pure-pw fusermount3 sha256sum; do
  command -v "$t" >/dev/null || { echo "missing $t: run scripts/install-deps.sh with FTPFS_BENCH_DEPS=1" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (scripts/ftpd.sh gives the served tree to pure-ftpd's virtual user)" >&2; exit 1; }
if [ -n "${BENCH_FTPFS:-}" ]; then
  ftpfs=$(realpath "$BENCH_FTPFS")
else
  cargo build --release --locked 2>/dev/null
  ftpfs=$PWD/target/release/ftpfs
fi
PY=/usr/bin/python3
bench=$PWD/scripts/bench

B=$(mktemp -d /tmp/ftpfs-wb.XXXXXX)
S=$B/state
[ -z "$STATE_BASE" ] || S=$(mktemp -d "$STATE_BASE/ftpfs-wb-state.XXXXXX")
data=$B/data M=$B/mnt
mkdir -p "$data/up" "$M" "$B/home" "$(dirname "$OUT")"
rm -rf "$LOGS"; mkdir -p "$LOGS"
ftpd_pid= proxy_pid= mount_pid= poll_pid=
cleanup() {
  grep -q " $M " /proc/self/mountinfo && fusermount3 -uz "$M" 2>/dev/null || true
  for p in "$poll_pid" "$mount_pid" "$proxy_pid" "$ftpd_pid"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  for p in "$poll_pid" "$mount_pid"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  rm -rf "$S" "$B"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# MANIFEST lines: sha256, size, path (under the server's up/) of every file to upload.
manifest() { # DIR SUBDIR PREFIX
  $PY - "$@" <<'EOF'
import hashlib, os, sys
base, sub, prefix = sys.argv[1:]
top = os.path.join(base, sub)
for root, _, files in sorted(os.walk(top)):
    for n in sorted(files):
        path = os.path.join(root, n)
        data = open(path, "rb").read()
        rel = os.path.normpath(os.path.join(prefix, os.path.relpath(path, top)))
        print(hashlib.sha256(data).hexdigest(), len(data), rel)
EOF
}
echo "preparing data in $B" >&2
# untar: the archive of scripts/bench.sh (~1,400 entries).
for d in $(seq 1 40); do
  mkdir -p "$B/tree/src/mod$d"
  for f in $(seq 1 34); do head -c $((RANDOM % 8000)) /dev/urandom > "$B/tree/src/mod$d/f$f.c"; done
done
tar -C "$B/tree" -cf "$B/src.tar" src
tar_entries=$(tar -tf "$B/src.tar" | wc -l)
manifest "$B/tree" src src > "$B/untar.want"
# cp -r: 5 directories of 20 files of 4 KiB (as scripts/bench/wan.sh).
for d in 1 2 3 4 5; do
  mkdir -p "$B/cpsrc/c$d"
  for f in $(seq -w 1 20); do head -c 4096 /dev/urandom > "$B/cpsrc/c$d/f$f"; done
done
manifest "$B/cpsrc" . cp > "$B/cp.want"

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Passive ports outside the ephemeral range, all free now (the proxy listens on each).
read -r pasv_lo pasv_hi < <($PY "$bench/pasvrange.py" 64)
[ -n "${pasv_hi:-}" ] || { echo "no free passive port range" >&2; exit 1; }
ftpd_pid=$(FTPD_PASSIVE="$pasv_lo:$pasv_hi" scripts/ftpd.sh "$data" "$port" "$B/ftpd")
plog=$B/proxy.log
: > "$plog"
if want cp; then
  ports=("$port"); for p in $(seq "$pasv_lo" "$pasv_hi"); do ports+=("$p"); done
  DELAYPROXY_LOG=$plog $PY "$bench/delayproxy.py" 127.0.0.2 127.0.0.1 "$((RTT / 2))" "${ports[@]}" > "$B/proxy.out" 2>&1 &
  proxy_pid=$!
  for _ in $(seq 100); do grep -q ready "$B/proxy.out" && break; sleep 0.1; done
  grep -q ready "$B/proxy.out" || { echo "the delay proxy did not start:" >&2; cat "$B/proxy.out" >&2; exit 1; }
fi
# No password in argv: ftpfs reads FTPFS_PASSWORD, rclone RCLONE_FTP_PASS (obscured).
export HOME=$B/home FTPFS_PASSWORD=secret RCLONE_CONFIG=$B/home/rclone.conf
rclone_pass=$(echo secret | rclone obscure -)

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
mounted() { grep -q " $1 " /proc/self/mountinfo; }
wait_mounted() { # until the kernel has the mount and its root answers (10 s at most)
  for _ in $(seq 2000); do mounted "$M" && stat "$M" >/dev/null 2>&1 && return 0; sleep 0.005; done
  echo "no mount on $M" >&2; return 1
}
mount_client() { # CLIENT HOST TAG: a fresh mount with its own spool/recovery/cache directories
  local dirs=$S/$3
  mkdir -p "$dirs"
  case $1 in
    ftpfs|ftpfs-wb)
      local o="spool_dir=$dirs/spool,recovery_dir=$dirs/recovered"
      [ "$1" = ftpfs-wb ] && o="$o,writeback"
      [ -z "$FTPFS_OPTS" ] || o="$o,$FTPFS_OPTS"
      "$ftpfs" mount -f "ftp://alice@$2:$port" "$M" -o "$o" --log-file "$dirs/ftpfs.log" &
      ;;
    rclone)
      RCLONE_FTP_HOST=$2 RCLONE_FTP_PORT=$port RCLONE_FTP_USER=alice RCLONE_FTP_PASS=$rclone_pass \
        rclone mount :ftp: "$M" --vfs-cache-mode writes --cache-dir "$dirs/rcache" 2>>"$dirs/rclone.log" &
      ;;
  esac
  mount_pid=$!
  wait_mounted
}
unmount() {
  mounted "$M" && { fusermount3 -u "$M" 2>/dev/null || fusermount3 -uz "$M"; }
  # ftpfs drains its queue before it exits (already on the server here); bounded anyway.
  if [ -n "$mount_pid" ]; then
    for _ in $(seq 600); do kill -0 "$mount_pid" 2>/dev/null || break; sleep 0.05; done
    kill "$mount_pid" 2>/dev/null || true
    wait "$mount_pid" 2>/dev/null || true
    mount_pid=
  fi
}
clean_up() { rm -rf "${data:?}/up"; mkdir -p "$data/up"; chown 65534:65534 "$data/up"; }

# Polls DIR every 10 ms until every file of MANIFEST has its content; prints the time (ns,
# the clock of `date +%s%N`) at the end of the round that found the last one. A file is
# hashed only once its size is right and not looked at again once its hash is, so a round
# costs a stat per missing file and the poll takes little CPU from the clients.
POLL_PY='
import hashlib, os, sys, time
d, manifest, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
want = {}
for line in open(manifest):
    h, size, p = line.rstrip("\n").split(" ", 2)
    want[p] = (h, int(size))
deadline = time.monotonic() + limit
while want:
    for p, (h, size) in list(want.items()):
        path = os.path.join(d, p)
        try:
            if os.stat(path).st_size != size:
                continue
            with open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() == h:
                    del want[p]
        except OSError:
            pass
    if not want:
        break
    if time.monotonic() > deadline:
        print(f"{len(want)} files not on the server after {limit:.0f} s, e.g. {next(iter(want))}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.01)
print(time.time_ns())
'

results=$B/results.tsv
: > "$results"
measure() { # CLIENT WORKLOAD RUN
  local cl=$1 wl=$2 run=$3 host=127.0.0.1 ok=ok note= sync_s= c0 c1 cr s r e y
  local tag=$cl-$wl-$run
  [ "$wl" = cp ] && host=127.0.0.2
  clean_up
  mount_client "$cl" "$host" "$tag" || { echo "FAILED: $tag: no mount" >&2; unmount; printf '%s\t%s\t%s\t\t\t\t\t\tFAILED\t\n' "$cl" "$wl" "$run" >> "$results"; return; }
  sleep 0.3   # the mount is live; let it settle before the clock starts
  c0=$(wc -l < "$plog")
  s=$(now)
  if [ "$wl" = untar ]; then
    tar -C "$M/up" -xf "$B/src.tar" || { ok=FAILED; note="tar failed"; }
  else
    cp -r "$B/cpsrc" "$M/up/cp" || { ok=FAILED; note="cp failed"; }
  fi
  r=$(now) cr=$(wc -l < "$plog")
  $PY -c "$POLL_PY" "$data/up" "$B/$wl.want" "$POLL_TIMEOUT" > "$B/poll.out" 2> "$B/poll.err" &
  poll_pid=$!
  if [ "$cl" = ftpfs-wb ]; then
    sync "$M" || { ok=FAILED; note="sync MOUNTPOINT failed"; }
    y=$(now); sync_s=$(secs "$r" "$y")
  fi
  if wait "$poll_pid"; then e=$(cat "$B/poll.out"); else ok=FAILED; note="not on the server: $(cat "$B/poll.err")"; e=; fi
  poll_pid=
  c1=$(wc -l < "$plog")
  unmount
  # Nothing but the expected files on the server (no temporary names), nothing left behind.
  if [ "$ok" = ok ]; then
    (cd "$data/up" && find . -type f | sed 's#^\./##' | sort) | diff -q - <(awk '{ print $3 }' "$B/$wl.want" | sort) >/dev/null \
      || { ok=FAILED; note="the server holds other files: $(cd "$data/up" && find . -type f -name '.*' | head -n 3 | tr '\n' ' ')"; }
  fi
  if [ "$ok" = ok ] && [[ $cl == ftpfs* ]]; then
    local left
    left=$(find "$S/$tag/spool" "$S/$tag/recovered" -type f 2>/dev/null | head -n 3 || true)
    [ -z "$left" ] || { ok=FAILED; note="left in spool/recovery: $left"; }
  fi
  local cmds= dconns= cmds_r=
  if [ "$wl" = cp ]; then
    # The proxy's log of this copy, with a mark where the copy command returned.
    { sed -n "$((c0 + 1)),${cr}p" "$plog"; echo "--- returned"; sed -n "$((cr + 1)),${c1}p" "$plog"; } > "$LOGS/$tag.log"
    cmds=$(awk '$3 == "C"' "$LOGS/$tag.log" | wc -l)
    dconns=$(awk '$3 == "D"' "$LOGS/$tag.log" | wc -l)
    cmds_r=$(sed -n "$((c0 + 1)),${cr}p" "$plog" | awk '$3 == "C"' | wc -l)
  fi
  local ret onsrv=
  ret=$(secs "$s" "$r")
  [ -n "$e" ] && onsrv=$(secs "$s" "$e")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cl" "$wl" "$run" "$ret" "$onsrv" "$sync_s" "$cmds" "$dconns" "$ok" "$cmds_r" >> "$results"
  echo "$cl $wl run $run: returned $ret s, on the server ${onsrv:--} s${sync_s:+, sync $sync_s s}${cmds:+, $cmds commands ($cmds_r before it returned), $dconns data connections}, $ok${note:+ ($note)}$([ "$ok" = ok ] || echo "; logs in $LOGS/$tag-*")" >&2
  for f in ftpfs.log rclone.log; do
    [ -f "$S/$tag/$f" ] && cp "$S/$tag/$f" "$LOGS/$tag-$f"
  done
  [ "$ok" = ok ] && rm -rf "${S:?}/$tag"
  return 0
}

load0=$(cut -d' ' -f1-3 /proc/loadavg) start=$(date -u '+%Y-%m-%d %H:%M')
for run in $(seq "$RUNS"); do
  echo "== run $run of $RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  for wl in untar cp; do
    want "$wl" || continue
    for cl in $CLIENTS; do measure "$cl" "$wl" "$run"; done
  done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$results" "$TSV"
{
  echo "Write-back benchmark: $start–$(date -u '+%H:%M') UTC, medians of $RUNS run(s); untar of $tar_entries entries on loopback, cp -r of 100 x 4 KiB files at RTT $RTT ms"
  echo "ftpfs${FTPFS_OPTS:+ -o $FTPFS_OPTS} $([ -n "${BENCH_FTPFS:-}" ] && echo "binary $BENCH_FTPFS" || echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo +changes) (release)"), pure-ftpd $(dpkg-query -W -f='${Version}' pure-ftpd 2>/dev/null || echo '?'), rclone $(rclone version | awk 'NR == 1 { print $2 }'), kernel $(uname -r), $(nproc) cores, load $load0 at the start, $load1 at the end"
  echo
  $PY - "$results" "$tar_entries" "$RTT" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
entries = int(sys.argv[2])
names = {"ftpfs": "ftpfs (default)", "ftpfs-wb": "ftpfs `-o writeback`", "rclone": "rclone `--vfs-cache-mode writes`"}
def med(vals):
    vals = [float(v) for v in vals if v != ""]
    return statistics.median(vals) if vals else None
def fmt(v, unit=" s"):
    return "—" if v is None else f"{v:.3f}{unit}"
print("| workload | client | returns | on the server [each run] | `sync MOUNTPOINT` after the copy | commands (before return) / data connections | runs ok |")
print("|---|---|---|---|---|---|---|")
for wl in ("untar", "cp"):
    for cl in ("ftpfs", "ftpfs-wb", "rclone"):
        rs = [r for r in rows if r[0] == cl and r[1] == wl]
        if not rs:
            continue
        good = [r for r in rs if r[8] == "ok"]
        ret, srv, syn = med([r[3] for r in good]), med([r[4] for r in good]), med([r[5] for r in good])
        cmds, dc, cr = med([r[6] for r in good]), med([r[7] for r in good]), med([r[9] for r in good])
        label = f"untar, {entries} entries (loopback)" if wl == "untar" else f"cp -r, 100 x 4 KiB (RTT {sys.argv[3]} ms)"
        ret_s = fmt(ret) + (f" ({entries / ret:.0f}/s)" if wl == "untar" and ret else "")
        srv_s = fmt(srv) + (f" ({entries / srv:.0f}/s)" if wl == "untar" and srv else "")
        cd = "" if cmds is None else f"{cmds:.0f} ({cr:.0f}) / {dc:.0f}"
        runs = f"{len(good)}/{len(rs)}" + ("" if len(good) == len(rs) else " FAILED")
        spread = ""
        if len(good) > 1:
            spread = " [" + ", ".join(r[4] for r in good) + "]"
        print(f"| {label} | {names[cl]} | {ret_s} | {srv_s}{spread} | {fmt(syn)} | {cd} | {runs} |")
EOF
} > "$OUT"
cat "$OUT"
echo "wrote $OUT and $TSV; the proxy's log of each cp in $LOGS" >&2
# A failed measurement fails the run (its row says FAILED too).
! cut -f9 "$results" | grep -q FAILED
