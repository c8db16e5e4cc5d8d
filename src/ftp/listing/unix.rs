//! Unix `ls -l` lines, as nearly every server's `LIST` prints them, and their variants:
//!
//! ```text
//! -rw-r--r--    1 1000     1000         1234 Jan 02 03:04 hello world.txt   (vsftpd, numeric ids)
//! drwxr-xr-x    2 ftp      ftp          4096 Mar  3  2019 old               (year form)
//! -rw-r--r--    1 owner               42 Jan  1 12:00 no group column      (embedded servers)
//! -rwxrw-r--+   1 521      101        2080 May 21 10:53 data.csv          (ACL; SELinux `.`, macOS `@`)
//! crw-rw-rw-    1 root     root     1,   3 Jan  1  2020 null              (a device: no size)
//! lrwxrwxrwx    1 root     root          7 Jan 25 00:17 bin -> usr/bin
//! -rw-r--r--    1 me       staff        10 2024-01-02 03:04 iso           (ls --time-style=long-iso)
//! d [R----F--] supervisor            512 Jan 16 18:53 login             (NetWare)
//! total 24
//! ```
//!
//! The owner and group columns vary (missing group, numeric ids, spaces in names on some
//! servers), the date does not: each line is anchored on `SIZE MONTH DAY TIME|YEAR` (or
//! `SIZE YYYY-MM-DD HH:MM`), and the name starts one space after it, leading spaces and all.

use std::time::SystemTime;

use super::time::{civil_to_time, clock, month_number, unix_list_time};
use super::{parse_size, tokens};
use crate::remote::{valid_name, Kind, RemoteEntry};

pub(super) fn parse_unix_line(line: &str, now: SystemTime) -> Option<RemoteEntry> {
    let toks = tokens(line);
    if toks.is_empty() {
        return None; // blank: only spaces and tabs
    }
    let tok = |i: usize| &line[toks[i].0..toks[i].1];
    let perms = tok(0);
    let netware = netware_kind(perms, toks.get(1).map(|&(a, b)| &line[a..b]));
    let (kind, mode) = match netware {
        Some(kind) => (kind, None),
        None => {
            // Ten characters, perhaps followed by an ACL `+`, SELinux `.` or macOS `@` mark;
            // "total 12" and other chatter are shorter.
            if perms.len() < 10 {
                return None;
            }
            let kind = kind_of(perms.as_bytes()[0])?;
            (kind, Some(parse_perm_string(perms.get(1..10)?)?))
        }
    };
    let device = matches!(perms.as_bytes()[0], b'c' | b'b');
    let n = toks.len();
    let mut i = 2;
    while i + 2 < n {
        let Some(size) = size_column(tok(i - 1), device) else {
            i += 1;
            continue;
        };
        // `Mon DD HH:MM|YYYY NAME`
        if i + 3 < n {
            if let (Some(month), Ok(day)) = (month_number(tok(i)), tok(i + 1).parse::<u32>()) {
                if let Some(mtime) = unix_list_time(month, day, tok(i + 2), now) {
                    let mut rest = line.get(toks[i + 2].1 + 1..)?;
                    if netware.is_some() {
                        // NetWare pads the name column: its spaces are not the name's.
                        rest = rest.trim_start_matches(' ');
                    }
                    return finish(kind, size?, mtime, mode, rest);
                }
            }
        }
        // `YYYY-MM-DD HH:MM NAME`
        if let Some(mtime) = iso_time(tok(i), tok(i + 1)) {
            let rest = line.get(toks[i + 1].1 + 1..)?;
            return finish(kind, size?, mtime, mode, rest);
        }
        i += 1;
    }
    None
}

fn kind_of(c: u8) -> Option<Kind> {
    Some(match c {
        b'd' => Kind::Dir,
        b'l' => Kind::Symlink,
        // Devices, pipes, sockets and doors read as (empty) files: nothing else can show them.
        b'-' | b'c' | b'b' | b'p' | b's' | b'D' => Kind::File,
        _ => return None,
    })
}

/// NetWare prints `d [RWCEAFMS] owner size …`: a one-letter type, then the rights in brackets.
fn netware_kind(first: &str, second: Option<&str>) -> Option<Kind> {
    let rights = second?;
    if rights.len() < 3 || !rights.starts_with('[') || !rights.ends_with(']') {
        return None;
    }
    match first {
        "d" => Some(Kind::Dir),
        "-" => Some(Kind::File),
        _ => None,
    }
}

/// The size column: a number, distinguishing "not a number" (`None`: the anchor is
/// elsewhere) from "a number out of range" (`Some(None)`: the entry is dropped rather than
/// shown wrongly). A device's column is `major, minor` (or `major,minor`): its size is 0.
fn size_column(s: &str, device: bool) -> Option<Option<u64>> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(s) {
        Some(if device { Some(0) } else { parse_size(s) })
    } else if device && s.split(',').all(|p| p.is_empty() || digits(p)) && s.contains(',') {
        Some(Some(0))
    } else {
        None
    }
}

/// `2024-01-02` `03:04` (GNU `ls --time-style=long-iso`, seen on NAS boxes).
fn iso_time(date: &str, time: &str) -> Option<SystemTime> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (h, m, s) = clock(time)?;
    civil_to_time(
        date[0..4].parse().ok()?,
        date[5..7].parse().ok()?,
        date[8..10].parse().ok()?,
        h,
        m,
        s,
    )
}

fn finish(
    kind: Kind,
    size: u64,
    mtime: SystemTime,
    mode: Option<u32>,
    rest: &str,
) -> Option<RemoteEntry> {
    let (name, link_target) = match kind {
        Kind::Symlink => match rest.split_once(" -> ") {
            Some((n, t)) => (n, Some(t.to_string())),
            None => (rest, None),
        },
        _ => (rest, None),
    };
    if !valid_name(name) {
        return None;
    }
    Some(RemoteEntry {
        name: name.to_string(),
        kind,
        size: if kind == Kind::Dir { 0 } else { size },
        mtime: Some(mtime),
        mode,
        link_target,
    })
}

/// `rwxr-xr-x` (with `s`, `S`, `t`, `T`) → mode bits.
fn parse_perm_string(p: &str) -> Option<u32> {
    let b = p.as_bytes();
    if b.len() != 9 {
        return None;
    }
    let mut mode = 0u32;
    for (i, &c) in b.iter().enumerate() {
        let bit = 1 << (8 - i);
        let (set, special) = match (i % 3, c) {
            (_, b'-') => (false, false),
            (0, b'r') | (1, b'w') | (2, b'x') => (true, false),
            (2, b's' | b't') => (true, true),
            (2, b'S' | b'T') => (false, true),
            _ => return None,
        };
        if set {
            mode |= bit;
        }
        if special {
            mode |= match i {
                2 => 0o4000,
                5 => 0o2000,
                _ => 0o1000,
            };
        }
    }
    Some(mode)
}

#[cfg(test)]
mod tests {
    use super::super::parse_list_line;
    use super::super::time::at;
    use super::*;

    #[test]
    fn unix_list_lines() {
        let now = at(2024, 6, 15, 12, 0, 0);
        let e = parse_list_line(
            "-rw-r--r--    1 1000     1000         1234 Jan 02 03:04 hello world.txt",
            now,
        )
        .unwrap();
        assert_eq!(
            (e.name.as_str(), e.size, e.kind),
            ("hello world.txt", 1234, Kind::File)
        );
        assert_eq!(e.mtime, Some(at(2024, 1, 2, 3, 4, 0)));
        assert_eq!(e.mode, Some(0o644));
        // A year-less date in the "future" belongs to last year.
        let e = parse_list_line("-rw-r--r-- 1 ftp ftp 5 Dec 24 18:00 xmas", now).unwrap();
        assert_eq!(e.mtime, Some(at(2023, 12, 24, 18, 0, 0)));
        // Year form, directory, setuid and sticky bits.
        let e = parse_list_line("drwxrwxrwt 2 root root 4096 Mar  3  2019 tmp", now).unwrap();
        assert_eq!((e.kind, e.size, e.mode), (Kind::Dir, 0, Some(0o1777)));
        assert_eq!(e.mtime, Some(at(2019, 3, 3, 0, 0, 0)));
        let e = parse_list_line("-rwsr-xr-x 1 root root 10 Mar  3  2019 su", now).unwrap();
        assert_eq!(e.mode, Some(0o4755));
        // Symlink, no group column, leading-dash and leading-space names.
        let e = parse_list_line(
            "lrwxrwxrwx 1 owner 7 Feb 29 2020 link -> ../target dir",
            now,
        )
        .unwrap();
        assert_eq!((e.name.as_str(), e.kind), ("link", Kind::Symlink));
        assert_eq!(e.link_target.as_deref(), Some("../target dir"));
        let e = parse_list_line("-rw-r--r-- 1 a b 0 Jan  1  2020 -rf", now).unwrap();
        assert_eq!(e.name, "-rf");
        let e = parse_list_line("-rw-r--r-- 1 a b 0 Jan  1  2020  two", now).unwrap();
        assert_eq!(e.name, " two");
        // Group names with spaces still parse: the date pattern anchors the columns.
        let e = parse_list_line("-rw-r--r-- 1 me Domain Users 42 Jan  1  2020 doc", now).unwrap();
        assert_eq!((e.name.as_str(), e.size), ("doc", 42));
    }

    #[test]
    fn acl_selinux_and_macos_marks_after_the_mode_are_ignored() {
        let now = at(2024, 6, 15, 12, 0, 0);
        for (perms, name) in [
            ("-rwxrw-r--+", "acl"),
            ("-rwxrw-r--.", "selinux"),
            ("-rwxrw-r--@", "xattr"),
        ] {
            let e = parse_list_line(
                &format!("{perms}  1 521  101  2080 May 21 10:53 {name}"),
                now,
            )
            .unwrap();
            assert_eq!((e.name.as_str(), e.size, e.mode), (name, 2080, Some(0o764)));
        }
    }

    #[test]
    fn device_files_show_major_minor_instead_of_a_size() {
        let now = at(2024, 6, 15, 12, 0, 0);
        for line in [
            "crw-rw-rw-    1 root     root       1,   3 Jan  1  2020 null",
            "crw-rw-rw- 1 root root 1,3 Jan  1  2020 null",
            "brw-rw----    1 0        6          8,   0 Jun  1 10:00 null",
        ] {
            let e = parse_list_line(line, now).unwrap();
            assert_eq!(
                (e.name.as_str(), e.kind, e.size),
                ("null", Kind::File, 0),
                "{line:?}"
            );
        }
    }

    #[test]
    fn long_iso_dates_parse() {
        let now = at(2024, 6, 15, 12, 0, 0);
        let e =
            parse_list_line("-rw-r--r-- 1 me staff 10 2024-01-02 03:04  iso name", now).unwrap();
        assert_eq!((e.name.as_str(), e.size), (" iso name", 10));
        assert_eq!(e.mtime, Some(at(2024, 1, 2, 3, 4, 0)));
    }

    #[test]
    fn netware_lines_parse_without_a_mode() {
        let now = at(2024, 6, 15, 12, 0, 0);
        let e = parse_list_line(
            "d [R----F--] supervisor            512       Jan 16 18:53    login",
            now,
        )
        .unwrap();
        assert_eq!((e.kind, e.mode), (Kind::Dir, None));
        assert_eq!(e.name, "login");
        let e = parse_list_line(
            "- [R----F--] rhesus             214059       Oct 20 15:27 cx.exe",
            now,
        )
        .unwrap();
        assert_eq!(
            (e.name.as_str(), e.kind, e.size),
            ("cx.exe", Kind::File, 214_059)
        );
    }

    #[test]
    fn unix_list_chatter_and_hostile_lines_are_skipped() {
        let now = at(2024, 6, 15, 12, 0, 0);
        for line in [
            "total 24",
            "total 1234567890123",
            "drwxr-xr-x 2 a b 4096 Jan 1 2020 .",
            "drwxr-xr-x 2 a b 4096 Jan 1 2020 ..",
            "-rw-r--r-- 1 a b 10 Jan 1 2020 ../escape",
            "-rw-r--r-- 1 a b 10 Jan 1 2020 a/b",
            "-rw-r--r-- 1 a b 99999999999999999999 Jan 1 2020 huge",
            "-rw-r--r-- 1 a b 10 Foo 1 2020 badmonth",
            "-rw-r--r-- 1 a b 10 Jan 32 2020 badday",
            "-rw-r--r-- 1 a b 10 Jan 1 25:00 badtime",
            "-rw-r--r-- 1 a b 10 Jan 1 209 shortyear",
            "-rw-r--r-- 1 a b 10 2020-13-01 10:00 badiso",
            "Zrwxrwxrwx   1 root     other          7 Jan 25 00:17 bin -> usr/bin",
            "000000000x ",
            "garbage",
            "",
            // Found by the property test: a blank line indexed its first column.
            "\t",
            "   ",
        ] {
            assert_eq!(parse_list_line(line, now), None, "{line:?}");
        }
    }

    #[test]
    fn non_ascii_permission_columns_are_skipped_not_a_panic() {
        // Found by the property test: slicing the column at byte 10 split a character.
        let now = SystemTime::now();
        assert_eq!(
            parse_list_line("b 調Ѩ\u{855d7}`< 1 a b 1 Jan 1 2020 x", now),
            None
        );
    }
}
