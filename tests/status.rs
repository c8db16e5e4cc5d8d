//! `ftpfs status`: real mounts of pure-ftpd asked through their control sockets.
//!
//! What the command reports is checked against what can be seen independently: the
//! transfer against the bytes the test itself has read, the command counts against a proxy
//! that counts the commands on their way to the server, the socket's mode and life against
//! the file system.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use parking_lot::Mutex;
use serde_json::Value;

fn pure_ftpd(root: &Path) -> Option<Server> {
    let s = Server::start(ServerKind::PureFtpd, root);
    if s.is_none() && require_servers() {
        panic!("pure-ftpd is not installed");
    }
    s
}

/// `ftpfs status ARGS`, with the tests' runtime directory.
fn status(args: &[&str]) -> Output {
    ftpfs()
        .arg("status")
        .args(args)
        .output()
        .expect("ftpfs status runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn canonical(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn an_idle_mount_reports_its_server_and_pool_and_no_transfer() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "hello\n").unwrap();
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    // One listing, so that a connection exists and has gone back to the pool.
    assert!(std::fs::read_dir(m.path()).unwrap().count() >= 1);
    let s = status_json(m.path());
    assert_eq!(s["version"], 1);
    assert_eq!(s["pid"], m.pid());
    assert_eq!(s["mountpoint"], canonical(m.path()));
    let url = s["server"]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("ftp://{USER}@127.0.0.1:{}", server.port)),
        "{url}"
    );
    // pure-ftpd here has no certificate: tls=try fell back to plain.
    assert_eq!(s["server"]["tls"], "off");
    assert_eq!(s["server"]["data"], "passive");
    assert_eq!(s["transfers"].as_array().unwrap().len(), 0);
    let c = &s["connections"];
    assert!(c["open"].as_u64().unwrap() >= 1, "{c}");
    assert_eq!(c["busy"], 0, "{c}");
    assert_eq!(c["idle"], c["open"], "{c}");
    assert_eq!(c["max"], 5, "{c}");
    assert_eq!(s["writeback"]["enabled"], false);
    let k = &s["counters"];
    assert!(k["logins"].as_u64().unwrap() >= 1, "{k}");
    assert!(k["commands"]["USER"].as_u64().unwrap() >= 1, "{k}");

    // The socket: the mounting user's alone.
    let sock = PathBuf::from(s["socket"].as_str().unwrap());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600);
    assert_eq!(mode(sock.parent().unwrap()), 0o700);

    // No password anywhere, in JSON or in the table.
    let table = status(&[m.path().to_str().unwrap()]);
    assert!(table.status.success(), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    assert!(table.contains(&canonical(m.path())), "{table}");
    assert!(table.contains("transfers    none"), "{table}");
    for out in [table, s.to_string()] {
        assert!(!out.contains(PASSWORD), "the password shows: {out}");
    }

    // Gone with the mount.
    drop(m);
    assert!(
        wait_for(Duration::from_secs(10), || !sock.exists()),
        "{} stayed after unmount",
        sock.display()
    );
}

#[test]
fn a_slow_read_shows_as_a_transfer_whose_bytes_grow() {
    let data = tempfile::tempdir().unwrap();
    let size: u64 = 64 << 20;
    let f = std::fs::File::create(data.path().join("big.bin")).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let mut file = std::fs::File::open(m.path().join("big.bin")).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    file.read_exact(&mut buf).unwrap();
    let transfer = |s: &Value| -> Value {
        let t = s["transfers"].as_array().unwrap();
        assert_eq!(t.len(), 1, "{s}");
        t[0].clone()
    };
    let first = transfer(&status_json(m.path()));
    assert_eq!(first["path"], "/big.bin");
    assert_eq!(first["direction"], "download");
    assert_eq!(first["size"], size);
    let at_first = first["bytes"].as_u64().unwrap();
    assert!((1 << 20..size).contains(&at_first), "{first}");
    // The pool shows the connection the stream holds.
    assert!(
        status_json(m.path())["connections"]["transfers"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // Read on, well past what the kernel read ahead the first time.
    for _ in 0..16 {
        file.read_exact(&mut buf).unwrap();
    }
    let second = transfer(&status_json(m.path()));
    let at_second = second["bytes"].as_u64().unwrap();
    assert!(
        at_second >= 17 << 20 && at_second > at_first,
        "{first} then {second}"
    );
    // The rate is given once the transfer is a tenth of a second old; it is held open.
    let mut third = Value::Null;
    let rated = wait_for(Duration::from_secs(5), || {
        third = transfer(&status_json(m.path()));
        third["rate"].as_f64().is_some_and(|r| r > 0.0) && third["eta_secs"].is_number()
    });
    assert!(rated, "{third}");
    let table = text(&status(&[m.path().to_str().unwrap()]).stdout);
    assert!(table.contains("download /big.bin"), "{table}");

    drop(file);
    assert!(
        wait_for(Duration::from_secs(10), || status_json(m.path())
            ["transfers"]
            .as_array()
            .unwrap()
            .is_empty()),
        "the closed file's transfer stayed"
    );
}

/// A TCP proxy in front of an FTP server's control port that counts the commands going
/// through it, by verb. Data connections (passive) go to the server directly.
struct CountingProxy {
    port: u16,
    counts: Arc<Mutex<std::collections::BTreeMap<String, u64>>>,
}

impl CountingProxy {
    fn start(upstream: u16) -> CountingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let c = Arc::clone(&counts);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut from_server, mut to_client) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(std::net::Shutdown::Both);
                });
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    let mut lines = BufReader::new(client);
                    let mut server = server;
                    let mut line = Vec::new();
                    loop {
                        line.clear();
                        match lines.read_until(b'\n', &mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                        let verb = String::from_utf8_lossy(&line)
                            .split([' ', '\r', '\n'])
                            .next()
                            .unwrap_or_default()
                            .to_ascii_uppercase();
                        *c.lock().entry(verb).or_insert(0) += 1;
                        if server.write_all(&line).is_err() {
                            break;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CountingProxy { port, counts }
    }
}

/// Counted against a proxy, through MLSD listings and through LIST listings (whose exact
/// times come from pipelined MDTM, which ftpfs writes itself rather than through suppaftp).
#[test]
fn command_counts_are_the_commands_the_server_received() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("dir")).unwrap();
    std::fs::write(data.path().join("dir/a.txt"), "some text\n").unwrap();
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    for (listing, verbs) in [("auto", ["MLSD", "PWD"]), ("list", ["LIST", "MDTM"])] {
        let proxy = CountingProxy::start(server.port);
        // Plain, so that the proxy can read the commands.
        let m = Mount::of_url(
            &format!("ftp://{USER}@127.0.0.1:{}", proxy.port),
            &["tls=off", &format!("listing={listing}")],
        );
        // A known mix: listings, a read, a write, a directory made and removed.
        let names: Vec<_> = std::fs::read_dir(m.path().join("dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names.iter().any(|n| n == "a.txt"), "{names:?}");
        assert_eq!(
            std::fs::read_to_string(m.path().join("dir/a.txt")).unwrap(),
            "some text\n"
        );
        std::fs::write(m.path().join(format!("dir/{listing}.txt")), "written\n").unwrap();
        std::fs::create_dir(m.path().join(listing)).unwrap();
        std::fs::remove_dir(m.path().join(listing)).unwrap();

        let counted = |s: &Value| -> std::collections::BTreeMap<String, u64> {
            serde_json::from_value(s["counters"]["commands"].clone()).unwrap()
        };
        // The operations have returned, so the proxy has seen every command they sent; the
        // poll only guards against a command still between the proxy's read and its count.
        let mut last = (Default::default(), Default::default());
        let same = wait_for(Duration::from_secs(10), || {
            last = (counted(&status_json(m.path())), proxy.counts.lock().clone());
            last.0 == last.1
        });
        assert!(
            same,
            "listing={listing}: status counted {:?}, the server received {:?}",
            last.0, last.1
        );
        let ours = last.0;
        for verb in ["USER", "PASS", "FEAT", "RETR", "STOR", "MKD", "RMD"]
            .into_iter()
            .chain(verbs)
        {
            assert!(
                ours.get(verb).copied().unwrap_or(0) >= 1,
                "listing={listing}: {verb}: {ours:?}"
            );
        }
    }
}

#[test]
fn every_mount_of_the_user_is_listed_without_an_argument() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    let a = Mount::new(&server, &[]);
    let b = Mount::new(&server, &[]);
    let out = status(&["--json"]);
    // Other tests' mounts may be listed too; these two must be.
    let all: Vec<Value> = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    let listed: Vec<&str> = all
        .iter()
        .filter_map(|s| s["mountpoint"].as_str())
        .collect();
    for m in [&a, &b] {
        assert!(listed.contains(&canonical(m.path()).as_str()), "{listed:?}");
    }
    let table = text(&status(&[]).stdout);
    for m in [&a, &b] {
        assert!(table.contains(&canonical(m.path())), "{table}");
    }
}

#[test]
fn a_directory_that_is_not_an_ftpfs_mount_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = status(&[dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("not an ftpfs mount"), "{err}");
}

#[test]
fn a_mount_whose_process_does_not_answer_fails_within_the_deadline() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    status_json(m.path());
    // Stopped, it answers neither FUSE nor its socket.
    let pid = m.pid() as i32;
    // SAFETY: a signal to the mount process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let start = Instant::now();
    let out = status(&[m.path().to_str().unwrap()]);
    let took = start.elapsed();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains("no answer within 5 s"), "{err}");
    assert!(took < Duration::from_secs(9), "took {took:?}");
    // And it answers again once it runs.
    status_json(m.path());
}

/// Another user learns nothing: `ftpfs status` run as `nobody`, even pointed at root's
/// runtime directory, fails without printing anything of the mount, and a direct connect
/// to the socket is refused by its directory's mode. (The server's own `SO_PEERCRED` check
/// behind that is proven in `status::socket`'s unit tests, which can pose as a stranger.)
#[test]
fn another_user_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let sock = status_json(m.path())["socket"]
        .as_str()
        .unwrap()
        .to_string();
    // The binary where `nobody` can run it (the build directory may be under root's home).
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("ftpfs");
    copy_ftpfs_to(&bin);
    for args in [vec![m.path().to_str().unwrap()], vec!["--json"]] {
        let out = as_nobody()
            .arg(&bin)
            .arg("status")
            .args(&args)
            .env("XDG_RUNTIME_DIR", runtime_dir())
            .output()
            .unwrap();
        let (stdout, err) = (text(&out.stdout), text(&out.stderr));
        assert!(!stdout.contains(&canonical(m.path())), "{args:?}: {stdout}");
        assert!(
            !stdout.contains(&server.port.to_string()),
            "{args:?}: {stdout}"
        );
        if args.len() == 1 && args[0] != "--json" {
            assert_eq!(out.status.code(), Some(1), "{stdout}");
            assert!(err.contains(m.path().to_str().unwrap()), "{err}");
        }
    }
    let connect = "import socket, sys\n\
                   s = socket.socket(socket.AF_UNIX)\n\
                   try:\n    s.connect(sys.argv[1])\nexcept PermissionError:\n    sys.exit(13)";
    let out = as_nobody()
        .args(["/usr/bin/python3", "-c", connect, &sock])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(13), "{}", text(&out.stderr));
}

#[test]
fn a_tls_mount_reports_explicit_tls_and_its_protocol() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpdTls, data.path()) else {
        assert!(!require_servers(), "pure-ftpd is not installed");
        return;
    };
    let m = Mount::new(&server, &[]);
    std::fs::write(m.path().join("f.txt"), "over TLS\n").unwrap();
    let s = status_json(m.path());
    assert_eq!(s["server"]["tls"], "explicit", "{s}");
    let protocol = s["server"]["tls_protocol"].as_str().unwrap_or_default();
    assert!(
        ["TLSv1.2", "TLSv1.3"].contains(&protocol),
        "{}",
        s["server"]
    );
}

#[test]
fn a_server_restart_counts_lost_connections_and_reconnects() {
    let data = tempfile::tempdir().unwrap();
    for d in ["a", "b"] {
        std::fs::create_dir(data.path().join(d)).unwrap();
    }
    let Some(mut server) = pure_ftpd(data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    std::fs::read_dir(m.path().join("a"))
        .unwrap()
        .for_each(drop);
    let before = status_json(m.path())["counters"].clone();
    assert_eq!(
        (&before["lost"], &before["reconnects"]),
        (&0.into(), &0.into())
    );
    server.crash_and_restart(Duration::from_millis(300));
    // A directory not listed yet: the server must be asked.
    std::fs::read_dir(m.path().join("b"))
        .unwrap()
        .for_each(drop);
    let after = status_json(m.path())["counters"].clone();
    assert!(after["lost"].as_u64().unwrap() >= 1, "{after}");
    assert!(after["reconnects"].as_u64().unwrap() >= 1, "{after}");
    assert!(
        after["logins"].as_u64().unwrap() > before["logins"].as_u64().unwrap(),
        "{before} then {after}"
    );
}

/// An upload is listed while it runs, part way through (progress is noted as it goes, not
/// only when a whole `sendfile` returns), and gone once it is done.
#[test]
fn an_upload_in_progress_is_listed_with_its_bytes() {
    let data = tempfile::tempdir().unwrap();
    // 8 MB/s: 32 MiB take seconds to go up.
    let Some(server) = Server::pure_ftpd_with(data.path(), &["-T", "8000:8000"]) else {
        assert!(!require_servers(), "pure-ftpd is not installed");
        return;
    };
    let m = Mount::new(&server, &[]);
    let size: u64 = 32 << 20;
    let target = m.path().join("up.bin");
    // Sized first, then written: not an append, so it is not streamed while written but
    // goes up whole at close, through sendfile on this plain connection.
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::File::create(target).unwrap();
        f.set_len(size).unwrap();
        f.write_all(&vec![7u8; size as usize]).unwrap();
        close(f)
    });
    let mut seen = Value::Null;
    let partway = wait_for(Duration::from_secs(30), || {
        let s = status_json(m.path());
        let up = s["transfers"].as_array().unwrap().iter().find(|t| {
            let bytes = t["bytes"].as_u64().unwrap();
            t["direction"] == "upload"
                && t["path"].as_str().unwrap().contains("up.bin")
                && bytes > 0
                && bytes < size
        });
        let found = up.is_some();
        seen = up.cloned().unwrap_or_else(|| s.clone());
        found
    });
    assert!(partway, "no upload seen part way: {seen}");
    assert_eq!(writer.join().unwrap(), Ok(()));
    assert_eq!(
        std::fs::metadata(data.path().join("up.bin")).unwrap().len(),
        size
    );
    assert!(
        status_json(m.path())["transfers"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the finished upload stayed listed"
    );
}

#[test]
fn watch_prints_again_and_ends_when_the_mount_goes_away() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let mut child = ftpfs()
        .args(["status", "--watch", "-n", "0.2"])
        .arg(m.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let head = canonical(m.path());
    let mut tables = 0;
    let end = Instant::now() + Duration::from_secs(10);
    while tables < 2 && Instant::now() < end {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            tables += usize::from(line.starts_with(&head));
        }
    }
    assert!(tables >= 2, "{tables} tables printed");
    let path = m.path().to_path_buf();
    drop(m);
    assert!(
        exits_within(&mut child, Duration::from_secs(10)),
        "--watch went on"
    );
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter()
            .any(|l| l == &format!("{}: no longer mounted", path.display())),
        "{rest:?}"
    );
}

/// An upload refused for good ends in the recovery directory, and status says which file
/// and where its data is. (libunftp with injected faults: the refusal must be certain.)
#[test]
fn a_failed_upload_is_listed_with_where_its_data_was_saved() {
    use common::faulty::{Fault, Kind, Verb};
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("app.txt"), b"old").unwrap();
    let (server, faults) = Server::unftp_with_faults(data.path());
    let m = Mount::new(&server, &["timeout=2,retries=1,retry_delay=1,deadline=10"]);
    faults.always(Verb::Stor, Fault::Fail(Kind::PermissionDenied));
    let mut f = std::fs::File::create(m.path().join("app.txt")).unwrap();
    f.write_all(b"precious").unwrap();
    assert_eq!(close(f), Err(libc::EACCES));
    // Saved at release, after close returned.
    let mut last = Value::Null;
    let listed = wait_for(Duration::from_secs(20), || {
        last = status_json(m.path());
        !last["failures"].as_array().unwrap().is_empty()
    });
    assert!(listed, "{last}");
    let failure = &last["failures"][0];
    assert_eq!(failure["path"], "/app.txt", "{failure}");
    let saved = PathBuf::from(failure["saved_to"].as_str().unwrap());
    assert!(saved.starts_with(m.recovery_dir()), "{failure}");
    assert_eq!(std::fs::read(&saved).unwrap(), b"precious");
    let table = text(&status(&[m.path().to_str().unwrap()]).stdout);
    assert!(
        table.contains(&format!(
            "/app.txt not uploaded; saved to {}",
            saved.display()
        )),
        "{table}"
    );
}

/// A mount process run by `nobody` (65534), ended on drop even when the test fails.
struct UserDaemon {
    child: std::process::Child,
    mnt: PathBuf,
}

impl Drop for UserDaemon {
    fn drop(&mut self) {
        let _ = unmount(&self.mnt);
        if !exits_within(&mut self.child, Duration::from_secs(10)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// An ordinary user's mount (through fusermount3) answers that user, from the runtime
/// directory it names, and refuses root, which can reach the socket whatever its mode: the
/// mount's own uid check (SO_PEERCRED) is what stops it.
#[test]
fn a_users_mount_answers_that_user_and_refuses_root() {
    use std::os::unix::fs::chown;
    const NOBODY: u32 = 65534;
    if std::fs::metadata("/dev/fuse").map_or(0, |m| m.mode()) & 0o006 != 0o006 {
        assert!(!require_servers(), "/dev/fuse: users cannot mount");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let (bin, mnt, run) = (
        home.path().join("ftpfs"),
        home.path().join("mnt"),
        home.path().join("run"),
    );
    copy_ftpfs_to(&bin);
    for (d, mode) in [(home.path(), 0o755), (&mnt, 0o755), (&run, 0o700)] {
        std::fs::create_dir_all(d).unwrap();
        chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let child = as_nobody()
        .arg(&bin)
        .args(["mount", "-f"])
        .arg(server.url())
        .arg(&mnt)
        .arg("--log-file")
        .arg(home.path().join("log"))
        .env("HOME", home.path())
        .env("XDG_RUNTIME_DIR", &run)
        .env("NETRC", "/nonexistent")
        .env("FTPFS_PASSWORD", PASSWORD)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut daemon = UserDaemon {
        child,
        mnt: mnt.clone(),
    };
    let up = wait_for(Duration::from_secs(20), || {
        is_mounted(&mnt) || daemon.child.try_wait().ok().flatten().is_some()
    });
    let log = || std::fs::read_to_string(home.path().join("log")).unwrap_or_default();
    assert!(up && is_mounted(&mnt), "no mount; log:\n{}", log());

    let out = as_nobody()
        .arg(&bin)
        .args(["status", "--json"])
        .arg(&mnt)
        .env("XDG_RUNTIME_DIR", &run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), log());
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["pid"], daemon.child.id(), "{s}");
    let sock = PathBuf::from(s["socket"].as_str().unwrap());
    assert!(sock.starts_with(run.join("ftpfs")), "{s}");
    let md = std::fs::metadata(&sock).unwrap();
    assert_eq!((md.uid(), md.mode() & 0o777), (NOBODY, 0o600));

    // Root passes the socket's mode; the mount refuses it all the same.
    let ask = "import socket, sys\n\
               s = socket.socket(socket.AF_UNIX)\n\
               s.connect(sys.argv[1])\n\
               s.sendall(b'status\\n')\n\
               print(s.makefile().read())";
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", ask])
        .arg(&sock)
        .output()
        .unwrap();
    let reply = text(&out.stdout);
    assert!(
        reply.contains("\"error\"") && reply.contains("permission denied"),
        "{reply}{}",
        text(&out.stderr)
    );
    assert!(!reply.contains("pid"), "{reply}");
    assert!(log().contains("refused a client of uid 0"), "{}", log());
}

/// As `df` takes any path: a path in the mount, `.` in a subdirectory of it included, names
/// the mount.
#[test]
fn a_path_inside_a_mount_names_that_mount() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("dir/sub")).unwrap();
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let inside = m.path().join("dir/sub");
    assert_eq!(status_json(&inside)["mountpoint"], canonical(m.path()));
    let out = ftpfs()
        .args(["status", "--json", "."])
        .current_dir(&inside)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["mountpoint"], canonical(m.path()));
    // Beside the mount is not in it.
    let beside = PathBuf::from(format!("{}-not", m.path().display()));
    let out = status(&[beside.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not an ftpfs mount"));
}

/// With `-o writeback` the snapshot shows the queue: on, and empty once `sync MOUNTPOINT`
/// (which waits for the whole queue) has returned, with the file on the server.
#[test]
fn a_write_back_mount_shows_its_queue() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = pure_ftpd(data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["writeback"]);
    std::fs::write(m.path().join("queued.txt"), b"queued\n").unwrap();
    let s = status_json(m.path());
    assert_eq!(s["writeback"]["enabled"], true, "{s}");
    let synced = std::process::Command::new("sync")
        .arg(m.path())
        .status()
        .unwrap();
    assert!(synced.success());
    let s = status_json(m.path());
    assert_eq!(s["writeback"]["files"], 0, "{s}");
    assert_eq!(
        std::fs::read(data.path().join("queued.txt")).unwrap(),
        b"queued\n"
    );
}
