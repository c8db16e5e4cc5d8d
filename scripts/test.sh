#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root: the mount tests use /dev/fuse):
# installs the FTP servers, checks formatting and lints, runs every test with every server
# required (a missing server fails instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
FTPFS_REQUIRE_SERVERS=1 cargo test --locked -- --test-threads 4
