//! Faults of a real server's storage, through real mounts: libunftp in-process, whose
//! storage back-end fails when a test says so (`common::faulty`). The FTP dialogue is the
//! server's own; only its disk is busy (450), broken (451), full (452), refusing (550),
//! over quota (552), cut off mid-transfer (426) or slow. Each test asserts the outcome a
//! program sees (the right bytes, or a specific errno from a specific call, in bounded
//! time), what the server saw (how many attempts, at which offsets), and that the mount
//! works afterwards.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::faulty::{Fault, Faults, Kind, Verb};
use common::*;

/// Quick retries: 2 s per wait, 1 s at most between attempts, 10 s per operation.
const QUICK: &str = "timeout=2,retries=3,retry_delay=1,deadline=10";

/// A mount of libunftp over faulty storage. Fields drop in order: the mount first.
struct Setup {
    m: Mount,
    faults: Arc<Faults>,
    _server: Server,
    data: tempfile::TempDir,
    recovery: tempfile::TempDir,
}

impl Setup {
    /// `files` are created on the server with random content before mounting.
    fn new(files: &[(&str, usize)]) -> Setup {
        let data = tempfile::tempdir().unwrap();
        for (i, (name, size)) in files.iter().enumerate() {
            std::fs::write(data.path().join(name), Rng(50 + i as u64).bytes(*size)).unwrap();
        }
        let recovery = tempfile::tempdir().unwrap();
        let (server, faults) = Server::unftp_with_faults(data.path());
        let rec = format!("recovery_dir={}", recovery.path().display());
        // Faults are set between operations: the mount must ask for nothing but what the
        // test does (a listing ahead of the root's would list `slow/` before its fault).
        let m = Mount::new(&server, &[QUICK, &rec, "prefetch=off"]);
        Setup {
            m,
            faults,
            _server: server,
            data,
            recovery,
        }
    }

    fn on_server(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.data.path().join(name)).unwrap()
    }

    fn through_mount(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.m.path().join(name))
    }

    /// Replaces `name` through the mount with `data`; the result of close(2).
    fn replace(&self, name: &str, data: &[u8]) -> Result<(), i32> {
        let mut f = std::fs::File::create(self.m.path().join(name)).unwrap();
        f.write_all(data).unwrap();
        close(f)
    }

    /// Replaces doc.bin with `new` while every STOR fails with `kind`: close(2) must say
    /// `errno`, the server must have seen exactly `attempts` STORs (close and the last
    /// release together), keep its old content, and the new data must be in the recovery
    /// directory. Returns how long close(2) took.
    fn refused_upload(&self, kind: Kind, new: &[u8], errno: i32, attempts: usize) -> Duration {
        let old = self.on_server("doc.bin");
        self.faults.always(Verb::Stor, Fault::Fail(kind));
        let start = Instant::now();
        assert_eq!(self.replace("doc.bin", new), Err(errno));
        let took = start.elapsed();
        assert!(
            self.recovered(new),
            "the new data is in the recovery directory"
        );
        assert_eq!(self.faults.calls(Verb::Stor).len(), attempts);
        assert_eq!(self.on_server("doc.bin"), old, "the old content stays");
        took
    }

    /// Whether the recovery directory holds a file equal to `data`, within 20 s.
    fn recovered(&self, data: &[u8]) -> bool {
        wait_for(Duration::from_secs(20), || {
            std::fs::read_dir(self.recovery.path())
                .unwrap()
                .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .any(|d| d == data)
        })
    }

    /// Files the server holds whose names ftpfs made up (temporary upload names).
    fn leftovers(&self) -> Vec<String> {
        names(self.data.path())
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    /// Nothing of ours is left on the server, and the mount still works: a listing, a read
    /// and a write with no fault planned.
    fn still_works(&self) {
        assert!(
            wait_for(Duration::from_secs(10), || self.leftovers().is_empty()),
            "temporary upload files left: {:?}",
            self.leftovers()
        );
        self.faults.clear();
        assert!(std::fs::read_dir(self.m.path()).unwrap().count() > 0);
        std::fs::write(self.m.path().join("after.txt"), b"after").unwrap();
        assert_eq!(self.on_server("after.txt"), b"after");
        assert_eq!(self.through_mount("after.txt").unwrap(), b"after");
    }
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect()
}

fn errno(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[test]
fn busy_450_and_aborted_426_downloads_are_retried_and_read_whole() {
    let s = Setup::new(&[("f.bin", 2 << 20)]);
    s.faults
        .next(Verb::Retr, Fault::Fail(Kind::TransientFileNotAvailable), 1);
    s.faults
        .next(Verb::Retr, Fault::Fail(Kind::ConnectionClosed), 1);
    assert!(s.through_mount("f.bin").unwrap() == s.on_server("f.bin"));
    let retr = s.faults.calls(Verb::Retr);
    assert!(s.faults.used_up(), "both faults were hit");
    assert_eq!(retr.len(), 3, "two refusals, then the transfer: {retr:?}");
    assert!(retr.iter().all(|c| c.offset == 0));
    s.still_works();
}

#[test]
fn a_download_cut_after_5_mib_resumes_at_that_byte() {
    let s = Setup::new(&[("big.bin", 16 << 20)]);
    s.faults.next(Verb::Retr, Fault::CutAfter(5 << 20), 1);
    let mut got = Vec::new();
    std::fs::File::open(s.m.path().join("big.bin"))
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert!(
        got == s.on_server("big.bin"),
        "the reader got the server's bytes"
    );
    let retr = s.faults.calls(Verb::Retr);
    assert_eq!(retr.len(), 2, "{retr:?}");
    assert_eq!(
        retr[1].offset,
        5 << 20,
        "resumed with REST at the first byte not yet received, not from 0"
    );
    s.still_works();
}

/// The kernel's readahead requests overtake each other: the request for the next MiB can
/// arrive first, the stream reads through the MiB before it into its window, and breaks.
/// The resumed stream carries on from there, and the overtaken request is served from the
/// window. It once found the window emptied by the resume and cost a third RETR (a CI flake
/// of the test above). O_DIRECT reads put the requests in the test's order.
#[test]
fn a_read_overtaken_across_a_resume_is_served_from_the_window() {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let s = Setup::new(&[("big.bin", 16 << 20)]);
    let want = s.on_server("big.bin");
    s.faults.next(Verb::Retr, Fault::CutAfter(5 << 20), 1);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(s.m.path().join("big.bin"))
        .unwrap();
    // O_DIRECT wants an aligned buffer: one MiB at a page boundary in a larger one.
    let mut backing = vec![0u8; (1 << 20) + 4096];
    let skew = backing.as_ptr().align_offset(4096);
    let buf = &mut backing[skew..skew + (1 << 20)];
    let mut read_mib = |n: usize| {
        f.read_exact_at(buf, (n as u64) << 20).unwrap();
        assert!(buf[..] == want[n << 20..(n + 1) << 20], "MiB {n}");
    };
    for n in 0..4 {
        read_mib(n);
    }
    // MiB 5 before MiB 4: read through 4 into the window, then the cut at 5 MiB.
    read_mib(5);
    read_mib(4);
    let offsets: Vec<u64> = s
        .faults
        .calls(Verb::Retr)
        .iter()
        .map(|c| c.offset)
        .collect();
    assert_eq!(
        offsets,
        vec![0, 5 << 20],
        "resumed once, MiB 4 from the window"
    );
    s.still_works();
}

/// The break comes while reading through the gap itself: MiB 6 is asked before MiB 5 and
/// the stream, at 5 MiB, breaks there before delivering a byte of the gap. The stream
/// resumes where the window ends (5 MiB), not at the request (6 MiB), so MiB 5 is then in
/// the window. Resuming at the request cost a third RETR for MiB 5: the flake of
/// `a_download_cut_after_5_mib_resumes_at_that_byte` on a loaded machine (issue 13), where
/// the kernel's readahead requests overtake each other more often.
#[test]
fn a_break_while_reading_through_a_gap_resumes_at_the_window_end() {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    let s = Setup::new(&[("big.bin", 16 << 20)]);
    let want = s.on_server("big.bin");
    s.faults.next(Verb::Retr, Fault::CutAfter(5 << 20), 1);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(s.m.path().join("big.bin"))
        .unwrap();
    let mut backing = vec![0u8; (1 << 20) + 4096];
    let skew = backing.as_ptr().align_offset(4096);
    let buf = &mut backing[skew..skew + (1 << 20)];
    let mut read_mib = |n: usize| {
        f.read_exact_at(buf, (n as u64) << 20).unwrap();
        assert!(buf[..] == want[n << 20..(n + 1) << 20], "MiB {n}");
    };
    for n in 0..5 {
        read_mib(n);
    }
    read_mib(6);
    read_mib(5);
    let offsets: Vec<u64> = s
        .faults
        .calls(Verb::Retr)
        .iter()
        .map(|c| c.offset)
        .collect();
    assert_eq!(
        offsets,
        vec![0, 5 << 20],
        "resumed once, at the first byte not received; MiB 5 from the window"
    );
    s.still_works();
}

#[test]
fn a_451_local_error_on_upload_is_retried_and_close_succeeds() {
    let s = Setup::new(&[("doc.bin", 1000)]);
    let new = Rng(1).bytes(2 << 20);
    s.faults.next(Verb::Stor, Fault::Fail(Kind::LocalError), 2);
    assert_eq!(s.replace("doc.bin", &new), Ok(()));
    assert!(s.on_server("doc.bin") == new);
    assert_eq!(
        s.faults.calls(Verb::Stor).len(),
        3,
        "two refusals, then the upload"
    );
    s.still_works();
}

#[test]
fn an_upload_cut_after_1_mib_is_sent_again_whole_and_close_succeeds() {
    let s = Setup::new(&[("doc.bin", 1000)]);
    let new = Rng(2).bytes(3 << 20);
    s.faults.next(Verb::Stor, Fault::CutAfter(1 << 20), 1);
    assert_eq!(s.replace("doc.bin", &new), Ok(()));
    assert!(
        s.on_server("doc.bin") == new,
        "the whole file, not the cut one"
    );
    let stor = s.faults.calls(Verb::Stor);
    assert_eq!(stor.len(), 2, "{stor:?}");
    assert!(stor.iter().all(|c| c.offset == 0), "sent from the start");
    s.still_works();
}

#[test]
fn a_streamed_upload_cut_midway_falls_back_to_the_spool_and_close_succeeds() {
    let s = Setup::new(&[("big.bin", 1000)]);
    let new = Rng(3).bytes(24 << 20);
    // The STOR that streams while the file is written breaks after 6 MiB.
    s.faults.next(Verb::Stor, Fault::CutAfter(6 << 20), 1);
    assert_eq!(s.replace("big.bin", &new), Ok(()));
    assert!(s.on_server("big.bin") == new);
    assert!(s.faults.used_up());
    assert!(
        s.m.log_text().contains("streamed upload failed"),
        "the cut hit the stream, and the spool was sent instead"
    );
    s.still_works();
}

/// `452` is the server saying its disk is full: waiting will not help, so it is not
/// retried; close(2) says ENOSPC, the old content stays, the new data is kept.
#[test]
fn a_452_on_upload_is_enospc_at_close_without_retries_and_nothing_is_lost() {
    let s = Setup::new(&[("doc.bin", 1000)]);
    let new = Rng(4).bytes(2 << 20);
    // One attempt at close, one more at the last release; no retries within either.
    let took = s.refused_upload(Kind::InsufficientStorageSpaceError, &new, libc::ENOSPC, 2);
    assert!(took < Duration::from_secs(5), "no backoff waits: {took:?}");
    s.still_works();
}

#[test]
fn a_552_on_upload_is_edquot_at_close() {
    let s = Setup::new(&[("doc.bin", 1000)]);
    let new = Rng(5).bytes(100_000);
    s.refused_upload(Kind::ExceededStorageAllocationError, &new, libc::EDQUOT, 2);
    s.still_works();
}

/// Both are `550`; the reply's text decides: "Permission denied" is EACCES, "File not
/// found" on a download is ENOENT. Neither is retried.
#[test]
fn a_550_is_eacces_or_enoent_as_its_text_says() {
    let s = Setup::new(&[("doc.bin", 1000), ("gone.bin", 1000)]);
    s.faults
        .always(Verb::Stor, Fault::Fail(Kind::PermissionDenied));
    assert_eq!(s.replace("doc.bin", b"new"), Err(libc::EACCES));
    assert!(s.recovered(b"new"));
    s.faults.clear();
    s.faults
        .always(Verb::Retr, Fault::Fail(Kind::PermissionDenied));
    let e = s.through_mount("doc.bin").unwrap_err();
    assert_eq!(errno(e), libc::EACCES);
    // The kernel asks twice when a read fails (readahead, then the page itself), and
    // ftpfs sends one RETR per ask: no retries of its own.
    assert!(s.faults.calls(Verb::Retr).len() <= 2);
    s.faults.clear();
    s.faults
        .always(Verb::Retr, Fault::Fail(Kind::PermanentFileNotAvailable));
    let e = s.through_mount("gone.bin").unwrap_err();
    assert_eq!(errno(e), libc::ENOENT);
    assert!(s.faults.calls(Verb::Retr).len() <= 4);
    s.still_works();
}

/// Transient failures that do not end: the retries run out and close(2) says EIO within
/// the deadline; the data is kept; once the storage recovers the mount works.
#[test]
fn transient_failures_that_outlast_the_retries_are_eio_at_close_and_nothing_is_lost() {
    let s = Setup::new(&[("doc.bin", 1000)]);
    let new = Rng(6).bytes(100_000);
    // retries=3: four attempts at close, four more at the last release.
    let took = s.refused_upload(Kind::LocalError, &new, libc::EIO, 8);
    assert!(
        took < Duration::from_secs(12),
        "within the 10 s deadline: {took:?}"
    );
    s.still_works();
}

/// A slow disk: a transfer that starts later than `timeout` is given up and tried again,
/// and the second attempt's data is what the reader gets.
#[test]
fn a_download_slower_to_start_than_the_timeout_is_tried_again() {
    let s = Setup::new(&[("f.bin", 1 << 20)]);
    s.faults
        .next(Verb::Retr, Fault::Slow(Duration::from_secs(4)), 1);
    let start = Instant::now();
    assert!(s.through_mount("f.bin").unwrap() == s.on_server("f.bin"));
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(s.faults.calls(Verb::Retr).len(), 2);
    s.still_works();
}

/// A listing that never comes in time: ETIMEDOUT within the deadline, and other requests
/// are answered meanwhile; when the storage is quick again, the same listing works.
#[test]
fn a_listing_slower_than_the_deadline_is_etimedout_and_the_mount_goes_on() {
    let s = Setup::new(&[("doc.bin", 1000)]);
    std::fs::create_dir(s.data.path().join("slow")).unwrap();
    std::fs::write(s.data.path().join("slow/x"), b"x").unwrap();
    // The root is listed (and cached) before the fault.
    assert_eq!(names(s.m.path()).len(), 2);
    s.faults
        .always(Verb::List, Fault::Slow(Duration::from_secs(30)));
    let dir = s.m.path().join("slow");
    let lister = std::thread::spawn(move || {
        let start = Instant::now();
        let r = std::fs::read_dir(&dir).map(|d| d.count());
        (r, start.elapsed())
    });
    // Meanwhile a read of another file is served.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.through_mount("doc.bin").unwrap(), s.on_server("doc.bin"));
    let (r, took) = lister.join().unwrap();
    let e = r.unwrap_err();
    assert_eq!(errno(e), libc::ETIMEDOUT, "took {took:?}");
    assert!(
        took < Duration::from_secs(13),
        "within the 10 s deadline: {took:?}"
    );
    s.faults.clear();
    assert_eq!(names(&s.m.path().join("slow")), vec!["x".to_string()]);
    s.still_works();
}
