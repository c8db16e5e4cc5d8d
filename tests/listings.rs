//! Real mounts of servers whose `LIST` is not the `ls -l` of the usual servers: pyftpdlib made
//! to answer as IIS does (MS-DOS style, two- and four-digit years), in EPLF, and in the unix
//! variants of embedded servers (tests/common/quirky_ftpd.py), with no `MLSD` and no `MDTM`,
//! so the listing is all ftpfs knows of names, kinds, sizes and times. What users do is
//! checked against the served tree: `find`, `ls -lR`, `cat` (every file's bytes), sizes and
//! modification times. And names with leading spaces, through every real server's `MLSD` and
//! `LIST`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// Gives every entry of the tree under `root` its own modification time, `base + i * step`
/// seconds in path order, and returns them by relative path.
fn stamp_tree(root: &Path, base: u64, step: u64) -> BTreeMap<String, SystemTime> {
    let mut times = BTreeMap::new();
    for (i, rel) in snapshot(root).keys().enumerate() {
        let t = UNIX_EPOCH + Duration::from_secs(base + i as u64 * step);
        std::fs::File::open(root.join(rel))
            .and_then(|f| f.set_modified(t))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        times.insert(rel.clone(), t);
    }
    times
}

/// `find .` in `dir`, sorted.
fn find(dir: &Path) -> Vec<String> {
    let out = Command::new("find")
        .arg(".")
        .current_dir(dir)
        .output()
        .expect("find runs");
    assert!(out.status.success(), "find: {out:?}");
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Every regular file's `(size, mtime in seconds)` by path, as `ls -lR` prints them.
fn ls_lr_files(dir: &Path) -> BTreeMap<String, (u64, u64)> {
    let out = Command::new("ls")
        .args(["-lAR", "--time-style=+%s", "."])
        .current_dir(dir)
        .output()
        .expect("ls runs");
    assert!(out.status.success(), "ls -lR: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut files = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(header) = line.strip_suffix(':').filter(|h| h.starts_with('.')) {
            current = header
                .trim_start_matches('.')
                .trim_start_matches('/')
                .to_string();
            continue;
        }
        if !line.starts_with('-') {
            continue;
        }
        // `-rw-r--r-- 1 owner group size epoch name`: six columns, then one space, then
        // the name, leading spaces and all.
        let mut rest = line;
        let mut fields = Vec::new();
        for _ in 0..6 {
            rest = rest.trim_start_matches(' ');
            let end = rest.find(' ').unwrap();
            fields.push(&rest[..end]);
            rest = &rest[end..];
        }
        let name = &rest[1..];
        let path = if current.is_empty() {
            name.to_string()
        } else {
            format!("{current}/{name}")
        };
        files.insert(
            path,
            (fields[4].parse().unwrap(), fields[5].parse().unwrap()),
        );
    }
    files
}

/// Mounts pyftpdlib with `quirks` serving the sample tree stamped from `base` every `step`
/// seconds, and checks the mount against it. `exact_modes`: the listing carries modes.
fn mount_of_quirky_listing_matches_the_served_tree(
    quirks: &[&str],
    base: u64,
    step: u64,
    exact_modes: bool,
    looks_right: fn(&str) -> bool,
    chatter: &[&str],
) {
    let data = tempfile::tempdir().unwrap();
    sample_tree(data.path());
    let times = stamp_tree(data.path(), base, step);
    let Some(server) = Server::quirky_with(data.path(), &[], &[], quirks) else {
        return;
    };
    // The server really speaks the quirk's format, not unix `ls -l`.
    let mut ftp = suppaftp::FtpStream::connect(format!("{}:{}", server.host, server.port)).unwrap();
    ftp.login(USER, PASSWORD).unwrap();
    let served = ftp.list(None).unwrap();
    let _ = ftp.quit();
    assert!(served.len() >= 10, "{served:?}");
    assert!(served.iter().all(|l| looks_right(l)), "{served:?}");
    for c in chatter {
        assert!(
            served.iter().any(|l| l.starts_with(c)),
            "{c:?} in {served:?}"
        );
    }

    let m = Mount::new(&server, &[]);

    // find: the same names, nested directories included.
    assert_eq!(find(m.path()), find(data.path()));

    // cat: every file's bytes (and sizes and kinds).
    assert_eq!(snapshot(m.path()), snapshot(data.path()));

    // stat: every entry's time, to the listing's precision (the tree is stamped on it).
    for (rel, want) in &times {
        let md = std::fs::symlink_metadata(m.path().join(rel)).unwrap();
        assert_eq!(md.modified().unwrap(), *want, "{rel}: mtime");
        if exact_modes {
            use std::os::unix::fs::PermissionsExt;
            let served = std::fs::symlink_metadata(data.path().join(rel)).unwrap();
            assert_eq!(
                md.permissions().mode() & 0o7777,
                served.permissions().mode() & 0o7777,
                "{rel}: mode"
            );
        }
    }

    // ls -lR: what it prints of each file agrees with the served tree's own `ls -lR`.
    let listed = ls_lr_files(m.path());
    assert_eq!(listed, ls_lr_files(data.path()));
    assert!(listed.len() >= 10, "{listed:?}");

    // Every line of every listing was understood, but for the server's chatter.
    let log = m.log_text();
    for line in log.lines().filter(|l| l.contains("skipped listing line")) {
        assert!(
            chatter
                .iter()
                .any(|c| line.contains(&format!("line \"{c}"))),
            "skipped: {line}"
        );
    }
}

/// IIS's default: `01-07-21  03:04PM  <DIR>  name`, minutes only, twelve-hour clock. Steps of
/// 61 minutes cross noon and midnight.
#[test]
fn iis_dos_listing_server_mounts_with_its_sizes_and_minute_times() {
    mount_of_quirky_listing_matches_the_served_tree(
        &["--list=dos", "--no-mlsd", "--no-mdtm"],
        1_610_000_040,
        61 * 60,
        false,
        |l| l.as_bytes()[2] == b'-' && (l.contains("AM ") || l.contains("PM ")),
        &[],
    );
}

/// IIS with FourDigitYears, a 24-hour clock and sizes with thousands separators, on dates of
/// the last century (which two-digit years would read as 19xx too, but must not need to).
#[test]
fn iis_four_digit_year_listing_server_mounts_with_its_sizes_and_times() {
    mount_of_quirky_listing_matches_the_served_tree(
        &["--list=dos4", "--no-mlsd", "--no-mdtm"],
        918_000_000,
        7 * 3600 + 60,
        false,
        |l| {
            l.get(6..10)
                .is_some_and(|y| y.starts_with("19") || y.starts_with("20"))
                && !l.contains("M ")
        },
        &[],
    );
}

/// EPLF: times to the second (`m`), permissions (`up`), sizes (`s`), directories (`/`).
#[test]
fn eplf_listing_server_mounts_with_its_sizes_modes_and_second_times() {
    mount_of_quirky_listing_matches_the_served_tree(
        &["--list=eplf", "--no-mlsd", "--no-mdtm"],
        1_700_000_001,
        3_607,
        true,
        |l| l.starts_with("+i") && l.contains(",\t"),
        &[],
    );
}

/// Unix lines of embedded and unusual servers: a numeric owner and no group column with an
/// ACL `+`, a SELinux `.`, GNU long-iso dates, after a `total` line and a line of chatter
/// that must be skipped alone. The tree is stamped at midnights, which every date form
/// carries exactly.
#[test]
fn unix_variant_listing_server_mounts_with_its_sizes_modes_and_dates() {
    mount_of_quirky_listing_matches_the_served_tree(
        &["--list=unix-odd", "--no-mlsd", "--no-mdtm"],
        1_551_571_200,
        86_400,
        true,
        |l| {
            l.starts_with("total ")
                || l.starts_with("Listing of")
                || l.contains("+ 1 ")
                || l.contains(". 1 ")
                || l.contains(" owner    group ")
        },
        &["total ", "Listing of"],
    );
}

/// Names with leading, trailing and inner runs of spaces, read through `MLSD` (one space
/// before the name, RFC 3659) and through `LIST` (the name starts one space after the date).
fn spaced_names_survive(server: &Server, opts: &[&str]) {
    let m = Mount::new(server, opts);
    let mut names: Vec<String> = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, SPACED, "{:?} {opts:?}", server.kind);
    for name in SPACED {
        assert_eq!(
            std::fs::read_to_string(m.path().join(name)).unwrap(),
            format!("<{name}>"),
            "{:?} {opts:?}",
            server.kind
        );
    }
}

const SPACED: [&str; 3] = ["  two leading", " one leading", "trailing and  inner "];

fn spaced_tree() -> tempfile::TempDir {
    let data = tempfile::tempdir().unwrap();
    for name in SPACED {
        std::fs::write(data.path().join(name), format!("<{name}>")).unwrap();
    }
    data
}

#[test]
fn names_with_leading_spaces_survive_mlsd_and_list_of_every_server() {
    let data = spaced_tree();
    for kind in [
        ServerKind::PureFtpd,
        ServerKind::Proftpd,
        ServerKind::Pyftpdlib,
        ServerKind::Unftp,
    ] {
        let Some(server) = Server::start(kind, data.path()) else {
            continue;
        };
        spaced_names_survive(&server, &[]);
        spaced_names_survive(&server, &["listing=list"]);
    }
}

#[test]
fn names_with_leading_spaces_survive_an_eplf_listing() {
    let data = spaced_tree();
    if let Some(server) = Server::quirky_with(data.path(), &[], &[], &["--list=eplf", "--no-mlsd"])
    {
        spaced_names_survive(&server, &[]);
    }
}
