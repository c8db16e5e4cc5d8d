//! `FtpFs` semantics against the in-memory `MemRemote`: caching, name safety, errno mapping
//! and injected faults, without FUSE or a server.

use std::ffi::OsStr;
use std::time::Duration;

use ftpfs::error::{Error, Op};
use ftpfs::fs::{FsOptions, FtpFs, OpenMode, UploadMode};
use ftpfs::inode::ROOT;
use ftpfs::remote::{Kind, Remote, RemoteEntry};
use ftpfs::testing::{Fault, MemRemote};

fn fs_with(remote: MemRemote, ttl: Duration) -> FtpFs<MemRemote> {
    fs_opts(remote, ttl, true)
}

fn spool_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ftpfs-core-tests-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fs_opts(remote: MemRemote, ttl: Duration, read_only: bool) -> FtpFs<MemRemote> {
    FtpFs::new(
        remote,
        FsOptions {
            uid: 1000,
            gid: 1000,
            umask: None,
            ttl,
            max_cached_entries: 10_000,
            read_only,
            spool_dir: spool_dir(),
            recovery_dir: spool_dir().join("recovered"),
            upload: UploadMode::Atomic,
            strict_times: false,
        },
    )
}

fn sample() -> FtpFs<MemRemote> {
    let r = MemRemote::new();
    r.add_dir("d");
    r.add_file("d/a.txt", b"hello world");
    r.add_file("d/b.txt", b"bee");
    r.add_file("top", b"top");
    r.add_symlink("link", "d/a.txt");
    fs_with(r, Duration::from_secs(60))
}

fn lookup(fs: &FtpFs<MemRemote>, parent: u64, name: &str) -> Result<u64, Error> {
    fs.lookup(parent, OsStr::new(name)).map(|a| a.ino)
}

#[test]
fn stat_of_every_name_in_a_listed_directory_costs_one_listing() {
    let fs = sample();
    let d = lookup(&fs, ROOT, "d").unwrap();
    let before = fs.remote().list_calls();
    for name in ["a.txt", "b.txt", "a.txt"] {
        let ino = lookup(&fs, d, name).unwrap();
        fs.getattr(ino).unwrap();
    }
    assert_eq!(fs.remote().list_calls() - before, 1);
}

#[test]
fn missing_names_are_answered_from_the_cached_listing() {
    let fs = sample();
    let d = lookup(&fs, ROOT, "d").unwrap();
    lookup(&fs, d, "a.txt").unwrap();
    let before = fs.remote().list_calls();
    for _ in 0..5 {
        let e = lookup(&fs, d, "missing").unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT);
    }
    assert_eq!(
        fs.remote().list_calls(),
        before,
        "negative lookups cost nothing"
    );
}

#[test]
fn a_directory_we_just_made_is_known_empty_without_a_listing() {
    let fs = fs_opts(MemRemote::new(), Duration::from_secs(60), false);
    let made = fs.mkdir(ROOT, OsStr::new("new"), 0o755).unwrap();
    let before = fs.remote().list_calls();
    for name in ["a.c", "b.c", "sub"] {
        assert_eq!(
            lookup(&fs, made.ino, name).unwrap_err().errno(),
            libc::ENOENT
        );
    }
    fs.mkdir(made.ino, OsStr::new("sub"), 0o755).unwrap();
    assert!(lookup(&fs, made.ino, "sub").is_ok());
    assert_eq!(
        fs.remote().list_calls(),
        before,
        "no listing of a new directory"
    );
    assert!(fs.remote().exists("new/sub"));
}

#[test]
fn listings_are_fetched_again_after_the_ttl() {
    let r = MemRemote::new();
    r.add_file("f", b"1");
    let fs = fs_with(r, Duration::from_millis(30));
    lookup(&fs, ROOT, "f").unwrap();
    fs.remote().add_file("g", b"2");
    assert_eq!(lookup(&fs, ROOT, "g").unwrap_err().errno(), libc::ENOENT);
    std::thread::sleep(Duration::from_millis(40));
    lookup(&fs, ROOT, "g").unwrap();
}

#[test]
fn hostile_names_in_a_listing_never_become_entries() {
    let r = MemRemote::new();
    r.add_file("ok", b"fine");
    for bad in ["..", ".", "", "a/b", "/etc", "x\0y", "../escape"] {
        r.add_raw(
            "",
            RemoteEntry {
                name: bad.into(),
                kind: Kind::File,
                size: 1,
                mtime: None,
                mode: None,
                link_target: None,
            },
        );
    }
    let fs = fs_with(r, Duration::from_secs(60));
    let fh = fs.opendir(ROOT).unwrap();
    let names: Vec<String> = fs
        .readdir(ROOT, fh, 0, 100, false)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, [".", "..", "ok"]);
}

#[test]
fn names_no_server_can_have_are_enoent_and_long_ones_enametoolong() {
    let fs = sample();
    for bad in ["a/b", "a\nb", "a\rb"] {
        assert_eq!(
            lookup(&fs, ROOT, bad).unwrap_err().errno(),
            libc::ENOENT,
            "{bad:?}"
        );
    }
    let long = "x".repeat(256);
    assert_eq!(
        lookup(&fs, ROOT, &long).unwrap_err().errno(),
        libc::ENAMETOOLONG
    );
}

#[test]
fn listing_failures_become_the_errno_the_reply_means() {
    let cases: [(fn() -> Error, i32); 4] = [
        (
            || Error::Reply {
                op: Op::List,
                code: 421,
                text: "bye".into(),
            },
            libc::EIO,
        ),
        (
            || Error::Reply {
                op: Op::List,
                code: 530,
                text: "no".into(),
            },
            libc::EACCES,
        ),
        (
            || Error::Reply {
                op: Op::List,
                code: 550,
                text: "gone".into(),
            },
            libc::ENOENT,
        ),
        (|| Error::Timeout { op: Op::List }, libc::ETIMEDOUT),
    ];
    for (make, errno) in cases {
        let fs = sample();
        fs.remote().inject(Fault::List(String::new()), make);
        assert_eq!(lookup(&fs, ROOT, "top").unwrap_err().errno(), errno);
        // The fault was one-shot: the mount works again at once.
        lookup(&fs, ROOT, "top").unwrap();
    }
}

#[test]
fn a_read_that_fails_midway_reports_the_error_not_short_data() {
    let r = MemRemote::new();
    r.add_file("f", &[7u8; 100_000]);
    r.inject(Fault::ReadAt("f".into(), 50_000), || Error::Network {
        op: Op::Retr,
        source: std::io::Error::from(std::io::ErrorKind::ConnectionReset),
    });
    let fs = fs_with(r, Duration::from_secs(60));
    let ino = lookup(&fs, ROOT, "f").unwrap();
    let (fh, _) = fs.open(ino, OpenMode::default()).unwrap();
    assert_eq!(fs.read(fh, 0, 40_000).unwrap().len(), 40_000);
    assert_eq!(fs.read(fh, 40_000, 40_000).unwrap_err().errno(), libc::EIO);
    fs.release(fh);
}

#[test]
fn open_checks_type_and_the_read_only_mount() {
    let fs = sample();
    let d = lookup(&fs, ROOT, "d").unwrap();
    let f = lookup(&fs, ROOT, "top").unwrap();
    assert_eq!(
        fs.open(d, OpenMode::default()).unwrap_err().errno(),
        libc::EISDIR
    );
    assert_eq!(fs.open(f, rw()).unwrap_err().errno(), libc::EROFS);
    assert_eq!(fs.opendir(f).unwrap_err().errno(), libc::ENOTDIR);
    assert_eq!(
        fs.access(f, libc::W_OK, 1000, 1000).unwrap_err().errno(),
        libc::EROFS
    );
    fs.access(f, libc::R_OK, 1000, 1000).unwrap();
    assert_eq!(
        fs.access(f, libc::X_OK, 1000, 1000).unwrap_err().errno(),
        libc::EACCES
    );
}

#[test]
fn symlinks_read_their_target() {
    let fs = sample();
    let l = lookup(&fs, ROOT, "link").unwrap();
    assert_eq!(fs.getattr(l).unwrap().kind, Kind::Symlink);
    assert_eq!(fs.readlink(l).unwrap(), "d/a.txt");
    let f = lookup(&fs, ROOT, "top").unwrap();
    assert_eq!(fs.readlink(f).unwrap_err().errno(), libc::EINVAL);
}

#[test]
fn page_cache_is_kept_only_while_size_and_mtime_are_unchanged() {
    let r = MemRemote::new();
    r.add_file("f", b"one");
    let fs = fs_with(r, Duration::from_millis(20));
    let ino = lookup(&fs, ROOT, "f").unwrap();
    let (fh, keep) = fs.open(ino, OpenMode::default()).unwrap();
    assert!(!keep, "first open has nothing to keep");
    fs.release(fh);
    let (fh, keep) = fs.open(ino, OpenMode::default()).unwrap();
    assert!(keep, "unchanged file keeps its cache");
    fs.release(fh);
    fs.remote().add_file("f", b"changed!");
    std::thread::sleep(Duration::from_millis(30));
    let (fh, keep) = fs.open(ino, OpenMode::default()).unwrap();
    assert!(!keep, "a changed size drops the cache");
    assert_eq!(&*fs.read(fh, 0, 100).unwrap(), b"changed!");
}

#[test]
fn readdir_offsets_resume_where_the_kernel_left_off() {
    let fs = sample();
    let d = lookup(&fs, ROOT, "d").unwrap();
    let fh = fs.opendir(d).unwrap();
    let first = fs.readdir(d, fh, 0, 2, true).unwrap();
    assert_eq!(
        first.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        [".", ".."]
    );
    let rest = fs.readdir(d, fh, first[1].next_offset, 10, true).unwrap();
    assert_eq!(
        rest.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["a.txt", "b.txt"]
    );
    assert!(fs
        .readdir(d, fh, rest[1].next_offset, 10, true)
        .unwrap()
        .is_empty());
    // readdirplus took references; unused ones are given back without harm.
    fs.readdir_unused(&rest[1..]);
    fs.releasedir(fh);
}

#[test]
fn a_vanished_file_is_enoent_on_getattr_after_refresh() {
    let r = MemRemote::new();
    r.add_file("f", b"x");
    let fs = fs_with(r, Duration::from_millis(20));
    let ino = lookup(&fs, ROOT, "f").unwrap();
    fs.remote().remove("f");
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(fs.getattr(ino).unwrap_err().errno(), libc::ENOENT);
}

fn writable(remote: MemRemote) -> FtpFs<MemRemote> {
    fs_opts(remote, Duration::from_secs(60), false)
}

/// What `open(O_WRONLY | O_TRUNC)` asks for.
fn truncating() -> OpenMode {
    OpenMode {
        write: true,
        truncate: true,
        owner: 0,
    }
}

fn rw() -> OpenMode {
    OpenMode {
        write: true,
        truncate: false,
        owner: 0,
    }
}

#[test]
fn a_failed_upload_reaches_flush_keeps_the_old_content_and_is_retried() {
    let r = MemRemote::new();
    r.add_file("f", b"old");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "f").unwrap();
    let (fh, _) = fs.open(ino, truncating()).unwrap();
    fs.write(fh, 0, b"new content").unwrap();
    // The atomic upload goes to a temporary name first; fail every STOR as a full disk.
    let failing = FailStores::new(fs.remote());
    let err = fs.flush(fh).unwrap_err();
    assert_eq!(err.errno(), libc::ENOSPC);
    assert_eq!(
        fs.remote().content("f").unwrap(),
        b"old",
        "old content intact"
    );
    assert!(failing.no_temp_left(), "the temporary upload was removed");
    failing.stop();
    fs.flush(fh).unwrap();
    assert_eq!(fs.remote().content("f").unwrap(), b"new content");
    fs.release(fh);
}

/// Makes every STOR fail (as a full disk) until stopped, whatever the name.
struct FailStores<'a> {
    remote: &'a MemRemote,
}

impl<'a> FailStores<'a> {
    fn new(remote: &'a MemRemote) -> Self {
        remote.fail_all_stores(true);
        FailStores { remote }
    }
    fn no_temp_left(&self) -> bool {
        self.remote.paths().iter().all(|p| !p.contains(".ftpfs-"))
    }
    fn stop(self) {
        self.remote.fail_all_stores(false);
    }
}

#[test]
fn unsent_data_at_the_last_release_is_saved_for_recovery() {
    let r = MemRemote::new();
    r.add_file("f", b"old");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "f").unwrap();
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 0, b"precious data").unwrap();
    fs.remote().fail_all_stores(true);
    assert!(fs.flush(fh).is_err());
    fs.release(fh);
    let dir = spool_dir().join("recovered");
    let saved: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read(p).is_ok_and(|d| d == b"precious data"))
        .collect();
    assert_eq!(saved.len(), 1, "recovered in {}", dir.display());
    assert_eq!(fs.remote().content("f").unwrap(), b"old");
}

/// The kernel drops a release still queued when the mount goes away (an unmount right
/// after a failed close, on a busy machine): at the end of the session, a written file
/// whose last release never came gets one more upload try, then the recovery directory.
#[test]
fn unsent_data_whose_release_never_came_is_saved_at_the_end_of_the_session() {
    let r = MemRemote::new();
    r.add_file("g", b"old");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "g").unwrap();
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 0, b"never released").unwrap();
    fs.remote().fail_all_stores(true);
    assert!(fs.flush(fh).is_err());
    // No release: the session ends.
    fs.release_all();
    let dir = spool_dir().join("recovered");
    let saved = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| std::fs::read(e.as_ref().unwrap().path()).is_ok_and(|d| d == b"never released"))
        .count();
    assert_eq!(saved, 1, "recovered in {}", dir.display());
    // And with the server back, the last try uploads it instead.
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 0, b"sent at the end").unwrap();
    fs.remote().fail_all_stores(false);
    fs.release_all();
    assert_eq!(fs.remote().content("g").unwrap(), b"sent at the end");
}

#[test]
fn appending_uploads_only_the_new_bytes() {
    let r = MemRemote::new();
    r.add_file("log", b"line 1\n");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "log").unwrap();
    for i in 2..=4 {
        let (fh, _) = fs.open(ino, rw()).unwrap();
        let size = fs.getattr(ino).unwrap().size;
        fs.write(fh, size, format!("line {i}\n").as_bytes())
            .unwrap();
        fs.flush(fh).unwrap();
        fs.release(fh);
    }
    assert_eq!(
        fs.remote().content("log").unwrap(),
        b"line 1\nline 2\nline 3\nline 4\n"
    );
    assert_eq!(
        fs.remote().store_calls(),
        0,
        "APPE only, never a whole upload"
    );
    assert_eq!(fs.remote().read_calls(), 0, "nothing downloaded");
}

/// What the kernel is told about a file being written is what `getattr` says: the spool's
/// size. The kernel takes the size in a `lookup` or `readdirplus` reply as the file's, and
/// an `O_APPEND` write goes to the kernel's size: a smaller one from the listing made the
/// next append overwrite the last. Found by appending while another thread ran `stat` and
/// `ls` (see `writes::appends_while_others_stat_list_and_read_the_file_lose_no_line`).
#[test]
fn a_file_being_written_is_looked_up_and_listed_with_its_written_size() {
    let r = MemRemote::new();
    r.add_file("log", b"line 0\n");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "log").unwrap();
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 7, b"line 1\n").unwrap();
    assert_eq!(fs.getattr(ino).unwrap().size, 14);
    assert_eq!(
        fs.lookup(ROOT, OsStr::new("log")).unwrap().size,
        14,
        "lookup while written"
    );
    let dir = fs.opendir(ROOT).unwrap();
    let listed = fs.readdir(ROOT, dir, 0, 256, true).unwrap();
    let entry = listed.iter().find(|e| e.name == "log").unwrap();
    assert_eq!(entry.attr.size, 14, "readdirplus while written");
    fs.readdir_unused(&listed);
    fs.releasedir(dir);
    fs.flush(fh).unwrap();
    fs.release(fh);
}

/// The same, as the data loss it was: `stat` by another process between a write and its
/// upload gives the kernel the old size, the next `>>` writes there, and the line before
/// it is gone from the server.
#[test]
fn a_stat_between_appends_loses_no_line() {
    let r = MemRemote::new();
    r.add_file("log", b"line 0\n");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "log").unwrap();
    let mut kernel_size = fs.getattr(ino).unwrap().size;
    for i in 1..=3 {
        let (fh, _) = fs.open(ino, rw()).unwrap();
        let line = format!("line {i}\n");
        fs.write(fh, kernel_size, line.as_bytes()).unwrap();
        // Another process's stat(2): the kernel takes the size in the reply as the file's,
        // instead of the one its write made.
        kernel_size = fs.lookup(ROOT, OsStr::new("log")).unwrap().size;
        fs.flush(fh).unwrap();
        fs.release(fh);
    }
    assert_eq!(
        String::from_utf8_lossy(&fs.remote().content("log").unwrap()),
        "line 0\nline 1\nline 2\nline 3\n"
    );
}

/// A directory handle keeps the listing it was opened with; `readdirplus` from it after an
/// upload gave the kernel the size from before the upload, and the next `>>` overwrote
/// the line just uploaded.
#[test]
fn a_listing_opened_before_an_append_does_not_shrink_the_file_after_it() {
    let r = MemRemote::new();
    r.add_file("log", b"line 0\n");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "log").unwrap();
    let dir = fs.opendir(ROOT).unwrap();
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 7, b"line 1\n").unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
    let listed = fs.readdir(ROOT, dir, 0, 256, true).unwrap();
    let size = listed.iter().find(|e| e.name == "log").unwrap().attr.size;
    fs.readdir_unused(&listed);
    fs.releasedir(dir);
    // The kernel now holds `size`; `>>` writes there.
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, size, b"line 2\n").unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(
        String::from_utf8_lossy(&fs.remote().content("log").unwrap()),
        "line 0\nline 1\nline 2\n"
    );
}

/// An APPE that broke halfway left part of its bytes on the server; sending it again
/// would duplicate them. The whole file goes up instead, and the server ends up exact.
#[test]
fn a_broken_append_is_repaired_with_a_whole_upload() {
    let r = MemRemote::new();
    r.add_file("log", b"line 1\n");
    r.inject(Fault::Call("append-partial", "log".into()), || {
        Error::Network {
            op: Op::Append,
            source: std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        }
    });
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "log").unwrap();
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 7, b"line 2 is rather long\n").unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(
        fs.remote().content("log").unwrap(),
        b"line 1\nline 2 is rather long\n"
    );
    assert_eq!(fs.remote().store_calls(), 1, "one whole upload repaired it");
}

/// A server that does not append at all (proftpd by default): the remote says so with
/// `Unsupported` before sending anything, and the same flush sends the whole file.
#[test]
fn an_append_the_server_does_not_do_goes_up_whole_at_the_same_flush() {
    let r = MemRemote::new();
    r.add_file("log", b"line 1\n");
    r.inject(Fault::Call("append", "log".into()), || Error::Unsupported);
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "log").unwrap();
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 7, b"line 2\n").unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(fs.remote().content("log").unwrap(), b"line 1\nline 2\n");
    assert_eq!(fs.remote().store_calls(), 1, "one whole upload instead");
}

/// A refusal about this file (`550 Permission denied`) is not "the server cannot append":
/// it reaches close(2), and nothing is stored behind its back.
#[test]
fn an_append_refused_for_this_file_is_an_error_not_a_whole_upload() {
    let r = MemRemote::new();
    r.add_file("log", b"abc");
    r.inject(Fault::Call("append", "log".into()), || Error::Reply {
        op: Op::Append,
        code: 550,
        text: "log: Permission denied".into(),
    });
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "log").unwrap();
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 3, b"def").unwrap();
    assert_eq!(fs.flush(fh).unwrap_err().errno(), libc::EACCES);
    assert_eq!(fs.remote().store_calls(), 0);
    assert_eq!(fs.remote().content("log").unwrap(), b"abc");
    fs.release(fh);
}

/// A permanent failure (quota) is reported, and the next attempt does not APPE again.
#[test]
fn after_a_failed_append_the_next_flush_sends_the_whole_file() {
    let r = MemRemote::new();
    r.add_file("log", b"abc");
    r.inject(Fault::Call("append-partial", "log".into()), || {
        Error::Reply {
            op: Op::Append,
            code: 552,
            text: "Quota exceeded".into(),
        }
    });
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "log").unwrap();
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 3, b"defgh").unwrap();
    assert_eq!(fs.flush(fh).unwrap_err().errno(), libc::EDQUOT);
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(fs.remote().content("log").unwrap(), b"abcdefgh");
    assert_eq!(fs.remote().store_calls(), 1);
}

#[test]
fn creating_many_files_costs_one_listing() {
    let fs = writable(MemRemote::new());
    let before = fs.remote().list_calls();
    for i in 0..200 {
        let name = format!("f{i}");
        assert_eq!(lookup(&fs, ROOT, &name).unwrap_err().errno(), libc::ENOENT);
        let (_, fh) = fs.create(ROOT, OsStr::new(&name), false, 0, 0o644).unwrap();
        fs.write(fh, 0, b"x").unwrap();
        fs.flush(fh).unwrap();
        fs.release(fh);
        lookup(&fs, ROOT, &name).unwrap();
    }
    assert_eq!(fs.remote().list_calls() - before, 1);
    // The first create in the directory proves it writable (an empty STOR); after that,
    // one upload per file.
    assert_eq!(fs.remote().store_calls(), 201);
    assert_eq!(fs.remote().content("f199").unwrap(), b"x");
}

#[test]
fn an_unlinked_open_file_is_not_brought_back_by_its_flush() {
    let r = MemRemote::new();
    r.add_file("f", b"x");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "f").unwrap();
    let (fh, _) = fs.open(ino, rw()).unwrap();
    fs.write(fh, 0, b"more").unwrap();
    fs.unlink(ROOT, OsStr::new("f")).unwrap();
    fs.flush(fh).unwrap();
    assert_eq!(
        fs.getattr(ino).unwrap().size,
        4,
        "fstat of the open file still works"
    );
    fs.release(fh);
    assert!(!fs.remote().exists("f"));
}

#[test]
fn a_connection_dropped_mid_upload_is_eio_at_close_and_the_old_content_survives() {
    let r = MemRemote::new();
    r.add_file("f", b"old");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "f").unwrap();
    let (fh, _) = fs.open(ino, truncating()).unwrap();
    fs.write(fh, 0, &[9u8; 100_000]).unwrap();
    fs.remote().fail_stores_with(Some(|| Error::Network {
        op: Op::Store,
        source: std::io::Error::from(std::io::ErrorKind::ConnectionReset),
    }));
    assert_eq!(fs.flush(fh).unwrap_err().errno(), libc::EIO);
    assert_eq!(fs.remote().content("f").unwrap(), b"old");
    assert!(fs.remote().paths().iter().all(|p| !p.contains(".ftpfs-")));
    fs.remote().fail_stores_with(None);
    fs.flush(fh).unwrap();
    assert_eq!(fs.remote().content("f").unwrap(), vec![9u8; 100_000]);
    fs.release(fh);
}

#[test]
fn a_new_file_costs_one_upload_and_is_listed_until_then() {
    let r = MemRemote::new();
    let fs = fs_opts(r, Duration::from_millis(200), false);
    // The first create proves the directory writable.
    let (_, first) = fs
        .create(ROOT, OsStr::new("first"), true, 0, 0o644)
        .unwrap();
    fs.release(first);
    let before = fs.remote().store_calls();
    let (attr, fh) = fs.create(ROOT, OsStr::new("new"), true, 0, 0o644).unwrap();
    assert_eq!(
        fs.remote().store_calls(),
        before,
        "nothing sent before flush"
    );
    fs.write(fh, 0, b"data").unwrap();
    // Even after the cached listing expires, the file is there for us.
    std::thread::sleep(Duration::from_millis(210));
    assert_eq!(lookup(&fs, ROOT, "new").unwrap(), attr.ino);
    let fh2 = fs.opendir(ROOT).unwrap();
    let names: Vec<String> = fs
        .readdir(ROOT, fh2, 0, 10, false)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"new".to_string()), "{names:?}");
    assert_eq!(fs.getattr(attr.ino).unwrap().size, 4);
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(fs.remote().store_calls(), before + 1);
    assert_eq!(fs.remote().content("new").unwrap(), b"data");
}

/// The mode given at creation reaches the server: for the first file of a directory right
/// after its empty STOR, for a later one (which waits for its first upload) right after
/// that upload, for a directory after MKD. The usual 0644/0755 sends no chmod; a mode not
/// applied is not shown.
#[test]
fn the_mode_given_at_creation_is_applied_after_the_file_reaches_the_server() {
    let fs = writable(MemRemote::new());
    let (_, first) = fs
        .create(ROOT, OsStr::new("first"), true, 0, 0o600)
        .unwrap();
    assert_eq!(fs.remote().mode("first"), Some(0o600), "at once");
    fs.release(first);
    let (attr, fh) = fs
        .create(ROOT, OsStr::new("later"), true, 0, 0o640)
        .unwrap();
    assert_eq!(attr.perm, 0o640, "shown from the start");
    assert!(!fs.remote().exists("later"));
    fs.write(fh, 0, b"x").unwrap();
    fs.flush(fh).unwrap();
    assert_eq!(fs.remote().mode("later"), Some(0o640), "after the upload");
    fs.release(fh);
    let (_, usual) = fs
        .create(ROOT, OsStr::new("usual"), true, 0, 0o644)
        .unwrap();
    fs.release(usual);
    assert!(fs.remote().exists("usual"));
    assert_eq!(
        fs.remote().mode("usual"),
        None,
        "no chmod for the usual mode"
    );
    let d = fs.mkdir(ROOT, OsStr::new("private"), 0o700).unwrap();
    assert_eq!(fs.remote().mode("private"), Some(0o700));
    assert_eq!(d.perm, 0o700);
    fs.mkdir(ROOT, OsStr::new("plain"), 0o755).unwrap();
    assert_eq!(fs.remote().mode("plain"), None);
}

#[test]
fn an_empty_new_file_is_still_created_on_the_server() {
    let fs = writable(MemRemote::new());
    let (_, fh) = fs
        .create(ROOT, OsStr::new("touched"), false, 0, 0o644)
        .unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(fs.remote().content("touched").unwrap(), b"");
}

#[test]
fn a_new_file_unlinked_before_its_upload_never_reaches_the_server() {
    let fs = writable(MemRemote::new());
    let (_, first) = fs
        .create(ROOT, OsStr::new("first"), true, 0, 0o644)
        .unwrap();
    fs.release(first);
    let (_, fh) = fs.create(ROOT, OsStr::new("tmp"), false, 0, 0o644).unwrap();
    fs.write(fh, 0, b"scratch").unwrap();
    fs.unlink(ROOT, OsStr::new("tmp")).unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert!(!fs.remote().exists("tmp"));
    assert_eq!(fs.remote().store_calls(), 1, "only the first file's");
    assert_eq!(lookup(&fs, ROOT, "tmp").unwrap_err().errno(), libc::ENOENT);
}

#[test]
fn renaming_a_new_file_uploads_it_first() {
    let fs = writable(MemRemote::new());
    let (_, first) = fs
        .create(ROOT, OsStr::new("first"), true, 0, 0o644)
        .unwrap();
    fs.release(first);
    let (_, fh) = fs
        .create(ROOT, OsStr::new("a.tmp"), false, 0, 0o644)
        .unwrap();
    fs.write(fh, 0, b"content").unwrap();
    fs.rename(ROOT, OsStr::new("a.tmp"), ROOT, OsStr::new("a"), false)
        .unwrap();
    assert_eq!(fs.remote().content("a").unwrap(), b"content");
    assert!(!fs.remote().exists("a.tmp"));
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(fs.remote().content("a").unwrap(), b"content");
}

/// Many programs never check close(2) (a shell's `>` does not), so a directory the server
/// refuses must fail the open, not only the close.
#[test]
fn creating_in_a_refused_directory_fails_at_open() {
    let fs = writable(MemRemote::new());
    fs.remote()
        .inject(Fault::Call("store", "f".into()), || Error::Reply {
            op: Op::Store,
            code: 553,
            text: "Can't open that file: Permission denied".into(),
        });
    let err = fs
        .create(ROOT, OsStr::new("f"), false, 0, 0o644)
        .unwrap_err();
    assert_eq!(err.errno(), libc::EACCES);
    assert_eq!(
        lookup(&fs, ROOT, "f").unwrap_err().errno(),
        libc::ENOENT,
        "no phantom"
    );
}

/// Regression: the kernel writes back file times as a setattr between the writes of one
/// write(2) sequence. Uploading pending data to set the time sent a partial file.
#[test]
fn a_time_update_between_writes_uploads_nothing_partial() {
    use ftpfs::fs::SetAttr;
    let r = MemRemote::new();
    r.add_file("f", b"old");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "f").unwrap();
    let (fh, _) = fs.open(ino, truncating()).unwrap();
    fs.write(fh, 0, b"first half, ").unwrap();
    let when = std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let set = SetAttr {
        mtime: Some(when),
        ..Default::default()
    };
    fs.setattr(ino, set).unwrap();
    assert_eq!(
        fs.remote().content("f").unwrap(),
        b"old",
        "nothing uploaded yet"
    );
    fs.write(fh, 12, b"second half").unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(
        fs.remote().content("f").unwrap(),
        b"first half, second half"
    );
    let listed = fs.remote().list("").unwrap();
    let f = listed.iter().find(|e| e.name == "f").unwrap();
    assert_eq!(f.mtime, Some(when), "the time was applied after the upload");
}

/// Issue 13: a file's time that cannot be set is an error (rsync relies on it), also when
/// it was set while the data was unsent (`cp -p`: futimens before close) and so is applied
/// after the upload: close(2) reports it, with the data on the server and nothing left to
/// upload again.
#[test]
fn a_time_set_before_close_that_the_server_refuses_fails_the_close_not_the_data() {
    use ftpfs::fs::SetAttr;
    let r = MemRemote::new();
    r.add_file("f", b"old");
    r.inject(Fault::Call("mtime", "f".into()), || Error::Reply {
        op: Op::SetTime,
        code: 550,
        text: "Could not set file modification time.".into(),
    });
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "f").unwrap();
    let (fh, _) = fs.open(ino, truncating()).unwrap();
    fs.write(fh, 0, b"new content").unwrap();
    let when = std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let set = SetAttr {
        mtime: Some(when),
        ..Default::default()
    };
    fs.setattr(ino, set).unwrap();
    let err = fs.flush(fh).unwrap_err();
    assert_eq!(err.errno(), libc::EPERM, "{err}");
    assert_eq!(fs.remote().content("f").unwrap(), b"new content");
    let stores = fs.remote().store_calls();
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(fs.remote().store_calls(), stores, "the data went up once");
}

#[test]
fn renaming_onto_a_file_works_where_the_server_refuses_rename_onto_a_name() {
    let r = MemRemote::new();
    r.add_file("new", b"NEW");
    r.add_file("target", b"OLD");
    r.refuse_rename_onto_existing(true);
    let fs = writable(r);
    fs.rename(ROOT, OsStr::new("new"), ROOT, OsStr::new("target"), false)
        .unwrap();
    assert_eq!(fs.remote().content("target").unwrap(), b"NEW");
    assert!(!fs.remote().exists("new"));
    assert!(
        fs.remote().paths().iter().all(|p| !p.contains(".ftpfs-")),
        "old version removed"
    );
}

/// The moved-aside target comes back when the rename into its place fails: the target is
/// never deleted before its replacement is there.
#[test]
fn a_failed_rename_onto_a_file_keeps_the_target() {
    let r = MemRemote::new();
    r.add_file("new", b"NEW");
    r.add_file("target", b"OLD");
    r.refuse_rename_onto_existing(true);
    r.inject(Fault::Call("rename", "new".into()), || Error::Reply {
        op: Op::Rename,
        code: 553,
        text: "refused".into(),
    });
    r.inject(Fault::Call("rename", "new".into()), || Error::Reply {
        op: Op::Rename,
        code: 550,
        text: "refused again".into(),
    });
    let fs = writable(r);
    assert!(fs
        .rename(ROOT, OsStr::new("new"), ROOT, OsStr::new("target"), false)
        .is_err());
    assert_eq!(fs.remote().content("target").unwrap(), b"OLD");
    assert_eq!(fs.remote().content("new").unwrap(), b"NEW");
}

/// Regression: a forked child closing a descriptor it inherited (every exec does, for
/// close-on-exec descriptors) made ftpfs upload the file while its opener was still writing.
#[test]
fn only_the_opening_process_uploads_on_close() {
    let r = MemRemote::new();
    r.add_file("f", b"old");
    let fs = writable(r);
    let ino = lookup(&fs, ROOT, "f").unwrap();
    let mode = OpenMode {
        owner: 100,
        ..truncating()
    };
    let (fh, _) = fs.open(ino, mode).unwrap();
    fs.write(fh, 0, b"half").unwrap();
    // Thread 201 belongs to process 200, not to the opener.
    fs.flush_from(fh, 201, |_| 200).unwrap();
    assert_eq!(
        fs.remote().content("f").unwrap(),
        b"old",
        "a child's close sends nothing"
    );
    fs.write(fh, 4, b" and the rest").unwrap();
    // The opener's main thread (thread id = process id) needs no lookup.
    fs.flush_from(fh, 100, |_| unreachable!("no lookup for the main thread"))
        .unwrap();
    assert_eq!(fs.remote().content("f").unwrap(), b"half and the rest");
    // Another thread of the opener uploads too.
    fs.write(fh, 0, b"HALF").unwrap();
    fs.flush_from(fh, 101, |_| 100).unwrap();
    assert_eq!(fs.remote().content("f").unwrap(), b"HALF and the rest");
    fs.release(fh);
}

fn create(fs: &FtpFs<MemRemote>, parent: u64, name: &str) -> ftpfs::error::Result<(u64, u64)> {
    let (attr, fh) = fs.create(parent, OsStr::new(name), false, 0, 0o644)?;
    Ok((attr.ino, fh))
}

fn no_temp_files(fs: &FtpFs<MemRemote>) -> bool {
    fs.remote().paths().iter().all(|p| !p.contains(".ftpfs-"))
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// A big file written from start to end goes up while it is written: a STOR to a temporary
/// name starts once it passes 4 MiB, and close finishes it and renames it into place.
#[test]
fn a_big_sequential_write_is_streamed_and_lands_whole() {
    let fs = writable(MemRemote::new());
    let (ino, fh) = create(&fs, ROOT, "big.bin").unwrap();
    let data = pattern(10 << 20);
    for (i, chunk) in data.chunks(1 << 20).enumerate() {
        fs.write(fh, (i << 20) as u64, chunk).unwrap();
    }
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(fs.remote().stream_calls(), 1);
    assert!(fs.remote().content("big.bin").unwrap() == data);
    assert!(no_temp_files(&fs));
    assert_eq!(fs.getattr(ino).unwrap().size, data.len() as u64);
}

/// A write that is not at the end stops the stream and deletes its temporary file; the
/// spool goes up at close as before, with the right content.
#[test]
fn a_write_behind_the_end_stops_the_stream_and_the_spool_is_uploaded() {
    let fs = writable(MemRemote::new());
    let (_, fh) = create(&fs, ROOT, "f").unwrap();
    let mut data = pattern(6 << 20);
    for (i, chunk) in data.chunks(1 << 20).enumerate() {
        fs.write(fh, (i << 20) as u64, chunk).unwrap();
    }
    fs.write(fh, 100, b"PATCH").unwrap();
    data[100..105].copy_from_slice(b"PATCH");
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(fs.remote().stream_calls(), 1);
    assert!(fs.remote().content("f").unwrap() == data);
    assert!(no_temp_files(&fs));
}

/// A stream that fails is replaced by the ordinary upload; if that fails too, close says
/// so, nothing is left behind, and the next flush sends it.
#[test]
fn a_failed_stream_falls_back_and_close_reports_the_truth() {
    let fs = writable(MemRemote::new());
    let (_, fh) = create(&fs, ROOT, "f").unwrap();
    let data = pattern(5 << 20);
    for (i, chunk) in data.chunks(1 << 20).enumerate() {
        fs.write(fh, (i << 20) as u64, chunk).unwrap();
    }
    fs.remote().fail_all_stores(true);
    assert!(fs.flush(fh).is_err());
    assert!(no_temp_files(&fs));
    fs.remote().fail_all_stores(false);
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert!(fs.remote().content("f").unwrap() == data);
    assert!(no_temp_files(&fs));
}

#[test]
fn truncating_a_file_being_streamed_stops_the_stream() {
    let fs = writable(MemRemote::new());
    let (ino, fh) = create(&fs, ROOT, "f").unwrap();
    for i in 0..5u64 {
        fs.write(fh, i << 20, &pattern(1 << 20)).unwrap();
    }
    fs.setattr(
        ino,
        ftpfs::fs::SetAttr {
            size: Some(10),
            ..Default::default()
        },
    )
    .unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
    assert_eq!(fs.remote().content("f").unwrap(), pattern(10));
    assert!(no_temp_files(&fs));
}

/// Issue 13: vsftpd and pyftpdlib cannot set a directory's time, and `cp -a`, `tar x` and
/// `rsync -a` failed over it. A refused directory time is accepted (unless `strict_times`);
/// a refused file time, or a directory time that failed for another reason, is not.
#[test]
fn a_directory_time_the_server_refuses_is_accepted_unless_strict() {
    use ftpfs::fs::SetAttr;
    fn refused() -> Error {
        Error::Reply {
            op: Op::SetTime,
            code: 550,
            text: "Could not set file modification time.".into(),
        }
    }
    let when = std::time::UNIX_EPOCH + Duration::from_secs(1_577_934_245);
    let set = || SetAttr {
        mtime: Some(when),
        ..Default::default()
    };
    for strict in [false, true] {
        let r = MemRemote::new();
        r.add_dir("d");
        r.add_file("f", b"x");
        let fs = FtpFs::new(
            r,
            FsOptions {
                uid: 1000,
                gid: 1000,
                umask: None,
                ttl: Duration::from_secs(60),
                max_cached_entries: 10_000,
                read_only: false,
                spool_dir: spool_dir(),
                recovery_dir: spool_dir().join("recovered"),
                upload: UploadMode::Atomic,
                strict_times: strict,
            },
        );
        let (d, f) = (
            lookup(&fs, ROOT, "d").unwrap(),
            lookup(&fs, ROOT, "f").unwrap(),
        );
        fs.remote()
            .inject(Fault::Call("mtime", "d".into()), refused);
        let dir = fs.setattr(d, set());
        if strict {
            assert_eq!(dir.unwrap_err().errno(), libc::EPERM);
        } else {
            let attr = dir.unwrap();
            assert_ne!(attr.mtime, when, "accepted, not applied");
        }
        fs.remote()
            .inject(Fault::Call("mtime", "f".into()), refused);
        assert_eq!(fs.setattr(f, set()).unwrap_err().errno(), libc::EPERM);
        // Not a refusal: a directory time that timed out stays an error.
        fs.remote()
            .inject(Fault::Call("mtime", "d".into()), || Error::Timeout {
                op: Op::SetTime,
            });
        assert_eq!(fs.setattr(d, set()).unwrap_err().errno(), libc::ETIMEDOUT);
    }
}
