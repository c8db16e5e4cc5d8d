//! Real mounts through /dev/fuse of real FTP servers on loopback (needs root and fuse3).
//!
//! Each read-path test runs against every server: libunftp in-process, pure-ftpd and
//! pyftpdlib from Debian. What is checked is what users do: the mounted tree equals the
//! server's tree byte for byte, random reads return the source bytes, readers and `ls -lR`
//! run at the same time, and the process lifecycle (mount, unmount, signals, failures) leaves
//! nothing behind.

mod common;

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn setup(kind: ServerKind) -> Option<(tempfile::TempDir, Server)> {
    let data = tempfile::tempdir().unwrap();
    sample_tree(data.path());
    let server = Server::start(kind, data.path())?;
    Some((data, server))
}

fn mounted_tree_equals_server_tree(kind: ServerKind, opts: &[&str]) {
    let Some((data, server)) = setup(kind) else {
        return;
    };
    let m = Mount::new(&server, opts);
    let local = snapshot(data.path());
    let remote = snapshot(m.path());
    assert_eq!(local.len(), remote.len(), "entry count");
    for (k, v) in &local {
        assert_eq!(remote.get(k), Some(v), "{k}");
    }
    // Attributes agree with what stat says of the originals.
    let md = std::fs::metadata(m.path().join("big.bin")).unwrap();
    assert_eq!(md.len(), 5 * 1024 * 1024 + 123);
    assert!(std::fs::metadata(m.path().join("docs")).unwrap().is_dir());
}

fn random_offset_reads_return_source_bytes(kind: ServerKind) {
    let Some((data, server)) = setup(kind) else {
        return;
    };
    let source = std::fs::read(data.path().join("big.bin")).unwrap();
    let m = Mount::new(&server, &[]);
    let f = std::fs::File::open(m.path().join("big.bin")).unwrap();
    let mut rng = Rng(42);
    let mut buf = vec![0u8; 300_000];
    for i in 0..120 {
        // Mix sequential runs, small backward steps and far jumps on one handle.
        let off = match i % 4 {
            0 => rng.below(source.len() as u64),
            1 => rng.below(4096),
            _ => (source.len() as u64).saturating_sub(rng.below(200_000)),
        };
        let len = 1 + rng.below(buf.len() as u64) as usize;
        let n = f.read_at(&mut buf[..len], off).unwrap();
        let want = &source[off as usize..(off as usize + len).min(source.len())];
        assert_eq!(n, want.len(), "read {len} at {off}");
        if buf[..n] != *want {
            let first = buf[..n].iter().zip(want).position(|(a, b)| a != b).unwrap();
            let log = m.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "bytes differ for read {len} at {off}, first at +{first}; log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
    // `tail -c` of the file through a real tool.
    let out = Command::new("tail")
        .args(["-c", "1000"])
        .arg(m.path().join("big.bin"))
        .output()
        .unwrap();
    assert_eq!(out.stdout, source[source.len() - 1000..]);
}

fn parallel_readers_and_listing(kind: ServerKind, connections: &str) {
    let Some((data, server)) = setup(kind) else {
        return;
    };
    let mut rng = Rng(7);
    for i in 0..4 {
        std::fs::write(
            data.path().join(format!("p{i}.bin")),
            rng.bytes(3 * 1024 * 1024 + i),
        )
        .unwrap();
    }
    let m = Mount::new(&server, &[connections]);
    let started = Instant::now();
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..4)
            .map(|i| {
                let path = m.path().join(format!("p{i}.bin"));
                let want = data.path().join(format!("p{i}.bin"));
                s.spawn(move || {
                    let got = std::fs::read(&path).unwrap();
                    assert!(got == std::fs::read(&want).unwrap(), "p{i}.bin differs");
                })
            })
            .collect();
        for _ in 0..3 {
            let out = Command::new("ls")
                .arg("-lR")
                .arg(m.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "ls -lR failed");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("deep.bin") && text.contains("p3.bin"));
        }
        for r in readers {
            r.join().unwrap();
        }
    });
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "readers took {:?}",
        started.elapsed()
    );
}

macro_rules! per_server {
    ($($kind:ident => $suffix:ident),*) => {$(
        mod $suffix {
            use super::*;
            #[test]
            fn mounted_tree_equals_server_tree() {
                super::mounted_tree_equals_server_tree(ServerKind::$kind, &[]);
            }
            #[test]
            fn mounted_tree_equals_server_tree_over_list() {
                super::mounted_tree_equals_server_tree(ServerKind::$kind, &["listing=list"]);
            }
            #[test]
            fn random_offset_reads_return_source_bytes() {
                super::random_offset_reads_return_source_bytes(ServerKind::$kind);
            }
            #[test]
            fn four_readers_and_ls_lr_run_at_once() {
                super::parallel_readers_and_listing(ServerKind::$kind, "connections=4");
            }
            #[test]
            fn four_readers_share_two_connections_without_deadlock() {
                super::parallel_readers_and_listing(ServerKind::$kind, "connections=2");
            }
        }
    )*};
}

per_server!(Unftp => unftp, PureFtpd => pure_ftpd, Pyftpdlib => pyftpdlib, Proftpd => proftpd);

fn daemon_pids_for(mountpoint: &Path) -> Vec<u32> {
    let needle = mountpoint.to_string_lossy().to_string();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmd
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).to_string())
            .collect();
        if args.iter().any(|a| a == "mount") && args.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

/// A mount point for a daemon that outlives the `ftpfs mount` that started it: if a test
/// fails with it still mounted, it is detached (`fusermount3 -u -z`, so the daemon exits)
/// before its directory is removed, instead of being left in the mount table.
struct MountPoint(tempfile::TempDir);

impl MountPoint {
    fn new() -> MountPoint {
        MountPoint(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for MountPoint {
    fn drop(&mut self) {
        if is_mounted(self.path()) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(self.path())
                .status();
        }
    }
}

/// `ftpfs mount SOURCE MNT` in the background (no -f), with `password` if any, run to its
/// exit: the daemon it leaves behind is the test's to unmount.
fn mount_background(source: &str, mnt: &Path, password: Option<&str>) -> std::process::Output {
    let mut cmd = ftpfs();
    cmd.args(["mount", "-o", &own_state(), source])
        .arg(mnt)
        .env_remove("FTPFS_PASSWORD")
        .env("NETRC", "/nonexistent")
        .stdin(Stdio::null());
    if let Some(p) = password {
        cmd.env("FTPFS_PASSWORD", p);
    }
    cmd.output().unwrap()
}

#[test]
fn background_mount_returns_when_live_and_umount_leaves_no_process() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let mnt = MountPoint::new();
    let out = mount_background(&server.url(), mnt.path(), Some(PASSWORD));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(is_mounted(mnt.path()), "mounted when mount returns");
    assert_eq!(
        std::fs::read(mnt.path().join("hello.txt")).unwrap().len(),
        6
    );
    let pids = daemon_pids_for(mnt.path());
    assert_eq!(pids.len(), 1, "one daemon: {pids:?}");
    let st = ftpfs().arg("umount").arg(mnt.path()).status().unwrap();
    assert!(st.success());
    assert!(!is_mounted(mnt.path()));
    assert!(
        wait_for(Duration::from_secs(10), || daemon_pids_for(mnt.path())
            .is_empty()),
        "the daemon exits after unmount"
    );
}

/// The mount table names the file system type with its subtype, as `mount -t fuse.ftpfs`
/// and fstab say it, and the source without a password: `findmnt -t fuse.ftpfs`,
/// `umount -a -t fuse.ftpfs` and `df -t` find it.
#[test]
fn the_mount_table_says_fuse_ftpfs_and_names_the_server() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let (fstype, source) = mount_table_entry(m.path()).expect("in /proc/self/mountinfo");
    assert_eq!(fstype, "fuse.ftpfs");
    assert!(source.starts_with("ftp://"), "{source}");
    assert!(!source.contains(PASSWORD), "{source}");
    let listed = Command::new("findmnt")
        .args(["-n", "-t", "fuse.ftpfs", "-o", "TARGET"])
        .output()
        .unwrap();
    let target = std::fs::canonicalize(m.path()).unwrap();
    assert!(
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .any(|l| l.trim() == target.to_string_lossy()),
        "findmnt -t fuse.ftpfs lists it"
    );
}

/// SIGTERM while a file is open: the mount is detached at once (new opens fail), the open
/// file is still served to the end, and the daemon exits when it is closed.
#[test]
fn sigterm_with_an_open_file_detaches_and_serves_it_to_the_end() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let mut m = Mount::new(&server, &[]);
    let path = m.path().to_path_buf();
    let mut open = std::fs::File::open(path.join("hello.txt")).unwrap();
    let mut child = m.take_child();
    // SAFETY: signalling our own child by PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait_for(Duration::from_secs(10), || !is_mounted(&path)));
    let mut got = String::new();
    open.read_to_string(&mut got).unwrap();
    assert_eq!(got.len(), 6, "the open file is still served");
    assert!(
        child.try_wait().unwrap().is_none(),
        "serving until the close"
    );
    drop(open);
    assert!(exits_within(&mut child, Duration::from_secs(10)));
    assert!(child.wait().unwrap().success());
}

/// An administrator aborts the FUSE connection (`/sys/fs/fuse/connections/N/abort`, the
/// documented way to free processes stuck on a hung FUSE server): the daemon takes its dead
/// mount away instead of leaving "Transport endpoint is not connected" behind, says why in
/// the log and exits non-zero.
#[test]
fn an_aborted_connection_takes_its_dead_mount_away_and_exits_nonzero() {
    let Some((data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let mut m = Mount::new(&server, &[]);
    let path = m.path().to_path_buf();
    assert_eq!(
        std::fs::read(path.join("hello.txt")).unwrap(),
        std::fs::read(data.path().join("hello.txt")).unwrap()
    );
    abort_connection(&path);
    let mut child = m.take_child();
    assert!(exits_within(&mut child, Duration::from_secs(10)));
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert!(!is_mounted(&path), "no dead mount left behind");
    assert!(
        m.log_text().contains("FUSE connection of")
            && m.log_text().contains("was aborted; unmounting it"),
        "{}",
        m.log_text()
    );
}

/// Regression: `fusermount3 -u` then an immediate new mount at the same path. The old
/// daemon, on its way out, unmounted the *new* mount (fuser 0.18 unmounts by path at the
/// end of a session and misjudges whether its own mount is still there).
#[test]
fn a_remount_right_after_umount_survives_the_old_daemons_exit() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let mnt = MountPoint::new();
    for round in 0..5 {
        let out = mount_background(&server.url(), mnt.path(), Some(PASSWORD));
        assert!(out.status.success(), "round {round}");
        let st = Command::new("fusermount3")
            .arg("-u")
            .arg(mnt.path())
            .status()
            .unwrap();
        assert!(st.success());
        let out = mount_background(&server.url(), mnt.path(), Some(PASSWORD));
        assert!(out.status.success(), "round {round}");
        // Give the first daemon time to finish exiting.
        assert!(wait_for(Duration::from_secs(10), || daemon_pids_for(
            mnt.path()
        )
        .len()
            == 1));
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            is_mounted(mnt.path()),
            "round {round}: the new mount is still there"
        );
        assert_eq!(
            std::fs::read(mnt.path().join("hello.txt")).unwrap().len(),
            6
        );
        let out = ftpfs().arg("umount").arg(mnt.path()).output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Mounting over a live ftpfs mount hid it (its process went on serving nobody) and
/// `ftpfs umount` then took off only the top one. It is refused, and the first mount stays.
#[test]
fn mounting_on_an_existing_ftpfs_mount_is_refused() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let out = mount_background(&server.url(), m.path(), Some(PASSWORD));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("already mounted"), "{err}");
    let target = m.path().to_string_lossy().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(target.as_str()))
        .count();
    assert_eq!(mounts, 1, "nothing mounted on top");
    assert_eq!(daemon_pids_for(m.path()).len(), 1, "no second daemon");
    assert_eq!(std::fs::read(m.path().join("hello.txt")).unwrap().len(), 6);
}

/// `ftpfs umount` of a mount in use fails as umount(8) does: `target is busy`, exit 1,
/// still mounted and working. `--lazy` detaches it at once; the open file is still served
/// until it is closed, then the daemon exits.
#[test]
fn umount_of_a_busy_mount_says_so_and_only_lazy_detaches_it() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let mnt = MountPoint::new();
    let out = mount_background(&server.url(), mnt.path(), Some(PASSWORD));
    assert!(out.status.success());
    let mut open = std::fs::File::open(mnt.path().join("hello.txt")).unwrap();
    let out = ftpfs().arg("umount").arg(mnt.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("target is busy"), "{err}");
    assert!(is_mounted(mnt.path()), "a busy mount stays");
    assert_eq!(
        std::fs::read(mnt.path().join("hello.txt")).unwrap().len(),
        6
    );
    let out = ftpfs()
        .args(["umount", "--lazy"])
        .arg(mnt.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!is_mounted(mnt.path()), "detached at once");
    let mut text = Vec::new();
    open.read_to_end(&mut text).unwrap();
    assert_eq!(text.len(), 6, "the open file is still served");
    drop(open);
    assert!(
        wait_for(Duration::from_secs(10), || daemon_pids_for(mnt.path())
            .is_empty()),
        "the daemon exits once the mount is unused"
    );
}

/// Every failure exits 1 (the README says so), a bad option as much as a bad server.
#[test]
fn a_bad_mount_option_exits_1_with_one_line() {
    let mnt = tempfile::tempdir().unwrap();
    let out = ftpfs()
        .args(["mount", "127.0.0.1", "-o", "connections=0"])
        .arg(mnt.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("ftpfs: ") && err.contains("connections"),
        "{err}"
    );
    assert!(!is_mounted(mnt.path()));
    // A usage error too (clap's own would be 2).
    let out = ftpfs()
        .args(["mount", "--no-such-flag", "127.0.0.1"])
        .arg(mnt.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!is_mounted(mnt.path()));
}

#[test]
fn sigterm_unmounts_and_exits_zero() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let mut m = Mount::new(&server, &[]);
    let path = m.path().to_path_buf();
    let mut child = m.take_child();
    // SAFETY: signalling our own child by PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(exits_within(&mut child, Duration::from_secs(10)));
    assert!(child.wait().unwrap().success());
    assert!(!is_mounted(&path));
}

#[test]
fn umount_cleans_up_after_a_killed_process() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let mut m = Mount::new(&server, &[]);
    let path = m.path().to_path_buf();
    let mut child = m.take_child();
    child.kill().unwrap();
    // Bounded: a daemon stuck in uninterruptible sleep (it once stat'ed its own mount) must
    // fail this test, not hang the suite.
    let died = exits_within(&mut child, Duration::from_secs(10));
    assert!(died, "SIGKILL did not end the daemon (stuck in D state?)");
    assert!(is_mounted(&path), "a dead daemon leaves its mount behind");
    let st = ftpfs().arg("umount").arg(&path).status().unwrap();
    assert!(st.success());
    assert!(!is_mounted(&path));
}

#[test]
fn bad_password_exits_nonzero_with_one_clear_line_and_no_mount() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let mnt = MountPoint::new();
    let out = mount_background(&server.url(), mnt.path(), Some("wrong-password"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "login to 127.0.0.1:{} as alice failed: 530",
            server.port
        )),
        "{err}"
    );
    assert!(!err.contains("wrong-password"), "password leaked: {err}");
    assert!(!is_mounted(mnt.path()));
    assert!(daemon_pids_for(mnt.path()).is_empty());
}

#[test]
fn unreachable_server_exits_nonzero_and_no_mount() {
    let mnt = MountPoint::new();
    let port = free_port();
    let out = mount_background(&format!("127.0.0.1:{port}"), mnt.path(), None);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to 127.0.0.1"), "{err}");
    assert!(!is_mounted(mnt.path()));
}

#[test]
fn ro_mount_refuses_writes_with_erofs() {
    let Some((data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let m = Mount::new(&server, &["ro"]);
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(m.path().join("hello.txt"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    // What FTP cannot create at all is EROFS too here, not EPERM: the mount says it first.
    let err = std::os::unix::fs::symlink("hello.txt", m.path().join("link")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    assert_eq!(
        std::fs::read(data.path().join("hello.txt")).unwrap().len(),
        6
    );
}

#[test]
fn missing_names_are_enoent_and_protocol_logs_mask_the_password() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let m = Mount::new(&server, &["debug"]);
    let err = std::fs::metadata(m.path().join("no such file")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    let err = std::fs::read_dir(m.path().join("hello.txt")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
    let log = m.log_text();
    assert!(log.contains("listed /"), "debug logging is on: {log}");
    assert!(!log.contains(PASSWORD), "password in log");
    assert_eq!(
        log.matches("in clear text").count(),
        1,
        "a server without TLS gets one clear-text warning"
    );
}

/// Regression: with --log-file the detached daemon kept the caller's stderr, so
/// `ftpfs mount ... 2>&1 | tail` (or any reader of that pipe) hung until unmount.
#[test]
fn background_mount_does_not_hold_the_callers_output_open() {
    let Some((_data, server)) = setup(ServerKind::Unftp) else {
        return;
    };
    let mnt = tempfile::tempdir().unwrap();
    let log = mnt.path().with_extension("log");
    let mut child = ftpfs()
        .args(["mount", "-o", &own_state(), &server.url()])
        .arg(mnt.path())
        .arg("--log-file")
        .arg(&log)
        .env("FTPFS_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    // read_to_end returns only when every holder of the pipes has closed them.
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        let _ = err.read_to_end(&mut buf);
    });
    assert!(child.wait().unwrap().success());
    let closed = wait_for(Duration::from_secs(10), || reader.is_finished());
    let _ = ftpfs().arg("umount").arg(mnt.path()).status();
    let _ = std::fs::remove_file(&log);
    assert!(closed, "the daemon still holds the caller's stdout/stderr");
}

fn files_larger_than_4_gib_read_at_high_offsets(kind: ServerKind) {
    let data = tempfile::tempdir().unwrap();
    let size: u64 = 5 * 1024 * 1024 * 1024 + 17;
    let marker_at: u64 = 4 * 1024 * 1024 * 1024 + 123_456_789;
    {
        // Sparse on the server's disk: only the marker takes space.
        let f = std::fs::File::create(data.path().join("huge.img")).unwrap();
        f.set_len(size).unwrap();
        f.write_all_at(b"MARKER past 4 GiB", marker_at).unwrap();
    }
    let Some(server) = Server::start(kind, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let f = std::fs::File::open(m.path().join("huge.img")).unwrap();
    assert_eq!(f.metadata().unwrap().len(), size);
    let mut buf = [0u8; 17];
    f.read_exact_at(&mut buf, marker_at).unwrap();
    assert_eq!(&buf, b"MARKER past 4 GiB");
    let mut tail = [1u8; 17];
    f.read_exact_at(&mut tail, size - 17).unwrap();
    assert_eq!(tail, [0u8; 17]);
}

#[test]
fn files_larger_than_4_gib_read_at_high_offsets_unftp() {
    files_larger_than_4_gib_read_at_high_offsets(ServerKind::Unftp);
}

#[test]
fn files_larger_than_4_gib_read_at_high_offsets_pure_ftpd() {
    files_larger_than_4_gib_read_at_high_offsets(ServerKind::PureFtpd);
}

fn symlinks_read_as_links_that_stay_inside_the_mount(opts: &[&str]) {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("target.txt"), "hi\n").unwrap();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("target.txt", data.path().join("link")).unwrap();
    std::os::unix::fs::symlink("../target.txt", data.path().join("sub/up")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", data.path().join("abs")).unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, opts);
    let p = m.path();
    assert_eq!(
        std::fs::read_link(p.join("link")).unwrap(),
        Path::new("target.txt")
    );
    assert_eq!(std::fs::read_to_string(p.join("link")).unwrap(), "hi\n");
    assert_eq!(std::fs::read_to_string(p.join("sub/up")).unwrap(), "hi\n");
    assert!(std::fs::symlink_metadata(p.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    // An absolute target is the server's path: rewritten relative to the mount, where it
    // dangles, instead of opening this machine's /etc/passwd.
    assert_eq!(
        std::fs::read_link(p.join("abs")).unwrap(),
        Path::new("etc/passwd")
    );
    let err = std::fs::read(p.join("abs")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    // lstat size is the length of what readlink returns, as on a local filesystem.
    assert_eq!(std::fs::symlink_metadata(p.join("abs")).unwrap().len(), 10);
}

#[test]
fn symlinks_read_as_links_that_stay_inside_the_mount_mlsd() {
    symlinks_read_as_links_that_stay_inside_the_mount(&[]);
}

#[test]
fn symlinks_read_as_links_that_stay_inside_the_mount_list() {
    symlinks_read_as_links_that_stay_inside_the_mount(&["listing=list"]);
}

#[test]
fn anonymous_login_when_the_source_names_no_user() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("pub.txt"), "public").unwrap();
    let Some(server) = Server::start_anonymous(data.path()) else {
        return;
    };
    let mnt = MountPoint::new();
    let out = mount_background(&format!("127.0.0.1:{}", server.port), mnt.path(), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(mnt.path().join("pub.txt"));
    let _ = ftpfs().arg("umount").arg(mnt.path()).status();
    assert_eq!(text.unwrap(), "public");
    assert!(!is_mounted(mnt.path()));
}
