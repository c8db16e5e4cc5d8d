//! Server-side copy: `copy_file_range(2)` within a mount becomes `SITE CPFR`/`SITE CPTO`
//! where the server has them (proftpd's mod_copy), so `cp` moves no file bytes over the
//! link; elsewhere, and for anything but a whole file, the kernel and `cp` fall back to
//! reading and writing. The core's rules are checked against `MemRemote`; the real thing
//! through mounts, counted from proftpd's command log.

mod common;

use std::ffi::OsStr;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::*;
use ftpfs::fs::{FsOptions, FtpFs, OpenMode, UploadMode};
use ftpfs::inode::ROOT;
use ftpfs::testing::MemRemote;

fn core(remote: MemRemote) -> FtpFs<MemRemote> {
    let spool = std::env::temp_dir().join(format!("ftpfs-copy-tests-{}", std::process::id()));
    std::fs::create_dir_all(&spool).unwrap();
    FtpFs::new(
        remote,
        FsOptions {
            uid: 1000,
            gid: 1000,
            umask: None,
            ttl: Duration::from_secs(60),
            max_cached_entries: 10_000,
            read_only: false,
            spool_dir: spool.clone(),
            recovery_dir: spool.join("recovered"),
            upload: UploadMode::Atomic,
            strict_times: false,
        },
    )
}

/// A source handle on `src` and a new, empty destination `dst` (both in the root).
fn open_pair(fs: &FtpFs<MemRemote>, src: &str, dst: &str) -> (u64, u64) {
    let ino = fs.lookup(ROOT, OsStr::new(src)).unwrap().ino;
    let (fh_in, _) = fs.open(ino, OpenMode::default()).unwrap();
    let (_, fh_out) = fs.create(ROOT, OsStr::new(dst), true, 0, 0o644).unwrap();
    (fh_in, fh_out)
}

#[test]
fn whole_file_copy_is_done_by_the_server_and_close_uploads_nothing() {
    let r = MemRemote::new();
    r.add_file("src.bin", &Rng(1).bytes(100_000));
    let fs = core(r);
    let (fh_in, fh_out) = open_pair(&fs, "src.bin", "dst.bin");
    let stores = fs.remote().store_calls();
    // cp asks for far more than the file; the answer is the file's size, then 0 at its end.
    assert_eq!(
        fs.copy_range(fh_in, 0, fh_out, 0, 1 << 40).unwrap(),
        100_000
    );
    assert_eq!(
        fs.copy_range(fh_in, 100_000, fh_out, 100_000, 1 << 40)
            .unwrap(),
        0
    );
    fs.flush(fh_out).unwrap();
    fs.release(fh_out);
    assert_eq!(
        fs.remote().store_calls(),
        stores,
        "no upload after the copy"
    );
    assert_eq!(
        fs.remote().content("dst.bin").unwrap(),
        fs.remote().content("src.bin").unwrap()
    );
    let dst = fs.lookup(ROOT, OsStr::new("dst.bin")).unwrap();
    assert_eq!(dst.size, 100_000);
    // Reading the copy through the mount reads the server's new file.
    let (fh, _) = fs.open(dst.ino, OpenMode::default()).unwrap();
    assert_eq!(
        &*fs.read(fh, 99_990, 100).unwrap(),
        &fs.remote().content("src.bin").unwrap()[99_990..]
    );
}

#[test]
fn a_range_or_a_destination_with_content_is_left_to_read_and_write() {
    let r = MemRemote::new();
    r.add_file("src.bin", &Rng(2).bytes(5000));
    let fs = core(r);
    let (fh_in, fh_out) = open_pair(&fs, "src.bin", "dst.bin");
    for (off_in, off_out, len) in [(10, 0, 1 << 20), (0, 10, 1 << 20), (0, 0, 4999)] {
        let e = fs
            .copy_range(fh_in, off_in, fh_out, off_out, len)
            .unwrap_err();
        assert_eq!(e.errno(), libc::ENOTSUP, "{off_in} {off_out} {len}");
    }
    fs.write(fh_out, 0, b"x").unwrap();
    let e = fs.copy_range(fh_in, 0, fh_out, 0, 1 << 20).unwrap_err();
    assert_eq!(e.errno(), libc::ENOTSUP);
    assert_eq!(fs.remote().copy_calls(), 0, "the server was not asked");
}

#[test]
fn a_server_without_copy_gets_enotsup_and_the_fallback_writes_the_file() {
    let r = MemRemote::new();
    r.add_file("src.bin", b"some bytes");
    r.without_copy(true);
    let fs = core(r);
    let (fh_in, fh_out) = open_pair(&fs, "src.bin", "dst.bin");
    let e = fs.copy_range(fh_in, 0, fh_out, 0, 1 << 20).unwrap_err();
    assert_eq!(e.errno(), libc::ENOTSUP);
    // What cp does next.
    let data = fs.read(fh_in, 0, 1 << 16).unwrap();
    fs.write(fh_out, 0, &data).unwrap();
    fs.flush(fh_out).unwrap();
    assert_eq!(fs.remote().content("dst.bin").unwrap(), b"some bytes");
}

#[test]
fn unsent_writes_of_the_source_are_uploaded_before_the_server_copies_it() {
    let r = MemRemote::new();
    r.add_file("src.txt", b"old");
    let fs = core(r);
    let ino = fs.lookup(ROOT, OsStr::new("src.txt")).unwrap().ino;
    let rw = OpenMode {
        write: true,
        truncate: true,
        owner: 0,
    };
    let (w, _) = fs.open(ino, rw).unwrap();
    fs.write(w, 0, b"new content").unwrap();
    let (fh_in, fh_out) = open_pair(&fs, "src.txt", "dst.txt");
    assert_eq!(fs.copy_range(fh_in, 0, fh_out, 0, 1 << 20).unwrap(), 11);
    assert_eq!(fs.remote().content("dst.txt").unwrap(), b"new content");
}

// Through mounts.

/// The server's commands, one `VERB ARGUMENT CODE` line each (proftpd's ExtendedLog).
fn commands_of(server: &Server, verb: &str) -> Vec<String> {
    server
        .command_log()
        .lines()
        .filter(|l| l.split(' ').next() == Some(verb))
        .map(str::to_string)
        .collect()
}

fn cp(m: &Mount, from: &str, to: &str) {
    let out = Command::new("cp")
        .arg(from)
        .arg(to)
        .current_dir(m.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cp {from} {to}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        m.log_text()
    );
}

#[test]
fn cp_within_a_proftpd_mount_copies_on_the_server_without_moving_the_bytes() {
    let data = tempfile::tempdir().unwrap();
    let content = Rng(3).bytes(3 << 20);
    std::fs::create_dir(data.path().join("sub")).unwrap();
    std::fs::write(data.path().join("big.bin"), &content).unwrap();
    let Some(server) = Server::start(ServerKind::Proftpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    cp(&m, "big.bin", "sub/copy.bin");
    cp(&m, "big.bin", "copy2.bin");
    assert_eq!(
        std::fs::read(data.path().join("sub/copy.bin")).unwrap(),
        content
    );
    assert_eq!(
        std::fs::read(data.path().join("copy2.bin")).unwrap(),
        content
    );
    assert_eq!(
        std::fs::read(m.path().join("sub/copy.bin")).unwrap(),
        content
    );
    let cpto: Vec<String> = commands_of(&server, "SITE")
        .into_iter()
        .filter(|l| l.contains("CPTO"))
        .collect();
    assert_eq!(cpto.len(), 2, "{cpto:?}");
    // Up to the check above: the source never came down, and the last command naming
    // each copy is its CPTO (the STOR before it is the empty create of `cp`'s open); no
    // byte of it went up after.
    let log = server.command_log();
    let before_check = log.split("RETR /sub/copy.bin").next().unwrap();
    assert!(!before_check.contains("RETR /big.bin"), "{log}");
    for target in ["/sub/copy.bin", "/copy2.bin"] {
        let last = before_check.lines().rfind(|l| l.contains(target)).unwrap();
        assert_eq!(last, format!("SITE CPTO CPTO {target} 250"), "{log}");
        let stores = before_check
            .lines()
            .filter(|l| (l.starts_with("STOR ") || l.starts_with("APPE ")) && l.contains(target))
            .count();
        assert!(stores <= 1, "{log}");
    }
}

#[test]
fn cp_within_a_pure_ftpd_mount_falls_back_to_read_and_write() {
    let data = tempfile::tempdir().unwrap();
    let content = Rng(4).bytes((1 << 20) + 17);
    std::fs::write(data.path().join("big.bin"), &content).unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    cp(&m, "big.bin", "copy.bin");
    cp(&m, "big.bin", "copy2.bin");
    assert_eq!(
        std::fs::read(data.path().join("copy.bin")).unwrap(),
        content
    );
    assert_eq!(
        std::fs::read(data.path().join("copy2.bin")).unwrap(),
        content
    );
    // The refusal was learned at the first copy: one info line, no warning.
    let log = m.log_text();
    assert_eq!(log.matches("server-side copies").count(), 1, "{log}");
}

#[test]
fn copy_of_a_file_still_being_written_copies_what_was_written() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::Proftpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let mut w = std::fs::File::create(m.path().join("open.txt")).unwrap();
    w.write_all(b"written, not yet closed\n").unwrap();
    let src = std::fs::File::open(m.path().join("open.txt")).unwrap();
    let dst = std::fs::File::create(m.path().join("dst.txt")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: copy_file_range on two descriptors we own, with null offsets (the files').
    let n = unsafe {
        libc::copy_file_range(
            src.as_raw_fd(),
            std::ptr::null_mut(),
            dst.as_raw_fd(),
            std::ptr::null_mut(),
            1 << 20,
            0,
        )
    };
    assert_eq!(n, 24, "{}", std::io::Error::last_os_error());
    close(dst).unwrap();
    close(w).unwrap();
    assert_eq!(
        std::fs::read(data.path().join("dst.txt")).unwrap(),
        b"written, not yet closed\n"
    );
    assert!(
        server.command_log().contains("CPTO"),
        "{}",
        server.command_log()
    );
}
