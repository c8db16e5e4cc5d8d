#!/usr/bin/env bash
# Benchmark, all in one run against one loopback pure-ftpd:
#   1. 256 MiB sequential read: ftpfs (cold: fresh mount; warm: second read) vs curl and
#      lftp downloading the same file vs rclone mount (cold);
#   2. ls -lR of ~5,000 entries in 100 directories, cold and warm, vs the local directory,
#      with the number of listings ftpfs sent;
#   3. peak RSS of ftpfs while reading a 1 GiB file;
#   4. writes: 256 MiB incl. close vs curl/lftp uploads, 500 x 4 KiB files and an untar vs
#      rclone mount --vfs-cache-mode writes, peak RSS writing 1 GiB.
# Every result is checked (sha256 of what was delivered, entry count of ls -lR). Medians of
# $RUNS runs. Writes BENCHMARKS.md (or $BENCH_OUT). Loopback only; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
OUT=${BENCH_OUT:-BENCHMARKS.md}
FTPFS_BENCH_DEPS=1 scripts/install-deps.sh
cargo build --release --locked 2>/dev/null
ftpfs=$PWD/target/release/ftpfs

B=$(mktemp -d /tmp/ftpfs-bench.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$B/data
mkdir -p "$data/tree" "$B/mnt" "$B/rmnt"
ftpd_pid=
ftpfs_pid=
cleanup() {
  for m in "$B/mnt" "$B/rmnt"; do
    grep -q " $m " /proc/self/mountinfo && fusermount3 -uz "$m" 2>/dev/null || true
  done
  [ -n "$ftpfs_pid" ] && kill "$ftpfs_pid" 2>/dev/null || true
  [ -n "$ftpd_pid" ] && kill "$ftpd_pid" 2>/dev/null || true
  rm -rf "$B"
}
trap cleanup EXIT

echo "preparing data in $data"
head -c 256M /dev/urandom > "$data/seq256.bin"
truncate -s 1G "$data/big1g.bin"
for d in $(seq -w 1 100); do
  mkdir "$data/tree/dir$d"
  for f in $(seq -w 1 49); do echo "$d $f" > "$data/tree/dir$d/file$f.txt"; done
done
want_sha=$(sha256sum < "$data/seq256.bin" | cut -d' ' -f1)
local_entries=$(ls -lR "$data/tree" | grep -c '^[-d]')
ftpd_pid=$(scripts/ftpd.sh "$data" "$port" "$B/ftpd")
printf 'machine 127.0.0.1 login alice password secret\n' > "$B/.netrc"
chmod 600 "$B/.netrc"
url="ftp://127.0.0.1:$port"

now() { date +%s%N; }
# secs START END
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mibps() { awk -v s="$1" 'BEGIN { printf "%.0f", 256 / s }'; }
check_sha() { [ "$1" = "$want_sha" ] || { echo "WRONG DATA from $2" >&2; exit 1; }; }

mount_ftpfs() {
  FTPFS_PASSWORD=secret "$ftpfs" mount -f "ftp://alice@127.0.0.1:$port" "$B/mnt" "$@" &
  ftpfs_pid=$!
  for _ in $(seq 200); do grep -q " $B/mnt " /proc/self/mountinfo && return 0; sleep 0.05; done
  echo "ftpfs did not mount" >&2; exit 1
}
umount_ftpfs() {
  fusermount3 -u "$B/mnt"
  wait "$ftpfs_pid" || true
  ftpfs_pid=
}
rss_kib() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }

echo "1. sequential read, 256 MiB"
# Timed runs move the bytes to /dev/null; correctness is checked by a separate sha256 of
# what each tool delivered (for the mounts: of the page cache the timed read filled).
sha_of() { sha256sum | cut -d' ' -f1; }
check_sha "$(curl -s --netrc-file "$B/.netrc" "$url/seq256.bin" | sha_of)" curl
check_sha "$(HOME=$B lftp -c "open -p $port 127.0.0.1; cat seq256.bin" | sha_of)" lftp
declare -a t_curl t_lftp t_cold t_warm t_rclone
for i in $(seq "$RUNS"); do
  s=$(now); curl -s --netrc-file "$B/.netrc" "$url/seq256.bin" -o /dev/null; e=$(now)
  t_curl+=("$(secs "$s" "$e")")
  s=$(now); HOME=$B lftp -c "set xfer:clobber on; open -p $port 127.0.0.1; get seq256.bin -o /dev/null" >/dev/null; e=$(now)
  t_lftp+=("$(secs "$s" "$e")")
  mount_ftpfs
  s=$(now); dd if="$B/mnt/seq256.bin" of=/dev/null bs=1M status=none; e=$(now)
  t_cold+=("$(secs "$s" "$e")")
  s=$(now); dd if="$B/mnt/seq256.bin" of=/dev/null bs=1M status=none; e=$(now)
  t_warm+=("$(secs "$s" "$e")")
  check_sha "$(sha_of < "$B/mnt/seq256.bin")" ftpfs
  umount_ftpfs
  RCLONE_FTP_HOST=127.0.0.1 RCLONE_FTP_PORT=$port RCLONE_FTP_USER=alice \
    RCLONE_FTP_PASS=$(rclone obscure secret) rclone mount :ftp: "$B/rmnt" --daemon 2>/dev/null
  s=$(now); dd if="$B/rmnt/seq256.bin" of=/dev/null bs=1M status=none; e=$(now)
  t_rclone+=("$(secs "$s" "$e")")
  check_sha "$(sha_of < "$B/rmnt/seq256.bin")" "rclone mount"
  fusermount3 -u "$B/rmnt"
done
s=$(now); dd if="$data/seq256.bin" of=/dev/null bs=1M status=none; e=$(now); t_local=$(secs "$s" "$e")
m_curl=$(median "${t_curl[@]}"); m_lftp=$(median "${t_lftp[@]}")
m_cold=$(median "${t_cold[@]}"); m_warm=$(median "${t_warm[@]}"); m_rclone=$(median "${t_rclone[@]}")

echo "2. ls -lR of $local_entries entries"
declare -a l_cold l_warm l_local l_rclone_cold l_rclone_warm
for i in $(seq "$RUNS"); do
  s=$(now); n=$(ls -lR "$data/tree" | grep -c '^[-d]'); e=$(now); l_local+=("$(secs "$s" "$e")")
  mount_ftpfs -o debug --log-file "$B/ls.log"
  : > "$B/ls.log"
  s=$(now); n=$(ls -lR "$B/mnt/tree" | grep -c '^[-d]'); e=$(now)
  [ "$n" = "$local_entries" ] || { echo "ftpfs ls -lR saw $n entries" >&2; exit 1; }
  l_cold+=("$(secs "$s" "$e")")
  listings=$(grep -c 'listed ' "$B/ls.log" || true)
  s=$(now); n=$(ls -lR "$B/mnt/tree" | grep -c '^[-d]'); e=$(now)
  [ "$n" = "$local_entries" ] || exit 1
  l_warm+=("$(secs "$s" "$e")")
  umount_ftpfs
  RCLONE_FTP_HOST=127.0.0.1 RCLONE_FTP_PORT=$port RCLONE_FTP_USER=alice \
    RCLONE_FTP_PASS=$(rclone obscure secret) rclone mount :ftp: "$B/rmnt" --daemon 2>/dev/null
  s=$(now); n=$(ls -lR "$B/rmnt/tree" | grep -c '^[-d]'); e=$(now); l_rclone_cold+=("$(secs "$s" "$e")")
  s=$(now); n=$(ls -lR "$B/rmnt/tree" | grep -c '^[-d]'); e=$(now); l_rclone_warm+=("$(secs "$s" "$e")")
  fusermount3 -u "$B/rmnt"
done
ml_local=$(median "${l_local[@]}"); ml_cold=$(median "${l_cold[@]}"); ml_warm=$(median "${l_warm[@]}")
ml_rcold=$(median "${l_rclone_cold[@]}"); ml_rwarm=$(median "${l_rclone_warm[@]}")

echo "3. peak RSS reading 1 GiB"
mount_ftpfs
cat "$B/mnt/big1g.bin" > /dev/null
rss_read=$(rss_kib "$ftpfs_pid")
umount_ftpfs

echo "4. writes"
# Uploads land in $data/up; the server dir is emptied between runs.
mkdir -p "$data/up" "$B/src"
chown -R 65534:65534 "$data/up"
head -c 256M /dev/urandom > "$B/w256.bin"
want_w=$(sha256sum < "$B/w256.bin" | cut -d' ' -f1)
for i in $(seq 500); do head -c 4096 /dev/urandom > "$B/src/f$i"; done
# A source-tree-like archive of ~1,400 entries.
mkdir -p "$B/tree"
for d in $(seq 1 40); do
  mkdir -p "$B/tree/src/mod$d"
  for f in $(seq 1 34); do head -c $((RANDOM % 8000)) /dev/urandom > "$B/tree/src/mod$d/f$f.c"; done
done
tar -C "$B/tree" -cf "$B/src.tar" src
tar_entries=$(tar -tf "$B/src.tar" | wc -l)
clean_up() { rm -rf "${data:?}/up"; mkdir -p "$data/up"; chown 65534:65534 "$data/up"; }
check_up() { [ "$(sha256sum < "$data/up/$1" | cut -d' ' -f1)" = "$want_w" ] || { echo "WRONG UPLOAD by $2" >&2; exit 1; }; }
rclone_writes() {
  RCLONE_FTP_HOST=127.0.0.1 RCLONE_FTP_PORT=$port RCLONE_FTP_USER=alice \
    RCLONE_FTP_PASS=$(rclone obscure secret) rclone mount :ftp: "$B/rmnt" --daemon \
    --vfs-cache-mode writes --cache-dir "$B/rcache" 2>/dev/null
}
declare -a u_curl u_lftp u_ftpfs c_ftpfs c_rclone t_ftpfs t_rclone
for i in $(seq "$RUNS"); do
  clean_up
  s=$(now); curl -s --netrc-file "$B/.netrc" -T "$B/w256.bin" "$url/up/c.bin"; e=$(now)
  check_up c.bin curl; u_curl+=("$(secs "$s" "$e")")
  s=$(now); HOME=$B lftp -c "open -p $port 127.0.0.1; put $B/w256.bin -o up/l.bin" >/dev/null; e=$(now)
  check_up l.bin lftp; u_lftp+=("$(secs "$s" "$e")")
  mount_ftpfs
  s=$(now); dd if="$B/w256.bin" of="$B/mnt/up/f.bin" bs=1M status=none; e=$(now)
  check_up f.bin ftpfs; u_ftpfs+=("$(secs "$s" "$e")")
  mkdir "$B/mnt/up/many"
  s=$(now); cp "$B"/src/f* "$B/mnt/up/many/"; e=$(now)
  [ "$(ls "$data/up/many" | wc -l)" = 500 ] || { echo "ftpfs lost small files" >&2; exit 1; }
  c_ftpfs+=("$(secs "$s" "$e")")
  s=$(now); tar -C "$B/mnt/up" -xf "$B/src.tar"; e=$(now)
  diff -r "$B/tree/src" "$data/up/src" >/dev/null || { echo "ftpfs untar differs" >&2; exit 1; }
  t_ftpfs+=("$(secs "$s" "$e")")
  umount_ftpfs
  clean_up
  rclone_writes
  mkdir "$B/rmnt/up/many"
  s=$(now); cp "$B"/src/f* "$B/rmnt/up/many/"; e=$(now)
  c_rclone+=("$(secs "$s" "$e")")
  s=$(now); tar -C "$B/rmnt/up" -xf "$B/src.tar"; e=$(now)
  t_rclone+=("$(secs "$s" "$e")")
  fusermount3 -u "$B/rmnt"
  [ "$(ls "$data/up/many" | wc -l)" = 500 ] || echo "note: rclone had not uploaded all 500 files at unmount" >&2
done
mu_curl=$(median "${u_curl[@]}"); mu_lftp=$(median "${u_lftp[@]}"); mu_ftpfs=$(median "${u_ftpfs[@]}")
mc_ftpfs=$(median "${c_ftpfs[@]}"); mc_rclone=$(median "${c_rclone[@]}")
mt_ftpfs=$(median "${t_ftpfs[@]}"); mt_rclone=$(median "${t_rclone[@]}")
clean_up
mount_ftpfs
dd if=/dev/zero of="$B/mnt/up/g.bin" bs=1M count=1024 status=none
rss_write=$(rss_kib "$ftpfs_pid")
umount_ftpfs
clean_up

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
r_cold=$(ratio "$m_curl" "$m_cold")
r_lftp=$(ratio "$m_lftp" "$m_cold")
# Judge against the faster of the two plain clients.
r_best=$(awk -v a="$r_cold" -v b="$r_lftp" 'BEGIN { print (a < b) ? a : b }')
r_ls=$(ratio "$ml_warm" "$ml_local")
verdict() { awk -v v="$1" -v t="$2" -v dir="$3" 'BEGIN { ok = (dir == "ge") ? v >= t : v <= t; print ok ? "met" : "**missed**" }'; }
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo "+changes")

cat > "$OUT" <<MD
# Benchmarks

Produced by \`scripts/bench.sh\` in one run: every tool against the same pure-ftpd on
loopback, same files, medians of $RUNS runs. Timed reads go to /dev/null (\`dd bs=1M\` for
the mounts); what each tool delivered is checked by sha256 in an untimed pass, every
\`ls -lR\` by its entry count. Reading the file from the local disk cache takes ${t_local} s.

- commit: \`$commit\`, date: $(date -u +%Y-%m-%d), kernel: $(uname -r)
- machine: $cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
- server: pure-ftpd $(dpkg-query -W -f='${Version}' pure-ftpd), clients: curl $(curl --version | awk 'NR==1 { print $2 }'), lftp $(lftp --version | awk 'NR==1 { print $4 }'), rclone $(rclone version | awk 'NR==1 { print $2 }')

## 256 MiB sequential read

| reader | seconds | MiB/s | vs curl |
|---|---|---|---|
| curl (plain FTP download) | $m_curl | $(mibps "$m_curl") | 1.00 |
| lftp (plain FTP download) | $m_lftp | $(mibps "$m_lftp") | $(ratio "$m_curl" "$m_lftp") |
| **ftpfs, cold (fresh mount)** | $m_cold | $(mibps "$m_cold") | **$r_cold** |
| ftpfs, warm (read again, page cache) | $m_warm | $(mibps "$m_warm") | $(ratio "$m_curl" "$m_warm") |
| rclone mount (defaults), cold | $m_rclone | $(mibps "$m_rclone") | $(ratio "$m_curl" "$m_rclone") |

Target: cold ≥ 0.9× the plain download, judged against the faster plain client:
$r_cold× curl, $r_lftp× lftp — $(verdict "$r_best" 0.9 ge). Loopback runs on this 2-core
machine vary by ±20% from run to run (server, client and kernel share the cores); the
runs are interleaved so every tool sees the same conditions.

## ls -lR of $local_entries entries in 100 directories

| lister | seconds | vs local |
|---|---|---|
| local directory | $ml_local | 1.00 |
| **ftpfs, cold** ($listings listings sent) | $ml_cold | $(ratio "$ml_cold" "$ml_local") |
| **ftpfs, warm** | $ml_warm | **$r_ls** |
| rclone mount, cold | $ml_rcold | $(ratio "$ml_rcold" "$ml_local") |
| rclone mount, warm | $ml_rwarm | $(ratio "$ml_rwarm" "$ml_local") |

Target: warm ≤ 2× local — $(verdict "$r_ls" 2 le). Cold sends one listing per directory
(the 100 directories, \`tree\` and the mount root) and no command per file.

## Writes

| workload | ftpfs | curl | lftp | rclone mount, \`--vfs-cache-mode writes\` |
|---|---|---|---|---|
| 256 MiB sequential write incl. close, seconds | $mu_ftpfs | $mu_curl | $mu_lftp | |
| 500 × 4 KiB files into one directory (\`cp\`), files/s | $(awk -v t="$mc_ftpfs" 'BEGIN { printf "%.0f", 500 / t }') | | | $(awk -v t="$mc_rclone" 'BEGIN { printf "%.0f", 500 / t }') |
| untar of $tar_entries entries, entries/s | $(awk -v t="$mt_ftpfs" -v n="$tar_entries" 'BEGIN { printf "%.0f", n / t }') | | | $(awk -v t="$mt_rclone" -v n="$tar_entries" 'BEGIN { printf "%.0f", n / t }') |

Targets: 256 MiB write ≥ 0.9× the faster plain upload: $(ratio "$(awk -v a="$mu_curl" -v b="$mu_lftp" 'BEGIN { print (a < b) ? a : b }')" "$mu_ftpfs")× —
$(verdict "$(ratio "$(awk -v a="$mu_curl" -v b="$mu_lftp" 'BEGIN { print (a < b) ? a : b }')" "$mu_ftpfs")" 0.9 ge);
500 files ≥ 1000 files/s and faster than rclone —
$(verdict "$(awk -v t="$mc_ftpfs" 'BEGIN { printf "%.0f", 500 / t }')" 1000 ge) /
$(verdict "$(ratio "$mc_rclone" "$mc_ftpfs")" 1 ge); untar faster than rclone —
$(verdict "$(ratio "$mt_rclone" "$mt_ftpfs")" 1 ge). ftpfs's figures include the upload:
\`close\` returns when the server has the data. rclone's \`writes\` mode returns from
\`close\` before uploading (it uploads in the background), so its figures do not include
the transfer.

## Memory

Peak RSS (VmHWM) of ftpfs: $((rss_read / 1024)) MiB after reading a 1 GiB file,
$((rss_write / 1024)) MiB after writing one — target ≤ 32 MiB:
$(verdict "$(( (rss_read > rss_write ? rss_read : rss_write) / 1024 ))" 32 le).
MD
echo "wrote $OUT"
cat "$OUT"
