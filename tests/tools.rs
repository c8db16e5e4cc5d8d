//! Everyday tools writing through a mount of every real server: `cp -a`, `tar x`, and
//! `rsync -a` twice (the second run must find everything up to date), issue 13.
//!
//! They exited 1, 2 and 23 on vsftpd and pyftpdlib: both refuse to set a directory's time,
//! and vsftpd's `LIST` times (it has no `MLSD`) are cut to the minute or the day, so every
//! `rsync -a` after the listing cache expired sent every file again. Times are checked after
//! the cache expired (`dir_cache_ttl=1`), so they come from a fresh listing.
//!
//! vsftpd runs plain with a local user of our own (`ftpfsvsu`, made by
//! scripts/install-deps.sh), from the package unpacked under /opt/ftpfs-test
//! ([`ServerKind::Vsftpd`]).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// The listing cache of the mounts here: a re-list is one second away.
const TTL: &str = "dir_cache_ttl=1";

/// Waits until a listing cached now has expired (the cache's TTL is a lower bound on time,
/// not a race: nothing else needs to happen meanwhile).
fn let_cache_expire() {
    std::thread::sleep(Duration::from_millis(1500));
}

/// A source tree of 49 files in nested directories, with times in the past at odd seconds
/// (that `LIST` cannot show) and a few modes.
fn source_tree(root: &Path) {
    let mut rng = Rng(0x7135);
    for d in ["a", "a/b", "a/b/c", "empty", "with space"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let dirs = ["", "a", "a/b", "a/b/c", "with space"];
    for i in 0..49u64 {
        let dir = dirs[i as usize % dirs.len()];
        let name = format!("f{i:02}{}.dat", if i % 7 == 0 { " x" } else { "" });
        let path = root.join(dir).join(name);
        let size = rng.below(20_000) as usize;
        std::fs::write(&path, rng.bytes(size)).unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_577_934_245 + i * 86_400 * 3 + i * 7);
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(t).unwrap();
        if i % 5 == 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    for d in ["a/b/c", "a/b", "a", "empty", "with space"] {
        let when = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
        std::fs::File::open(root.join(d))
            .unwrap()
            .set_modified(when)
            .unwrap();
    }
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("the tool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), format!("{:?}: {text}", out.status))
}

fn files_transferred(stats: &str) -> Option<u64> {
    stats
        .lines()
        .find_map(|l| l.strip_prefix("Number of regular files transferred: "))
        .and_then(|n| n.trim().replace(',', "").parse().ok())
}

/// `rsync -a --stats src/ dst/`; its output, and how many files it sent.
fn rsync(src: &Path, dst: &Path) -> (String, u64) {
    let (ok, out) = run(Command::new("rsync")
        .arg("-a")
        .arg("--stats")
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dst.display())));
    assert!(ok, "rsync -a failed: {out}");
    let n = files_transferred(&out).unwrap_or_else(|| panic!("no stats in {out}"));
    (out, n)
}

fn rsync_installed() -> bool {
    let ok = Command::new("rsync")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && require_servers() {
        panic!("rsync is required (scripts/install-deps.sh)");
    }
    ok
}

/// `cp -a`, `tar x` and `rsync -a` twice into `mount`, whose server keeps its files in
/// `server_root`: all exit 0, every byte arrives, and the second rsync, after the listing
/// cache expired, sends nothing. Returns the directory holding the source tree (`tree`).
fn tools_write_everything(mount: &Path, server_root: &Path) -> tempfile::TempDir {
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("tree");
    source_tree(&src);
    let want = snapshot(&src);

    let (ok, out) = run(Command::new("cp").arg("-a").arg(&src).arg(mount.join("cp")));
    assert!(ok, "cp -a: {out}");
    assert_eq!(snapshot(&server_root.join("cp")), want, "cp -a content");

    let tarball = src_dir.path().join("tree.tar");
    let (ok, out) = run(Command::new("tar")
        .arg("-cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("."));
    assert!(ok, "tar c: {out}");
    std::fs::create_dir(mount.join("tar")).unwrap();
    let (ok, out) = run(Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(mount.join("tar")));
    assert!(ok, "tar x: {out}");
    assert_eq!(snapshot(&server_root.join("tar")), want, "tar x content");

    let (_, first) = rsync(&src, &mount.join("rs"));
    assert_eq!(first, 49, "the first rsync sends every file");
    assert_eq!(snapshot(&server_root.join("rs")), want, "rsync content");
    let_cache_expire();
    let (out, second) = rsync(&src, &mount.join("rs"));
    assert_eq!(second, 0, "the second rsync found files to send:\n{out}");
    // And the times a fresh listing shows are the source's, to the second.
    let_cache_expire();
    for rel in ["f00 x.dat", "a/f01.dat", "a/b/c/f03.dat"] {
        let got = std::fs::metadata(mount.join("rs").join(rel))
            .and_then(|m| m.modified())
            .unwrap();
        let want = std::fs::metadata(src.join(rel))
            .and_then(|m| m.modified())
            .unwrap();
        assert_eq!(secs(got), secs(want), "{rel}: time after a re-list");
    }
    src_dir
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The tools through a mount of a server of `kind` that keeps modes and file times.
fn tools_on(kind: ServerKind) {
    let root = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(kind, root.path()) else {
        return;
    };
    if !rsync_installed() {
        return;
    }
    let m = Mount::new(&server, &[TTL]);
    tools_write_everything(m.path(), root.path());
}

#[test]
fn cp_tar_and_rsync_twice_into_pure_ftpd() {
    tools_on(ServerKind::PureFtpd);
}

#[test]
fn cp_tar_and_rsync_twice_into_pyftpdlib() {
    tools_on(ServerKind::Pyftpdlib);
}

/// libunftp (its filesystem back end) can set neither a time nor a mode: `MFMT` and
/// `SITE CHMOD` are unknown to it, and it takes `MDTM time path` for a path. So `cp -a`,
/// `tar x` cannot preserve those and say so, but every byte arrives and nothing else fails.
///
/// `rsync -a` is left out here: it sets the mode of its temporary file before renaming it,
/// and a refused `SITE CHMOD` (`ENOTSUP`) makes it delete the file, so nothing arrives. What
/// a refused `SITE CHMOD` should mean belongs to the capability memory (issue 13, item 3).
#[test]
fn cp_and_tar_into_libunftp_copy_every_byte_and_report_only_modes_and_times() {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(ServerKind::Unftp, root.path()).expect("in-process");
    if !rsync_installed() {
        return;
    }
    let m = Mount::new(&server, &[TTL]);
    let mount = m.path();
    let src_dir = tempfile::tempdir().unwrap();
    let src = src_dir.path().join("tree");
    source_tree(&src);
    let want = snapshot(&src);
    let tarball = src_dir.path().join("tree.tar");
    let (ok, out) = run(Command::new("tar")
        .arg("-cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("."));
    assert!(ok, "tar c: {out}");
    std::fs::create_dir(mount.join("tar")).unwrap();
    let runs = [
        (
            "cp",
            Command::new("cp")
                .arg("-a")
                .arg(&src)
                .arg(mount.join("cp"))
                .output(),
        ),
        (
            "tar",
            Command::new("tar")
                .arg("-xf")
                .arg(&tarball)
                .arg("-C")
                .arg(mount.join("tar"))
                .output(),
        ),
    ];
    for (dir, out) in runs {
        let out = out.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        for line in stderr.lines() {
            assert!(
                line.contains("Operation not supported")
                    || line.contains("Operation not permitted")
                    || line.contains("Exiting with failure status")
                    || line.contains("some files/attrs were not transferred"),
                "{dir}: an error other than a mode or a time: {line}\n{stderr}"
            );
        }
        assert_eq!(snapshot(&root.path().join(dir)), want, "{dir}: content");
    }
}

/// pyftpdlib leaves `unix.mode` out of `MLSD` unless `OPTS MLST` asks for it: a chmod then
/// seemed undone at the next listing.
#[test]
fn chmod_survives_a_relist_on_pyftpdlib() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("f"), b"x").unwrap();
    let Some(server) = Server::start(ServerKind::Pyftpdlib, root.path()) else {
        return;
    };
    let m = Mount::new(&server, &[TTL]);
    use std::os::unix::fs::PermissionsExt;
    let f = m.path().join("f");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    let_cache_expire();
    let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode after a re-list");
    let on_server = std::fs::metadata(root.path().join("f")).unwrap();
    assert_eq!(on_server.permissions().mode() & 0o777, 0o600);
}

/// vsftpd's URL through a proxy on `port`, as its local user.
fn vsftpd_url_via(port: u16) -> String {
    format!("ftp://{VSFTPD_USER}@127.0.0.1:{port}")
}

#[test]
fn cp_tar_and_rsync_twice_into_vsftpd() {
    let root = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::Vsftpd, root.path()) else {
        return;
    };
    if !rsync_installed() {
        return;
    }
    let m = Mount::new(&server, &[TTL]);
    let src = tools_write_everything(m.path(), root.path());
    let log = m.log_text();
    assert_eq!(
        log.matches("cannot set a directory's time").count(),
        1,
        "the refused directory time is logged once:\n{log}"
    );
    drop(m);
    // Without MDTM, LIST's day-precise dates make rsync send everything again.
    let m = Mount::new(&server, &[TTL, "exact_times=off"]);
    let (_, again) = rsync(&src.path().join("tree"), &m.path().join("rs"));
    eprintln!("vsftpd, exact_times=off: the second rsync -a sent {again} of 49 files");
    assert_eq!(
        again, 49,
        "LIST's times alone cannot tell the files are up to date"
    );
}

/// `touch -d` with seconds reads back exactly after a re-list, though vsftpd's LIST shows
/// the day only for a date that old; a directory's time, which vsftpd cannot set, is
/// accepted, and with `strict_times` refused with EPERM.
#[test]
fn vsftpd_times_read_back_exactly_and_strict_times_refuses_directories() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("d")).unwrap();
    std::fs::write(root.path().join("f"), b"x").unwrap();
    let Some(server) = Server::start(ServerKind::Vsftpd, root.path()) else {
        return;
    };
    let touch = |p: &Path| {
        run(Command::new("touch")
            .args(["-d", "2020-01-02 03:04:05 UTC"])
            .arg(p))
    };
    let want = 1_577_934_245;
    {
        let m = Mount::new(&server, &[TTL]);
        let (ok, out) = touch(&m.path().join("f"));
        assert!(ok, "touch of a file: {out}");
        let (ok, out) = touch(&m.path().join("d"));
        assert!(ok, "touch of a directory: {out}");
        let_cache_expire();
        let got = std::fs::metadata(m.path().join("f"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(secs(got), want, "the file's time after a re-list");
    }
    let m = Mount::new(&server, &[TTL, "strict_times"]);
    let when = filetime_of(want);
    let err = std::fs::File::open(m.path().join("d"))
        .unwrap()
        .set_modified(when)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    // A file's time is set as before.
    std::fs::File::options()
        .write(true)
        .open(m.path().join("f"))
        .unwrap()
        .set_modified(filetime_of(want + 60))
        .unwrap();
}

fn filetime_of(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// What a proxy in front of a server's control connections saw.
#[derive(Default, Debug)]
struct Seen {
    /// Command verbs, in order.
    commands: Vec<String>,
    /// Writes from the client: each one follows a reply it waited for (or is the first).
    client_writes: usize,
    /// MDTM commands received so far, and how many had arrived when the first MDTM reply
    /// (a `213`) went back to the client.
    mdtm: usize,
    mdtm_before_first_reply: Option<usize>,
    /// Client writes that carried MDTM commands: round trips spent on them.
    mdtm_writes: usize,
}

/// Forwards control connections to `upstream` and records what it sees. Data connections
/// go to the server directly (its passive address), as they would through NAT.
fn control_proxy(upstream: u16) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = Arc::clone(&seen);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (s1, s2) = (Arc::clone(&s), Arc::clone(&s));
            let (mut c_in, mut c_out) = (client.try_clone().unwrap(), client);
            let (mut s_in, mut s_out) = (server.try_clone().unwrap(), server);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    {
                        let mut seen = s1.lock().unwrap();
                        seen.client_writes += 1;
                        let text = String::from_utf8_lossy(&buf[..n]);
                        if text.lines().any(|l| l.starts_with("MDTM ")) {
                            seen.mdtm_writes += 1;
                        }
                        for line in String::from_utf8_lossy(&buf[..n]).lines() {
                            let verb = line.split(' ').next().unwrap_or("").to_string();
                            if verb == "MDTM" {
                                seen.mdtm += 1;
                            }
                            seen.commands.push(verb);
                        }
                    }
                    if s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    {
                        let mut seen = s2.lock().unwrap();
                        let text = String::from_utf8_lossy(&buf[..n]);
                        if seen.mdtm > 0
                            && seen.mdtm_before_first_reply.is_none()
                            && text.lines().any(|l| l.starts_with("213 "))
                        {
                            seen.mdtm_before_first_reply = Some(seen.mdtm);
                        }
                    }
                    if c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, seen)
}

/// A cold listing of 50 files on vsftpd (no MLSD): all 50 MDTM commands reach the server
/// before the first reply comes back, one round trip for the directory; the times are exact.
/// Also measures what the listing costs with and without (`exact_times=off`).
#[test]
fn vsftpd_listing_asks_mdtm_for_a_directory_in_one_round_trip() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("fifty");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..50u64 {
        let p = dir.join(format!("file {i:02}"));
        std::fs::write(&p, b"data").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(filetime_of(1_577_934_245 + i * 13)).unwrap();
    }
    let Some(server) = Server::start(ServerKind::Vsftpd, root.path()) else {
        return;
    };
    let mut cost = Vec::new();
    for exact in ["on", "off"] {
        let (port, seen) = control_proxy(server.port);
        let m = Mount::of_url(
            &vsftpd_url_via(port),
            &[TTL, &format!("exact_times={exact}")],
        );
        let before = {
            let s = seen.lock().unwrap();
            (s.commands.len(), s.client_writes)
        };
        let names: Vec<(String, u64)> = std::fs::read_dir(m.path().join("fifty"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let t = e.metadata().unwrap().modified().unwrap();
                (e.file_name().to_string_lossy().to_string(), secs(t))
            })
            .collect();
        assert_eq!(names.len(), 50);
        let s = seen.lock().unwrap();
        let (commands, round_trips) = (s.commands.len() - before.0, s.client_writes - before.1);
        eprintln!(
            "cold listing of 50 files, exact_times={exact}: {commands} commands, {round_trips} round trips ({:?})",
            &s.commands[before.0..].iter().filter(|c| *c != "MDTM").collect::<Vec<_>>()
        );
        cost.push((commands, round_trips));
        if exact == "on" {
            assert_eq!(s.mdtm, 50, "one MDTM per file: {:?}", s.commands);
            assert_eq!(s.mdtm_writes, 1, "the 50 MDTM cost one round trip, not 50");
            assert_eq!(
                s.mdtm_before_first_reply,
                Some(50),
                "every MDTM was written before the first reply was read"
            );
            for (name, t) in &names {
                let i: u64 = name[5..].parse().unwrap();
                assert_eq!(*t, 1_577_934_245 + i * 13, "{name}: exact time");
            }
        } else {
            assert_eq!(s.mdtm, 0, "exact_times=off sends no MDTM");
        }
    }
    eprintln!("(commands, round trips) with exact_times on, off: {cost:?}");
}

/// `-o listing=list` on servers that also have MLSD: their LIST dates are as coarse as
/// vsftpd's, and pipelined MDTM gives the exact times there too (pure-ftpd, pyftpdlib).
#[test]
fn listing_with_list_gets_exact_times_from_pipelined_mdtm() {
    for kind in [ServerKind::PureFtpd, ServerKind::Pyftpdlib] {
        let root = tempfile::tempdir().unwrap();
        for i in 0..20u64 {
            let p = root.path().join(format!("f{i}"));
            std::fs::write(&p, b"x").unwrap();
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(filetime_of(1_577_934_245 + i * 11))
                .unwrap();
        }
        let Some(server) = Server::start(kind, root.path()) else {
            return;
        };
        let m = Mount::new(&server, &["listing=list"]);
        for i in 0..20u64 {
            let t = std::fs::metadata(m.path().join(format!("f{i}")))
                .unwrap()
                .modified()
                .unwrap();
            assert_eq!(secs(t), 1_577_934_245 + i * 11, "{kind:?}: f{i}");
        }
        let log = m.log_text();
        assert!(
            log.contains("MDTM gave exact times of 20 of 20 files; round trips: 1"),
            "{kind:?}: {log}"
        );
    }
}

/// Over TLS `MDTM` is pipelined as on a plain connection (the commands written on the
/// control stream through the vendored suppaftp's hook): exact times of 20 files in one
/// round trip (pure-ftpd with TLS required, `listing=list`).
#[test]
fn over_tls_list_listings_get_exact_times_from_pipelined_mdtm() {
    let pki = tempfile::tempdir().unwrap();
    let Some((ca, both)) = make_pki(pki.path()) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    for i in 0..20u64 {
        let p = root.path().join(format!("f{i}"));
        std::fs::write(&p, b"x").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(filetime_of(1_577_934_245 + i * 11))
            .unwrap();
    }
    let cert = both.to_string_lossy().to_string();
    let Some(server) = Server::pure_ftpd_with(root.path(), &["-Y", "2", "-2", &cert]) else {
        return;
    };
    let url = format!("ftp://{USER}@localhost:{}", server.port);
    let opts = format!("tls=required,cafile={},listing=list", ca.display());
    let m = Mount::of_url(&url, &[&opts]);
    for i in 0..20u64 {
        let t = std::fs::metadata(m.path().join(format!("f{i}")))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(secs(t), 1_577_934_245 + i * 11, "f{i}");
    }
    let log = m.log_text();
    assert!(
        log.contains("MDTM gave exact times of 20 of 20 files; round trips: 1"),
        "{log}"
    );
}
