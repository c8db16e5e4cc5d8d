#!/usr/bin/env bash
# Installs what ftpfs needs to build, mount and be tested on Debian 12 (run as root):
# fuse3 (fusermount3), the FTP servers the tests and demo run on loopback, the plain FTP
# clients the benchmark compares against, iproute2 + nftables for the test that puts a
# server behind a forgetful firewall in a network namespace, and rsync for the tests of
# everyday tools writing through a mount. Safe to run again.
set -euo pipefail
need=()
for pkg in fuse3 pure-ftpd python3-pyftpdlib python3-openssl curl lftp openssl iproute2 nftables rsync; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ "${FTPFS_BENCH_DEPS:-0}" = 1 ]; then
  for pkg in rclone; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # pure-ftpd's package would start a system server on port 21; we start our own.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
# vsftpd, for the test of FTPS with require_ssl_reuse: it conflicts with pure-ftpd in apt, so
# it is unpacked (not installed) under /opt/ftpfs-test, with an unprivileged user for its
# anonymous sessions.
vsftpd=/opt/ftpfs-test/vsftpd
if [ ! -x "$vsftpd/usr/sbin/vsftpd" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq vsftpd 2>/dev/null || { apt-get update -qq && apt-get download -qq vsftpd; })
  mkdir -p "$vsftpd" && dpkg -x "$tmp"/vsftpd_*.deb "$vsftpd"
  rm -rf "$tmp"
fi
id ftpfsvs >/dev/null 2>&1 || useradd -r -M -d / -s /usr/sbin/nologin ftpfsvs
# proftpd, for the tests of a server that refuses APPE by default: it conflicts with pure-ftpd
# too, so it is unpacked beside vsftpd with the libraries proftpd-core needs that nothing
# else here installs (found through LD_LIBRARY_PATH by tests/common/mod.rs). Each package is
# fetched only if its files are missing.
proftpd=/opt/ftpfs-test/proftpd
proftpd_pkgs=(
  "proftpd-core:usr/sbin/proftpd"
  "libhiredis0.14:usr/lib/x86_64-linux-gnu/libhiredis.so.0.14"
  "libmemcached11:usr/lib/x86_64-linux-gnu/libmemcached.so.11"
  "libmemcachedutil2:usr/lib/x86_64-linux-gnu/libmemcachedutil.so.2"
  "libhashkit2:usr/lib/x86_64-linux-gnu/libhashkit.so.2"
  "libpcre2-posix3:usr/lib/x86_64-linux-gnu/libpcre2-posix.so.3"
)
for entry in "${proftpd_pkgs[@]}"; do
  pkg=${entry%%:*} file=${entry#*:}
  [ -e "$proftpd/$file" ] && continue
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null || { apt-get update -qq && apt-get download -qq "$pkg"; })
  mkdir -p "$proftpd" && dpkg -x "$tmp"/*.deb "$proftpd"
  rm -rf "$tmp"
done
# vsftpd's write tests (ServerKind::Vsftpd and VsftpdTls in tests/common) log in as a real local user: a unix account with the tests' password
# (a cheap hash: logins are many) and a PAM service of its own with pam_unix only, so that no
# shell, securetty or ftpusers rule of the machine applies.
id ftpfsvsu >/dev/null 2>&1 || useradd -M -d / -s /usr/sbin/nologin ftpfsvsu
echo 'ftpfsvsu:secret' | chpasswd -c SHA256 -s 1000
[ -f /etc/pam.d/ftpfs-vsftpd ] || printf '%s\n' 'auth required pam_unix.so' \
  'account required pam_unix.so' 'session required pam_unix.so' >/etc/pam.d/ftpfs-vsftpd
command -v cargo >/dev/null || { echo "cargo is missing: install Rust (rustup) first" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "/dev/fuse is missing: load the fuse module (modprobe fuse)" >&2; exit 1; }
