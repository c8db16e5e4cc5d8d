#!/usr/bin/env bash
# Builds ftpfs and installs it for the whole system (run as root on Debian 12):
#   $PREFIX/bin/ftpfs            the program (PREFIX defaults to /usr/local)
#   /usr/sbin/mount.ftpfs        mount helper: `mount -t ftpfs`, fstab type `ftpfs`
#                                (fstab type `fuse.ftpfs` goes through fuse3's mount.fuse3,
#                                which finds ftpfs in /usr/local/bin)
#   bash, zsh and fish completions
# Safe to run again; `scripts/install.sh uninstall` removes all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}
files=("$prefix/bin/ftpfs" /usr/sbin/mount.ftpfs
  /usr/share/bash-completion/completions/ftpfs
  /usr/share/zsh/vendor-completions/_ftpfs
  /usr/share/fish/vendor_completions.d/ftpfs.fish)
if [ "${1:-}" = uninstall ]; then rm -f "${files[@]}"; echo "ftpfs uninstalled"; exit 0; fi

scripts/install-deps.sh
cargo build --release --locked
install -D -m 0755 target/release/ftpfs "$prefix/bin/ftpfs"
ln -sfn "$prefix/bin/ftpfs" /usr/sbin/mount.ftpfs
for shell in bash zsh fish; do
  case $shell in
    bash) out=/usr/share/bash-completion/completions/ftpfs ;;
    zsh) out=/usr/share/zsh/vendor-completions/_ftpfs ;;
    fish) out=/usr/share/fish/vendor_completions.d/ftpfs.fish ;;
  esac
  mkdir -p "$(dirname "$out")"
  "$prefix/bin/ftpfs" completions "$shell" > "$out"
done
echo "installed: $("$prefix/bin/ftpfs" --version) in $prefix/bin, mount helper /usr/sbin/mount.ftpfs"
