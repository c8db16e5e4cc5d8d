//! Faults and quirks a real server will not produce on cue, against the scripted server.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake::{FakeOpts, FakeServer, Greeting};
use ftpfs::error::Error;
use ftpfs::ftp::{FtpRemote, ListingMode};
use ftpfs::remote::{Remote, RemoteReader};

fn try_connect(server: &FakeServer, connections: usize) -> Result<FtpRemote, Error> {
    FtpRemote::connect(server.endpoint(), connections, "", ListingMode::Auto)
}

fn connect(server: &FakeServer, connections: usize) -> FtpRemote {
    try_connect(server, connections).unwrap()
}

fn one_file(name: &str, data: &[u8]) -> FakeOpts {
    let mut opts = FakeOpts::default();
    opts.files.insert(name.into(), data.to_vec());
    opts.listing = vec![format!(
        "-rw-r--r-- 1 a b {} Jan  1  2020 {name}",
        data.len()
    )];
    opts
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn read(r: &impl RemoteReader, off: u64, len: usize) -> Result<Vec<u8>, ftpfs::error::Error> {
    r.read_at(off, len).map(|d| d.to_vec())
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

/// The probe's `REST 0` passes, a real offset is refused. The reader used to ignore REST's
/// reply and send RETR anyway, getting bytes from 0 for a read in the middle. Now the first
/// refusal is learned for the mount: reads near the start read through from 0, far ones
/// fail with ESPIPE, and REST is not asked again.
#[test]
fn a_server_that_refuses_rest_n_is_read_from_the_start_and_not_asked_again() {
    let data = pattern(20 * 1024 * 1024);
    let mut opts = FakeOpts {
        rest_zero_only: true,
        ..Default::default()
    };
    opts.files.insert("f".into(), data.clone());
    opts.files.insert("g".into(), data.clone());
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let rd = r.open_reader("f", 0).unwrap();
    assert!(read(&rd, 1_000_000, 100).unwrap() == data[1_000_000..1_000_100]);
    assert_eq!(s.received("REST"), 2, "the probe, then one refused offset");
    let e = read(&rd, 18 * 1024 * 1024, 100).unwrap_err();
    assert_eq!(e.errno(), libc::ESPIPE);
    let other = r.open_reader("g", 0).unwrap();
    assert!(read(&other, 2_000_000, 10).unwrap() == data[2_000_000..2_000_010]);
    assert_eq!(s.received("REST"), 2, "learned once for the mount");
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
            "-rw-r--r-- 1 a b 10 Jan  1  2020 /abs".into(),
            "-rw-r--r-- 1 a b 10 Jan  1  2020 nul\0name".into(),
            "-rw-r--r-- 1 a b 10 Jan  1  2020 ".into(),
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

#[test]
fn busy_listing_is_retried_until_the_server_answers() {
    let mut opts = one_file("f", b"x");
    opts.busy = Arc::new(AtomicUsize::new(2));
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    assert_eq!(r.list("").unwrap()[0].name, "f");
    assert_eq!(s.received("LIST"), 3, "two 450s, then the listing");
}

#[test]
fn busy_replies_that_outlast_the_retries_become_eio() {
    let mut opts = one_file("f", b"x");
    opts.busy = Arc::new(AtomicUsize::new(100));
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let e = r.list("").unwrap_err();
    assert_eq!(e.errno(), libc::EIO);
    assert_eq!(s.received("LIST"), 4, "the first attempt and 3 retries");
}

#[test]
fn a_failed_upload_is_sent_again_from_the_start() {
    let opts = FakeOpts {
        busy: Arc::new(AtomicUsize::new(1)),
        ..Default::default()
    };
    let stored = opts.stored.clone();
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let data = pattern(1_000_000);
    r.store("up.bin", &data).unwrap();
    assert_eq!(s.received("STOR"), 2);
    assert!(
        stored.lock().unwrap()["up.bin"] == data,
        "complete second copy"
    );
}

#[test]
fn a_download_broken_by_a_crash_resumes_where_it_stopped() {
    let data = pattern(3_000_000);
    let opts = one_file("f", &data);
    opts.retr_crashes.store(1, Ordering::SeqCst);
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let rd = r.open_reader("f", 0).unwrap();
    let got = read(&rd, 0, data.len()).unwrap();
    assert!(got == data, "only the server's bytes, in order");
    assert_eq!(s.received("RETR"), 2);
    let rests: Vec<String> = s
        .commands
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.starts_with("REST ") && c != &"REST 0")
        .cloned()
        .collect();
    assert_eq!(rests.len(), 1, "{rests:?}");
    let at: usize = rests[0][5..].parse().unwrap();
    assert!(at > 0 && at <= data.len() / 2, "resumed at {at}");
}

#[test]
fn a_stalled_data_connection_fails_within_the_deadline_and_the_mount_goes_on() {
    let data = pattern(100_000);
    let mut opts = one_file("f", &data);
    opts.stall_retr = true;
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let rd = r.open_reader("f", 0).unwrap();
    let start = Instant::now();
    let e = read(&rd, 0, 4096).unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(e.errno(), libc::ETIMEDOUT | libc::EIO),
        "{e}: {}",
        e.errno()
    );
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(r.list("").unwrap().len(), 1, "metadata still answered");
}

#[test]
fn a_reply_that_never_comes_is_etimedout_within_the_deadline() {
    let opts = FakeOpts {
        silent: vec!["MKD"],
        ..Default::default()
    };
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let start = Instant::now();
    let e = r.mkdir("d").unwrap_err();
    assert_eq!(e.errno(), libc::ETIMEDOUT, "{e}");
    assert!(start.elapsed() < Duration::from_secs(6));
    assert_eq!(
        s.received("MKD"),
        1,
        "MKD is not repeated: it may have happened"
    );
    assert!(
        r.list("").is_ok(),
        "a new connection serves the next request"
    );
}

#[test]
fn an_unterminated_multi_line_reply_fails_within_the_deadline() {
    let opts = FakeOpts {
        unterminated: vec!["DELE"],
        ..Default::default()
    };
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let start = Instant::now();
    let e = r.delete("x").unwrap_err();
    assert_eq!(e.errno(), libc::ETIMEDOUT, "{e}");
    assert!(start.elapsed() < Duration::from_secs(6));
    assert!(r.list("").is_ok());
}

#[test]
fn an_idle_connection_the_server_closed_is_replaced_without_an_error() {
    let mut opts = one_file("f", b"abc");
    opts.hang_up_after_list = true;
    let s = FakeServer::start(opts);
    let r = connect(&s, 1);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(r.list("").unwrap().len(), 1);
    }
    let logins = s.received("USER");
    assert!(logins >= 3, "reconnected each time ({logins} logins)");
}

/// `421` in the middle of a session (a server shutting down, or kicking the session): the
/// request is sent again on a new connection, logged in and set up like the first (binary
/// type), and the caller never sees the 421.
#[test]
fn a_421_in_reply_to_a_request_reconnects_and_the_request_succeeds() {
    let data = pattern(300_000);
    let opts = one_file("f", &data);
    let kick = opts.kick.clone();
    let s = FakeServer::start(opts);
    let r = connect(&s, 1);
    let logins = s.received("USER");
    kick.store(1, Ordering::SeqCst);
    assert_eq!(r.list("").unwrap()[0].name, "f");
    kick.store(1, Ordering::SeqCst);
    let rd = r.open_reader("f", 0).unwrap();
    assert!(read(&rd, 0, data.len()).unwrap() == data);
    assert_eq!(s.received("USER"), logins + 2, "a new login after each 421");
    assert_eq!(s.received("PASS"), s.received("USER"));
    assert_eq!(
        s.received("TYPE"),
        s.received("USER"),
        "every connection set to binary"
    );
}

/// `425 Can't open data connection` says nothing was transferred: the listing and the
/// download are tried again and succeed.
#[test]
fn a_425_data_connection_failure_is_retried() {
    let data = pattern(300_000);
    let opts = one_file("f", &data);
    let no_data = opts.no_data.clone();
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    no_data.store(2, Ordering::SeqCst);
    assert_eq!(r.list("").unwrap()[0].name, "f");
    assert_eq!(s.received("LIST"), 3, "two 425s, then the listing");
    no_data.store(2, Ordering::SeqCst);
    let rd = r.open_reader("f", 0).unwrap();
    assert!(read(&rd, 0, data.len()).unwrap() == data);
    assert_eq!(s.received("RETR"), 3, "two 425s, then the download");
}

#[test]
fn a_server_that_is_not_ready_yet_is_waited_for() {
    let opts = FakeOpts {
        greeting: Greeting::NotReadyFirst,
        ..one_file("f", b"abc")
    };
    let s = FakeServer::start(opts);
    let r = connect(&s, 1);
    assert_eq!(r.list("").unwrap().len(), 1);
}

#[test]
fn hostile_greetings_and_feat_fail_the_mount_clearly_and_quickly() {
    for (name, opts, errno) in [
        (
            "421 at connect",
            FakeOpts {
                greeting: Greeting::TooMany,
                ..Default::default()
            },
            libc::EIO,
        ),
        (
            "endless greeting",
            FakeOpts {
                greeting: Greeting::Endless,
                ..Default::default()
            },
            libc::EPROTO,
        ),
        (
            "garbage greeting",
            FakeOpts {
                greeting: Greeting::Garbage,
                ..Default::default()
            },
            libc::EPROTO,
        ),
        (
            "endless FEAT",
            FakeOpts {
                endless_feat: true,
                ..Default::default()
            },
            libc::EPROTO,
        ),
    ] {
        let s = FakeServer::start(opts);
        let start = Instant::now();
        let e = match try_connect(&s, 1) {
            Err(e) => e,
            Ok(_) => panic!("{name}: connected"),
        };
        assert_eq!(e.errno(), errno, "{name}: {e}");
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "{name}: {:?}",
            start.elapsed()
        );
    }
}

/// The listing said 1000 bytes, RETR delivers 500 (the file changed, or the server lies):
/// the reader gets the 500 bytes the server sent, then end of file; never padding.
#[test]
fn a_file_shorter_than_listed_reads_as_what_the_server_sends() {
    let data = pattern(500);
    let mut opts = one_file("f", &data);
    opts.listing = vec!["-rw-r--r-- 1 a b 1000 Jan  1  2020 f".into()];
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    assert_eq!(r.list("").unwrap()[0].size, 1000);
    let rd = r.open_reader("f", 1000).unwrap();
    assert!(read(&rd, 0, 1000).unwrap() == data);
    assert!(read(&rd, 600, 100).unwrap().is_empty());
}

/// A server that handles one command per read loses pipelined `MDTM`s: that listing keeps
/// its `LIST` times and costs its connection (one timeout), later listings ask one command
/// at a time and get the exact times; nothing fails.
#[test]
fn a_server_that_loses_pipelined_mdtm_is_asked_one_command_at_a_time() {
    let mut opts = FakeOpts {
        mdtm: true,
        no_pipelining: true,
        ..FakeOpts::default()
    };
    opts.listing = (0..5)
        .map(|i| format!("-rw-r--r-- 1 a b 1 Jan  2  2020 f{i}"))
        .collect();
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let day = std::time::UNIX_EPOCH + Duration::from_secs(1_577_923_200);
    let exact = |i: u64| day + Duration::from_secs(3 * 3600 + 4 * 60 + i);
    let first = r.list("").unwrap();
    assert_eq!(first.len(), 5);
    assert!(
        first.iter().all(|e| e.mtime == Some(day)),
        "LIST's dates stand: {first:?}"
    );
    let second = r.list("").unwrap();
    for e in &second {
        let i: u64 = e.name[1..].parse().unwrap();
        assert_eq!(e.mtime, Some(exact(i)), "{}", e.name);
    }
    assert_eq!(
        s.received("MDTM"),
        1 + 5,
        "one pipelined that arrived, then five"
    );
}

/// One `MDTM` at a time to a slow server would outlast the listing's deadline: asking stops
/// at half of it, the listing arrives in time, the files not asked keep `LIST`'s dates.
#[test]
fn mdtm_one_at_a_time_to_a_slow_server_stops_before_the_listing_times_out() {
    let mut opts = FakeOpts {
        mdtm: true,
        no_pipelining: true,
        mdtm_delay: Duration::from_millis(500),
        ..FakeOpts::default()
    };
    opts.listing = (0..10)
        .map(|i| format!("-rw-r--r-- 1 a b 1 Jan  2  2020 f{i}"))
        .collect();
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    // The first listing learns that pipelining loses commands.
    r.list("").unwrap();
    let day = std::time::UNIX_EPOCH + Duration::from_secs(1_577_923_200);
    let started = Instant::now();
    let listed = r.list("").unwrap();
    let took = started.elapsed();
    assert_eq!(listed.len(), 10);
    assert!(
        took < Duration::from_secs(4),
        "within the deadline: {took:?}"
    );
    let exact = listed.iter().filter(|e| e.mtime != Some(day)).count();
    assert!(
        (1..10).contains(&exact),
        "some asked, not all (10 × 500 ms is past half the 4 s deadline): {exact}"
    );
}

/// A `500` for one name, once `MDTM` has worked, is about that name: the file keeps its
/// `LIST` date and the others, in this listing and the next, get exact times.
#[test]
fn a_500_for_one_file_after_mdtm_worked_keeps_asking_for_the_others() {
    let opts = FakeOpts {
        mdtm: true,
        listing: ["f0", "bad name", "f1"]
            .iter()
            .map(|n| format!("-rw-r--r-- 1 a b 1 Jan  2  2020 {n}"))
            .collect(),
        ..FakeOpts::default()
    };
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    let day = std::time::UNIX_EPOCH + Duration::from_secs(1_577_923_200);
    let exact = |i: u64| day + Duration::from_secs(3 * 3600 + 4 * 60 + i);
    for _ in 0..2 {
        let listed = r.list("").unwrap();
        let time = |n: &str| listed.iter().find(|e| e.name == n).unwrap().mtime;
        assert_eq!(time("f0"), Some(exact(0)));
        assert_eq!(time("bad name"), Some(day));
        assert_eq!(time("f1"), Some(exact(1)));
    }
    assert_eq!(s.received("MDTM"), 6, "asked both times, pipelined");
}

/// A server that answers `MDTM` with `500` before it ever gave a time does not have it: one
/// listing asks, later ones do not.
#[test]
fn a_server_whose_mdtm_is_unknown_is_not_asked_again() {
    let opts = FakeOpts {
        mdtm: true,
        listing: ["bad1", "bad2"]
            .iter()
            .map(|n| format!("-rw-r--r-- 1 a b 1 Jan  2  2020 {n}"))
            .collect(),
        ..FakeOpts::default()
    };
    let s = FakeServer::start(opts);
    let r = connect(&s, 2);
    for _ in 0..3 {
        assert_eq!(r.list("").unwrap().len(), 2);
    }
    assert_eq!(s.received("MDTM"), 2, "the first listing only");
}

/// A server that handles one command per read loses the `RETR` written together with its
/// `REST`: that read waits out `timeout` once, the mount learns to send one command at a
/// time (said once in the log), and the read is repeated and returns the right bytes.
#[test]
fn a_server_that_loses_pipelined_rest_and_retr_is_read_one_command_at_a_time() {
    let data = pattern(300_000);
    let mut opts = one_file("f", &data);
    opts.no_pipelining = true;
    let s = FakeServer::start(opts);
    let mut ep = s.endpoint();
    ep.timeout = Duration::from_secs(2);
    let r = FtpRemote::connect(ep, 2, "", ListingMode::Auto).unwrap();
    assert_eq!(r.list("").unwrap()[0].size, 300_000);
    let rd = r.open_reader("f", 300_000).unwrap();
    assert!(read(&rd, 250_000, 1000).unwrap() == data[250_000..251_000]);
    assert!(read(&rd, 10_000, 1000).unwrap() == data[10_000..11_000]);
    // The lost RETR never reached the server's log; its REST did, and was sent again.
    assert_eq!(s.received("RETR"), 2, "one per read");
    assert_eq!(
        s.received("REST"),
        1 + 3,
        "the probe, the lost read's twice, the next"
    );
}
