//! The compatibility matrix (issue 14): one set of interop checks, run through a real mount
//! against every server ftpfs is tested with, one test per server.
//!
//! Servers differ where FTP leaves room: which listing they offer (`MLSD`, or only `LIST`),
//! whether they have `SITE CHMOD`, `MFMT`, `APPE`, whether they set a directory's time. A
//! check never skips what a server cannot do: it asserts ftpfs's documented answer for it
//! instead (README's *Errors* table, *Learned refusals*), from the capabilities a [`Row`]
//! says the server has. The README's compatibility table names these tests.
//!
//! A new server is a new [`Row`] (how to start it, what it can do) and one line in the
//! `rows!` list at the end. Each test mounts its server once and runs the checks in
//! sequence; the time each check took is printed (`--nocapture`).

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

/// What one server is expected to do: its row of the compatibility table.
struct Row {
    /// Starts the server serving `root` (`None`: not installed, a skip unless required).
    start: fn(&Path) -> Option<Server>,
    /// It offers `MLSD`; otherwise ftpfs lists with `LIST` (and `MDTM` for exact times).
    mlsd: bool,
    /// It offers `EPSV`; otherwise ftpfs uses `PASV`.
    epsv: bool,
    /// Its mounts are FTPS (`tls=required`, from [`Mount::new`]); otherwise the server
    /// refuses `AUTH TLS` and the default `tls=try` goes on in plain FTP, saying so.
    tls: bool,
    /// `SITE CHMOD` works; otherwise `chmod` is `ENOTSUP` (README, *Errors*).
    chmod: bool,
    /// A file's time can be set (`MFMT`, or vsftpd's `MDTM time path`); otherwise
    /// `utimens` is `ENOTSUP`.
    file_times: bool,
    /// A directory's time can be set; otherwise `utimens` on a directory succeeds and is
    /// not applied (README, *Writing*).
    dir_times: bool,
    /// `APPE` is accepted; otherwise the refusal is learned and the whole file is sent
    /// (README, *Learned refusals*).
    appe: bool,
    /// It refuses passive mode: `-o data=auto` chose active mode (`PORT`).
    active: bool,
    /// Mount options beyond what [`Mount::new`] gives the server (its CA, for FTPS).
    opts: &'static [&'static str],
}

/// A row with the capabilities most servers have; each row says where its server differs.
const FULL: Row = Row {
    start: |_| None,
    mlsd: true,
    epsv: true,
    tls: false,
    chmod: true,
    file_times: true,
    dir_times: true,
    appe: true,
    active: false,
    opts: &[],
};

/// The big file: past 4 GiB, so reading its tail needs a `REST` offset that does not fit
/// in 32 bits. Sparse on the server's disk.
const SPARSE_LEN: u64 = (4 << 30) + 12_345;

/// The bytes at the end of the sparse file.
fn sparse_tail() -> Vec<u8> {
    Rng(0x4_0000_0000).bytes(4096)
}

/// The tree every server serves, made before the server starts (some serve as another
/// user and take the tree over at start).
fn make_tree(root: &Path) {
    sample_tree(root);
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::write(root.join("a/b/c/leaf.txt"), b"leaf\n").unwrap();
    std::fs::write(root.join("a/to append.txt"), b"first\n").unwrap();
    std::fs::write(root.join("a/to truncate.bin"), Rng(7).bytes(10_000)).unwrap();
    let sparse = std::fs::File::create(root.join("sparse.bin")).unwrap();
    sparse.set_len(SPARSE_LEN).unwrap();
    let mut sparse = sparse;
    sparse
        .seek(SeekFrom::Start(SPARSE_LEN - sparse_tail().len() as u64))
        .unwrap();
    sparse.write_all(&sparse_tail()).unwrap();
}

/// Every entry below `root`: relative path → (kind, size; 0 for a directory).
fn shape(root: &Path) -> BTreeMap<String, (char, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![std::path::PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let md = std::fs::symlink_metadata(root.join(&r)).unwrap();
            let key = r.to_string_lossy().to_string();
            if md.is_dir() {
                out.insert(key, ('d', 0));
                stack.push(r);
            } else {
                out.insert(key, ('f', md.len()));
            }
        }
    }
    out
}

fn errno(r: std::io::Result<()>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// 2020-01-02 03:04:05 UTC: seconds that `LIST` cannot show.
const WHEN: u64 = 1_577_934_245;

/// Runs every check against the server of `row`, through one mount.
fn interop(row: Row) {
    let data = tempfile::tempdir().unwrap();
    make_tree(data.path());
    let t0 = Instant::now();
    let Some(server) = (row.start)(data.path()) else {
        return;
    };
    let root = server.root.clone();
    let started = Instant::now();
    let m = Mount::new(&server, row.opts);
    let mnt = m.path().to_path_buf();
    let mut times = Vec::new();
    let mut step = |name: &'static str, check: &mut dyn FnMut()| {
        let t = Instant::now();
        check();
        times.push((name, t.elapsed()));
    };

    step("list a nested tree", &mut || {
        assert_eq!(
            shape(&mnt),
            shape(&root),
            "the mount's tree is the server's"
        );
    });

    step("stat", &mut || {
        let md = std::fs::metadata(mnt.join("docs/nested deeper/deep.bin")).unwrap();
        assert!(md.is_file());
        assert_eq!(md.len(), 70_000);
        assert!(std::fs::metadata(mnt.join("empty dir")).unwrap().is_dir());
        let gone = std::fs::metadata(mnt.join("no such file")).unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::ENOENT));
    });

    step("read at offsets", &mut || {
        let want = std::fs::read(root.join("big.bin")).unwrap();
        let mut f = std::fs::File::open(mnt.join("big.bin")).unwrap();
        // Before any whole read (the kernel would serve these from its page cache):
        // forwards far past the read-ahead, then backwards, each a new REST.
        for at in [3 << 20, 123, (5 << 20) + 100, 1 << 20] {
            f.seek(SeekFrom::Start(at as u64)).unwrap();
            let mut b = vec![0u8; 20];
            f.read_exact(&mut b).unwrap();
            assert!(b == want[at..at + 20], "20 bytes at {at}");
        }
    });

    step("read whole, names with spaces and UTF-8", &mut || {
        for name in [
            "big.bin",
            "with space.txt",
            "ünïcødé.txt",
            "ünïcødé dir/ファイル.txt",
            "a/b/c/leaf.txt",
            "empty",
        ] {
            let got = std::fs::read(mnt.join(name)).unwrap();
            assert!(got == std::fs::read(root.join(name)).unwrap(), "{name}");
        }
    });

    step("read a 4 GiB+ sparse file's tail", &mut || {
        let md = std::fs::metadata(mnt.join("sparse.bin")).unwrap();
        assert_eq!(md.len(), SPARSE_LEN);
        let mut f = std::fs::File::open(mnt.join("sparse.bin")).unwrap();
        let tail = sparse_tail();
        f.seek(SeekFrom::Start(SPARSE_LEN - tail.len() as u64 - 10))
            .unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        assert_eq!(b.len(), tail.len() + 10, "read to the end");
        assert_eq!(&b[..10], &[0u8; 10], "the hole reads as zeros");
        assert!(b[10..] == tail[..], "the last 4096 bytes");
    });

    step("write new, replace", &mut || {
        let new = Rng(11).bytes(300_000);
        std::fs::write(mnt.join("new ünï file.bin"), &new).unwrap();
        assert!(std::fs::read(root.join("new ünï file.bin")).unwrap() == new);
        std::fs::write(mnt.join("hello.txt"), b"replaced\n").unwrap();
        assert_eq!(
            std::fs::read(root.join("hello.txt")).unwrap(),
            b"replaced\n"
        );
        assert_eq!(std::fs::read(mnt.join("hello.txt")).unwrap(), b"replaced\n");
    });

    step("append", &mut || {
        for n in 0..3 {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(mnt.join("a/to append.txt"))
                .unwrap();
            f.write_all(format!("more {n}\n").as_bytes()).unwrap();
            assert_eq!(close(f), Ok(()), "append {n} reports its upload");
        }
        assert_eq!(
            std::fs::read_to_string(root.join("a/to append.txt")).unwrap(),
            "first\nmore 0\nmore 1\nmore 2\n"
        );
    });

    step("truncate", &mut || {
        let want = std::fs::read(root.join("a/to truncate.bin")).unwrap();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(mnt.join("a/to truncate.bin"))
            .unwrap();
        f.set_len(4000).unwrap();
        assert_eq!(close(f), Ok(()));
        assert!(std::fs::read(root.join("a/to truncate.bin")).unwrap() == want[..4000]);
        std::fs::write(mnt.join("with space.txt"), b"").unwrap();
        assert_eq!(
            std::fs::metadata(root.join("with space.txt"))
                .unwrap()
                .len(),
            0
        );
    });

    step("rename a file and a directory", &mut || {
        std::fs::rename(mnt.join("-leading-dash"), mnt.join("a/moved file")).unwrap();
        assert!(!root.join("-leading-dash").exists());
        assert_eq!(
            std::fs::metadata(root.join("a/moved file")).unwrap().len(),
            10
        );
        std::fs::rename(mnt.join("docs"), mnt.join("dócs renamed")).unwrap();
        assert!(!root.join("docs").exists());
        assert!(root.join("dócs renamed/nested deeper/deep.bin").is_file());
        assert_eq!(
            std::fs::read(mnt.join("dócs renamed/readme.md")).unwrap(),
            std::fs::read(root.join("dócs renamed/readme.md")).unwrap()
        );
    });

    step("mkdir, rmdir, unlink", &mut || {
        std::fs::create_dir(mnt.join("new dir")).unwrap();
        assert!(root.join("new dir").is_dir());
        let exists = std::fs::create_dir(mnt.join("new dir")).unwrap_err();
        assert_eq!(exists.raw_os_error(), Some(libc::EEXIST));
        std::fs::write(mnt.join("new dir/f"), b"x").unwrap();
        let full = std::fs::remove_dir(mnt.join("new dir")).unwrap_err();
        assert_eq!(full.raw_os_error(), Some(libc::ENOTEMPTY));
        std::fs::remove_file(mnt.join("new dir/f")).unwrap();
        assert!(!root.join("new dir/f").exists());
        std::fs::remove_dir(mnt.join("new dir")).unwrap();
        assert!(!root.join("new dir").exists());
        assert!(!mnt.join("new dir").exists());
    });

    step("chmod", &mut || {
        let f = mnt.join("ünïcødé.txt");
        let r = std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640));
        let on_server = || std::fs::metadata(root.join("ünïcødé.txt")).unwrap();
        if row.chmod {
            r.unwrap();
            assert_eq!(on_server().permissions().mode() & 0o777, 0o640);
        } else {
            assert_eq!(errno(r), Some(libc::ENOTSUP), "no SITE CHMOD");
            assert_ne!(on_server().permissions().mode() & 0o777, 0o640);
        }
    });

    step("mtime of a file and a directory", &mut || {
        let when = UNIX_EPOCH + Duration::from_secs(WHEN);
        let set = |p: &Path| std::fs::File::open(p).and_then(|f| f.set_modified(when));
        let server_time =
            |p: &str| secs(std::fs::metadata(root.join(p)).unwrap().modified().unwrap());
        let r = set(&mnt.join("ünïcødé dir/ファイル.txt"));
        if row.file_times {
            r.unwrap();
            assert_eq!(server_time("ünïcødé dir/ファイル.txt"), WHEN);
            let shown = std::fs::metadata(mnt.join("ünïcødé dir/ファイル.txt")).unwrap();
            assert_eq!(
                secs(shown.modified().unwrap()),
                WHEN,
                "as the mount shows it"
            );
        } else {
            assert_eq!(errno(r), Some(libc::ENOTSUP), "no MFMT");
            assert_ne!(server_time("ünïcødé dir/ファイル.txt"), WHEN);
        }
        // Refused or not, a directory's time succeeds (unless strict_times), even on a
        // server that sets no file's time either.
        set(&mnt.join("empty dir")).unwrap();
        let applied = server_time("empty dir") == WHEN;
        assert_eq!(
            applied, row.dir_times,
            "a directory's time is set on the server"
        );
    });

    let total = started.elapsed();
    let log = m.log_text();
    drop(m);

    // What ftpfs learned of the server, as its log says.
    let caps = log
        .lines()
        .find(|l| l.contains("capabilities: Caps"))
        .expect("the capabilities are logged");
    assert!(caps.contains(&format!("mlsd: {}", row.mlsd)), "{caps}");
    assert!(caps.contains(&format!("epsv: {}", row.epsv)), "{caps}");
    assert!(caps.contains(&format!("active: {}", row.active)), "{caps}");
    // The sparse file's tail came by a REST past 2^32, not by reading 4 GiB of zeros.
    let far_rest = log.lines().filter_map(|l| {
        let n = l.split("REST ").nth(1)?;
        n.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<u64>()
            .ok()
    });
    assert!(
        far_rest.into_iter().any(|n| n > u32::MAX as u64),
        "a REST offset past 4 GiB was sent"
    );
    let plain = log.contains("does not offer TLS");
    assert_eq!(plain, !row.tls, "plain FTP after tls=try");
    let appe_refused = log.contains("refuses appending (APPE)");
    assert_eq!(appe_refused, !row.appe, "APPE refusal learned");

    let mut report = format!(
        "{:?} (started in {} ms):\n",
        server.kind,
        (started - t0).as_millis()
    );
    for (name, t) in &times {
        report.push_str(&format!("{:>6} ms  {name}\n", t.as_millis()));
    }
    eprintln!(
        "{report}{:>6} ms  all checks, mount included",
        total.as_millis()
    );
}

fn pure_ftpd() -> Row {
    Row {
        start: |root| Server::start(ServerKind::PureFtpd, root),
        ..FULL
    }
}

fn pure_ftpd_tls() -> Row {
    Row {
        start: |root| Server::start(ServerKind::PureFtpdTls, root),
        tls: true,
        ..pure_ftpd()
    }
}

fn vsftpd() -> Row {
    Row {
        start: |root| Server::start(ServerKind::Vsftpd, root),
        mlsd: false,
        dir_times: false,
        ..FULL
    }
}

fn vsftpd_tls() -> Row {
    Row {
        start: |root| Server::start(ServerKind::VsftpdTls, root),
        tls: true,
        ..vsftpd()
    }
}

fn proftpd() -> Row {
    Row {
        start: |root| Server::start(ServerKind::Proftpd, root),
        appe: false,
        ..FULL
    }
}

fn pyftpdlib() -> Row {
    Row {
        start: |root| Server::start(ServerKind::Pyftpdlib, root),
        dir_times: false,
        ..FULL
    }
}

fn libunftp() -> Row {
    Row {
        start: |root| Server::start(ServerKind::Unftp, root),
        chmod: false,
        file_times: false,
        dir_times: false,
        ..FULL
    }
}

fn libunftp_tls() -> Row {
    Row {
        start: |root| Server::start(ServerKind::UnftpTls, root),
        tls: true,
        ..libunftp()
    }
}

/// pyftpdlib answering `LIST` as IIS does (four-digit years, 24-hour times, sizes with
/// thousands separators), without `MLSD`: times come from `MDTM`.
fn iis_dos_listing() -> Row {
    Row {
        start: |root| Server::quirky_with(root, &[], &[], &["--list=dos4", "--no-mlsd"]),
        mlsd: false,
        ..pyftpdlib()
    }
}

/// pyftpdlib answering `LIST` in EPLF, without `MLSD`.
fn eplf_listing() -> Row {
    Row {
        start: |root| Server::quirky_with(root, &[], &[], &["--list=eplf", "--no-mlsd"]),
        mlsd: false,
        ..pyftpdlib()
    }
}

/// pyftpdlib whose `FEAT` has a `999 what is this` line inside its `211-` block and `MLST`
/// unindented after it.
fn malformed_feat() -> Row {
    Row {
        start: |root| Server::quirky(root, &["feat-malformed"], &[]),
        ..pyftpdlib()
    }
}

/// pyftpdlib that refuses `EPSV` and `PASV`: mounted in active mode.
fn active_only() -> Row {
    Row {
        start: |root| Server::quirky(root, &["active-only"], &[]),
        epsv: false,
        active: true,
        ..pyftpdlib()
    }
}

/// pyftpdlib with RFC 7151 virtual hosts: `HOST localhost` (from `-o host=`, since the URL
/// names an address) logs in to the served tree; an unknown name would fail the mount.
fn virtual_host() -> Row {
    Row {
        start: |root| Server::quirky(root, &[], &[("localhost", root)]),
        opts: &["host=localhost"],
        ..pyftpdlib()
    }
}

/// One test per row: `name => row function`.
macro_rules! rows {
    ($($name:ident => $row:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                interop($row());
            }
        )*
    };
}

rows! {
    interop_pure_ftpd => pure_ftpd,
    interop_pure_ftpd_tls_required => pure_ftpd_tls,
    interop_vsftpd_plain_list_only => vsftpd,
    interop_vsftpd_ftps_session_reuse_required => vsftpd_tls,
    interop_proftpd => proftpd,
    interop_pyftpdlib => pyftpdlib,
    interop_libunftp => libunftp,
    interop_libunftp_ftps_required => libunftp_tls,
    interop_iis_dos_listing => iis_dos_listing,
    interop_eplf_listing => eplf_listing,
    interop_malformed_feat => malformed_feat,
    interop_active_mode_only => active_only,
    interop_virtual_host => virtual_host,
}
