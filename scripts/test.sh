#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root: the mount tests use /dev/fuse):
# installs the FTP servers, checks formatting and lints, runs every test with every server
# required (a missing server fails instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Users mount through /dev/fuse too (tests/user.rs). Debian's udev rule makes it mode 0666;
# a machine without udev (a container, a minimal VM like CI's) leaves the kernel's 0600.
chmod 0666 /dev/fuse
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# Tests must not write into the invoking user's home (spool, recovery directory, netrc): they
# run with HOME pointing to an empty directory (cargo and rustup keep theirs), and anything
# that appears under it afterwards fails the run.
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
test_home=$(mktemp -d)
trap 'rm -rf "$test_home"' EXIT
# Bounded, so that a hang fails CI in minutes instead of holding it for its 90.
# --no-fail-fast: one failing test file must not hide the results of the others.
status=0
env -u XDG_CACHE_HOME HOME="$test_home" FTPFS_REQUIRE_SERVERS=1 \
    timeout 1800 cargo test --locked --no-fail-fast -- --test-threads 4 || status=$?
if [ -n "$(ls -A "$test_home")" ]; then
    echo "FAIL: the tests wrote into the home directory:" >&2
    find "$test_home" >&2
    status=1
fi
exit "$status"
