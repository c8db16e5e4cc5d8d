//! Faults and quirks a real server will not produce on cue, against the scripted server.

mod common;

use std::time::Duration;

use common::fake::{FakeOpts, FakeServer};
use ftpfs::config::Secret;
use ftpfs::ftp::conn::Endpoint;
use ftpfs::ftp::{FtpRemote, ListingMode};
use ftpfs::remote::{Remote, RemoteReader};

fn connect(server: &FakeServer, connections: usize) -> FtpRemote {
    let ep = Endpoint {
        host: "127.0.0.1".into(),
        port: server.port,
        user: "alice".into(),
        password: Secret::new("pw"),
        timeout: Duration::from_secs(5),
    };
    FtpRemote::connect(ep, connections, "", ListingMode::Auto).unwrap()
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn read(r: &impl RemoteReader, off: u64, len: usize) -> Result<Vec<u8>, ftpfs::error::Error> {
    r.read_at(off, len)
}

#[test]
fn server_without_epsv_is_used_through_pasv() {
    let data = pattern(300_000);
    let mut opts = FakeOpts {
        no_epsv: true,
        ..Default::default()
    };
    opts.files.insert("f".into(), data.clone());
    opts.listing = vec!["-rw-r--r-- 1 a b 300000 Jan  1  2020 f".into()];
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    assert_eq!(r.list("").unwrap()[0].size, 300_000);
    let rd = r.open_reader("f", 0).unwrap();
    assert!(read(&rd, 100_000, 1000).unwrap() == data[100_000..101_000]);
    assert!(s.received("PASV") >= 2, "transfers went through PASV");
}

#[test]
fn server_without_rest_serves_sequential_reads_and_refuses_far_random_ones() {
    let data = pattern(20 * 1024 * 1024);
    let mut opts = FakeOpts {
        no_rest: true,
        ..Default::default()
    };
    opts.files.insert("f".into(), data.clone());
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let rd = r.open_reader("f", 0).unwrap();
    // Sequential: one stream from 0.
    let mut off = 0;
    while off < 1_000_000 {
        let got = read(&rd, off as u64, 131_072).unwrap();
        assert!(got == data[off..off + 131_072]);
        off += 131_072;
    }
    // Backwards near the start: restart from 0 and read through, right bytes.
    assert!(read(&rd, 10, 100).unwrap() == data[10..110]);
    // Far away: a clear error, never wrong bytes.
    let e = read(&rd, 18 * 1024 * 1024, 100).unwrap_err();
    assert_eq!(e.errno(), libc::ESPIPE);
    assert_eq!(
        s.received("REST"),
        1,
        "only the capability probe asked for REST"
    );
}

#[test]
fn multi_line_greeting_and_missing_feat_are_handled() {
    let mut opts = FakeOpts {
        no_feat: true,
        greeting_lines: 5,
        ..Default::default()
    };
    opts.listing = vec!["-rw-r--r-- 1 a b 3 Jan  1  2020 x".into()];
    let s = FakeServer::start(opts);
    let r = connect(&s, 1);
    assert_eq!(r.list("").unwrap()[0].name, "x");
    assert_eq!(s.received("MLSD"), 0, "no FEAT means no MLSD");
}

#[test]
fn hostile_listing_lines_are_dropped_and_the_rest_listed() {
    let long = format!("-rw-r--r-- 1 a b 1 Jan  1  2020 {}", "n".repeat(100_000));
    let opts = FakeOpts {
        listing: vec![
            "total 5".into(),
            "drwxr-xr-x 2 a b 4096 Jan  1  2020 .".into(),
            "drwxr-xr-x 2 a b 4096 Jan  1  2020 ..".into(),
            "-rw-r--r-- 1 a b 10 Jan  1  2020 ../escape".into(),
            "-rw-r--r-- 1 a b 10 Jan  1  2020 a/b".into(),
            "-rw-r--r-- 1 a b -10 Jan  1  2020 negative".into(),
            "-rw-r--r-- 1 a b 99999999999999999999 Jan  1  2020 absurd".into(),
            "-rw-r--r-- 1 a b 10 Foo 99  2020 baddate".into(),
            "complete garbage \u{1}\u{2}".into(),
            long,
            "-rw-r--r-- 1 a b 10 Jan  1  2020 good one".into(),
            "drwxr-xr-x 2 a b 4096 Jan  1  2020 gooddir".into(),
        ],
        ..Default::default()
    };
    let s = FakeServer::start(opts);
    let r = connect(&s, 1);
    let mut names: Vec<String> = r.list("").unwrap().into_iter().map(|e| e.name).collect();
    names.sort();
    assert_eq!(names, ["good one", "gooddir"]);
}
