#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root) to a mounted FTP server:
# installs the system packages, builds ftpfs, starts a loopback FTP server over a sample
# tree, and mounts it on /tmp/ftpfs-demo/mnt. Run it again to remount; stop with
#   scripts/demo.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
demo=/tmp/ftpfs-demo
port=${FTPFS_DEMO_PORT:-2121}

stop() {
  if grep -q " $demo/mnt " /proc/self/mountinfo 2>/dev/null; then
    ./target/release/ftpfs umount "$demo/mnt" || true
  fi
  if [ -f "$demo/ftpd.pid" ]; then kill "$(cat "$demo/ftpd.pid")" 2>/dev/null || true; rm -f "$demo/ftpd.pid"; fi
}
if [ "${1:-}" = stop ]; then stop; echo "demo stopped"; exit 0; fi

scripts/install-deps.sh
cargo build --release --locked
stop
mkdir -p "$demo/data" "$demo/mnt"
if [ ! -e "$demo/data/README.txt" ]; then
  echo "Hello from the FTP server." > "$demo/data/README.txt"
  mkdir -p "$demo/data/photos 2024" "$demo/data/src/ünïcødé"
  head -c 50000000 /dev/urandom > "$demo/data/big.bin"
  for i in $(seq 1 20); do echo "photo $i" > "$demo/data/photos 2024/img_$i.jpg"; done
  cp -r src/* "$demo/data/src/"
fi
scripts/ftpd.sh "$demo/data" "$port" "$demo/ftpd" > "$demo/ftpd.pid"
FTPFS_PASSWORD=secret ./target/release/ftpfs mount "ftp://alice@127.0.0.1:$port" "$demo/mnt" \
  --log-file "$demo/ftpfs.log"
cat <<MSG

ftpfs is mounted: ftp://alice@127.0.0.1:$port  ->  $demo/mnt

Try:
  ls -lR $demo/mnt | head
  sha256sum $demo/mnt/big.bin $demo/data/big.bin
  grep -r FtpFs $demo/mnt/src | head -3
  tail -c 100 $demo/mnt/big.bin | xxd | tail -2
  echo hello >> $demo/mnt/README.txt && cat $demo/data/README.txt
Log: $demo/ftpfs.log     Unmount: $PWD/target/release/ftpfs umount $demo/mnt
Stop everything: $PWD/scripts/demo.sh stop
MSG
