#!/usr/bin/env bash
# Builds ftpfs and installs it for the whole system (run as root on Debian 12):
#   $PREFIX/bin/ftpfs            the program (PREFIX defaults to /usr/local)
#   /usr/sbin/mount.ftpfs        mount helper: `mount -t ftpfs`, fstab type `ftpfs`
#                                (fstab type `fuse.ftpfs` goes through fuse3's mount.fuse3,
#                                which finds ftpfs in /usr/local/bin)
#   bash, zsh and fish completions
# Safe to run again; `scripts/install.sh uninstall` removes all of it.
# DESTDIR=DIR installs under DIR (for packaging, and for the test of this script);
# FTPFS_BIN=FILE installs that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}
dest=${DESTDIR:-}
files=("$dest$prefix/bin/ftpfs" "$dest/usr/sbin/mount.ftpfs"
  "$dest/usr/share/bash-completion/completions/ftpfs"
  "$dest/usr/share/zsh/vendor-completions/_ftpfs"
  "$dest/usr/share/fish/vendor_completions.d/ftpfs.fish")
if [ "${1:-}" = uninstall ]; then rm -f "${files[@]}"; echo "ftpfs uninstalled"; exit 0; fi

bin=${FTPFS_BIN:-}
if [ -z "$bin" ]; then
  scripts/install-deps.sh
  cargo build --release --locked
  bin=target/release/ftpfs
fi
install -D -m 0755 "$bin" "$dest$prefix/bin/ftpfs"
mkdir -p "$dest/usr/sbin"
ln -sfn "$prefix/bin/ftpfs" "$dest/usr/sbin/mount.ftpfs"
for shell in bash zsh fish; do
  case $shell in
    bash) out=$dest/usr/share/bash-completion/completions/ftpfs ;;
    zsh) out=$dest/usr/share/zsh/vendor-completions/_ftpfs ;;
    fish) out=$dest/usr/share/fish/vendor_completions.d/ftpfs.fish ;;
  esac
  mkdir -p "$(dirname "$out")"
  "$dest$prefix/bin/ftpfs" completions "$shell" > "$out"
done
echo "installed: $("$dest$prefix/bin/ftpfs" --version) in $dest$prefix/bin, mount helper $dest/usr/sbin/mount.ftpfs"
