#!/usr/bin/env bash
# The WAN benchmark (issue 15): ftpfs, rclone mount, lftp and lftp in parallel against one
# pure-ftpd on loopback behind scripts/bench/delayproxy.py, which adds half the round-trip
# time to every byte in each direction, on control and data connections, and logs every FTP
# command and data connection. For each workload and client: seconds (median of the runs),
# seconds ÷ RTT, commands and data connections counted in the proxy, next to the floor (the
# fewest round trips a correct client needs). Every result is checked, or its row says FAILED.
#
#   scripts/bench.sh wan [--rtt MS] [--rate BYTES/S] [--server-rate BYTES/S] [--tls | --both]
#                        [--quick] [--runs N] [--only WORKLOAD,...] [--clients CLIENT,...]
#
#   --rtt MS               round-trip time the proxy adds (default 50)
#   --rate BYTES/S         cap of the proxy per connection and direction (default none)
#   --server-rate BYTES/S  pure-ftpd's per-session limit for the throttled read (default
#                          2 MiB/s; pure-ftpd -T, rounded to KiB/s)
#   --tls                  explicit FTPS (pure-ftpd -Y 2); the proxy then sees no commands:
#                          ftpfs's are counted by ftpfs itself (`ftpfs status --json`)
#   --both                 plain FTP and FTPS in one run (pure-ftpd -Y 1): every ftpfs
#                          measurement is made in plain FTP, then over FTPS (rows
#                          "ftpfs-tls"), and a table compares the two; other clients plain
#   --key rsa|ecdsa        the server's key with --tls/--both: RSA-2048 (default) or ECDSA
#                          P-256 (certbot's default since 2.0; far less signing work per
#                          TLS handshake, which every FTPS data connection makes)
#   --quick                1 run, 15 random reads, no 1000-file grep (about 7 minutes)
#   --runs N               runs per workload (default 3, quick 1)
#   --only LIST            workloads: find ls cp grep grep1000 seq rand append stat mount throttled
#   --clients LIST         ftpfs rclone lftp lftp5 (lftp5: --parallel=5, pget -n 4; lftp
#                          includes the Python ftplib rows)
#
# BENCH_FTPFS=PATH measures that ftpfs binary instead of this tree's release build (a
# before/after comparison in one sitting; the header then names it).
# The table goes to stdout and to $BENCH_OUT (default target/bench-wan.md); the proxy's
# command log of every measurement is kept next to it (target/bench-wan-logs/) for profiles.
# Loopback only; every wait is bounded; everything started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
RTT=50 RATE= SERVER_RATE=2097152 TLS=0 BOTH=0 KEY=rsa QUICK=0 RUNS= ONLY= CLIENTS="ftpfs rclone lftp lftp5"
while [ $# -gt 0 ]; do
  case $1 in
    --rtt) RTT=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --server-rate) SERVER_RATE=$2; shift 2 ;;
    --tls) TLS=1; shift ;;
    --quick) QUICK=1; shift ;;
    --runs) RUNS=$2; shift 2 ;;
    --only) ONLY=${2//,/ }; shift 2 ;;
    --clients) CLIENTS=${2//,/ }; shift 2 ;;
    --both) BOTH=1; shift ;;
    --key) KEY=$2; shift 2 ;;
    *) sed -n '9,28p' "$0" >&2; exit 2 ;;
  esac
done
[ -n "$RUNS" ] || RUNS=$([ "$QUICK" = 1 ] && echo 1 || echo 3)
RANDN=$([ "$QUICK" = 1 ] && echo 15 || echo 30)
[ -n "$ONLY" ] || ONLY="find ls cp grep $([ "$QUICK" = 1 ] || echo grep1000) seq rand append stat mount throttled"
OUT=${BENCH_OUT:-target/bench-wan.md}
LOGS=${OUT%.md}-logs
want() { [[ " $ONLY " == *" $1 "* ]]; }
client() { [[ " $CLIENTS " == *" $1 "* ]]; }

[ "$(id -u)" = 0 ] && FTPFS_BENCH_DEPS=1 scripts/install-deps.sh
for t in rclone lftp pure-ftpd fusermount3 openssl; do
  command -v "$t" >/dev/null || { echo "missing $t: run scripts/install-deps.sh with FTPFS_BENCH_DEPS=1" >&2; exit 1; }
done
if [ -n "${BENCH_FTPFS:-}" ]; then
  ftpfs=$(realpath "$BENCH_FTPFS")
else
  cargo build --release --locked 2>/dev/null
  ftpfs=$PWD/target/release/ftpfs
fi
PY=/usr/bin/python3
bench=$PWD/scripts/bench

B=$(mktemp -d /tmp/ftpfs-wan.XXXXXX)
data=$B/data M=$B/mnt R=$B/rmnt
mkdir -p "$data" "$M" "$R" "$B/home" "$B/lm"
rm -rf "$LOGS"; mkdir -p "$LOGS" "$(dirname "$OUT")"
ftpd_pid= proxy_pid= mount_pid=
cleanup() {
  for m in "$M" "$R"; do
    grep -q " $m " /proc/self/mountinfo && fusermount3 -uz "$m" 2>/dev/null || true
  done
  [ -n "$mount_pid" ] && kill "$mount_pid" 2>/dev/null || true
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null || true
  [ -n "$ftpd_pid" ] && kill "$ftpd_pid" 2>/dev/null || true
  rm -rf "$B"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "preparing data in $data" >&2
# find: 41 directories (find41, 5 below it, 7 below each of those), 25 files in each of the 40.
for d in 1 2 3 4 5; do
  for s in 1 2 3 4 5 6 7; do
    mkdir -p "$data/find41/d$d/s$s"
    for f in $(seq -w 1 25); do echo "$d $s $f" > "$data/find41/d$d/s$s/f$f.txt"; done
  done
  for f in $(seq -w 1 25); do echo "$d $f" > "$data/find41/d$d/f$f.txt"; done
done
mkdir "$data/ls1000" "$data/stat50"
for f in $(seq -w 1 1000); do echo "$f" > "$data/ls1000/entry$f.txt"; done
for f in $(seq -w 1 200); do head -c "$((10#$f * 7))" /dev/zero > "$data/stat50/f$f"; done
# grep: small text files, 25 per directory; every 7th has the word.
mkgrep() { # NAME DIRS
  for d in $(seq -w 1 "$2"); do
    mkdir -p "$data/$1/g$d"
    for f in $(seq -w 1 25); do
      { seq "$((10#$f * 3))" | sed "s/^/line of $1 g$d f$f: /"
        if [ $(((10#$d * 25 + 10#$f) % 7)) = 0 ]; then echo "the needle is here"; fi; } > "$data/$1/g$d/f$f.txt"
    done
  done
}
mkgrep grep200 8
want grep1000 && mkgrep grep1000 40
head -c 32M /dev/urandom > "$data/seq32.bin"
head -c 64M /dev/urandom > "$data/big64.bin"
mkdir "$data/up"
# cp -r source: 5 directories of 20 files of 4 KiB.
for d in 1 2 3 4 5; do
  mkdir -p "$B/cpsrc/c$d"
  for f in $(seq -w 1 20); do head -c 4096 /dev/urandom > "$B/cpsrc/c$d/f$f"; done
done
(cd "$B" && find cpsrc -type f -exec sha256sum {} + | sort -k2) > "$B/cp.want"
sha() { sha256sum "$1" | cut -d' ' -f1; }
seq_sha=$(sha "$data/seq32.bin"); big_sha=$(sha "$data/big64.bin")

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Passive ports outside the ephemeral range, all free now (the proxy listens on each).
read -r pasv_lo pasv_hi < <($PY "$bench/pasvrange.py" 64)
[ -n "${pasv_hi:-}" ] || { echo "no free passive port range" >&2; exit 1; }
tls_args=
if [ "$TLS" = 1 ] || [ "$BOTH" = 1 ]; then
  case $KEY in
    rsa) newkey=(-newkey rsa:2048) ;;
    ecdsa) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1) ;;
    *) echo "--key is rsa or ecdsa" >&2; exit 2 ;;
  esac
  openssl req -x509 "${newkey[@]}" -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.2,DNS:localhost -keyout "$B/key.pem" -out "$B/cert.pem" 2>/dev/null
  cat "$B/cert.pem" "$B/key.pem" > "$B/both.pem"
  fp=$(openssl x509 -in "$B/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2)
  tls_args="-Y $([ "$TLS" = 1 ] && echo 2 || echo 1) -2 $B/both.pem"
fi
start_ftpd() { # extra pure-ftpd flags
  ftpd_pid=$(FTPD_PASSIVE="$pasv_lo:$pasv_hi" FTPD_ARGS="$tls_args $*" scripts/ftpd.sh "$data" "$port" "$B/ftpd")
}
stop_ftpd() { kill "$ftpd_pid"; for _ in $(seq 100); do kill -0 "$ftpd_pid" 2>/dev/null || break; sleep 0.05; done; ftpd_pid=; }
start_ftpd
plog=$B/proxy.log
: > "$plog"
ports=("$port"); for p in $(seq "$pasv_lo" "$pasv_hi"); do ports+=("$p"); done
DELAYPROXY_LOG=$plog DELAYPROXY_RATE=${RATE:-0} $PY "$bench/delayproxy.py" 127.0.0.2 127.0.0.1 "$((RTT / 2))" "${ports[@]}" > "$B/proxy.out" 2>&1 &
proxy_pid=$!
for _ in $(seq 100); do grep -q ready "$B/proxy.out" && break; sleep 0.1; done
grep -q ready "$B/proxy.out" || { echo "the delay proxy did not start:" >&2; cat "$B/proxy.out" >&2; exit 1; }
printf 'machine 127.0.0.2 login alice password secret\n' > "$B/home/.netrc"
chmod 600 "$B/home/.netrc"
export HOME=$B/home FTPFS_PASSWORD=secret RCLONE_CONFIG=$B/home/rclone.conf
host=127.0.0.2

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
mounted() { grep -q " $1 " /proc/self/mountinfo; }
wait_mounted() { # MOUNTPOINT: until the kernel has it and its root answers (10 s at most)
  for _ in $(seq 2000); do mounted "$1" && stat "$1" >/dev/null 2>&1 && return 0; sleep 0.005; done
  echo "no mount on $1" >&2; return 1
}
# With --both, ftpfs is plain unless a measurement runs under tls_on.
ftpfs_tls=0
tls_on() { ftpfs_tls=1; local tls_rc=0; "$@" || tls_rc=$?; ftpfs_tls=0; return "$tls_rc"; }
mount_ftpfs() {
  local o="spool_dir=$B/spool,recovery_dir=$B/recovered"
  if [ "$TLS" = 1 ] || [ "$ftpfs_tls" = 1 ]; then
    o="$o,tls=required,fingerprint=sha256:$fp"
  elif [ "$BOTH" = 1 ]; then
    o="$o,tls=off"
  fi
  "$ftpfs" mount -f "ftp://alice@$host:$port" "$M" -o "$o" --log-file "$B/ftpfs.log" &
  mount_pid=$!
  wait_mounted "$M"
}
mount_rclone() { # extra rclone flags
  local t=()
  [ "$TLS" = 1 ] && t=(--ftp-explicit-tls --ftp-no-check-certificate)
  RCLONE_FTP_HOST=$host RCLONE_FTP_PORT=$port RCLONE_FTP_USER=alice RCLONE_FTP_PASS=$(echo secret | rclone obscure -) \
    rclone mount :ftp: "$R" --cache-dir "$B/rcache" "${t[@]}" "$@" 2>>"$B/rclone.log" &
  mount_pid=$!
  wait_mounted "$R"
}
unmount() { # MOUNTPOINT
  fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1"
  wait "$mount_pid" 2>/dev/null || true
  mount_pid=
}
lftp_do() { # lftp commands after open
  local pre="set cmd:fail-exit yes; set net:max-retries 2; set xfer:clobber on;"
  [ "$TLS" = 1 ] && pre="$pre set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ssl:verify-certificate no;"
  timeout 900 lftp -c "$pre open -p $port $host; $*"
}
plain_env() { if [ "$TLS" = 1 ]; then echo BENCH_TLS=1; else echo BENCH_TLS=0; fi; }
# Waits until every file of MANIFEST (sha256sum output, paths under DIR) is on the server
# with its content; 300 s at most.
on_server() { # DIR MANIFEST
  for _ in $(seq 30000); do
    (cd "$1" && sha256sum --quiet --status -c "$2" 2>/dev/null) && return 0
    sleep 0.01
  done
  return 1
}
up_clean() { find "$data/up" -mindepth 1 -delete; }

# One measurement: the workload function sets the clock and the proxy-log marks with
# t0/t1 (mounting comes before t0) and returns non-zero when the result is wrong.
results=$B/results.tsv
: > "$results"
# Over TLS the proxy sees ftpfs's data connections but not its commands: ftpfs's own
# counters (`ftpfs status --json`) are read at t0 and t1 instead, when its mount is up.
status_of() { # FILE
  : > "$1"
  if { [ "$TLS" = 1 ] || [ "$ftpfs_tls" = 1 ]; } && mounted "$M"; then
    timeout 10 "$ftpfs" status "$M" --json > "$1" 2>/dev/null || : > "$1"
  fi
}
t0() { status_of "$B/st0.json"; c0=$(wc -l < "$plog"); s=$(now); }
t1() { e=$(now); c1=$(wc -l < "$plog"); status_of "$B/st1.json"; }
measure() { # CLIENT WORKLOAD RUN FUNCTION...
  local cl=$1 wl=$2 run=$3 ok=ok; shift 3
  c0=0 c1=0 s=0 e=0 value=
  rm -f "$B/got" "$B/st0.json" "$B/st1.json"
  up_clean
  if ! "$@" > "$B/out.txt" 2> "$B/err.txt"; then
    ok=FAILED
    echo "FAILED: $cl $wl run $run: $(tail -n 3 "$B/err.txt" | tr '\n' ' ')" >&2
    cp "$B/got" "$LOGS/$cl-$wl-$run.got" 2>/dev/null || true
  fi
  for m in "$M" "$R"; do mounted "$m" && unmount "$m"; done
  # A mount that never came up: its process goes too.
  if [ -n "$mount_pid" ]; then kill "$mount_pid" 2>/dev/null || true; wait "$mount_pid" 2>/dev/null || true; mount_pid=; fi
  sed -n "$((c0 + 1)),${c1}p" "$plog" > "$LOGS/$cl-$wl-$run.log"
  local cmds dconns source=proxy
  cmds=$(awk '$3 == "C"' "$LOGS/$cl-$wl-$run.log" | wc -l)
  dconns=$(awk '$3 == "D"' "$LOGS/$cl-$wl-$run.log" | wc -l)
  if [ -s "$B/st1.json" ]; then
    # ftpfs over TLS: its commands by verb, as ftpfs counted them.
    cmds=$($PY "$bench/statusdiff.py" "$B/st0.json" "$B/st1.json" "$LOGS/$cl-$wl-$run.verbs") source=ftpfs
  fi
  [ -n "$value" ] || value=$(secs "$s" "$e")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cl" "$wl" "$run" "$value" "$cmds" "$dconns" "$ok" "$source" >> "$results"
  echo "$cl $wl run $run: $value s, $cmds commands ($source), $dconns data connections, $ok" >&2
}
# After the mount is live, before the clock starts: ftpfs logs in a second connection in the
# background after mounting (longer over TLS), which the measurement should not include.
settle() {
  sleep 0.3
  mounted "$M" || return 0
  local st
  for _ in $(seq 100); do
    st=$(timeout 10 "$ftpfs" status "$M" --json 2>/dev/null) || return 0
    $PY -c 'import json, sys; c = json.loads(sys.argv[1])["connections"]; sys.exit(c["open"] != c["idle"])' "$st" && return 0
    sleep 0.05
  done
}
ftpfs_measure() { # WORKLOAD RUN FUNCTION...: ftpfs's measurement; with --both, then over FTPS
  measure ftpfs "$@"
  if [ "$BOTH" = 1 ]; then
    local w=$1 r=$2; shift 2
    measure ftpfs-tls "$w" "$r" tls_on "$@"
  fi
}

# --- find of 41 directories, cold
find_want() { (cd "$data" && find find41 | sort); }
find_mount() { # MOUNT_FUNCTION MOUNTPOINT
  $1; settle; t0; find "$2/find41" > "$B/got"; t1
  sed "s#^$2/##" "$B/got" | sort | diff -q - <(find_want) >/dev/null
}
find_lftp() {
  t0; lftp_do "find find41" > "$B/got"; t1
  sed 's#/$##' "$B/got" | sort | diff -q - <(find_want) >/dev/null
}
find_lftp5() { # mirror --dry-run lists the tree in parallel, transfers nothing
  t0; lftp_do "mirror --dry-run --parallel=5 find41 $B/lm/find41" > "$B/got"; t1
  grep -o 'find41/[^ ]*\.txt' "$B/got" | sed 's#^.*find41/#find41/#' | sort -u | diff -q - <(cd "$data" && find find41 -type f | sort) >/dev/null
}
# --- ls -l of 1000 entries, cold: names and sizes
ls_want() { ls -l "$data/ls1000" | awk 'NR > 1 { print $5, $9 }'; }
ls_mount() { $1; settle; t0; ls -l "$2/ls1000" > "$B/got"; t1; awk 'NR > 1 { print $5, $9 }' "$B/got" | diff -q - <(ls_want) >/dev/null; }
ls_lftp() { t0; lftp_do "ls ls1000" > "$B/got"; t1; awk '$9 != "." && $9 != ".." { print $5, $9 }' "$B/got" | sort -k2 | diff -q - <(ls_want) >/dev/null; }
# --- cp -r of 100 x 4 KiB files in 5 directories, until all are on the server
cp_ftpfs() {
  mount_ftpfs; settle; t0; cp -r "$B/cpsrc" "$M/up/ftpfs"; t1
  sed 's#  cpsrc/#  #' "$B/cp.want" > "$B/cp.want1"; on_server "$data/up/ftpfs" "$B/cp.want1"
}
cp_rclone() { # close returns before the upload: "to return" and "on the server"
  mount_rclone --vfs-cache-mode writes; settle; t0; cp -r "$B/cpsrc" "$R/up/rclone"; r=$(now)
  sed 's#  cpsrc/#  #' "$B/cp.want" > "$B/cp.want1"; on_server "$data/up/rclone" "$B/cp.want1"; t1
  echo "$(secs "$s" "$r")" > "$B/returned"
}
cp_lftp() { t0; lftp_do "mirror -R $B/cpsrc up/lftp" >/dev/null; t1; sed 's#  cpsrc/#  #' "$B/cp.want" > "$B/cp.want1"; on_server "$data/up/lftp" "$B/cp.want1"; }
cp_lftp5() { t0; lftp_do "mirror -R --parallel=5 $B/cpsrc up/lftp" >/dev/null; t1; sed 's#  cpsrc/#  #' "$B/cp.want" > "$B/cp.want1"; on_server "$data/up/lftp" "$B/cp.want1"; }
# --- grep -r over small files, cold
grep_want() { (cd "$data" && grep -r needle "$1" | sort); }
grep_mount() { # MOUNT_FUNCTION MOUNTPOINT TREE
  $1; settle; t0; grep -r needle "$2/$3" > "$B/got" || true; t1
  sed "s#^$2/##" "$B/got" | sort | diff -q - <(grep_want "$3") >/dev/null
}
grep_lftp() { # TREE [PARALLEL]: mirror, then grep the copy
  rm -rf "$B/lm/$1"
  t0; lftp_do "mirror ${2:+--parallel=$2} $1 $B/lm/$1" >/dev/null; (cd "$B/lm" && grep -r needle "$1") > "$B/got" || true; t1
  sort "$B/got" | diff -q - <(grep_want "$1") >/dev/null
}
# --- sequential read of 32 MiB
seq_mount() { $1; settle; t0; dd if="$2/seq32.bin" of=/dev/null bs=1M status=none; t1; [ "$(sha "$2/seq32.bin")" = "$seq_sha" ]; }
seq_lftp() { # [pget -n N]
  rm -f "$B/lm/seq32.bin"
  t0; lftp_do "${1:-get} seq32.bin -o $B/lm/seq32.bin" >/dev/null; t1; [ "$(sha "$B/lm/seq32.bin")" = "$seq_sha" ]
}
# --- random 4 KiB preads: the median; commands and data connections per read
rand_run() { # COMMAND...: randread.py, prints "median_ms p90_ms"
  t0; out=$(BENCH_SOURCE=$data/big64.bin RANDREAD_N=$RANDN env "$(plain_env)" "$@"); t1
  value=$(awk -v m="${out%% *}" 'BEGIN { printf "%.3f", m / 1000 }')
}
rand_mount() { $1; settle; rand_run $PY "$bench/randread.py" file "$2/big64.bin" "$run"; }
rand_plain() { rand_run $PY "$bench/randread.py" ftp "$host" "$port" big64.bin "$run"; }
# --- 20 x echo >> file, until on the server
seq 20 | sed 's/^/line /' > "$B/app.want"
app_check() { for _ in $(seq 30000); do cmp -s "$B/app.want" "$data/up/app.txt" && return 0; sleep 0.01; done; return 1; }
append_mount() { # MOUNT_FUNCTION MOUNTPOINT: timed until the server has all lines
  $1; settle; t0; for n in $(seq 20); do echo "line $n" >> "$2/up/app.txt"; done; r=$(now); app_check; t1
  echo "$(secs "$s" "$r")" > "$B/returned"
}
append_plain() {
  t0; value=$(env "$(plain_env)" $PY "$bench/appends.py" "$host" "$port" up/app.txt 20); t1; app_check
}
# --- stat of 50 files in a directory not listed before
stat_want() { (cd "$data" && stat -c '%n %s' stat50/f0{01..50}); }
stat_mount() { $1; settle; t0; (cd "$2" && stat -c '%n %s' stat50/f0{01..50}) > "$B/got"; t1; diff -q "$B/got" <(stat_want) >/dev/null; }
stat_lftp() { # lftp asks CWD of each name given to cls, and pure-ftpd slows down each
  # failed CWD more: the directory's listing instead, checked for the 50 files
  t0; lftp_do "cls -l stat50" > "$B/got"; t1
  awk '{ print $NF, $4 }' "$B/got" | grep -E '^stat50/f0(0[1-9]|[1-4][0-9]|50) ' | diff -q - <(stat_want) >/dev/null
}
# --- mount until live (the mount's root answers); lftp: connect, log in, one NOOP
mount_live() { t0; $1; t1; }
mount_lftp() { t0; lftp_do "quote NOOP" >/dev/null; t1; }
# --- 64 MiB read with the server limiting each session
big_mount() { $1; settle; t0; dd if="$2/big64.bin" of=/dev/null bs=1M status=none; t1; [ "$(sha "$2/big64.bin")" = "$big_sha" ]; }
big_lftp() { rm -f "$B/lm/big64.bin"; t0; lftp_do "${1:-get} big64.bin -o $B/lm/big64.bin" >/dev/null; t1; [ "$(sha "$B/lm/big64.bin")" = "$big_sha" ]; }

returned() { # CLIENT WORKLOAD RUN: the "to return" figure of the measurement just made
  printf '%s\t%s\t%s\t%s\t\t\t%s\n' "$1" "$2" "$3" "$(cat "$B/returned" 2>/dev/null || echo 0)" \
    "$(tail -n 1 "$results" | cut -f7)" >> "$results"
  rm -f "$B/returned"
}
rclone_ro() { mount_rclone; }
rclone_w() { mount_rclone --vfs-cache-mode writes; }

for run in $(seq "$RUNS"); do
  echo "== run $run of $RUNS" >&2
  if want mount; then
    client ftpfs && ftpfs_measure mount "$run" mount_live mount_ftpfs
    client rclone && measure rclone mount "$run" mount_live rclone_ro
    client lftp && measure lftp mount "$run" mount_lftp
  fi
  if want find; then
    client ftpfs && ftpfs_measure find "$run" find_mount mount_ftpfs "$M"
    client rclone && measure rclone find "$run" find_mount rclone_ro "$R"
    client lftp && measure lftp find "$run" find_lftp
    client lftp5 && measure lftp5 find "$run" find_lftp5
  fi
  if want ls; then
    client ftpfs && ftpfs_measure ls "$run" ls_mount mount_ftpfs "$M"
    client rclone && measure rclone ls "$run" ls_mount rclone_ro "$R"
    client lftp && measure lftp ls "$run" ls_lftp
  fi
  if want stat; then
    client ftpfs && ftpfs_measure stat "$run" stat_mount mount_ftpfs "$M"
    client rclone && measure rclone stat "$run" stat_mount rclone_ro "$R"
    client lftp && measure lftp stat "$run" stat_lftp
  fi
  if want cp; then
    client ftpfs && ftpfs_measure cp "$run" cp_ftpfs
    client rclone && { measure rclone cp "$run" cp_rclone; returned rclone cp-return "$run"; }
    client lftp && measure lftp cp "$run" cp_lftp
    client lftp5 && measure lftp5 cp "$run" cp_lftp5
  fi
  if want append; then
    client ftpfs && ftpfs_measure append "$run" append_mount mount_ftpfs "$M"
    client rclone && { measure rclone append "$run" append_mount rclone_w "$R"; returned rclone append-return "$run"; }
    client lftp && measure plain append "$run" append_plain
  fi
  if want grep; then
    client ftpfs && ftpfs_measure grep "$run" grep_mount mount_ftpfs "$M" grep200
    client rclone && measure rclone grep "$run" grep_mount rclone_ro "$R" grep200
    client lftp && measure lftp grep "$run" grep_lftp grep200
    client lftp5 && measure lftp5 grep "$run" grep_lftp grep200 5
  fi
  if want seq; then
    client ftpfs && ftpfs_measure seq "$run" seq_mount mount_ftpfs "$M"
    client rclone && measure rclone seq "$run" seq_mount rclone_ro "$R"
    client lftp && measure lftp seq "$run" seq_lftp
    client lftp5 && measure lftp5 seq "$run" seq_lftp "pget -n 4"
  fi
  if want rand; then
    client ftpfs && ftpfs_measure rand "$run" rand_mount mount_ftpfs "$M"
    client rclone && measure rclone rand "$run" rand_mount rclone_ro "$R"
    client lftp && measure plain rand "$run" rand_plain
  fi
done
# The 1000-file grep runs once: it takes minutes per client.
if want grep1000; then
  client ftpfs && ftpfs_measure grep1000 1 grep_mount mount_ftpfs "$M" grep1000
  client lftp5 && measure lftp5 grep1000 1 grep_lftp grep1000 5
fi
if want throttled; then
  stop_ftpd
  start_ftpd -T "$((SERVER_RATE / 1024))"
  for run in $(seq "$RUNS"); do
    client ftpfs && ftpfs_measure throttled "$run" big_mount mount_ftpfs "$M"
    client rclone && measure rclone throttled "$run" big_mount rclone_ro "$R"
    client lftp && measure lftp throttled "$run" big_lftp
    client lftp5 && measure lftp5 throttled "$run" big_lftp "pget -n 4"
  done
fi

cp "$results" "$LOGS/results.tsv"
{
  echo "WAN benchmark: RTT $RTT ms$([ -n "$RATE" ] && echo ", link $RATE B/s per connection and direction")$([ "$TLS" = 1 ] && echo ", explicit FTPS")$([ "$BOTH" = 1 ] && echo ", ftpfs in plain FTP and over explicit FTPS (pure-ftpd -Y 1)")$({ [ "$TLS" = 1 ] || [ "$BOTH" = 1 ]; } && echo ", server key $([ "$KEY" = rsa ] && echo RSA-2048 || echo 'ECDSA P-256')"), medians of $RUNS run(s); $(date -u '+%Y-%m-%d %H:%M UTC'), $([ -n "${BENCH_FTPFS:-}" ] && echo "binary $BENCH_FTPFS" || echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src vendor || echo +changes)"), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "pure-ftpd $(dpkg-query -W -f='${Version}' pure-ftpd), rclone $(rclone version | awk 'NR == 1 { print $2 }'), lftp $(lftp --version | awk 'NR == 1 { print $4 }'), Python $($PY -c 'import platform; print(platform.python_version())') ftplib"
  echo
  $PY "$bench/wantable.py" "$results" "$RTT" "$RANDN" "$SERVER_RATE" "$TLS" "$LOGS"
} > "$OUT"
cat "$OUT"
echo "wrote $OUT; the proxy's log of each measurement is in $LOGS" >&2
