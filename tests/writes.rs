//! The write path through real mounts of real servers: every change is checked on both
//! sides, through the mount and in the server's data directory, with the tools people use.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::*;

fn setup(kind: ServerKind) -> Option<(tempfile::TempDir, Server, Mount)> {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("existing.txt"), "old content\n").unwrap();
    std::fs::create_dir(data.path().join("full")).unwrap();
    std::fs::write(data.path().join("full/x"), "x").unwrap();
    let server = Server::start(kind, data.path())?;
    let m = Mount::new(&server, &[]);
    Some((data, server, m))
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn create_write_and_read_back_on_both_sides(kind: ServerKind) {
    let Some((data, _s, m)) = setup(kind) else {
        return;
    };
    let (p, d) = (m.path(), data.path());
    std::fs::write(p.join("new.txt"), "hello\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("new.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.join("new.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(std::fs::metadata(p.join("new.txt")).unwrap().len(), 6);

    // O_RDWR with a hole, read back on the same and on another handle before close.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(p.join("holes.bin"))
        .unwrap();
    f.write_all_at(b"abc", 0).unwrap();
    f.write_all_at(b"xyz", 10).unwrap();
    let mut buf = [1u8; 13];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"abc\0\0\0\0\0\0\0xyz");
    let mut other = std::fs::File::open(p.join("holes.bin")).unwrap();
    let mut seen = Vec::new();
    other.read_to_end(&mut seen).unwrap();
    assert_eq!(
        seen, b"abc\0\0\0\0\0\0\0xyz",
        "read-your-writes on another handle"
    );
    drop(other);
    f.sync_all().unwrap();
    assert_eq!(
        std::fs::read(d.join("holes.bin")).unwrap(),
        b"abc\0\0\0\0\0\0\0xyz"
    );
    drop(f);

    // Overwrite an existing file in the middle, keep the rest.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(p.join("existing.txt"))
        .unwrap();
    f.write_all_at(b"NEW", 0).unwrap();
    drop(f);
    assert_eq!(
        std::fs::read_to_string(d.join("existing.txt")).unwrap(),
        "NEW content\n"
    );
    assert!(no_temp_files(d), "no temporary upload files left");
}

fn no_temp_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".ftpfs-")
    })
}

fn appends_and_shell_redirection(kind: ServerKind) {
    let Some((data, _s, m)) = setup(kind) else {
        return;
    };
    sh(
        m.path(),
        "for i in $(seq 100); do echo \"line $i\" >> log.txt; done; echo first > red.txt; echo second > red.txt; : > empty.txt",
    );
    let want: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(
        std::fs::read_to_string(data.path().join("log.txt")).unwrap(),
        want
    );
    assert_eq!(
        std::fs::read_to_string(m.path().join("log.txt")).unwrap(),
        want
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("red.txt")).unwrap(),
        "second\n"
    );
    assert_eq!(
        std::fs::metadata(data.path().join("empty.txt"))
            .unwrap()
            .len(),
        0
    );
}

/// Random writes, truncates and reads on one handle, checked against an in-memory model
/// after every step and against the server after each fsync and after close.
fn random_operations_match_a_model(kind: ServerKind) {
    let Some((data, _s, m)) = setup(kind) else {
        return;
    };
    let mut rng = Rng(0xfeed ^ kind as u64);
    let mut model: Vec<u8> = Vec::new();
    let path = m.path().join("model.bin");
    let server = data.path().join("model.bin");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    for step in 0..150 {
        match rng.below(10) {
            0..=5 => {
                let off = rng.below(model.len() as u64 + 70_000) as usize;
                let n = 1 + rng.below(70_000) as usize;
                let bytes = rng.bytes(n);
                f.write_all_at(&bytes, off as u64).unwrap();
                if model.len() < off + bytes.len() {
                    model.resize(off + bytes.len(), 0);
                }
                model[off..off + bytes.len()].copy_from_slice(&bytes);
            }
            6 => {
                let len = rng.below(model.len() as u64 + 50_000) as usize;
                f.set_len(len as u64).unwrap();
                model.resize(len, 0);
            }
            7 => {
                f.sync_all().unwrap();
                assert!(
                    std::fs::read(&server).unwrap() == model,
                    "server after fsync, step {step}"
                );
            }
            _ => {
                let off = rng.below(model.len() as u64 + 10) as usize;
                let len = rng.below(100_000) as usize;
                let mut buf = vec![0u8; len];
                f.seek(SeekFrom::Start(off as u64)).unwrap();
                let mut n = 0;
                while n < len {
                    match f.read(&mut buf[n..]).unwrap() {
                        0 => break,
                        k => n += k,
                    }
                }
                let want = &model[off.min(model.len())..(off + len).min(model.len())];
                assert!(buf[..n] == *want, "read {len} at {off}, step {step}");
            }
        }
        assert_eq!(
            f.metadata().unwrap().len(),
            model.len() as u64,
            "size, step {step}"
        );
    }
    drop(f);
    assert!(
        std::fs::read(&server).unwrap() == model,
        "server after close"
    );
    assert!(std::fs::read(&path).unwrap() == model, "mount after close");
}

fn names_and_directories_follow_posix(kind: ServerKind) {
    let Some((data, _s, m)) = setup(kind) else {
        return;
    };
    let (p, d) = (m.path(), data.path());
    let errno = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    std::fs::create_dir(p.join("dir")).unwrap();
    assert!(d.join("dir").is_dir());
    assert_eq!(
        errno(std::fs::create_dir(p.join("dir"))),
        Some(libc::EEXIST)
    );
    assert_eq!(
        errno(std::fs::remove_dir(p.join("full"))),
        Some(libc::ENOTEMPTY)
    );
    assert_eq!(
        errno(std::fs::remove_file(p.join("dir"))),
        Some(libc::EISDIR)
    );
    assert_eq!(
        errno(std::fs::remove_dir(p.join("existing.txt"))),
        Some(libc::ENOTDIR)
    );
    assert_eq!(
        errno(std::fs::remove_file(p.join("nope"))),
        Some(libc::ENOENT)
    );
    let excl = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(p.join("existing.txt"));
    assert_eq!(excl.unwrap_err().raw_os_error(), Some(libc::EEXIST));
    let long = "n".repeat(256);
    assert_eq!(
        errno(std::fs::write(p.join(&long), "x")),
        Some(libc::ENAMETOOLONG)
    );

    // rename: onto an existing file replaces it; directories move with their content.
    std::fs::write(p.join("a"), "A").unwrap();
    std::fs::write(p.join("b"), "B").unwrap();
    std::fs::rename(p.join("a"), p.join("b")).unwrap();
    assert_eq!(std::fs::read_to_string(d.join("b")).unwrap(), "A");
    assert!(!d.join("a").exists());
    std::fs::write(p.join("dir/inner"), "in").unwrap();
    std::fs::rename(p.join("dir"), p.join("moved")).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("moved/inner")).unwrap(),
        "in"
    );
    assert_eq!(
        std::fs::read_to_string(p.join("moved/inner")).unwrap(),
        "in"
    );
    std::fs::remove_file(p.join("moved/inner")).unwrap();
    std::fs::remove_dir(p.join("moved")).unwrap();
    assert!(!d.join("moved").exists());
    assert!(!p.join("moved").exists());
}

/// What editors do: write a temporary file, fsync, rename it over the original.
fn editor_save_sed_and_dd(kind: ServerKind) {
    let Some((data, _s, m)) = setup(kind) else {
        return;
    };
    let (p, d) = (m.path(), data.path());
    let mut tmp = std::fs::File::create(p.join(".existing.txt.swp")).unwrap();
    tmp.write_all(b"saved by editor\n").unwrap();
    tmp.sync_all().unwrap();
    drop(tmp);
    std::fs::rename(p.join(".existing.txt.swp"), p.join("existing.txt")).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.join("existing.txt")).unwrap(),
        "saved by editor\n"
    );
    sh(p, "sed -i 's/editor/sed/' existing.txt");
    assert_eq!(
        std::fs::read_to_string(d.join("existing.txt")).unwrap(),
        "saved by sed\n"
    );
    sh(
        p,
        "head -c 100000 /dev/zero > z.bin && printf XY | dd of=z.bin bs=1 seek=5000 conv=notrunc status=none && printf Q | dd of=z.bin bs=1 seek=99999 conv=notrunc status=none",
    );
    let z = std::fs::read(d.join("z.bin")).unwrap();
    assert_eq!(z.len(), 100_000);
    assert_eq!(&z[5000..5002], b"XY");
    assert_eq!(z[99_999], b'Q');
    assert_eq!(z.iter().filter(|&&b| b != 0).count(), 3);
}

macro_rules! per_server {
    ($($kind:ident => $suffix:ident),*) => {$(
        mod $suffix {
            use super::*;
            #[test]
            fn create_write_and_read_back_on_both_sides() {
                super::create_write_and_read_back_on_both_sides(ServerKind::$kind);
            }
            #[test]
            fn appends_and_shell_redirection() {
                super::appends_and_shell_redirection(ServerKind::$kind);
            }
            #[test]
            fn random_operations_match_a_model() {
                super::random_operations_match_a_model(ServerKind::$kind);
            }
            #[test]
            fn names_and_directories_follow_posix() {
                super::names_and_directories_follow_posix(ServerKind::$kind);
            }
            #[test]
            fn editor_save_sed_and_dd() {
                super::editor_save_sed_and_dd(ServerKind::$kind);
            }
        }
    )*};
}

per_server!(Unftp => unftp, PureFtpd => pure_ftpd, Pyftpdlib => pyftpdlib, Proftpd => proftpd);

/// A source tree of 30 files in each of `dirs` directories, as a tarball.
fn make_tarball(work: &Path, dirs: usize) -> std::path::PathBuf {
    let src = work.join("src");
    let mut rng = Rng(99);
    for d in 0..dirs {
        let dir = src.join(format!("pkg{d:02}/sub dir"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..30 {
            let size = rng.below(6000) as usize;
            std::fs::write(dir.join(format!("file{f:02}.rs")), rng.bytes(size)).unwrap();
        }
    }
    let tar = work.join("src.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(work)
        .arg("-cf")
        .arg(&tar)
        .arg("src")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

/// `full`: the server can set modes and times (SITE CHMOD, MFMT), so `tar` and `rsync -a`
/// restore them; otherwise they are asked not to, and would rightly report failures.
fn untar_rsync_and_diff(kind: ServerKind, dirs: usize, full: bool) {
    let Some((data, _s, m)) = setup(kind) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let tar = make_tarball(work.path(), dirs);
    let mut cmd = Command::new("tar");
    cmd.arg("-C").arg(m.path()).arg("-xf").arg(&tar);
    if !full {
        cmd.args(["-m", "--no-same-permissions"]);
    }
    let st = cmd.status().unwrap();
    assert!(st.success(), "tar x into the mount");
    if full {
        // Modes and modification times came along, on the server's side too.
        let rel = "src/pkg07/sub dir/file03.rs";
        let want = std::fs::metadata(work.path().join(rel)).unwrap();
        let got = std::fs::metadata(data.path().join(rel)).unwrap();
        assert_eq!(got.mtime(), want.mtime(), "mtime of {rel}");
        assert_eq!(got.mode() & 0o777, want.mode() & 0o777, "mode of {rel}");
    }
    for against in [m.path(), data.path()] {
        let out = Command::new("diff")
            .arg("-r")
            .arg(work.path().join("src"))
            .arg(against.join("src"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "diff -r: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = Command::new("rsync")
        .arg(if full { "-a" } else { "-r" })
        .arg(format!("{}/", work.path().join("src").display()))
        .arg(m.path().join("copy"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rsync -a: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("diff")
        .arg("-r")
        .arg(work.path().join("src"))
        .arg(data.path().join("copy"))
        .output()
        .unwrap();
    assert!(out.status.success(), "diff -r after rsync");
}

#[test]
fn untar_1200_files_and_rsync_a_then_diff_pure_ftpd() {
    untar_rsync_and_diff(ServerKind::PureFtpd, 40, true);
}

/// proftpd sets modes and times of files and directories alike (SITE CHMOD, MFMT).
#[test]
fn untar_and_rsync_a_then_diff_proftpd() {
    untar_rsync_and_diff(ServerKind::Proftpd, 10, true);
}

/// libunftp has neither SITE CHMOD nor MFMT, and takes ~40 ms per transfer: a smaller
/// archive, extracted without restoring modes and times.
#[test]
fn untar_and_rsync_r_then_diff_unftp() {
    untar_rsync_and_diff(ServerKind::Unftp, 3, false);
}

#[test]
fn chmod_and_mtime_reach_the_server() {
    let Some((data, _s, m)) = setup(ServerKind::PureFtpd) else {
        return;
    };
    let p = m.path().join("existing.txt");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let md = std::fs::metadata(data.path().join("existing.txt")).unwrap();
    assert_eq!(md.mode() & 0o777, 0o600);
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(when)
        .unwrap();
    let md = std::fs::metadata(data.path().join("existing.txt")).unwrap();
    assert_eq!(md.mtime(), 1_500_000_000);
    assert_eq!(std::fs::metadata(&p).unwrap().mtime(), 1_500_000_000);
    // Owners cannot be given away over FTP.
    let err = std::os::unix::fs::chown(&p, Some(12345), None).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
}

/// A server whose disk (quota) is full: fsync reports it, close reports the result of its
/// own retry, and the server's file is at every point either the old content or the whole
/// new one: never truncated, never a mix. No temporary file is left behind.
#[test]
fn disk_full_fails_fsync_and_never_leaves_a_partial_file() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("existing.txt"), "old content\n").unwrap();
    let Some(server) = Server::pure_ftpd_with(data.path(), &["-n", "1000:1"]) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let new = vec![7u8; 3 * 1024 * 1024];
    let mut f = std::fs::File::create(m.path().join("existing.txt")).unwrap();
    f.write_all(&new).unwrap();
    let quota = |code: Option<i32>| code == Some(libc::EDQUOT) || code == Some(libc::ENOSPC);
    let synced = f.sync_all();
    let on_server = std::fs::read(data.path().join("existing.txt")).unwrap();
    match synced {
        Err(err) => {
            assert!(quota(err.raw_os_error()), "fsync: {err}");
            assert!(
                on_server == b"old content\n",
                "a failed upload leaves the old content"
            );
        }
        // pure-ftpd's quota accounting does not always stop the first upload.
        Ok(()) => assert!(on_server == new, "fsync succeeded: the whole new content"),
    }
    // close(2) retries the upload; pure-ftpd's quota accounting sometimes lets a later
    // attempt through. Either way close tells the truth and nothing partial is left.
    let closed = close(f);
    let on_server = std::fs::read(data.path().join("existing.txt")).unwrap();
    match closed {
        Ok(()) => assert!(
            on_server == new,
            "close succeeded: the whole new content is there"
        ),
        Err(e) => {
            assert!(quota(Some(e)), "close: {e}");
            assert_eq!(on_server, b"old content\n");
        }
    }
    // FUSE's release runs after close returns, with one more upload try: let it finish.
    assert!(wait_for(std::time::Duration::from_secs(20), || {
        no_temp_files(data.path())
    }));
    let on_server = std::fs::read(data.path().join("existing.txt")).unwrap();
    assert!(
        on_server == b"old content\n" || on_server == new,
        "never partial"
    );
}

/// A directory the server will not let us write: EACCES, and nothing appears.
#[test]
fn read_only_server_directory_gives_eacces_and_no_phantom() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    // After the harness chowned the tree to the FTP user: a root-owned directory.
    let ro = data.path().join("locked");
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(ro.join("keep.txt"), "keep").unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    let m = Mount::new(&server, &[]);
    let p = m.path().join("locked");
    let errno = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(
        errno(std::fs::write(p.join("new.txt"), "x")),
        Some(libc::EACCES)
    );
    assert_eq!(
        errno(std::fs::create_dir(p.join("sub"))),
        Some(libc::EACCES)
    );
    assert_eq!(
        errno(std::fs::remove_file(p.join("keep.txt"))),
        Some(libc::EACCES)
    );
    assert_eq!(
        errno(std::fs::rename(p.join("keep.txt"), p.join("moved.txt"))),
        Some(libc::EACCES)
    );
    let names: Vec<String> = std::fs::read_dir(&p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, ["keep.txt"], "no phantom entries");
    assert_eq!(
        std::fs::read_to_string(ro.join("keep.txt")).unwrap(),
        "keep"
    );
}

/// Regression: without atomic O_TRUNC the kernel truncated through a separate setattr,
/// uploaded at once, so a `>` whose upload then failed left an empty file behind.
#[test]
fn o_trunc_reaches_the_server_with_the_upload_not_at_open() {
    let Some((data, _s, m)) = setup(ServerKind::PureFtpd) else {
        return;
    };
    let mut f = std::fs::File::create(m.path().join("existing.txt")).unwrap();
    assert_eq!(
        std::fs::read_to_string(data.path().join("existing.txt")).unwrap(),
        "old content\n",
        "still the old content after open(O_TRUNC)"
    );
    f.write_all(b"new\n").unwrap();
    drop(f);
    assert_eq!(
        std::fs::read_to_string(data.path().join("existing.txt")).unwrap(),
        "new\n"
    );
}

/// A big file copied in goes up while it is written (a STOR to a temporary name that starts
/// at 4 MiB), lands whole at close, and replaces the old content atomically. A program that
/// goes back to patch the beginning stops the stream; the spool is uploaded at close instead.
#[test]
fn big_sequential_writes_stream_while_written_and_patches_fall_back() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("big.bin"), b"old").unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &[]);
    let src = Rng(21).bytes(24 << 20);
    std::fs::write(m.path().join("big.bin"), &src).unwrap();
    assert!(std::fs::read(data.path().join("big.bin")).unwrap() == src);
    assert!(m.log_text().contains("streaming the upload"));
    assert!(no_temp_files(data.path()));

    let mut patched = Rng(22).bytes(12 << 20);
    let mut f = std::fs::File::create(m.path().join("patched.bin")).unwrap();
    f.write_all(&patched).unwrap();
    f.write_all_at(b"HEADER", 0).unwrap();
    patched[..6].copy_from_slice(b"HEADER");
    drop(f);
    assert!(std::fs::read(data.path().join("patched.bin")).unwrap() == patched);
    assert!(wait_for(std::time::Duration::from_secs(10), || {
        no_temp_files(data.path())
    }));
}

/// What FTP cannot hold is refused plainly: FIFOs, device nodes, symbolic and hard links
/// are `EPERM`, logged at debug (fuser's defaults logged a multi-line warning per call, or
/// answered `ENOSYS`). `mknod` of a regular file creates it, as `open(O_CREAT|O_EXCL)` and
/// `close` do.
#[test]
fn special_files_and_links_are_eperm_and_mknod_of_a_regular_file_creates_it() {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let Some((data, _s, m)) = setup(ServerKind::PureFtpd) else {
        return;
    };
    let c = |name: &str| CString::new(m.path().join(name).as_os_str().as_bytes()).unwrap();
    let errno = || std::io::Error::last_os_error().raw_os_error();
    // SAFETY (all libc calls below): valid NUL-terminated paths owned by this function.
    assert_eq!(unsafe { libc::mkfifo(c("fifo").as_ptr(), 0o644) }, -1);
    assert_eq!(errno(), Some(libc::EPERM), "mkfifo");
    let dev = libc::makedev(1, 3);
    assert_eq!(
        unsafe { libc::mknod(c("null").as_ptr(), libc::S_IFCHR | 0o644, dev) },
        -1
    );
    assert_eq!(errno(), Some(libc::EPERM), "mknod of a character device");
    let e = std::os::unix::fs::symlink("existing.txt", m.path().join("sym")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "symlink");
    let e = std::fs::hard_link(m.path().join("existing.txt"), m.path().join("hard")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "link");
    for name in ["fifo", "null", "sym", "hard"] {
        assert!(!data.path().join(name).exists(), "{name} on the server");
        assert!(
            std::fs::symlink_metadata(m.path().join(name)).is_err(),
            "{name}"
        );
    }

    assert_eq!(
        unsafe { libc::mknod(c("plain").as_ptr(), libc::S_IFREG | 0o644, 0) },
        0,
        "mknod of a regular file: {:?}",
        std::io::Error::last_os_error()
    );
    assert!(
        wait_for(std::time::Duration::from_secs(10), || data
            .path()
            .join("plain")
            .is_file()),
        "created on the server"
    );
    assert_eq!(std::fs::read(data.path().join("plain")).unwrap(), b"");
    assert!(std::fs::metadata(m.path().join("plain")).unwrap().is_file());
    assert_eq!(
        unsafe { libc::mknod(c("existing.txt").as_ptr(), libc::S_IFREG | 0o644, 0) },
        -1
    );
    assert_eq!(errno(), Some(libc::EEXIST), "mknod of an existing name");

    let log = m.log_text();
    for l in log
        .lines()
        .filter(|l| !l.contains("DEBUG") && !l.contains("TRACE"))
    {
        assert!(
            !["mknod", "symlink", "link(", "Not Implemented"]
                .iter()
                .any(|w| l.contains(w)),
            "logged above debug: {l}"
        );
    }
}

/// `lseek(SEEK_DATA/SEEK_HOLE)`: the whole file is data (FTP has no sparse files), so
/// SEEK_DATA at an offset inside the file returns it, SEEK_HOLE returns the size, and
/// both are ENXIO at or past the end; also on a file being written (its size so far).
#[test]
fn seek_data_and_seek_hole_see_the_whole_file_as_data() {
    use std::os::fd::AsRawFd;
    let Some((_data, _s, m)) = setup(ServerKind::PureFtpd) else {
        return;
    };
    let seek = |f: &std::fs::File, off: i64, whence: i32| {
        // SAFETY: a valid open descriptor; lseek has no memory arguments.
        let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
        if r < 0 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap())
        } else {
            Ok(r)
        }
    };
    let f = std::fs::File::open(m.path().join("existing.txt")).unwrap();
    let size = "old content\n".len() as i64;
    assert_eq!(seek(&f, 0, libc::SEEK_DATA), Ok(0));
    assert_eq!(seek(&f, 5, libc::SEEK_DATA), Ok(5));
    assert_eq!(seek(&f, 0, libc::SEEK_HOLE), Ok(size));
    assert_eq!(seek(&f, 5, libc::SEEK_HOLE), Ok(size));
    assert_eq!(seek(&f, size, libc::SEEK_DATA), Err(libc::ENXIO));
    assert_eq!(seek(&f, size, libc::SEEK_HOLE), Err(libc::ENXIO));
    assert_eq!(seek(&f, size + 100, libc::SEEK_DATA), Err(libc::ENXIO));
    // The position is where SEEK_DATA left it: the read goes on from there.
    assert_eq!(seek(&f, 4, libc::SEEK_DATA), Ok(4));
    let mut rest = String::new();
    (&f).read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "content\n");

    let mut w = std::fs::File::create(m.path().join("growing.bin")).unwrap();
    w.write_all(&[7u8; 3000]).unwrap();
    assert_eq!(seek(&w, 100, libc::SEEK_DATA), Ok(100));
    assert_eq!(seek(&w, 100, libc::SEEK_HOLE), Ok(3000));
    assert_eq!(seek(&w, 3000, libc::SEEK_DATA), Err(libc::ENXIO));
    // cp and tar use SEEK_DATA/SEEK_HOLE to copy sparse files: the copy is whole.
    drop(w);
    let copy = tempfile::tempdir().unwrap();
    let st = Command::new("cp")
        .arg("--sparse=always")
        .arg(m.path().join("growing.bin"))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read(copy.path().join("growing.bin")).unwrap(),
        vec![7u8; 3000]
    );
}

/// The process's umask, from /proc (reading it with umask(2) would change it for a moment
/// under the other tests' threads).
fn current_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .expect("Umask: in /proc/self/status");
    u32::from_str_radix(v.trim(), 8).unwrap()
}

/// The mode given to `open(O_CREAT)` and `mkdir` reaches the server (`SITE CHMOD`), for the
/// first file of a directory (created at open), a later one (created with its first upload)
/// and a directory; the usual 0644/0755 costs no command. Modes the server reports are shown
/// as they are, not masked by a umask nobody set.
#[test]
fn the_mode_given_at_creation_reaches_the_server_and_server_modes_show_as_they_are() {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("existing.txt"), "old content\n").unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    // Listings trusted for a second: the server's change below shows quickly.
    let m = Mount::new(&server, &["dir_cache_ttl=1"]);
    let (p, d) = (m.path(), data.path());
    let umask = current_umask();
    let mode_of = |path: &Path| std::fs::metadata(path).unwrap().mode() & 0o7777;
    let create = |name: &str, mode: u32| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(p.join(name))
            .unwrap();
        f.write_all(name.as_bytes()).unwrap();
        close(f).unwrap();
    };
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(p.join("private"))
        .unwrap();
    assert_eq!(mode_of(&d.join("private")), 0o700 & !umask);
    create("private/first.txt", 0o600);
    create("private/second.txt", 0o640);
    create("private/usual.txt", 0o644);
    for (name, mode) in [("first", 0o600), ("second", 0o640), ("usual", 0o644)] {
        let rel = format!("private/{name}.txt");
        assert_eq!(mode_of(&d.join(&rel)), mode & !umask, "{rel} on the server");
        assert_eq!(mode_of(&p.join(&rel)), mode & !umask, "{rel} in the mount");
        assert_eq!(std::fs::read(d.join(&rel)).unwrap(), rel.as_bytes());
    }
    assert!(
        !m.log_text().contains("CHMOD 644"),
        "the usual mode is not sent"
    );
    // What the server reports is shown as it is (a default umask of 022 made it 0755).
    std::fs::set_permissions(
        d.join("existing.txt"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let listed = m.path().join("existing.txt");
    assert!(
        wait_for(std::time::Duration::from_secs(10), || mode_of(&listed)
            == 0o777),
        "after the cache expires the server's 0777 shows, got {:o}",
        mode_of(&listed)
    );
}

/// A server without `SITE CHMOD` (libunftp): creating with a mode still works, without an
/// error, and the server's mode stays; one info line says so.
#[test]
fn a_mode_at_creation_on_a_server_without_site_chmod_is_skipped_without_error() {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let Some((data, _s, m)) = setup(ServerKind::Unftp) else {
        return;
    };
    for name in ["a.txt", "b.txt"] {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(m.path().join(name))
            .unwrap();
        f.write_all(b"data").unwrap();
        close(f).unwrap();
        assert_eq!(std::fs::read(data.path().join(name)).unwrap(), b"data");
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(m.path().join("dir"))
        .unwrap();
    assert!(data.path().join("dir").is_dir());
    let log = m.log_text();
    assert_eq!(
        log.matches("has no SITE CHMOD").count(),
        1,
        "said once:\n{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("WARN") && !l.contains("no TLS")),
        "{log}"
    );
    if log.contains("CC OUT") {
        assert_eq!(log.matches("CC OUT: SITE CHMOD").count(), 1, "asked once");
    }
}

/// Appends while other threads `stat`, list and read the file: every line reaches the
/// server once and in order, every size seen ends a line, every read is a prefix. A `stat`
/// or an `ls` between a write and its upload told the kernel the listed (older) size, the
/// next `>>` wrote there, and lines vanished from the server with every `close` returning 0
/// (the `append.log differs on the server` of issue 13's TLS work).
#[test]
fn appends_while_others_stat_list_and_read_the_file_lose_no_line() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Some((data, _s, m)) = setup(ServerKind::PureFtpd) else {
        return;
    };
    let log = m.path().join("append.log");
    std::fs::write(&log, "line 0\n").unwrap();
    let all: Vec<u8> = (0..=100)
        .flat_map(|n| format!("line {n}\n").into_bytes())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = [false, true]
        .into_iter()
        .map(|reads| {
            let (log, stop, all) = (log.clone(), Arc::clone(&stop), all.clone());
            let dir = m.path().to_path_buf();
            std::thread::spawn(move || {
                let mut wrong = Vec::new();
                let mut looks = 0;
                while !stop.load(Ordering::SeqCst) {
                    looks += 1;
                    if reads {
                        let got = std::fs::read(&log).unwrap();
                        if !all.starts_with(&got) {
                            wrong.push(format!("read {} bytes, not a prefix", got.len()));
                        }
                    } else {
                        let len = std::fs::metadata(&log).unwrap().len() as usize;
                        if len > all.len() || all[len - 1] != b'\n' {
                            wrong.push(format!("stat: {len} bytes"));
                        }
                        std::fs::read_dir(&dir).unwrap().for_each(drop);
                    }
                }
                (looks, wrong)
            })
        })
        .collect();
    for n in 1..=100 {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(format!("line {n}\n").as_bytes()).unwrap();
        assert_eq!(close(f), Ok(()), "append {n}");
    }
    stop.store(true, Ordering::SeqCst);
    let mut wrong = Vec::new();
    for w in watchers {
        let (looks, mut seen) = w.join().unwrap();
        assert!(looks > 0, "the watchers ran");
        wrong.append(&mut seen);
    }
    let on_server = std::fs::read(data.path().join("append.log")).unwrap();
    assert!(
        on_server == all,
        "the server's append.log: {} bytes instead of {}, lines missing: {:?}",
        on_server.len(),
        all.len(),
        (0..=100)
            .filter(|n| !String::from_utf8_lossy(&on_server).contains(&format!("line {n}\n")))
            .collect::<Vec<_>>()
    );
    assert!(wrong.is_empty(), "seen through the mount: {wrong:?}");
}
