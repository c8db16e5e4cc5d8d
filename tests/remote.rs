//! `FtpRemote` against real servers without FUSE: listings, streaming reads and the pool.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ftpfs::config::Secret;
use ftpfs::ftp::conn::Endpoint;
use ftpfs::ftp::{FtpRemote, ListingMode};
use ftpfs::remote::{Kind, Remote, RemoteReader};

fn endpoint(server: &Server) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port: server.port,
        user: USER.into(),
        password: Secret::new(PASSWORD),
        timeout: Duration::from_secs(10),
        policy: Default::default(),
        tls: ftpfs::ftp::tls::Tls::off(),
        limit_recheck: ftpfs::ftp::pool::DEFAULT_LIMIT_RECHECK,
        keepalive: ftpfs::ftp::conn::DEFAULT_KEEPALIVE,
        data: Default::default(),
        pasv_addr: Default::default(),
        listen: Default::default(),
        pipelining: true,
        dialogue: Default::default(),
    }
}

fn remote(kind: ServerKind, connections: usize) -> Option<(tempfile::TempDir, Server, FtpRemote)> {
    let data = tempfile::tempdir().unwrap();
    sample_tree(data.path());
    let server = Server::start(kind, data.path())?;
    let r = FtpRemote::connect(endpoint(&server), connections, "", ListingMode::Auto).unwrap();
    Some((data, server, r))
}

fn read_all_at(r: &impl RemoteReader, off: u64, len: usize) -> Vec<u8> {
    r.read_at(off, len).unwrap().to_vec()
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

#[test]
fn listing_reports_names_types_and_sizes() {
    let Some((_data, _s, r)) = remote(ServerKind::Unftp, 2) else {
        return;
    };
    let mut entries = r.list("").unwrap();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let get = |n: &str| {
        entries
            .iter()
            .find(|e| e.name == n)
            .unwrap_or_else(|| panic!("{n} not in {entries:?}, root {:?}", r.root()))
    };
    assert_eq!(get("big.bin").size, 5 * 1024 * 1024 + 123);
    assert_eq!(get("docs").kind, Kind::Dir);
    assert_eq!(get("with space.txt").kind, Kind::File);
    assert!(get("empty").mtime.is_some());
    let nested = r.list("docs/nested deeper").unwrap();
    assert_eq!(nested.len(), 1);
    assert_eq!(nested[0].name, "deep.bin");
}

#[test]
fn missing_paths_are_enoent_for_listing_and_reading() {
    let Some((_data, _s, r)) = remote(ServerKind::PureFtpd, 2) else {
        return;
    };
    let e = r.list("no such dir").unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT, "{e}");
    let rd = r.open_reader("no such file", 0).unwrap();
    let e = rd.read_at(0, 10).unwrap_err();
    assert_eq!(e.errno(), libc::ENOENT, "{e}");
    // The connection that got the 550 is still usable.
    assert!(!r.list("").unwrap().is_empty());
}

#[test]
fn reads_at_and_past_end_of_file_return_nothing() {
    let Some((data, _s, r)) = remote(ServerKind::Unftp, 2) else {
        return;
    };
    let src = std::fs::read(data.path().join("docs/readme.md")).unwrap();
    let rd = r.open_reader("docs/readme.md", src.len() as u64).unwrap();
    assert_eq!(read_all_at(&rd, 4990, 100), src[4990..]);
    assert!(read_all_at(&rd, 5000, 100).is_empty());
    assert!(read_all_at(&rd, 1 << 40, 100).is_empty());
}

/// With a single connection, two files read alternately (`diff a b`) and listings in
/// between must all be served: each reclaims the connection from the idle other.
#[test]
fn one_connection_serves_alternating_readers_and_listings() {
    let Some((data, _s, r)) = remote(ServerKind::PureFtpd, 1) else {
        return;
    };
    let r = Arc::new(r);
    let a_src = std::fs::read(data.path().join("big.bin")).unwrap();
    let b_src = std::fs::read(data.path().join("docs/nested deeper/deep.bin")).unwrap();
    let a = r.open_reader("big.bin", 0).unwrap();
    let b = r.open_reader("docs/nested deeper/deep.bin", 0).unwrap();
    let chunk = 16 * 1024;
    for i in 0..4 {
        let off = i * chunk;
        assert!(read_all_at(&a, off as u64, chunk) == a_src[off..off + chunk]);
        assert!(read_all_at(&b, off as u64, chunk) == b_src[off..off + chunk]);
        assert!(!r.list("docs").unwrap().is_empty());
    }
}

/// A listing must not wait for a reader that holds a transfer connection, even when the
/// reader is in the middle of its stream.
#[test]
fn listing_uses_the_reserved_connection_while_readers_stream() {
    let Some((data, _s, r)) = remote(ServerKind::PureFtpd, 2) else {
        return;
    };
    let src = std::fs::read(data.path().join("big.bin")).unwrap();
    let rd = r.open_reader("big.bin", 0).unwrap();
    assert!(read_all_at(&rd, 0, 1000) == src[..1000]);
    // The reader keeps its stream open (and its connection) between reads.
    for _ in 0..5 {
        assert!(!r.list("").unwrap().is_empty());
    }
    assert!(read_all_at(&rd, 1000, 1000) == src[1000..2000]);
}

/// Background work (the write-back queue's uploads) never takes the connection a request
/// needs: it leaves one idle, stands back while a request waits, and takes the last one
/// only when requests leave two.
#[test]
fn background_checkouts_leave_a_connection_for_requests_and_let_them_go_first() {
    use ftpfs::ftp::pool::Purpose;
    use std::time::Instant;
    let Some((_data, _s, r)) = remote(ServerKind::PureFtpd, 3) else {
        return;
    };
    let pool = Arc::clone(r.pool());
    let deadline = || Instant::now() + Duration::from_secs(20);
    // Checkouts that may wait: a connection coming back is prepared (or one more logged
    // in ahead) for a round trip before it is idle, and what is idle decides.
    let bg = |p: &Arc<ftpfs::ftp::pool::Pool>| {
        ftpfs::remote::in_background(|| p.checkout(Purpose::Meta, deadline()).unwrap())
    };
    let b1 = bg(&pool);
    let b2 = bg(&pool);
    let b3 =
        ftpfs::remote::in_background(|| pool.checkout_nowait(Purpose::Meta, deadline()).unwrap());
    assert!(b3.is_none(), "the third connection is kept for requests");
    let f1 = pool.checkout(Purpose::Meta, deadline()).unwrap();
    // Both wait for a connection: the background one first.
    let waiting_bg = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || {
            ftpfs::remote::in_background(|| pool.checkout(Purpose::Meta, deadline()).unwrap())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let waiting_fg = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.checkout(Purpose::Meta, deadline()).unwrap())
    };
    std::thread::sleep(Duration::from_millis(300));
    drop(b1);
    assert!(
        wait_for(Duration::from_secs(20), || waiting_fg.is_finished()),
        "the request gets the connection that came back"
    );
    let f2 = waiting_fg.join().unwrap();
    assert!(
        !waiting_bg.is_finished(),
        "the background checkout stood back"
    );
    drop(f1);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !waiting_bg.is_finished(),
        "one connection stays for requests"
    );
    drop(f2);
    assert!(
        wait_for(Duration::from_secs(20), || waiting_bg.is_finished()),
        "with two idle, background work takes one"
    );
    drop((waiting_bg.join().unwrap(), b2));
}
