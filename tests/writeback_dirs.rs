//! Queued `mkdir` in write-back mode (`-o writeback`, issue 16): a `mkdir` inside a
//! directory this mount made is queued, not sent, and still nothing is lost or silent: the
//! directory is shown at once and without asking the server, its `MKD` goes up before
//! anything beneath it, a rename waits for it, a refused `MKD` sends what was queued beneath
//! to the recovery directory with its errno, and a killed daemon's queued directories are
//! made by the next mount before the files in them.
//!
//! The core's rules are checked against `MemRemote` with no worker started, so nothing
//! leaves the queue unless an operation takes it; the rest through real mounts of real
//! servers, uploads held back by stopping the server, never by timing.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use ftpfs::error::{Error, Op};
use ftpfs::fs::{FsOptions, FtpFs, UploadMode};
use ftpfs::inode::ROOT;
use ftpfs::testing::{Fault, MemRemote};
use ftpfs::upload::journal::Journal;

/// A write-back core whose listings expire at once (every listing asks the remote), with no
/// worker started. Returns it with its state directory.
fn core() -> (FtpFs<MemRemote>, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let spool = state.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mut fs = FtpFs::new(
        MemRemote::new(),
        FsOptions {
            uid: 1000,
            gid: 1000,
            umask: None,
            ttl: Duration::ZERO,
            max_cached_entries: 10_000,
            read_only: false,
            spool_dir: spool,
            recovery_dir: state.path().join("recovered"),
            upload: UploadMode::Atomic,
            strict_times: false,
        },
    );
    let journal = Journal::open(state.path().join("journal")).unwrap();
    fs.enable_writeback(journal, 1 << 30, 1000);
    (fs, state)
}

/// Creates `name` in `parent` with `data`, closes it (queued) and releases it; its inode.
fn queued_file(fs: &FtpFs<MemRemote>, parent: u64, name: &str, data: &[u8]) -> u64 {
    let (attr, fh) = fs.create(parent, OsStr::new(name), true, 0, 0o644).unwrap();
    fs.write(fh, 0, data).unwrap();
    fs.flush(fh).unwrap();
    fs.release(fh);
    attr.ino
}

fn journal_records(state: &Path) -> usize {
    Journal::open(state.join("journal"))
        .unwrap()
        .records()
        .unwrap()
        .len()
}

#[test]
fn a_mkdir_in_a_directory_made_here_is_queued_and_shown_without_the_server() {
    let (fs, state) = core();
    let top = fs.mkdir(ROOT, OsStr::new("top"), 0o755).unwrap();
    assert!(fs.remote().exists("top"), "the first mkdir is synchronous");
    let a = fs.mkdir(top.ino, OsStr::new("a"), 0o755).unwrap();
    let b = fs.mkdir(a.ino, OsStr::new("b"), 0o750).unwrap();
    queued_file(&fs, b.ino, "f", b"hello");
    assert!(!fs.remote().exists("top/a"), "queued, not sent");
    assert_eq!(
        journal_records(state.path()),
        3,
        "two directories and a file"
    );
    // Every listing here asks the server (its cache expires at once), which has neither:
    // they are answered from what was queued.
    let lists = fs.remote().list_calls();
    assert_eq!(fs.lookup(top.ino, OsStr::new("a")).unwrap().ino, a.ino);
    let b_again = fs.lookup(a.ino, OsStr::new("b")).unwrap();
    assert_eq!((b_again.ino, b_again.perm), (b.ino, 0o750));
    assert_eq!(fs.lookup(b.ino, OsStr::new("f")).unwrap().size, 5);
    assert!(matches!(
        fs.lookup(b.ino, OsStr::new("nothing")),
        Err(Error::NotFound)
    ));
    assert_eq!(
        fs.remote().list_calls() - lists,
        1,
        "only the listing of top, which the server has, was asked for"
    );
    // A sync of the mount (no worker here: the queue is taken by the operations below)
    // is what `sync MOUNTPOINT` does; a rename needs everything beneath on the server.
    fs.rename(top.ino, OsStr::new("a"), top.ino, OsStr::new("c"), false)
        .unwrap();
    assert_eq!(fs.remote().content("top/c/b/f").unwrap(), b"hello");
    assert_eq!(fs.remote().mode("top/c/b"), Some(0o750), "its mode applied");
    assert!(!fs.remote().exists("top/a"));
    assert_eq!(fs.writeback_stats().unwrap().files, 0);
    assert_eq!(journal_records(state.path()), 0, "the journal is empty");
}

#[test]
fn rm_r_of_a_queued_tree_leaves_nothing_queued_nor_on_the_server() {
    let (fs, state) = core();
    let top = fs.mkdir(ROOT, OsStr::new("top"), 0o755).unwrap();
    let a = fs.mkdir(top.ino, OsStr::new("a"), 0o755).unwrap();
    let b = fs.mkdir(a.ino, OsStr::new("b"), 0o755).unwrap();
    queued_file(&fs, b.ino, "f", b"gone");
    assert!(matches!(
        fs.rmdir(top.ino, OsStr::new("a")),
        Err(Error::NotEmpty)
    ));
    // A file never uploaded is dropped without the server; a directory is made, then
    // removed: the server's answer to the removal is the one rmdir(2) gets.
    fs.unlink(b.ino, OsStr::new("f")).unwrap();
    fs.rmdir(a.ino, OsStr::new("b")).unwrap();
    fs.rmdir(top.ino, OsStr::new("a")).unwrap();
    assert_eq!(fs.remote().paths(), ["top"]);
    assert_eq!(fs.writeback_stats().unwrap().files, 0);
    assert_eq!(journal_records(state.path()), 0);
    assert!(fs.fsyncdir(ROOT).is_ok());
}

#[test]
fn a_mkdir_in_a_directory_not_made_here_stays_synchronous() {
    let (fs, _state) = core();
    fs.remote().add_dir("theirs");
    let theirs = fs.lookup(ROOT, OsStr::new("theirs")).unwrap();
    fs.mkdir(theirs.ino, OsStr::new("mine"), 0o755).unwrap();
    assert!(fs.remote().exists("theirs/mine"));
    // The server's honest answer reaches mkdir(2).
    fs.remote()
        .inject(Fault::Call("mkdir", "theirs/refused".into()), || {
            Error::Reply {
                op: Op::Mkdir,
                code: 552,
                text: "Quota exceeded".into(),
            }
        });
    let err = fs
        .mkdir(theirs.ino, OsStr::new("refused"), 0o755)
        .unwrap_err();
    assert_eq!(err.errno(), libc::EDQUOT);
}

#[test]
fn a_refused_queued_mkdir_sends_the_files_beneath_to_recovery_with_its_errno() {
    let (fs, state) = core();
    fs.remote()
        .inject(Fault::Call("mkdir", "top/a".into()), || Error::Reply {
            op: Op::Mkdir,
            code: 552,
            text: "Quota exceeded".into(),
        });
    let top = fs.mkdir(ROOT, OsStr::new("top"), 0o755).unwrap();
    let a = fs.mkdir(top.ino, OsStr::new("a"), 0o755).unwrap();
    let b = fs.mkdir(a.ino, OsStr::new("b"), 0o755).unwrap();
    let (_, fh) = fs.create(b.ino, OsStr::new("f"), true, 0, 0o644).unwrap();
    fs.write(fh, 0, b"precious").unwrap();
    fs.flush(fh).unwrap();
    queued_file(&fs, a.ino, "g", b"also precious");
    let fs = std::sync::Arc::new(fs);
    fs.start_writeback(2).unwrap();
    let err = fs.fsyncdir(ROOT).unwrap_err();
    assert_eq!(err.errno(), libc::EDQUOT, "sync of the mount: {err}");
    let err = fs.fsync(fh).unwrap_err();
    assert_eq!(err.errno(), libc::EDQUOT, "fsync of a file beneath: {err}");
    fs.release(fh);
    assert!(!fs.remote().exists("top/a"));
    let stats = fs.writeback_stats().unwrap();
    assert_eq!(stats.files, 0, "nothing stays queued");
    let mut failed = stats.failed.clone();
    failed.sort();
    let names: Vec<&str> = failed.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        ["top/a/b/f", "top/a/g"],
        "each file named, no directory"
    );
    assert!(
        stats
            .refused_dirs
            .iter()
            .any(|(dir, why)| dir == "top/a" && why.contains("552 Quota exceeded")),
        "the refused directory is named with why: {:?}",
        stats.refused_dirs
    );
    assert_eq!(std::fs::read(&failed[0].1).unwrap(), b"precious");
    assert_eq!(std::fs::read(&failed[1].1).unwrap(), b"also precious");
    assert_eq!(journal_records(state.path()), 0, "the data is in recovery");
    // The directory is gone from our listings: the server never had it.
    assert!(matches!(
        fs.lookup(top.ino, OsStr::new("a")),
        Err(Error::NotFound)
    ));
    fs.drain_writeback();
}

/// `sync DIR` is fsync(2) of the directory: on the mount's root, it waits for the whole
/// write-back queue and fails with its first error.
fn sync_mount(path: &Path) -> std::process::Output {
    Command::new("sync").arg(path).output().unwrap()
}

fn umount_cmd(path: &Path) -> std::process::Output {
    ftpfs().arg("umount").arg(path).output().unwrap()
}

/// A tree of nested directories (one empty) and files.
fn nested_tree(root: &Path) {
    let mut rng = Rng(16);
    for d in ["a", "a/b", "a/b/c", "a/b/c/d", "e", "e/empty", "f g"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for (i, d) in ["", "a", "a/b", "a/b/c", "a/b/c/d", "e", "f g"]
        .iter()
        .enumerate()
    {
        for j in 0..4 {
            let n = rng.below(9000) as usize;
            std::fs::write(root.join(d).join(format!("file{i}-{j}")), rng.bytes(n)).unwrap();
        }
    }
}

fn cp_r_of_nested_directories_is_on_the_server_byte_for_byte(kind: ServerKind) {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(kind, data.path()) else {
        return;
    };
    let src = tempfile::tempdir().unwrap();
    nested_tree(src.path());
    let m = Mount::new(&server, &["writeback"]);
    let st = Command::new("cp")
        .arg("-r")
        .arg(src.path())
        .arg(m.path().join("copy"))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        snapshot(&m.path().join("copy")),
        snapshot(src.path()),
        "the mount shows the tree"
    );
    let out = sync_mount(m.path());
    assert!(
        out.status.success(),
        "sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        snapshot(&data.path().join("copy")),
        snapshot(src.path()),
        "after sync the tree is on the server, byte for byte"
    );
    let out = umount_cmd(m.path());
    assert!(
        out.status.success(),
        "umount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cp_r_of_nested_directories_is_on_the_server_byte_for_byte_on_pure_ftpd() {
    cp_r_of_nested_directories_is_on_the_server_byte_for_byte(ServerKind::PureFtpd);
}

#[test]
fn cp_r_of_nested_directories_is_on_the_server_byte_for_byte_on_vsftpd() {
    cp_r_of_nested_directories_is_on_the_server_byte_for_byte(ServerKind::Vsftpd);
}

#[test]
fn cp_r_of_nested_directories_is_on_the_server_byte_for_byte_on_pyftpdlib() {
    cp_r_of_nested_directories_is_on_the_server_byte_for_byte(ServerKind::Pyftpdlib);
}

/// `kill -9` of the daemon while nested `mkdir`s and files in them are queued (the server
/// is down, so none can land): the next mount makes the directories, then the files.
#[test]
fn kill_9_with_queued_mkdirs_and_files_beneath_then_remount_makes_them_all() {
    let data = tempfile::tempdir().unwrap();
    let Some(mut server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let spool = format!("spool_dir={}", state.path().join("spool").display());
    let recovery = format!("recovery_dir={}", state.path().join("recovered").display());
    let opts = ["writeback", "dir_cache_ttl=600", &spool, &recovery];
    let mut m = Mount::new(&server, &opts);
    let top = m.path().join("top");
    std::fs::create_dir(&top).unwrap();
    assert!(data.path().join("top").is_dir(), "made synchronously");
    server.crash();

    let src = tempfile::tempdir().unwrap();
    nested_tree(src.path());
    let st = Command::new("cp")
        .arg("-r")
        .arg(src.path())
        .arg(top.join("copy"))
        .status()
        .unwrap();
    assert!(st.success(), "cp -r returns with the server down");
    assert_eq!(snapshot(&top.join("copy")), snapshot(src.path()));
    assert!(!data.path().join("top/copy").exists(), "nothing landed");

    let mut child = m.take_child();
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = unmount(m.path());
    drop(m);
    server.restart();

    let m = Mount::new(&server, &opts[1..]);
    assert_eq!(
        snapshot(&data.path().join("top/copy")),
        snapshot(src.path()),
        "every directory and file arrived, byte for byte"
    );
    let log = m.log_text();
    let dirs = snapshot(src.path()).values().filter(|v| v.0 == 'd').count() + 1;
    let files = snapshot(src.path()).values().filter(|v| v.0 == 'f').count();
    let want = format!(
        "uploaded: {}, found: 0, conflicts: 0, kept: 0",
        dirs + files
    );
    assert!(
        log.contains(&want),
        "replay ({want}): {}",
        log.lines()
            .find(|l| l.contains("replayed"))
            .unwrap_or("none")
    );
    assert!(
        !state.path().join("recovered").exists()
            || std::fs::read_dir(state.path().join("recovered"))
                .unwrap()
                .next()
                .is_none(),
        "nothing in recovery"
    );
}

/// The server refuses a nested `mkdir` (the directory above, made by this mount, was made
/// read-only on the server behind its back): the files queued beneath go to the recovery
/// directory, `sync` of the mount fails with the errno, `ftpfs umount` exits 1 naming them.
#[test]
fn a_nested_mkdir_the_server_refuses_ends_with_the_files_in_recovery_and_sync_failing() {
    let data = tempfile::tempdir().unwrap();
    let Some(mut server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["writeback", "dir_cache_ttl=600"]);
    std::fs::create_dir(m.path().join("top")).unwrap();
    std::fs::set_permissions(
        data.path().join("top"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();
    // Down while the tree is made, so that nothing is tried before it is all queued.
    server.crash();
    let sub = m.path().join("top/sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::create_dir(sub.join("deeper")).unwrap();
    std::fs::write(sub.join("a.txt"), "refused a").unwrap();
    std::fs::write(sub.join("deeper/b.txt"), "refused b").unwrap();
    server.restart();

    let out = sync_mount(m.path());
    assert!(!out.status.success(), "sync reports the refusal");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Permission denied"), "sync: {stderr}");
    assert!(!data.path().join("top/sub").exists());

    let out = umount_cmd(m.path());
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "umount: {stderr}");
    for (name, content) in [
        ("top/sub/a.txt", "refused a"),
        ("deeper/b.txt", "refused b"),
    ] {
        let saved = stderr
            .lines()
            .find(|l| l.contains(name))
            .and_then(|l| l.split("its data is in ").nth(1))
            .unwrap_or_else(|| panic!("umount names {name} and its data: {stderr}"));
        assert_eq!(std::fs::read_to_string(saved.trim()).unwrap(), content);
    }
    let log = m.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("top/sub: the queued mkdir failed")),
        "logged at error level"
    );
}

/// An empty directory whose queued `mkdir` the server refuses has no file to be named by:
/// `ftpfs umount` names the directory itself, with the server's reason, and exits 1.
#[test]
fn umount_names_an_empty_directory_the_server_refused_to_make() {
    let data = tempfile::tempdir().unwrap();
    let Some(mut server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["writeback", "dir_cache_ttl=600"]);
    std::fs::create_dir(m.path().join("top")).unwrap();
    std::fs::set_permissions(
        data.path().join("top"),
        std::fs::Permissions::from_mode(0o555),
    )
    .unwrap();
    // Down while it is made, so that its mkdir is queued, not tried at once.
    server.crash();
    std::fs::create_dir(m.path().join("top/empty")).unwrap();
    server.restart();
    let out = sync_mount(m.path());
    assert!(!out.status.success(), "sync reports the refusal");
    assert!(!data.path().join("top/empty").exists());
    let out = umount_cmd(m.path());
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "umount: {stderr}");
    assert!(
        stderr.lines().any(
            |l| l.contains("top/empty/: the directory could not be made")
                && l.contains("Permission denied")
        ),
        "umount names the directory and why: {stderr}"
    );
}

/// A directory renamed while its `mkdir` and the files in it may still be queued: the
/// rename waits for them, and everything lands under the new name only.
#[test]
fn renaming_a_directory_with_queued_contents_lands_them_under_the_new_name() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["writeback"]);
    std::fs::create_dir(m.path().join("top")).unwrap();
    let old = m.path().join("top/old");
    std::fs::create_dir(&old).unwrap();
    std::fs::create_dir(old.join("inner")).unwrap();
    std::fs::create_dir(old.join("empty")).unwrap();
    std::fs::write(old.join("a"), "aaa").unwrap();
    std::fs::write(old.join("inner/b"), "bbb").unwrap();
    std::fs::rename(&old, m.path().join("top/new")).unwrap();
    let out = sync_mount(m.path());
    assert!(
        out.status.success(),
        "sync: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let on_server = snapshot(&data.path().join("top"));
    let names: Vec<&str> = on_server.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["new", "new/a", "new/empty", "new/inner", "new/inner/b"]
    );
    assert_eq!(
        std::fs::read_to_string(data.path().join("top/new/inner/b")).unwrap(),
        "bbb"
    );
}

/// A journal a killed daemon left: queued `mkdir`s (one the server now refuses) and files
/// beneath them, written in an order where a file's record is older than a directory's.
/// The replay makes the directories first, parents before children, then the files; what
/// was beneath the refused one goes to the recovery directory.
#[test]
fn replay_makes_queued_directories_before_what_is_beneath_and_recovers_under_a_refused_one() {
    use ftpfs::upload::journal::{Base, Record, Replayed};
    let (fs, state) = core();
    let rec = |path: &str, dir: bool, data: &[u8]| Record {
        id: 0,
        path: path.into(),
        base: Base::New,
        tail: false,
        len: data.len() as u64,
        pid: 77,
        mtime: None,
        mode: dir.then_some(0o700),
        offset: 0,
        dir,
    };
    let journal = Journal::open(state.path().join("journal")).unwrap();
    fs.remote().add_dir("top");
    fs.remote().add_dir("top/was-made");
    for (path, dir, data) in [
        ("top/a", true, &b""[..]),
        ("top/a/b/f", false, b"deep"),
        ("top/a/b", true, b""),
        ("top/a/g", false, b"gee"),
        ("top/was-made", true, b""),
        ("top/refused", true, b""),
        ("top/refused/lost", false, b"kept"),
    ] {
        journal.write(rec(path, dir, data), &mut &data[..]).unwrap();
    }
    fs.remote()
        .inject(Fault::Call("mkdir", "top/refused".into()), || {
            Error::Reply {
                op: Op::Mkdir,
                code: 550,
                text: "Permission denied".into(),
            }
        });
    let done = fs.replay_leftover(&journal);
    assert_eq!(
        done,
        Replayed {
            uploaded: 4,
            found: 1,
            conflicts: 2,
            kept: 0
        }
    );
    assert_eq!(fs.remote().content("top/a/b/f").unwrap(), b"deep");
    assert_eq!(fs.remote().content("top/a/g").unwrap(), b"gee");
    assert_eq!(fs.remote().mode("top/a/b"), Some(0o700));
    assert!(!fs.remote().exists("top/refused"));
    let kept: Vec<_> = std::fs::read_dir(state.path().join("recovered"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(kept, vec![b"kept".to_vec()]);
    assert!(journal.records().unwrap().is_empty());
}
