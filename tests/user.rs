//! Mounts by an ordinary user, the everyday case on a desktop: without root, ftpfs cannot
//! call mount(2) and goes through the setuid `fusermount3` (via fuser), which mounts,
//! unmounts, and decides who may enter. Every other test runs ftpfs as root, which mounts
//! by itself; these run it as user `nobody` (65534) through `setpriv`, which drops root's
//! capabilities, so the daemon takes the non-root paths: the mount through fusermount3,
//! SIGTERM and `ftpfs umount` through `fusermount3 -u`, an aborted connection cleaned up
//! through `fusermount3 -uz`.
//!
//! A user can open `/dev/fuse` only when it is mode 0666, as Debian's udev rule makes it;
//! `scripts/test.sh` sets that on machines without udev.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;

const NOBODY: u32 = 65534;

/// Whether an ordinary user may open `/dev/fuse`; fails under FTPFS_REQUIRE_SERVERS when not.
fn users_may_mount() -> bool {
    let mode = std::fs::metadata("/dev/fuse")
        .map(|m| m.mode())
        .unwrap_or(0);
    if mode & 0o006 == 0o006 {
        return true;
    }
    if require_servers() {
        panic!("/dev/fuse is mode {mode:o}: users cannot mount (scripts/test.sh makes it 0666)");
    }
    eprintln!("SKIP: /dev/fuse is mode {mode:o}; users cannot mount");
    false
}

/// A server with the sample tree and a foreground ftpfs mount of it run by `nobody`, from
/// a home directory of its own (the binary is copied there: the build directory may be
/// under root's home, which others cannot enter).
struct UserMount {
    data: tempfile::TempDir,
    _server: Server,
    home: tempfile::TempDir,
    child: Option<Child>,
}

impl UserMount {
    fn start() -> Option<UserMount> {
        if !users_may_mount() {
            return None;
        }
        let data = tempfile::tempdir().unwrap();
        sample_tree(data.path());
        let server = Server::start(ServerKind::Unftp, data.path())?;
        let home = tempfile::tempdir().unwrap();
        let bin = home.path().join("ftpfs");
        copy_ftpfs_to(&bin);
        std::fs::create_dir(home.path().join("mnt")).unwrap();
        for p in [home.path(), &home.path().join("mnt")] {
            std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let child = as_nobody()
            .arg(&bin)
            .args(["mount", "-f"])
            .arg(server.url())
            .arg(home.path().join("mnt"))
            .arg("--log-file")
            .arg(home.path().join("log"))
            .env("HOME", home.path())
            .env("NETRC", "/nonexistent")
            .env("FTPFS_PASSWORD", PASSWORD)
            .env("RUST_LOG", "ftpfs=debug")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut m = UserMount {
            data,
            _server: server,
            home,
            child: Some(child),
        };
        let mnt = m.mnt();
        let up = wait_for(Duration::from_secs(20), || {
            is_mounted(&mnt) || m.child_exited()
        });
        assert!(up && is_mounted(&mnt), "no mount; log:\n{}", m.log());
        Some(m)
    }

    fn mnt(&self) -> PathBuf {
        self.home.path().join("mnt")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("log")).unwrap_or_default()
    }

    fn child_exited(&mut self) -> bool {
        let c = self.child.as_mut().unwrap();
        c.try_wait().ok().flatten().is_some()
    }

    /// The daemon's exit code, once it has exited within 10 s.
    fn exit_code(&mut self) -> Option<i32> {
        let c = self.child.as_mut().unwrap();
        assert!(exits_within(c, Duration::from_secs(10)), "{}", self.log());
        c.wait().unwrap().code()
    }

    /// Runs `sh -c script` as nobody; its stdout, or its stderr as the error.
    fn sh(&self, script: &str) -> Result<String, String> {
        stdout_or_stderr(
            as_nobody()
                .args(["sh", "-c", script])
                .current_dir(self.home.path()),
        )
    }
}

impl Drop for UserMount {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- ftpfs log ---\n{}", self.log());
        }
        let _ = unmount(&self.mnt());
        if let Some(mut c) = self.child.take() {
            if !exits_within(&mut c, Duration::from_secs(10)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// The user mounts (type `fuse.ftpfs` in the mount table, made by fusermount3), reads and
/// writes through it, nobody else may enter (no `allow_other`: not even root), and
/// `ftpfs umount` run by the same user unmounts and ends the daemon with status 0.
#[test]
fn an_ordinary_user_mounts_reads_writes_and_unmounts() {
    let Some(mut m) = UserMount::start() else {
        return;
    };
    let mnt = m.mnt();
    assert_eq!(
        mount_table_entry(&mnt).map(|(t, _)| t).as_deref(),
        Some("fuse.ftpfs")
    );
    let hello = std::fs::read_to_string(m.data.path().join("hello.txt")).unwrap();
    assert_eq!(m.sh("cat mnt/hello.txt").unwrap(), hello);
    m.sh("printf 'from a user' > mnt/new.txt && mv mnt/new.txt mnt/docs/moved.txt")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(m.data.path().join("docs/moved.txt")).unwrap(),
        "from a user"
    );
    assert!(m.sh("ls mnt/docs").unwrap().contains("moved.txt"));
    let e = std::fs::read_dir(&mnt).unwrap_err();
    assert_eq!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied,
        "root is kept out without allow_other"
    );
    let bin = m.home.path().join("ftpfs");
    m.sh(&format!("{} umount mnt", bin.display())).unwrap();
    assert_eq!(m.exit_code(), Some(0));
    assert!(!is_mounted(&mnt));
}

/// SIGTERM to a user's daemon: it unmounts through `fusermount3 -u` and exits 0.
#[test]
fn sigterm_unmounts_a_users_mount_and_exits_zero() {
    let Some(mut m) = UserMount::start() else {
        return;
    };
    assert!(m.sh("cat mnt/hello.txt").is_ok());
    let pid = m.child.as_ref().unwrap().id();
    // SAFETY: signalling our own child (setpriv exec'd ftpfs: same PID) by PID.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert_eq!(m.exit_code(), Some(0), "{}", m.log());
    assert!(!is_mounted(&m.mnt()));
}

/// The FUSE connection of a user's mount is aborted: the daemon cannot unmount by itself
/// (umount2 needs root) and has `fusermount3 -uz` take the dead mount away, then exits 1.
#[test]
fn an_aborted_users_mount_is_taken_away() {
    let Some(mut m) = UserMount::start() else {
        return;
    };
    let mnt = m.mnt();
    assert!(m.sh("cat mnt/hello.txt").is_ok());
    abort_connection(&mnt);
    assert_eq!(m.exit_code(), Some(1));
    assert!(!is_mounted(&mnt), "no dead mount left behind");
    assert!(
        m.log().contains("was aborted; unmounting it"),
        "{}",
        m.log()
    );
}
