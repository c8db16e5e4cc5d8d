//! `FtpRemote` against real servers without FUSE: listings, streaming reads and the pool.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ftpfs::config::Secret;
use ftpfs::ftp::conn::Endpoint;
use ftpfs::ftp::FtpRemote;
use ftpfs::remote::{Kind, Remote, RemoteReader};

fn endpoint(server: &Server) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port: server.port,
        user: USER.into(),
        password: Secret::new(PASSWORD),
        timeout: Duration::from_secs(10),
    }
}

fn remote(kind: ServerKind, connections: usize) -> Option<(tempfile::TempDir, Server, FtpRemote)> {
    let data = tempfile::tempdir().unwrap();
    sample_tree(data.path());
    let server = Server::start(kind, data.path())?;
    let r = FtpRemote::connect(endpoint(&server), connections, "").unwrap();
    Some((data, server, r))
}

fn read_all_at(r: &impl RemoteReader, off: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let n = r.read_at(off, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn seeks_in_every_direction_return_source_bytes(kind: ServerKind) {
    let Some((data, _s, r)) = remote(kind, 4) else {
        return;
    };
    let src = std::fs::read(data.path().join("big.bin")).unwrap();
    let rd = r.open_reader("big.bin", src.len() as u64).unwrap();
    let mut rng = Rng(1);
    for _ in 0..60 {
        let off = rng.below(src.len() as u64) as usize;
        let len = 1 + rng.below(200_000) as usize;
        let got = read_all_at(&rd, off as u64, len);
        let want = &src[off..(off + len).min(src.len())];
        assert!(
            got == want,
            "{kind:?}: read {len} at {off}: got {} bytes",
            got.len()
        );
        // and the bytes right after, sequentially
        let got = read_all_at(&rd, (off + len) as u64, 1000);
        let end = (off + len).min(src.len());
        assert!(
            got == src[end..(end + 1000).min(src.len())],
            "{kind:?}: sequential after {off}+{len}"
        );
    }
}

#[test]
fn seeks_in_every_direction_return_source_bytes_unftp() {
    seeks_in_every_direction_return_source_bytes(ServerKind::Unftp);
}

#[test]
fn seeks_in_every_direction_return_source_bytes_pure_ftpd() {
    seeks_in_every_direction_return_source_bytes(ServerKind::PureFtpd);
}

/// Regression: libunftp applies a `REST` offset to every later transfer of the session, so a
/// read from 0 after a read from the middle returned the middle of the file.
fn reading_from_zero_after_a_rest_gets_the_start_of_the_file(kind: ServerKind) {
    let Some((data, _s, r)) = remote(kind, 2) else {
        return;
    };
    let src = std::fs::read(data.path().join("big.bin")).unwrap();
    let rd = r.open_reader("big.bin", src.len() as u64).unwrap();
    assert!(read_all_at(&rd, 3_000_000, 10) == src[3_000_000..3_000_010]);
    assert!(read_all_at(&rd, 0, 10) == src[..10]);
    let other = r.open_reader("docs/readme.md", 5000).unwrap();
    let want = std::fs::read(data.path().join("docs/readme.md")).unwrap();
    assert!(
        read_all_at(&other, 0, 5000) == want,
        "another file on the same connection"
    );
}

#[test]
fn reading_from_zero_after_a_rest_gets_the_start_of_the_file_unftp() {
    reading_from_zero_after_a_rest_gets_the_start_of_the_file(ServerKind::Unftp);
}
