//! Tree walks list ahead and small files are read ahead, on spare connections, bounded, and
//! never in a kernel request's way.
//!
//! The walks are real (`find`, `ls -l`, `cat` in listing order, `grep -r`) through real
//! mounts. What was sent is counted in the server's command log (the quirky pyftpdlib logs
//! `SESSION COMMAND ARGUMENT` per command), and what the prefetch did in the mount's debug
//! log ("listed … ahead, … N in flight", "… was read ahead") and `ftpfs status --json` (the bytes
//! it holds against its bound). A subtree whose listing
//! stalls comes from the scripted server.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::fake::{FakeOpts, FakeServer};
use common::*;

/// `(session, verb, argument)` of each command in a quirky server's log.
fn commands(log: &str) -> Vec<(String, String, String)> {
    log.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ' ');
            let session = parts.next()?.to_string();
            let verb = parts.next()?.to_ascii_uppercase();
            let arg = parts.next().unwrap_or("").to_string();
            Some((session, verb, arg))
        })
        .collect()
}

/// How many times each path was listed with `MLSD`.
fn listings(log: &str) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for (_, verb, arg) in commands(log) {
        if verb == "MLSD" {
            *n.entry(arg).or_default() += 1;
        }
    }
    n
}

/// The most prefetch jobs the mount's log shows in flight at once.
fn most_in_flight(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("prefetch: "))
        .filter_map(|l| {
            let (before, _) = l.split_once(" in flight")?;
            before.rsplit(' ').next()?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// `dirs` directories of `files` small files each, in `top` directories (a tree of
/// 1 + top + dirs directories).
fn make_tree(root: &Path, top: usize, per_top: usize, files: usize) -> usize {
    let mut n = 1;
    for t in 0..top {
        let d = root.join(format!("t{t}"));
        std::fs::create_dir_all(&d).unwrap();
        n += 1;
        for s in 0..per_top {
            let sd = d.join(format!("s{s}"));
            std::fs::create_dir_all(&sd).unwrap();
            n += 1;
            for f in 0..files {
                std::fs::write(sd.join(format!("f{f}")), format!("{t}/{s}/{f}\n")).unwrap();
            }
        }
    }
    n
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn find_lists_every_directory_once_on_several_connections_at_once() {
    let data = tempfile::tempdir().unwrap();
    let dirs = make_tree(&data.path().join("tree"), 4, 4, 3);
    let Some(server) = Server::quirky(data.path(), &[], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let found = run(Command::new("find").arg(m.path().join("tree")));
    assert_eq!(found.lines().count(), dirs + 4 * 4 * 3, "every entry found");
    let log = server.command_log();
    let listed = listings(&log);
    for (path, n) in &listed {
        assert_eq!(*n, 1, "{path} listed {n} times:\n{log}");
    }
    let tree_listings = listed.keys().filter(|p| p.starts_with("/tree")).count();
    assert_eq!(tree_listings, dirs, "every directory listed:\n{log}");
    // More than one connection listed, and at the same time: another session's MLSD came
    // between one session's MLSD and that session's next command (sent only after the
    // listing's 226).
    let cmds = commands(&log);
    let sessions: HashSet<&str> = cmds
        .iter()
        .filter(|(_, v, _)| v == "MLSD")
        .map(|(s, _, _)| s.as_str())
        .collect();
    assert!(sessions.len() >= 2, "listings on one connection:\n{log}");
    let overlapped = cmds.iter().enumerate().any(|(i, (s, v, _))| {
        v == "MLSD"
            && cmds[i + 1..]
                .iter()
                .take_while(|(s2, _, _)| s2 != s)
                .any(|(_, v2, _)| v2 == "MLSD")
    });
    assert!(overlapped, "no two listings in flight at once:\n{log}");
    assert!(m.log_text().contains("was listed ahead"));
}

#[test]
fn listing_ahead_is_bounded_in_count_and_in_flight() {
    // One directory of 40 subdirectories, each with 3 more: `ls -l` opens only the top.
    let data = tempfile::tempdir().unwrap();
    for d in 0..40 {
        for s in 0..3 {
            std::fs::create_dir_all(data.path().join(format!("top/d{d:02}/s{s}"))).unwrap();
        }
    }
    let Some(server) = Server::quirky(data.path(), &[], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let out = run(Command::new("ls").arg("-l").arg(m.path().join("top")));
    assert_eq!(out.lines().count(), 41, "total line and 40 entries");
    // The prefetch stops by itself: its jobs expire (KEEP, 5 s) and nothing new is asked.
    // Wait until the log stops growing for a while, with a bound.
    let mut last = (0, std::time::Instant::now());
    let quiet = wait_for(Duration::from_secs(30), || {
        let n = server.command_log().len();
        if n != last.0 {
            last = (n, std::time::Instant::now());
        }
        last.1.elapsed() > Duration::from_secs(6)
    });
    assert!(quiet, "the prefetch went on");
    let log = server.command_log();
    let listed = listings(&log);
    let ahead = listed.keys().filter(|p| p.starts_with("/top/")).count();
    // The directories listed ahead of a walk that never came: two per worker, and five
    // connections (the default) give four workers.
    assert!(
        (1..=4 * ftpfs::fs::prefetch::AHEAD_PER_WORKER).contains(&ahead),
        "{ahead} listed ahead:\n{log}"
    );
    // Five connections (the default): guesses use four at most.
    let most = most_in_flight(&m.log_text());
    assert!((1..=4).contains(&most), "{most} in flight");
}

/// Never in a kernel request's way, shown by the order of events rather than by time:
/// every connection guesses may use is stalled in a listing ahead that the server holds
/// until the test lets it go, and a `stat` elsewhere, which needs three listings of its
/// own, is answered before that. Were it queued behind the guesses it could not return
/// until they were released (the mount's timeout is longer than the test's bound).
#[test]
fn a_kernel_request_is_served_while_every_guess_is_stalled() {
    // Every directory lists the same: `slow/`, `fast/` and a file; a listing of any path
    // with `slow` in it stalls until released. Three connections: guesses may hold two
    // (two workers), and do, in `fast/slow` and `slow`.
    let released = Arc::new(AtomicBool::new(false));
    let server = FakeServer::start(FakeOpts {
        mlsd: true,
        listing: vec![
            "type=dir;modify=20200101000000; slow".into(),
            "type=dir;modify=20200101000000; fast".into(),
            "type=file;size=3;modify=20200101000000; f".into(),
        ],
        stall_list: Some("slow"),
        stall_until: Some(Arc::clone(&released)),
        ..FakeOpts::default()
    });
    // Whatever happens, the stalled listings end with the test.
    struct Release(Arc<AtomicBool>);
    impl Drop for Release {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _release = Release(Arc::clone(&released));
    let url = format!("ftp://alice@127.0.0.1:{}", server.port);
    let m = Mount::of_url(&url, &["connections=3", "timeout=300"]);
    // Opening the root queues `slow` and `fast` (and below them): both connections guesses
    // may use end up in listings that stall.
    let root = std::fs::read_dir(m.path()).unwrap().count();
    assert_eq!(root, 3);
    let stalled = || {
        let c = server.commands.lock().unwrap();
        c.iter()
            .filter(|c| c.starts_with("MLSD") && c.contains("slow"))
            .count()
            >= 2
    };
    assert!(
        wait_for(Duration::from_secs(30), stalled),
        "two stalled listings ahead"
    );
    let sent_before = server.commands.lock().unwrap().len();
    // A stat three directories down, none of them listed yet.
    let target = m.path().join("fast/fast/fast/f");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::metadata(&target).map(|md| md.len()));
    });
    // The bound only turns a request stuck behind the guesses into a failure: such a
    // request could return only after the release below, and the mount's timeout (300 s)
    // would not end the stalled listings first.
    let got = rx.recv_timeout(Duration::from_secs(120));
    assert!(!released.load(Ordering::SeqCst));
    match got {
        Ok(Ok(len)) => assert_eq!(len, 3),
        other => panic!(
            "stat waited behind the prefetch: {other:?}\n{}",
            m.log_text()
        ),
    }
    // It was served by the server while the guesses held their connections: its listings
    // came after the stalled ones were sent, and both stalled ones are still unanswered.
    let c = server.commands.lock().unwrap();
    assert!(
        c[sent_before..]
            .iter()
            .any(|c| c.starts_with("MLSD") && c.contains("fast/fast/fast")),
        "{c:?}"
    );
    drop(c);
    let figures = status_json(m.path());
    assert!(
        figures["connections"]["busy"].as_u64().unwrap() >= 2,
        "{figures}"
    );
}

/// Bounded memory: a directory of files each as big as a read ahead may be, together three
/// times the bound, read whole in listing order. The bytes held by reads ahead (done and in
/// flight, as the mount counts them for `ftpfs status`) never went past the bound, and
/// reading ahead did happen.
#[test]
fn files_read_ahead_never_hold_more_than_the_bound() {
    use ftpfs::fs::prefetch::{BYTES_MAX, FILE_MAX};
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("big");
    std::fs::create_dir(&dir).unwrap();
    let n = (3 * BYTES_MAX / FILE_MAX) as usize;
    let body = |i: usize| vec![b'a' + (i % 26) as u8; FILE_MAX as usize];
    for i in 0..n {
        std::fs::write(dir.join(format!("f{i:02}")), body(i)).unwrap();
    }
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    for i in 0..n {
        let got = std::fs::read(m.path().join(format!("big/f{i:02}"))).unwrap();
        assert!(got == body(i), "f{i:02}");
        let all = status_json(m.path());
        let p = &all["prefetch"];
        assert!(
            p["held_bytes"].as_u64().unwrap_or_else(|| panic!("{all}")) <= BYTES_MAX,
            "{p}"
        );
    }
    let p = &status_json(m.path())["prefetch"];
    assert_eq!(p["enabled"], true);
    assert_eq!(p["held_bytes_bound"].as_u64(), Some(BYTES_MAX), "{p}");
    let most = p["held_bytes_most"].as_u64().unwrap();
    assert!(most <= BYTES_MAX, "held {most} bytes: {p}");
    assert!(most >= FILE_MAX, "nothing was read ahead: {p}");
    assert!(m.log_text().contains("was read ahead"));
}

/// Cancelled: a walk that stops (its process ends) stops its prefetch. Past where the walk
/// stopped the server sees at most what the prefetch's bounds let it guess (the next
/// [`FILES_AHEAD`] files, [`AHEAD_PER_WORKER`] directories per worker), then nothing, and
/// the mount lets go of every job, listing place and byte it held.
#[test]
fn a_walk_that_stops_stops_its_prefetch_within_its_bounds() {
    use ftpfs::fs::prefetch::{AHEAD_PER_WORKER, FILES_AHEAD};
    let data = tempfile::tempdir().unwrap();
    // 43 directories, 720 files.
    make_tree(&data.path().join("tree"), 6, 6, 20);
    let Some(server) = Server::quirky(data.path(), &[], &[]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    // The walk: `tree` and `tree/t0` opened, then the first 10 files of `tree/t0/s0` read
    // whole in listing order, by a process that then ends.
    let mut names: Vec<String> = (0..20).map(|f| format!("f{f}")).collect();
    names.sort();
    let read: Vec<String> = names[..10].to_vec();
    let script = format!(
        "ls tree >/dev/null && ls tree/t0 >/dev/null && cd tree/t0/s0 && cat {} >/dev/null",
        read.join(" ")
    );
    run(Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(m.path()));
    // Then the server's log goes quiet (jobs and results expire 5 s after they were made),
    // with a bound.
    let mut last = (0, std::time::Instant::now());
    let quiet = wait_for(Duration::from_secs(60), || {
        let n = server.command_log().len();
        if n != last.0 {
            last = (n, std::time::Instant::now());
        }
        last.1.elapsed() > Duration::from_secs(7)
    });
    assert!(quiet, "the prefetch went on after the walk stopped");
    let log = server.command_log();
    let retrs: Vec<String> = commands(&log)
        .into_iter()
        .filter(|(_, v, _)| v == "RETR")
        .map(|(_, _, a)| a)
        .collect();
    let walked: HashSet<String> = read.iter().map(|f| format!("/tree/t0/s0/{f}")).collect();
    let guessed: HashSet<&String> = retrs.iter().filter(|p| !walked.contains(*p)).collect();
    assert!(
        guessed.len() <= FILES_AHEAD,
        "{} files read ahead past the walk: {guessed:?}",
        guessed.len()
    );
    let opened = ["/", "/tree", "/tree/t0", "/tree/t0/s0"];
    let listed = listings(&log);
    let ahead: Vec<&String> = listed
        .keys()
        .filter(|p| !opened.contains(&p.as_str()))
        .collect();
    // Five connections (the default): four workers.
    assert!(
        ahead.len() <= 4 * AHEAD_PER_WORKER,
        "{} directories listed past the walk: {ahead:?}",
        ahead.len()
    );
    // And the mount holds nothing for it any more.
    let p = &status_json(m.path())["prefetch"];
    for figure in [
        "held_bytes",
        "files_ready",
        "files_reading",
        "listings_ahead",
        "jobs_queued",
    ] {
        assert_eq!(p[figure].as_u64(), Some(0), "{figure}: {p}");
    }
}

#[test]
fn a_file_changed_after_it_was_read_ahead_is_read_fresh() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..10 {
        std::fs::write(dir.join(format!("f{i}")), format!("old {i}\n")).unwrap();
    }
    let Some(server) = Server::quirky(data.path(), &[], &[]) else {
        return;
    };
    // No listing cache: each open sees the server's listing of now.
    let m = Mount::new(&server, &["dir_cache_ttl=0"]);
    for i in 0..3 {
        let got = std::fs::read_to_string(m.path().join(format!("d/f{i}"))).unwrap();
        assert_eq!(got, format!("old {i}\n"));
    }
    let ahead = |name: &str| {
        m.log_text()
            .contains(&format!("prefetch: read d/{name} ahead"))
    };
    assert!(
        wait_for(Duration::from_secs(10), || ahead("f3")
            && ahead("f4")
            && ahead("f5")),
        "f3, f4 and f5 read ahead:\n{}",
        m.log_text()
    );
    // f4 grows; f5 keeps its size but not its time.
    std::fs::write(dir.join("f4"), "new and longer 4\n").unwrap();
    std::fs::write(dir.join("f5"), "NEW 5\n").unwrap();
    let t = std::time::SystemTime::now() + Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(dir.join("f5"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    let f3 = std::fs::read_to_string(m.path().join("d/f3")).unwrap();
    assert_eq!(f3, "old 3\n", "unchanged, from the read ahead");
    let f4 = std::fs::read_to_string(m.path().join("d/f4")).unwrap();
    assert_eq!(f4, "new and longer 4\n");
    let f5 = std::fs::read_to_string(m.path().join("d/f5")).unwrap();
    assert_eq!(f5, "NEW 5\n");
    let log = m.log_text();
    assert!(log.contains("prefetch: d/f3 was read ahead"), "{log}");
    assert!(
        log.contains("d/f5 changed since it was read ahead"),
        "{log}"
    );
}

/// Our own changes drop what was read ahead, even where the listing could not tell: a
/// rename onto a file read ahead brings a file of the same size and time.
#[test]
fn a_change_through_the_mount_drops_the_file_read_ahead() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    for i in 0..8 {
        let path = dir.join(format!("f{i}"));
        std::fs::write(&path, format!("old {i}\n")).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(when).unwrap();
    }
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    for i in 0..3 {
        std::fs::read_to_string(m.path().join(format!("d/f{i}"))).unwrap();
    }
    let ahead = |name: &str| {
        m.log_text()
            .contains(&format!("prefetch: read d/{name} ahead"))
    };
    assert!(
        wait_for(Duration::from_secs(10), || ahead("f4") && ahead("f6")),
        "f4 and f6 read ahead"
    );
    // f5 (same size, same time) replaces f4.
    std::fs::rename(m.path().join("d/f5"), m.path().join("d/f4")).unwrap();
    assert_eq!(
        std::fs::read_to_string(m.path().join("d/f4")).unwrap(),
        "old 5\n"
    );
    // A write of the same length.
    std::fs::write(m.path().join("d/f6"), "new 6\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(m.path().join("d/f6")).unwrap(),
        "new 6\n"
    );
    assert_eq!(std::fs::read_to_string(dir.join("f6")).unwrap(), "new 6\n");
}

#[test]
fn prefetch_off_sends_no_speculative_commands() {
    let data = tempfile::tempdir().unwrap();
    let dirs = make_tree(&data.path().join("tree"), 2, 3, 4);
    let Some(server) = Server::quirky(data.path(), &[], &[]) else {
        return;
    };
    let m = Mount::new(&server, &["prefetch=off"]);
    // An `ls -l` of a directory with subdirectories lists that directory only.
    run(Command::new("ls").arg("-l").arg(m.path().join("tree")));
    // Files read whole in listing order: each is read once, and no other.
    for f in 0..4 {
        std::fs::read_to_string(m.path().join(format!("tree/t0/s0/f{f}"))).unwrap();
    }
    let log = server.command_log();
    let listed = listings(&log);
    let mut paths: Vec<&str> = listed.keys().map(String::as_str).collect();
    paths.sort();
    assert_eq!(
        paths,
        ["/", "/tree", "/tree/t0", "/tree/t0/s0"],
        "only what was asked for:\n{log}"
    );
    let retrs = commands(&log)
        .into_iter()
        .filter(|(_, v, _)| v == "RETR")
        .count();
    assert_eq!(retrs, 4, "{log}");
    assert!(dirs > 4);
    assert!(!m.log_text().contains("prefetch: "));
}

#[test]
fn grep_r_over_200_files_returns_their_content_read_ahead() {
    let data = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    for d in 0..8 {
        let dir = data.path().join(format!("small/g{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..25 {
            let mut body: String = (0..40).map(|l| format!("line {l} of {d}/{f}\n")).collect();
            if (d * 25 + f) % 3 == 0 {
                body.push_str(&format!("NEEDLE {d}/{f}\n"));
                expected.push(format!("NEEDLE {d}/{f}"));
            }
            std::fs::write(dir.join(format!("file{f:02}.txt")), body).unwrap();
        }
    }
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let out = run(Command::new("grep")
        .args(["-r", "-h", "NEEDLE"])
        .arg(m.path().join("small")));
    // Found ready by the walk (how many is a race on loopback; at 50 ms RTT 190 of 200).
    let log = m.log_text();
    let hits = log.matches(" was read ahead").count();
    assert!(hits >= 1, "no file was found read ahead:\n{log}");
    eprintln!("{hits} of 200 files were found read ahead");
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
    // Every byte as on the server, read ahead or not.
    let through = run(Command::new("sh").arg("-c").arg(format!(
        "cd {} && find . -type f | sort | xargs sha256sum",
        m.path().join("small").display()
    )));
    let direct = run(Command::new("sh").arg("-c").arg(format!(
        "cd {} && find . -type f | sort | xargs sha256sum",
        data.path().join("small").display()
    )));
    assert_eq!(through, direct);
}

/// `sha256sum` of every file under `dir`, in name order, as paths relative to it.
fn sums(dir: &Path) -> String {
    run(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . -type f | LC_ALL=C sort | xargs sha256sum",
        dir.display()
    )))
}

#[test]
fn walks_read_ahead_exactly_what_each_server_kind_has() {
    let kinds = [
        ServerKind::PureFtpd,
        ServerKind::Vsftpd,
        ServerKind::Proftpd,
        ServerKind::Unftp,
        ServerKind::Pyftpdlib,
        ServerKind::VsftpdTls,
    ];
    for kind in kinds {
        let data = tempfile::tempdir().unwrap();
        let tree = data.path().join("tree");
        make_tree(&tree, 2, 2, 12);
        let server = match kind {
            ServerKind::VsftpdTls => {
                use std::os::unix::fs::PermissionsExt;
                for e in walkdir(data.path()) {
                    let mode = if e.is_dir() { 0o755 } else { 0o644 };
                    std::fs::set_permissions(&e, std::fs::Permissions::from_mode(mode)).unwrap();
                }
                Server::vsftpd_tls_anonymous(data.path())
            }
            _ => Server::start(kind, data.path()),
        };
        let Some(server) = server else {
            continue;
        };
        let m = Mount::new(&server, &[]);
        let has = |what: &str| m.log_text().contains(what);
        // Opening a directory lists its subdirectories ahead, in this server's dialect.
        std::fs::read_dir(m.path().join("tree")).unwrap().count();
        assert!(
            wait_for(Duration::from_secs(10), || has(
                "prefetch: listed tree/t0 ahead"
            )),
            "{kind:?}: nothing listed ahead"
        );
        // Three files read whole in listing order (f0, f1, f10): the next are read ahead.
        let s0 = m.path().join("tree/t0/s0");
        for f in ["f0", "f1", "f10"] {
            std::fs::read(s0.join(f)).unwrap();
        }
        assert!(
            wait_for(Duration::from_secs(10), || has(
                "prefetch: read tree/t0/s0/f11 ahead"
            )),
            "{kind:?}: nothing read ahead"
        );
        // The whole tree through the mount is the server's, bytes read ahead included.
        assert_eq!(sums(&m.path().join("tree")), sums(&tree), "{kind:?}");
        assert!(has("tree/t0/s0/f11 was read ahead"), "{kind:?}");
        assert!(has("tree/t0 was listed ahead"), "{kind:?}");
    }
}

/// Every path under `root`, itself included.
fn walkdir(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let children: Vec<_> = std::fs::read_dir(&out[i])
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// The pool's rule for guesses, without a mount: a guess takes a connection only while
/// another stays free, so with two connections and one guess stalled, the next guess is
/// refused at once and a request still gets the other connection.
#[test]
fn a_guess_never_takes_the_last_free_connection() {
    let server = FakeServer::start(FakeOpts {
        mlsd: true,
        listing: vec!["type=file;size=3;modify=20200101000000; f".into()],
        stall_list: Some("slow"),
        ..FakeOpts::default()
    });
    let remote = std::sync::Arc::new(
        ftpfs::ftp::FtpRemote::connect(server.endpoint(), 2, "/", ftpfs::ftp::ListingMode::Auto)
            .unwrap(),
    );
    use ftpfs::remote::Remote;
    let stalled = std::sync::Arc::clone(&remote);
    std::thread::spawn(move || stalled.list_spare("slow", &mut || true));
    assert!(
        wait_for(Duration::from_secs(10), || {
            server
                .commands
                .lock()
                .unwrap()
                .iter()
                .any(|c| c == "MLSD /slow")
        }),
        "the first guess is under way"
    );
    let mut asked = false;
    let second = remote.list_spare("other", &mut || {
        asked = true;
        true
    });
    assert!(matches!(second, Ok(None)), "{second:?}");
    assert!(!asked, "no connection was in hand for the second guess");
    let listed = remote.list("fast").unwrap();
    assert_eq!(listed.len(), 1, "the request got the free connection");
}
