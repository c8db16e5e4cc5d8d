//! Faults through real mounts: a server that crashes and comes back in the middle of a read
//! and of a write, a server that allows fewer connections than ftpfs wants, a disk that
//! fills up, a data connection that stalls. Each test asserts the exact outcome (the right
//! bytes, or a specific errno within a time bound) and that the mount still works after.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fake::{FakeOpts, FakeServer};
use common::*;
use sha2::{Digest, Sha256};

/// Quick retries so a restart is caught within seconds: 2 s per wait, 30 s per operation.
const PATIENT: &str = "timeout=2,retries=10,retry_delay=1,deadline=30";

fn sha(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

fn write_random(path: &Path, size: usize, seed: u64) -> Vec<u8> {
    let data = Rng(seed).bytes(size);
    std::fs::write(path, &data).unwrap();
    data
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}

#[test]
fn a_server_crash_during_a_64_mib_read_is_resumed_with_the_right_bytes() {
    let data = tempfile::tempdir().unwrap();
    let src = write_random(&data.path().join("big.bin"), 64 << 20, 11);
    let Some(mut server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[PATIENT]);
    let mut f = std::fs::File::open(m.path().join("big.bin")).unwrap();
    let mut got = Vec::with_capacity(src.len());
    let mut buf = vec![0u8; 1 << 20];
    // Read slowly, so the crash lands in the middle of the transfer.
    let mut crashed = false;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if !crashed && got.len() >= 16 << 20 {
            server.crash_and_restart(Duration::from_millis(500));
            crashed = true;
        }
    }
    assert!(crashed);
    assert_eq!(got.len(), src.len());
    assert!(sha(&got) == sha(&src), "the bytes are the server's");
    assert!(
        m.log_text().contains("resuming"),
        "the read was resumed, not restarted from the page cache"
    );
    // The mount goes on working.
    assert_eq!(
        std::fs::read_dir(m.path()).unwrap().count(),
        1,
        "listing after the restart"
    );
}

/// Crashes (and restarts) `server` as soon as a temporary upload file in `root` has bytes.
/// Gives the server back, and whether the crash happened (no upload seen in 30 s: false).
fn crash_when_an_upload_grows(
    root: PathBuf,
    mut server: Server,
) -> std::thread::JoinHandle<(Server, bool)> {
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            let growing = temp_files(&root)
                .iter()
                .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0));
            if growing {
                server.crash_and_restart(Duration::from_millis(500));
                return (server, true);
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        (server, false)
    })
}

fn assert_uploaded_whole(root: &Path, new: &[u8]) {
    let on_server = std::fs::read(root.join("big.bin")).unwrap();
    assert_eq!(on_server.len(), new.len());
    assert!(sha(&on_server) == sha(new), "the whole new file");
    assert!(
        wait_for(Duration::from_secs(10), || temp_files(root).is_empty()),
        "no temporary file left: {:?}",
        temp_files(root)
    );
}

#[test]
fn a_server_crash_during_a_64_mib_upload_at_fsync_is_retried_and_fsync_succeeds() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("big.bin"), b"old").unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[PATIENT]);
    let new = Rng(5).bytes(64 << 20);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(m.path().join("big.bin"))
        .unwrap();
    // Second half first: a file not written front to back is not streamed, so the whole
    // upload happens at fsync, where the crash is meant to land.
    let half = new.len() / 2;
    f.write_all_at(&new[half..], half as u64).unwrap();
    f.write_all_at(&new[..half], 0).unwrap();
    let watcher = crash_when_an_upload_grows(data.path().to_path_buf(), server);
    let synced = f.sync_all();
    let (_server, crashed) = watcher.join().unwrap();
    assert!(crashed, "the crash hit the upload");
    synced.expect("fsync after a retried upload");
    drop(f);
    assert_uploaded_whole(data.path(), &new);
    assert!(!m.log_text().contains("streaming the upload"));
}

#[test]
fn a_server_crash_during_a_streamed_upload_falls_back_to_the_spool_and_close_succeeds() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("big.bin"), b"old").unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[PATIENT]);
    let new = Rng(6).bytes(64 << 20);
    // Watch before writing: a file written front to back is uploaded while it is written.
    let watcher = crash_when_an_upload_grows(data.path().to_path_buf(), server);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(m.path().join("big.bin"))
        .unwrap();
    for chunk in new.chunks(1 << 20) {
        f.write_all(chunk).unwrap();
    }
    let (_server, crashed) = watcher.join().unwrap();
    assert!(crashed, "the crash hit the upload");
    f.sync_all().expect("fsync after the streamed upload broke");
    drop(f);
    assert_uploaded_whole(data.path(), &new);
    let log = m.log_text();
    assert!(
        log.contains("streaming the upload"),
        "the upload was streamed"
    );
    assert!(
        log.contains("streamed upload failed"),
        "the crash broke the stream and the spool was sent instead"
    );
}

#[test]
fn four_readers_share_a_server_that_allows_two_connections() {
    let data = tempfile::tempdir().unwrap();
    let files: Vec<Vec<u8>> = (0..4)
        .map(|i| write_random(&data.path().join(format!("f{i}")), 16 << 20, 100 + i))
        .collect();
    // -C 2: at most two sessions from one IP address.
    let Some(server) = Server::pure_ftpd_with(data.path(), &["-C", "2"]) else {
        return;
    };
    let m = Mount::new(&server, &["connections=4", PATIENT]);
    let start = Instant::now();
    read_at_once(&m, &files, "four readers", || {
        // Metadata is answered meanwhile.
        assert_eq!(std::fs::read_dir(m.path()).unwrap().count(), 4);
    });
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(
        m.log_text().contains("allows only"),
        "the pool learned the limit"
    );
}

/// Reads `f0`, `f1`, ... through the mount all at once, one thread each, runs `meanwhile`
/// while they read, and checks each reader got its file.
fn read_at_once(m: &Mount, files: &[Vec<u8>], what: &str, meanwhile: impl FnOnce()) {
    let readers: Vec<_> = (0..files.len())
        .map(|i| {
            let p = m.path().join(format!("f{i}"));
            std::thread::spawn(move || std::fs::read(p).unwrap())
        })
        .collect();
    meanwhile();
    for (i, r) in readers.into_iter().enumerate() {
        assert!(
            sha(&r.join().unwrap()) == sha(&files[i]),
            "{what}, reader {i}"
        );
    }
}

/// Control connections to `port` that the server has open (its side of each).
fn sessions_on(port: u16) -> usize {
    let hex = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&hex) && f[3] == "01"
        })
        .count()
}

/// The limit a server enforces can be shared with another client: once that client has
/// gone, the pool tries one more connection again (after `connections_recheck`) and uses
/// all it was configured for.
#[test]
fn a_learned_connection_limit_is_rechecked_and_lifted_when_the_server_allows_more() {
    use std::io::Read as _;
    let data = tempfile::tempdir().unwrap();
    let files: Vec<Vec<u8>> = (0..3)
        .map(|i| write_random(&data.path().join(format!("f{i}")), 16 << 20, 200 + i))
        .collect();
    // -C 3: three sessions per IP address, one of which another client holds.
    let Some(server) = Server::pure_ftpd_with(data.path(), &["-C", "3"]) else {
        return;
    };
    let mut other = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut greeting = [0u8; 3];
    other.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"220");
    let m = Mount::new(&server, &["connections=4,connections_recheck=2", PATIENT]);
    read_at_once(&m, &files, "round 1", || {});
    assert!(
        m.log_text().contains("allows only 2 connections"),
        "limit learned"
    );
    drop(other);
    assert!(wait_for(Duration::from_secs(5), || sessions_on(
        server.port
    ) == 2));
    std::thread::sleep(Duration::from_secs(3));
    // Drop the pages, so the second round reads from the server again.
    std::fs::write("/proc/sys/vm/drop_caches", "1").unwrap();
    read_at_once(&m, &files, "round 2", || {});
    let log = m.log_text();
    assert!(
        log.contains("trying more FTP connections again"),
        "rechecked"
    );
    assert_eq!(
        sessions_on(server.port),
        3,
        "three connections in use now, all the server allows"
    );
}

/// A bandwidth-limited server (pure-ftpd `-T`, as on many hosting plans) reads an upload
/// out of the TCP buffers seconds after the last write returned, and replies only then.
/// That reply is awaited as long as the server keeps taking bytes, not just `timeout`:
/// close(2) succeeds and the server has the file.
#[test]
fn an_upload_to_a_bandwidth_limited_server_is_waited_for_and_succeeds() {
    let data = tempfile::tempdir().unwrap();
    // 400 KB/s each way for users.
    let Some(server) = Server::pure_ftpd_with(data.path(), &["-T", "400:400"]) else {
        return;
    };
    let m = Mount::new(&server, &["timeout=2,retries=1,deadline=30"]);
    let new = Rng(31).bytes(3 << 20);
    let start = Instant::now();
    let mut f = std::fs::File::create(m.path().join("up.bin")).unwrap();
    f.write_all(&new).unwrap();
    assert_eq!(close(f), Ok(()), "close reports the upload's success");
    let took = start.elapsed();
    assert!(sha(&std::fs::read(data.path().join("up.bin")).unwrap()) == sha(&new));
    let log = m.log_text();
    assert!(
        !log.contains("retrying") && !log.contains("failed"),
        "one attempt, no timeout: took {took:?}"
    );
}

/// A real full disk: the server's root is a 16 MiB tmpfs, and 32 MiB are written over an
/// existing file. close(2) says ENOSPC, the old content stays, the server keeps no
/// partial file, and the data is kept in the recovery directory.
#[test]
fn a_32_mib_write_to_a_16_mib_disk_fails_with_enospc_and_keeps_everything() {
    let data = tempfile::tempdir().unwrap();
    let recovery = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16m", "ftpfs-test"])
        .arg(data.path())
        .status();
    if !st.is_ok_and(|s| s.success()) {
        if require_servers() {
            panic!("cannot mount a tmpfs for the disk-full test");
        }
        eprintln!("SKIP: no tmpfs");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _tmpfs = Unmount(data.path().to_path_buf());
    std::fs::write(data.path().join("doc.bin"), b"old content").unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let rec = format!("recovery_dir={}", recovery.path().display());
    let m = Mount::new(&server, &[PATIENT, &rec]);
    let new = Rng(9).bytes(32 << 20);
    let start = Instant::now();
    let mut f = std::fs::File::create(m.path().join("doc.bin")).unwrap();
    f.write_all(&new).unwrap();
    assert_eq!(close(f), Err(libc::ENOSPC), "close must not report success");
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(
        std::fs::read(data.path().join("doc.bin")).unwrap(),
        b"old content"
    );
    assert!(
        wait_for(Duration::from_secs(20), || temp_files(data.path())
            .is_empty()),
        "partial upload removed: {:?}",
        temp_files(data.path())
    );
    // The data that could not be sent is not lost.
    let kept = wait_for(Duration::from_secs(20), || {
        std::fs::read_dir(recovery.path())
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .any(|e| e.metadata().is_ok_and(|md| md.len() == new.len() as u64))
            })
            .unwrap_or(false)
    });
    assert!(kept, "a full copy in the recovery directory");
    // The mount still works: a small file fits.
    std::fs::write(m.path().join("small.txt"), b"fits").unwrap();
    assert_eq!(
        std::fs::read(data.path().join("small.txt")).unwrap(),
        b"fits"
    );
}

/// The kernel sends `release` after `close` has returned, so an unmount can come while the
/// last release of a file whose upload failed is still saving it to the recovery directory.
/// Unmounting at once must not lose it: the process ends only when the release is done.
#[test]
fn unmounting_right_after_a_failed_close_still_saves_the_data() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let recovery = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    // After the harness chowned the tree to the FTP user: a root-owned directory and file.
    let ro = data.path().join("locked");
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(ro.join("doc.bin"), b"old content").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    let rec = format!("recovery_dir={}", recovery.path().display());
    let mut m = Mount::new(&server, &[&rec]);
    let new = Rng(11).bytes(8 << 20);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(m.path().join("locked/doc.bin"))
        .unwrap();
    f.write_all(&new).unwrap();
    assert_eq!(close(f), Err(libc::EACCES), "close reports the refusal");
    let path = m.path().to_path_buf();
    let mut child = m.take_child();
    let st = Command::new("fusermount3")
        .arg("-u")
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success(), "unmounted at once");
    let exited = wait_for(Duration::from_secs(30), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "ftpfs ends after the unmount");
    let saved: Vec<Vec<u8>> = std::fs::read_dir(recovery.path())
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect();
    assert!(
        saved.iter().any(|d| sha(d) == sha(&new)),
        "the whole file is in the recovery directory ({} files there)",
        saved.len()
    );
    assert_eq!(std::fs::read(ro.join("doc.bin")).unwrap(), b"old content");
}

/// A server that is down for a while (crashed, rebooting): requests fail with EIO within
/// the deadline instead of hanging, the mount stays, and once the server is back the same
/// requests work without a remount.
#[test]
fn while_the_server_is_down_requests_fail_in_bounded_time_and_work_once_it_is_back() {
    let data = tempfile::tempdir().unwrap();
    let src = write_random(&data.path().join("f.bin"), 1 << 20, 21);
    std::fs::create_dir(data.path().join("d")).unwrap();
    std::fs::write(data.path().join("d/x"), b"x").unwrap();
    let Some(mut server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    // No listing ahead: `d` must not be in the cache when the server goes down.
    let m = Mount::new(
        &server,
        &["timeout=2,retries=2,retry_delay=1,deadline=5,prefetch=off"],
    );
    assert_eq!(std::fs::read_dir(m.path()).unwrap().count(), 2);
    server.crash();
    let fails_in_time = |what: &str, r: std::io::Result<()>, start: Instant| {
        let took = start.elapsed();
        let e = r.expect_err(what);
        assert!(
            [libc::EIO, libc::ETIMEDOUT].contains(&e.raw_os_error().unwrap_or(0)),
            "{what}: {e}"
        );
        assert!(took < Duration::from_secs(8), "{what} took {took:?}");
    };
    let start = Instant::now();
    let r = std::fs::read(m.path().join("f.bin")).map(drop);
    fails_in_time("read", r, start);
    let start = Instant::now();
    let r = std::fs::read_dir(m.path().join("d")).map(drop);
    fails_in_time("list", r, start);
    assert!(is_mounted(m.path()), "the mount stays");
    server.restart();
    assert!(std::fs::read(m.path().join("f.bin")).unwrap() == src);
    let names: Vec<_> = std::fs::read_dir(m.path().join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["x"]);
}

/// A data connection that opens and then stays silent, through the mount: `cat` fails
/// within the deadline instead of hanging, and `ls` works. SIGKILL ends a reader at the
/// latest when the request in flight ends: fuser does not implement FUSE_INTERRUPT, and the
/// kernel waits for the daemon's answer to a request it already handed over. The deadline
/// bounds that wait.
#[test]
fn a_stalled_download_fails_in_bounded_time_and_stays_killable() {
    let mut opts = FakeOpts {
        stall_retr: true,
        ..Default::default()
    };
    opts.files.insert("f".into(), vec![1u8; 100_000]);
    opts.listing = vec!["-rw-r--r-- 1 a b 100000 Jan  1  2020 f".into()];
    let s = FakeServer::start(opts);
    let m = Mount::of_url(
        &format!("ftp://alice@127.0.0.1:{}", s.port),
        &["timeout=2,retries=2,retry_delay=1,deadline=5"],
    );
    let start = Instant::now();
    let out = Command::new("cat")
        .arg(m.path().join("f"))
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("timed out") || err.contains("Input/output error"),
        "{err}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // Killable while stalled.
    let mut child = Command::new("cat")
        .arg(m.path().join("f"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(8),
        "SIGKILL takes effect within the 5 s deadline: {:?}",
        killed.elapsed()
    );
    assert_eq!(std::fs::read_dir(m.path()).unwrap().count(), 1);
}

/// A DNS server that takes queries and never answers: glibc's own limit is 5 s per try,
/// twice, per name server. Mounting a host name then fails after `timeout` with a line that
/// says the lookup got no answer, not after the resolver's 10 s or more. ftpfs runs in a
/// mount namespace of its own whose /etc/resolv.conf names the silent server.
#[test]
fn a_host_name_whose_dns_never_answers_fails_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // A loopback address of our own for the silent server's port 53.
    let ip = format!("127.0.{}.{}", 1 + std::process::id() % 250, 53);
    let silent = std::net::UdpSocket::bind((ip.as_str(), 53)).unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {ip}\n")).unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let start = Instant::now();
    let out = test_env(&mut Command::new("unshare"))
        .args(["-m", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/resolv.conf && exec "$2" mount "$3" "$4" -o "$5""#)
        .args(["sh", &resolv.to_string_lossy(), env!("CARGO_BIN_EXE_ftpfs")])
        .arg("ftp://alice@ftp.example.org:2121/")
        .arg(&mnt)
        // Its own spool and recovery directories: the spool is made before connecting, and
        // must not land in the invoking user's home.
        .arg(format!(
            "timeout=2,spool_dir={0}/spool,recovery_dir={0}/recovered",
            dir.path().display()
        ))
        .env("FTPFS_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("looking up ftp.example.org: no answer before the deadline")
            && err.contains("no answer from ftp.example.org:2121 within 2 s"),
        "{err}"
    );
    assert!(took < Duration::from_secs(6), "took {took:?}");
    // The query did reach the silent server: the test is about DNS, not /etc/hosts.
    silent.set_nonblocking(true).unwrap();
    assert!(
        silent.recv_from(&mut [0u8; 512]).is_ok(),
        "no DNS query seen"
    );
}

/// Regression (issue 13): a file whose upload failed twice within one second lost the
/// second version (`data could not be uploaded nor saved: File exists`): recovery names
/// were `<seconds>-<pid>-<name>`. Here the names the clock would give for the next minute
/// are already taken, so every save must find another name, and must not overwrite the
/// files that hold them. Both versions end up in the recovery directory, 0600 in a 0700
/// directory, each path logged at error level.
#[test]
fn the_same_file_failing_twice_within_a_second_keeps_both_versions() {
    use common::faulty::{Fault, Kind, Verb};
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("app.txt"), b"old").unwrap();
    let (server, faults) = Server::unftp_with_faults(data.path());
    let m = Mount::new(&server, &["timeout=2,retries=1,retry_delay=1,deadline=10"]);
    let rec = m.recovery_dir();
    std::fs::create_dir_all(&rec).unwrap();
    std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o700)).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for s in now..now + 60 {
        std::fs::write(rec.join(format!("{s}-{}-app.txt", m.pid())), b"decoy").unwrap();
    }
    faults.always(Verb::Stor, Fault::Fail(Kind::PermissionDenied));
    let saved = |content: &[u8]| {
        wait_for(Duration::from_secs(20), || {
            std::fs::read_dir(&rec)
                .unwrap()
                .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .any(|d| d == content)
        })
    };
    for version in [&b"first version"[..], b"second version"] {
        let mut f = std::fs::File::create(m.path().join("app.txt")).unwrap();
        f.write_all(version).unwrap();
        assert_eq!(close(f), Err(libc::EACCES), "close reports the refusal");
        // The save happens at release, after close returned: wait for it, so the second
        // version is a second failure and not a later write to the same open file.
        assert!(saved(version), "{:?} is in the recovery directory", version);
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 62, "60 decoys and two versions: {files:?}");
    for p in &files {
        let content = std::fs::read(p).unwrap();
        if content != b"decoy" {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.ends_with("-app.txt"), "{name}");
            // Logged right after the file is saved, which the test saw first.
            let logged = || {
                m.log_text()
                    .lines()
                    .any(|l| l.contains("ERROR") && l.contains(&p.display().to_string()))
            };
            assert!(
                wait_for(Duration::from_secs(10), logged),
                "the path is logged at error level:\n{}",
                m.log_text()
            );
        }
    }
    assert!(!m.log_text().contains("nor saved"));
    assert_eq!(std::fs::read(data.path().join("app.txt")).unwrap(), b"old");
    // The spool directory, which ftpfs made, is private too.
    let spool = rec.parent().unwrap().join("spool");
    let mode = std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", spool.display());
}
