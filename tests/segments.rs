//! Segmented reads (issue 15): a big file of a server that limits each session's rate is
//! read as several `REST` + `RETR` ranges on parallel connections, reassembled in order.
//!
//! The server is the quirky pyftpdlib with `throttled` (4 MiB/s per data connection), whose
//! command log (`SESSION COMMAND ARGUMENT`) shows which ranges were asked for on which
//! connection; `cut-retr-once` cuts one ranged `RETR` after 1 MiB with a `426`. What the
//! segments did is in the mount's log ("read of … in segments: …", logged when the file is
//! closed). Every read is compared byte for byte with the file on the server.

mod common;

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use common::*;

const MIB: usize = 1 << 20;
/// ftpfs's range size before the rate is judged, and the most after
/// (src/ftp/reader/segments.rs).
const CHUNK: u64 = 4 << 20;
const MAX_CHUNK: u64 = 2 * CHUNK;

fn throttled(root: &Path, more: &[&str]) -> Option<Server> {
    let mut quirks = vec!["throttled"];
    quirks.extend_from_slice(more);
    let s = Server::quirky(root, &quirks, &[]);
    if s.is_none() && require_servers() {
        panic!("pyftpdlib is not installed");
    }
    s
}

/// `(session, REST offset)` of every `RETR` of `name` that followed a `REST`.
fn ranged_retrs(log: &str, name: &str) -> Vec<(String, u64)> {
    let mut rest: std::collections::HashMap<String, u64> = Default::default();
    let mut out = Vec::new();
    for line in log.lines() {
        let mut p = line.splitn(3, ' ');
        let (Some(session), Some(verb)) = (p.next(), p.next()) else {
            continue;
        };
        let arg = p.next().unwrap_or("");
        match verb.to_ascii_uppercase().as_str() {
            "REST" => {
                rest.insert(session.to_string(), arg.trim().parse().unwrap_or(0));
            }
            "RETR" if arg.ends_with(name) => {
                if let Some(at) = rest.remove(session).filter(|&a| a > 0) {
                    out.push((session.to_string(), at));
                }
            }
            _ => {}
        }
    }
    out
}

/// What the segments did with one file, from the mount log's "read of … in segments" line.
#[derive(Debug)]
struct Summary {
    ranges: u64,
    resumed: u64,
    most: u64,
    held: u64,
    longest: u64,
}

fn summary(log: &str) -> Option<Summary> {
    let line = log.lines().rev().find(|l| l.contains("in segments: "))?;
    let nums: Vec<u64> = line
        .split("in segments: ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    Some(Summary {
        ranges: nums[0],
        resumed: nums[1],
        most: nums[3],
        held: nums[4],
        longest: nums[5],
    })
}

fn assert_same(got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "length");
    if let Some(i) = (0..want.len()).find(|&i| got[i] != want[i]) {
        panic!("first wrong byte at {i}");
    }
}

/// Waits until no connection of the mount is busy and no transfer is listed.
fn all_given_back(path: &Path) -> bool {
    wait_for(Duration::from_secs(15), || {
        let s = status_json(path);
        s["connections"]["busy"] == 0 && s["transfers"].as_array().is_some_and(|t| t.is_empty())
    })
}

#[test]
fn a_throttled_big_file_is_read_in_ranges_on_several_connections_and_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let want = Rng(15).bytes(32 * MIB);
    std::fs::write(dir.path().join("big.bin"), &want).unwrap();
    let Some(server) = throttled(dir.path(), &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let got = std::fs::read(m.path().join("big.bin")).unwrap();
    assert_same(&got, &want);
    let retrs = ranged_retrs(&server.command_log(), "big.bin");
    let sessions: HashSet<_> = retrs.iter().map(|(s, _)| s.clone()).collect();
    let offsets: HashSet<_> = retrs.iter().map(|(_, a)| *a).collect();
    assert!(
        sessions.len() >= 2 && offsets.len() >= 2,
        "ranges asked for: {retrs:?}\n{}\n{}",
        server.command_log(),
        m.log_text()
    );
    let log = m.log_text();
    let Summary {
        ranges, most, held, ..
    } = summary(&log).expect("the segments' summary is logged");
    // How many more than two depends on the rates measured, which a busy machine may
    // blur: at least the reader's connection and one more, for several ranges.
    assert!(
        ranges >= 1 && most >= 2,
        "{ranges} ranges, {most} connections"
    );
    // The bound: with the default pool of 5, at most 4 segments and 5 ranges held.
    assert!(held <= 5 * MAX_CHUNK, "{held} bytes held");
}

#[test]
fn ranges_grow_with_the_sessions_rate_and_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let want = Rng(19).bytes(64 * MIB);
    std::fs::write(dir.path().join("big.bin"), &want).unwrap();
    let Some(server) = throttled(dir.path(), &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let got = std::fs::read(m.path().join("big.bin")).unwrap();
    assert_same(&got, &want);
    let log = m.log_text();
    let s = summary(&log).expect("the segments' summary is logged");
    // A range is what one connection fetches in RANGE_TIME (4 s): at 4 MiB/s per
    // connection more than MAX_CHUNK; anything above 1 MiB/s makes it longer than CHUNK.
    assert!(s.longest > CHUNK && s.longest <= MAX_CHUNK, "{s:?}\n{log}");
    // The ranges asked for: some start more than CHUNK after the one before them.
    let mut offsets: Vec<u64> = ranged_retrs(&server.command_log(), "big.bin")
        .iter()
        .map(|(_, at)| *at)
        .collect();
    offsets.sort_unstable();
    assert!(
        offsets.windows(2).any(|w| w[1] - w[0] > CHUNK),
        "{offsets:?}"
    );
    // At most one range more than the segments (4 with the default pool of 5) is held,
    // however long they are.
    assert!(s.most >= 2, "{s:?}");
    assert!(s.held <= 5 * s.longest, "{s:?}");
}

#[test]
fn a_range_cut_midway_resumes_at_its_first_missing_byte() {
    let dir = tempfile::tempdir().unwrap();
    let want = Rng(16).bytes(32 * MIB);
    std::fs::write(dir.path().join("big.bin"), &want).unwrap();
    let Some(server) = throttled(dir.path(), &["cut-retr-once"]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let got = std::fs::read(m.path().join("big.bin")).unwrap();
    assert_same(&got, &want);
    let log = server.command_log();
    let cut: u64 = log
        .lines()
        .find_map(|l| {
            l.split_once(" CUT ")
                .map(|(_, n)| n.trim().parse().unwrap())
        })
        .expect("the server cut a ranged RETR");
    let retrs = ranged_retrs(&log, "big.bin");
    // Resumed past the range's start: the bytes that had come were kept.
    assert!(
        retrs
            .iter()
            .any(|&(_, at)| at > cut && at <= cut + MIB as u64),
        "cut at {cut}; ranges asked for: {retrs:?}"
    );
    let s = summary(&m.log_text()).expect("the segments' summary is logged");
    assert!(s.resumed >= 1, "{}", m.log_text());
}

#[test]
fn closing_a_file_early_gives_every_segment_connection_back() {
    let dir = tempfile::tempdir().unwrap();
    let want = Rng(17).bytes(40 * MIB);
    std::fs::write(dir.path().join("big.bin"), &want).unwrap();
    std::fs::write(dir.path().join("small.txt"), b"still here\n").unwrap();
    let Some(server) = throttled(dir.path(), &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let mut f = std::fs::File::open(m.path().join("big.bin")).unwrap();
    // Segments show in `ftpfs status` while they run: read on until they do.
    let mut got = vec![0u8; MIB];
    let mut at = 0;
    let mut most = 0;
    while most < 2 && at + MIB < want.len() / 2 {
        f.read_exact(&mut got).unwrap();
        assert_same(&got, &want[at..at + MIB]);
        at += MIB;
        let s = status_json(m.path());
        most = most.max(s["transfers"][0]["segments"].as_u64().unwrap_or(0));
    }
    assert!(most >= 2, "{}", m.log_text());
    drop(f);
    assert!(
        all_given_back(m.path()),
        "{}",
        status_json(m.path())["connections"]
    );
    // The pool serves the next request.
    let small = std::fs::read(m.path().join("small.txt")).unwrap();
    assert_eq!(small, b"still here\n");
}

#[test]
fn seeking_away_stops_the_segments_and_reads_the_right_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let want = Rng(18).bytes(64 * MIB);
    std::fs::write(dir.path().join("big.bin"), &want).unwrap();
    let Some(server) = throttled(dir.path(), &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let mut f = std::fs::File::open(m.path().join("big.bin")).unwrap();
    let mut got = vec![0u8; 12 * MIB];
    f.read_exact(&mut got).unwrap();
    assert_same(&got, &want[..12 * MIB]);
    // Far beyond the ranges fetched ahead (at most 5, of at most 8 MiB, past the reader).
    f.seek(SeekFrom::Start(60 * MIB as u64)).unwrap();
    let mut tail = vec![0u8; MIB];
    f.read_exact(&mut tail).unwrap();
    assert_same(&tail, &want[60 * MIB..61 * MIB]);
    let log = m.log_text();
    assert!(log.contains("far from the segments: stopped"), "{log}");
    // Only the reader's own stream is left.
    assert!(
        wait_for(Duration::from_secs(15), || {
            status_json(m.path())["connections"]["busy"].as_u64() <= Some(1)
        }),
        "{}",
        status_json(m.path())["connections"]
    );
    drop(f);
    assert!(all_given_back(m.path()));
}
