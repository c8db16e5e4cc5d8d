//! Write-back mode (`-o writeback`) through real mounts of real servers: `close` returns
//! before the upload, and still nothing is lost: every file arrives byte for byte, a failed
//! upload reaches `fsync`, `sync MOUNTPOINT` and `ftpfs umount`, a killed daemon's queue is
//! finished by the next mount (without duplicates, temporary files or overwriting a file
//! someone changed meanwhile), and a queue past its limit makes `close` wait.
//!
//! Uploads are held back deterministically by stopping the server (pure-ftpd can be crashed
//! and restarted on its port), never by timing.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// `sync DIR` is fsync(2) of the directory (not syncfs): on the mount's root, it waits for
/// the whole write-back queue and fails with its first error.
fn sync_mount(path: &Path) -> std::process::Output {
    Command::new("sync").arg(path).output().unwrap()
}

fn temp_files_below(dir: &Path) -> Vec<String> {
    snapshot(dir)
        .into_keys()
        .filter(|k| k.rsplit('/').next().unwrap().starts_with(".ftpfs-"))
        .collect()
}

fn umount_cmd(path: &Path) -> std::process::Output {
    ftpfs().arg("umount").arg(path).output().unwrap()
}

fn cp_r_returns_and_every_file_arrives(kind: ServerKind) {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(kind, data.path()) else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path());
    let mut rng = Rng(7);
    std::fs::create_dir(src.path().join("many")).unwrap();
    for i in 0..150 {
        let n = rng.below(20_000) as usize;
        std::fs::write(src.path().join(format!("many/f{i:03}")), rng.bytes(n)).unwrap();
    }
    let m = Mount::new(&server, &["writeback"]);
    let st = Command::new("cp")
        .arg("-r")
        .arg(src.path())
        .arg(m.path().join("copy"))
        .status()
        .unwrap();
    assert!(st.success());
    // Before anything is known to be uploaded, the mount shows and reads the local version.
    let before = snapshot(&m.path().join("copy"));
    assert_eq!(
        before,
        snapshot(src.path()),
        "the mount shows what was written"
    );
    // Removed and renamed while (perhaps) still queued: the upload neither brings the
    // removed file back nor lands under the old name.
    for root in [m.path().join("copy"), src.path().to_path_buf()] {
        std::fs::remove_file(root.join("many/f000")).unwrap();
        std::fs::rename(root.join("many/f001"), root.join("many/renamed")).unwrap();
        // truncate(2) of a closed file whose upload may still be queued.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(root.join("many/f002"))
            .unwrap();
        drop(f);
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(root.join("many/f003").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::truncate(c.as_ptr(), 10) }, 0);
    }
    let out = sync_mount(m.path());
    assert!(
        out.status.success(),
        "sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        snapshot(&data.path().join("copy")),
        snapshot(src.path()),
        "after sync every file is on the server, byte for byte"
    );
    assert!(temp_files_below(data.path()).is_empty());
    let out = umount_cmd(m.path());
    assert!(
        out.status.success(),
        "umount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cp_r_returns_and_every_file_arrives_on_pure_ftpd() {
    cp_r_returns_and_every_file_arrives(ServerKind::PureFtpd);
}

#[test]
fn cp_r_returns_and_every_file_arrives_on_vsftpd() {
    cp_r_returns_and_every_file_arrives(ServerKind::Vsftpd);
}

#[test]
fn cp_r_returns_and_every_file_arrives_on_proftpd() {
    cp_r_returns_and_every_file_arrives(ServerKind::Proftpd);
}

/// A directory that stops taking files after it took one: the second file's `close`
/// returns (it is queued), its upload is refused, and `fsync` of it returns EACCES; its
/// data is in the recovery directory, and `ftpfs umount` exits 1 naming it.
fn fsync_reports_the_errno_of_a_failed_queued_upload(kind: ServerKind) {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(kind, data.path()) else {
        return;
    };
    // After the harness gave the tree to the FTP user: root's, writable by everyone for now.
    let locked = data.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o777)).unwrap();
    let m = Mount::new(&server, &["writeback", "dir_cache_ttl=600"]);
    let p = m.path().join("locked");
    std::fs::write(p.join("first.txt"), "taken").unwrap();
    assert!(sync_mount(m.path()).status.success());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut f = std::fs::File::create(p.join("second.txt")).unwrap();
    f.write_all(b"refused by the server").unwrap();
    // A close(2) of a duplicate is a FUSE flush: the file is queued, and close says yes.
    let dup = f.try_clone().unwrap();
    assert_eq!(close(dup), Ok(()));
    let err = f.sync_all().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "fsync: {err}");
    drop(f);

    let out = umount_cmd(m.path());
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "umount: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("locked/second.txt"))
        .unwrap_or_else(|| panic!("umount names the file: {stderr}"));
    let saved = line
        .split("its data is in ")
        .nth(1)
        .expect("umount says where its data is");
    assert_eq!(
        std::fs::read(saved.trim()).unwrap(),
        b"refused by the server"
    );
    assert!(!locked.join("second.txt").exists());
    assert!(temp_files_below(data.path()).is_empty());
    assert!(m.log_text().contains("ERROR"), "logged at error level");
}

#[test]
fn fsync_reports_the_errno_of_a_failed_queued_upload_on_pure_ftpd() {
    fsync_reports_the_errno_of_a_failed_queued_upload(ServerKind::PureFtpd);
}

#[test]
fn fsync_reports_the_errno_of_a_failed_queued_upload_on_vsftpd() {
    fsync_reports_the_errno_of_a_failed_queued_upload(ServerKind::Vsftpd);
}

/// A full server (pure-ftpd's quota, already exceeded): `close` returned, the upload is
/// refused, the data is kept in the recovery directory, logged at error level, `sync` of
/// the mount fails with the quota's errno and `ftpfs umount` exits 1 naming the file.
#[test]
fn a_full_server_keeps_the_data_in_recovery_and_umount_names_it() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("ballast"), vec![1u8; 2 << 20]).unwrap();
    let Some(server) = Server::pure_ftpd_with(data.path(), &["-n", "1000:1"]) else {
        return;
    };
    let m = Mount::new(&server, &["writeback"]);
    let content: Vec<u8> = Rng(3).bytes(3 << 20);
    let mut f = std::fs::File::create(m.path().join("big.bin")).unwrap();
    f.write_all(&content).unwrap();
    assert_eq!(close(f), Ok(()), "close returns once the data is journaled");
    let out = sync_mount(m.path());
    assert!(!out.status.success(), "sync reports the failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("quota") || stderr.contains("space"),
        "sync: {stderr}"
    );
    let out = umount_cmd(m.path());
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "umount: {stderr}");
    let saved = stderr
        .lines()
        .find(|l| l.contains("big.bin:"))
        .and_then(|l| l.split("its data is in ").nth(1))
        .unwrap_or_else(|| panic!("umount names the file and its data: {stderr}"));
    assert!(std::fs::read(saved.trim()).unwrap() == content);
    assert!(temp_files_below(data.path()).is_empty());
    assert!(m.log_text().contains("ERROR"));
}

/// `kill -9` of the daemon while 500 new files, a changed file, an append and a file that
/// someone else changes meanwhile are queued (the server is down, so none can land); the
/// next mount of the same server finishes them before it serves: all 500 byte for byte,
/// each once, no temporary file; the file changed on the server keeps the server's version
/// and ours goes to the recovery directory.
#[test]
fn kill_9_with_500_queued_files_then_remount_finishes_each_once() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("d")).unwrap();
    std::fs::write(data.path().join("changed.txt"), "server version 1\n").unwrap();
    std::fs::write(data.path().join("theirs.txt"), "base\n").unwrap();
    std::fs::write(data.path().join("log.txt"), "line 0\n").unwrap();
    let Some(mut server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let spool = format!("spool_dir={}", state.path().join("spool").display());
    let rec_dir = state.path().join("recovered");
    let recovery = format!("recovery_dir={}", rec_dir.display());
    let opts = ["writeback", "dir_cache_ttl=600", &spool, &recovery];
    let mut m = Mount::new(&server, &opts);
    let d = m.path().join("d");
    // The directory takes one file while the server is up: later creates in it need no
    // round trip, and the listings are cached.
    std::fs::write(d.join("first"), "first").unwrap();
    assert!(sync_mount(m.path()).status.success());
    for name in ["changed.txt", "theirs.txt", "log.txt"] {
        std::fs::metadata(m.path().join(name)).unwrap();
    }
    server.crash();

    let mut rng = Rng(500);
    let mut expected = Vec::new();
    for i in 0..500 {
        let n = rng.below(3000) as usize;
        let content = rng.bytes(n);
        std::fs::write(d.join(format!("f{i:03}")), &content).unwrap();
        expected.push((format!("f{i:03}"), content));
    }
    std::fs::write(m.path().join("changed.txt"), "our version, longer\n").unwrap();
    std::fs::write(m.path().join("theirs.txt"), "ours\n").unwrap();
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(m.path().join("log.txt"))
        .unwrap();
    log.write_all(b"line 1\n").unwrap();
    drop(log);

    // Queued, not on the server: the mount shows and reads the local versions.
    for (name, content) in expected.iter().step_by(50) {
        let p = d.join(name);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), content.len() as u64);
        assert!(std::fs::read(&p).unwrap() == *content, "{name} reads back");
        assert!(!data.path().join("d").join(name).exists());
    }
    // An append downloads nothing: its size is shown, its old bytes still need the server.
    assert_eq!(
        std::fs::metadata(m.path().join("log.txt")).unwrap().len(),
        14
    );

    let mut child = m.take_child();
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = unmount(m.path());
    drop(m);
    // Someone else changes a file while our version of it waits.
    std::fs::write(data.path().join("theirs.txt"), "someone else's\n").unwrap();
    server.restart();

    // The next mount need not use write-back itself to finish what the last one left.
    let m = Mount::new(&server, &opts[1..]);
    for (name, content) in &expected {
        let on_server = std::fs::read(data.path().join("d").join(name)).unwrap();
        assert!(on_server == *content, "{name} arrived byte for byte");
    }
    let names: Vec<String> = std::fs::read_dir(data.path().join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 501, "each file once, nothing else: {names:?}");
    assert_eq!(
        std::fs::read_to_string(data.path().join("changed.txt")).unwrap(),
        "our version, longer\n"
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("log.txt")).unwrap(),
        "line 0\nline 1\n",
        "the append went up once"
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("theirs.txt")).unwrap(),
        "someone else's\n",
        "a file changed on the server is not overwritten"
    );
    let kept: Vec<_> = std::fs::read_dir(&rec_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(&kept[0]).unwrap(), "ours\n");
    let log = m.log_text();
    assert!(log.contains("changed on the server"));
    // Finished by the replay before the mount served, not by a later queue.
    assert!(
        log.contains("uploaded: 502, found: 0, conflicts: 1, kept: 0"),
        "replay: {}",
        log.lines()
            .find(|l| l.contains("replayed"))
            .unwrap_or("none")
    );
    assert!(temp_files_below(data.path()).is_empty());
    let journal = state.path().join("spool/journal");
    let left: Vec<_> = std::fs::read_dir(&journal)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .collect();
    assert!(left.is_empty(), "the journal is empty: {left:?}");
    // The mount serves what the server has now.
    assert_eq!(
        std::fs::read_to_string(m.path().join("theirs.txt")).unwrap(),
        "someone else's\n"
    );
}

/// Past `writeback_max` queued bytes `close` uploads itself, as without write-back: with the
/// server down, the first close returns at once (queued) and the second reports the
/// failure of its own upload. Once the server is back, `sync` of the mount lands the first.
#[test]
fn a_queue_past_writeback_max_makes_close_upload_itself() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("d")).unwrap();
    let Some(mut server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(
        &server,
        &[
            "writeback",
            "writeback_max=64K",
            "dir_cache_ttl=600",
            "retries=1",
        ],
    );
    let d = m.path().join("d");
    std::fs::write(d.join("first"), "first").unwrap();
    assert!(sync_mount(m.path()).status.success());
    server.crash();
    let a: Vec<u8> = Rng(1).bytes(40_000);
    let mut f = std::fs::File::create(d.join("a")).unwrap();
    f.write_all(&a).unwrap();
    assert_eq!(close(f), Ok(()), "within the limit: queued");
    let mut f = std::fs::File::create(d.join("b")).unwrap();
    f.write_all(&Rng(2).bytes(40_000)).unwrap();
    let r = close(f);
    assert!(r.is_err(), "past the limit close uploads, and fails: {r:?}");
    server.restart();
    let out = sync_mount(m.path());
    assert!(
        out.status.success(),
        "sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(data.path().join("d/a")).unwrap() == a);
}

mod replay {
    //! The journal's replay against the in-memory remote: the cases a real server shows only
    //! with a crash at an exact byte.

    use ftpfs::fs::{FsOptions, FtpFs, UploadMode};
    use ftpfs::testing::MemRemote;
    use ftpfs::upload::journal::{Base, Journal, Record, Replayed};

    fn record(path: &str, base: Base, tail: bool, data: &[u8]) -> (Record, Vec<u8>) {
        let rec = Record {
            id: 0,
            path: path.into(),
            base,
            tail,
            len: data.len() as u64,
            pid: 4242,
            mtime: None,
            mode: None,
            offset: 0,
            dir: false,
        };
        (rec, data.to_vec())
    }

    #[test]
    fn replay_finishes_cut_uploads_recognises_landed_ones_and_keeps_conflicts() {
        let state = tempfile::tempdir().unwrap();
        let remote = MemRemote::new();
        remote.add_dir("d");
        // A new file whose in-place upload the crash cut after 4 bytes.
        remote.add_file("d/cut.txt", b"0123");
        // An append cut after 3 of its 5 bytes.
        remote.add_file("d/log", b"12345678");
        // Changed by someone else: 5 bytes where ours was based on 3.
        remote.add_file("d/theirs", b"xxxxx");
        // Landed before the crash removed its record.
        remote.add_file("d/landed", b"abc");
        // An append to a server that refuses APPE (proftpd by default).
        remote.add_file("d/noappe", b"head-");
        remote.inject(
            ftpfs::testing::Fault::Call("append", "d/noappe".into()),
            || ftpfs::error::Error::Unsupported,
        );
        // A temporary file of the dead process, and one of another process.
        remote.add_file("d/.ftpfs-big.4242-7.part", b"half");
        remote.add_file("d/.ftpfs-big.999-1.part", b"not ours");
        let journal = Journal::open(state.path().join("journal")).unwrap();
        for (rec, data) in [
            record("d/cut.txt", Base::New, false, b"0123456789"),
            record("d/log", Base::Size(5), true, b"67890"),
            record("d/theirs", Base::Size(3), false, b"ours"),
            record("d/landed", Base::New, false, b"abc"),
            record("d/noappe", Base::Size(5), true, b"tail"),
            record("d/twice", Base::New, false, b"older"),
            record("d/twice", Base::New, false, b"newer"),
        ] {
            journal.write(rec, &mut &data[..]).unwrap();
        }
        let spool = state.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let mut fs = FtpFs::new(
            remote,
            FsOptions {
                uid: 1000,
                gid: 1000,
                umask: None,
                ttl: std::time::Duration::from_secs(30),
                max_cached_entries: 1000,
                read_only: false,
                spool_dir: spool,
                recovery_dir: state.path().join("recovered"),
                upload: UploadMode::Atomic,
                strict_times: false,
            },
        );
        fs.enable_writeback(journal, 1 << 30, 1000);
        let done = fs.replay_journal();
        assert_eq!(
            done,
            Replayed {
                uploaded: 4,
                found: 1,
                conflicts: 1,
                kept: 0
            }
        );
        let remote = fs.remote();
        assert_eq!(remote.content("d/cut.txt").unwrap(), b"0123456789");
        assert_eq!(
            remote.content("d/log").unwrap(),
            b"1234567890",
            "no byte twice"
        );
        assert_eq!(
            remote.content("d/theirs").unwrap(),
            b"xxxxx",
            "not overwritten"
        );
        assert_eq!(remote.content("d/landed").unwrap(), b"abc");
        assert_eq!(
            remote.content("d/noappe").unwrap(),
            b"head-tail",
            "sent whole"
        );
        assert_eq!(remote.content("d/twice").unwrap(), b"newer");
        assert!(!remote.exists("d/.ftpfs-big.4242-7.part"), "ours is swept");
        assert!(
            remote.exists("d/.ftpfs-big.999-1.part"),
            "another's is left"
        );
        let kept: Vec<_> = std::fs::read_dir(state.path().join("recovered"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(kept, vec![b"ours".to_vec()]);
        let left = std::fs::read_dir(state.path().join("journal"))
            .unwrap()
            .count();
        assert_eq!(left, 0, "the journal is empty");
    }
}

/// The local disk is full (the spool directory is a 1 MiB tmpfs): the journal cannot take
/// a copy of a 700 KiB file, so its `close` uploads it itself, as without write-back, says
/// so in the log, and returns the server's answer; nothing is lost or silent.
#[test]
fn a_full_local_disk_makes_close_upload_itself_and_says_so() {
    let spool = tempfile::tempdir().unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "ftpfs-test"])
        .arg(spool.path())
        .status();
    if !st.is_ok_and(|s| s.success()) {
        if require_servers() {
            panic!("cannot mount a tmpfs for the local disk-full test");
        }
        eprintln!("SKIP: no tmpfs");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _tmpfs = Unmount(spool.path().to_path_buf());
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let opt = format!("spool_dir={}", spool.path().display());
    let m = Mount::new(&server, &["writeback", &opt]);
    let big = Rng(11).bytes(700 << 10);
    let mut f = std::fs::File::create(m.path().join("big.bin")).unwrap();
    f.write_all(&big).unwrap();
    assert_eq!(close(f), Ok(()));
    assert!(
        std::fs::read(data.path().join("big.bin")).unwrap() == big,
        "on the server when close returned"
    );
    assert!(m.log_text().contains("cannot journal it for write-back"));
    // Small files still go through the journal.
    std::fs::write(m.path().join("small.txt"), "small").unwrap();
    assert!(sync_mount(m.path()).status.success());
    assert_eq!(
        std::fs::read_to_string(data.path().join("small.txt")).unwrap(),
        "small"
    );
}

/// The kernel forgets the inodes of closed files when it drops its caches (memory pressure;
/// here `drop_caches`): a file still queued keeps its path, and lands.
#[test]
fn queued_files_land_after_the_kernel_forgets_their_inodes() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("d")).unwrap();
    let Some(mut server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["writeback", "dir_cache_ttl=600"]);
    let d = m.path().join("d");
    std::fs::write(d.join("first"), "first").unwrap();
    assert!(sync_mount(m.path()).status.success());
    server.crash();
    for i in 0..20 {
        std::fs::write(d.join(format!("f{i}")), format!("content {i}")).unwrap();
    }
    if std::fs::write("/proc/sys/vm/drop_caches", "2").is_err() {
        assert!(!require_servers(), "cannot drop the kernel's caches");
        eprintln!("SKIP: cannot drop the kernel's caches (not root)");
        return;
    }
    assert!(
        wait_for(Duration::from_secs(10), || m
            .log_text()
            .contains("forgotten")),
        "the kernel forgot inodes"
    );
    server.restart();
    let out = sync_mount(m.path());
    assert!(
        out.status.success(),
        "sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..20 {
        assert_eq!(
            std::fs::read_to_string(data.path().join(format!("d/f{i}"))).unwrap(),
            format!("content {i}")
        );
    }
    assert!(std::fs::read_dir(m.recovery_dir()).map_or(true, |mut r| r.next().is_none()));
}

/// Appends and shell redirections with write-back: a hundred `>>` of one file, each closed
/// (and so queued) before the next opens it, arrive as one file with every line once; on
/// proftpd, which refuses APPE, as whole uploads.
fn appends_arrive_once_each(kind: ServerKind) {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("log.txt"), "line 0\n").unwrap();
    let Some(server) = Server::start(kind, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["writeback"]);
    let out = Command::new("sh")
        .arg("-c")
        .arg("for i in $(seq 100); do echo \"line $i\" >> log.txt; done; echo first > red.txt; echo second > red.txt")
        .current_dir(m.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: String = (0..=100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(
        std::fs::read_to_string(m.path().join("log.txt")).unwrap(),
        expected
    );
    let synced = sync_mount(m.path());
    assert!(
        synced.status.success(),
        "sync: {}",
        String::from_utf8_lossy(&synced.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("log.txt")).unwrap(),
        expected
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("red.txt")).unwrap(),
        "second\n"
    );
    assert!(temp_files_below(data.path()).is_empty());
}

#[test]
fn appends_arrive_once_each_on_pure_ftpd() {
    appends_arrive_once_each(ServerKind::PureFtpd);
}

#[test]
fn appends_arrive_once_each_on_proftpd() {
    appends_arrive_once_each(ServerKind::Proftpd);
}

/// The queue's uploads are background work: while they hold every connection the queue may
/// use (each `STOR` stuck in a slow server), a `mkdir`, a lookup and a listing through the
/// mount are answered at once, on the connection the queue leaves for them, before any
/// queued upload has landed. (libunftp with slow storage for `STOR`: it starts writing a file
/// only after the delay, so a file on the server's disk means an upload landed; a request
/// that waited for a queue's connection would come after one.)
#[test]
fn requests_do_not_wait_for_the_queues_uploads_to_a_slow_server() {
    use common::faulty::{Fault, Verb};
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("old")).unwrap();
    std::fs::write(data.path().join("old/there.txt"), b"x").unwrap();
    let (server, faults) = Server::unftp_with_faults(data.path());
    let m = Mount::new(&server, &["writeback,connections=3"]);
    // Made through the mount, so known writable: its new files need no empty STOR at
    // creation, and the only STORs are the queue's.
    std::fs::create_dir(m.path().join("out")).unwrap();
    faults.always(Verb::Stor, Fault::Slow(Duration::from_secs(8)));
    for i in 0..4 {
        let mut f = std::fs::File::create(m.path().join(format!("out/q{i}.bin"))).unwrap();
        f.write_all(&[i as u8; 1000]).unwrap();
        assert_eq!(close(f), Ok(()));
    }
    // The queue takes two of the three connections, and both are in a STOR.
    assert!(
        wait_for(Duration::from_secs(20), || faults.calls(Verb::Stor).len()
            >= 2),
        "two uploads started"
    );
    let landed = || {
        (0..4)
            .filter(|i| {
                std::fs::metadata(data.path().join(format!("out/q{i}.bin")))
                    .is_ok_and(|m| m.len() == 1000)
            })
            .count()
    };
    std::fs::create_dir(m.path().join("new dir")).unwrap();
    let listed: Vec<_> = std::fs::read_dir(m.path().join("old"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let looked_up = std::fs::metadata(m.path().join("old/there.txt")).unwrap();
    assert_eq!(
        landed(),
        0,
        "the requests were answered before any upload landed"
    );
    assert!(
        data.path().join("new dir").is_dir(),
        "MKD was made on the server"
    );
    assert_eq!(listed, ["there.txt"]);
    assert_eq!(looked_up.len(), 1);
    // And the queue still finishes.
    faults.clear();
    let out = sync_mount(m.path());
    assert!(out.status.success(), "{out:?}");
    for i in 0..4u8 {
        let got = std::fs::read(data.path().join(format!("out/q{i}.bin"))).unwrap();
        assert!(got == [i; 1000], "q{i}.bin");
    }
}
