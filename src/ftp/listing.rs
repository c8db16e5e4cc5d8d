//! Parsing directory listings.
//!
//! FTP has two ways to list a directory. `MLSD` (RFC 3659) is machine-readable: `facts; name`,
//! with UTC times. `LIST` has no specification at all: it returns whatever the server's `ls`
//! (or its imitation) prints, and servers print unix `ls -l` lines, Windows/IIS "DOS" lines,
//! year-less dates in the server's unknown timezone, and symlinks as `name -> target`.
//!
//! The rules here:
//! - one line that cannot be parsed is skipped (logged at debug) and never empties the
//!   listing; a parse never panics, whatever the bytes (a property test checks that);
//! - names that are empty, `.`, `..`, or contain `/`, NUL, CR or LF are dropped, so no path
//!   outside the mount can be formed from a listing;
//! - an entry whose size is negative or absurd is dropped rather than shown wrongly;
//! - MLSD facts are matched case-insensitively, and tolerant of real-server quirks such as
//!   pyftpdlib's `unix.mode=0o644` (which makes suppaftp's own parser drop the line);
//! - LIST dates are taken as UTC, since the server's zone is unknown; a year-less date
//!   that would lie more than a day in the future belongs to the previous year, as `ls` means.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::remote::{valid_name, Kind, RemoteEntry};

/// The largest size we believe: 2^62 bytes (4 EiB). Anything larger is a broken listing.
const MAX_SIZE: u64 = 1 << 62;

/// Parses one `MLSD` line. Returns `None` for lines to skip (unparseable, `cdir`/`pdir`,
/// unsafe names).
pub fn parse_mlsd_line(line: &str) -> Option<RemoteEntry> {
    // "facts SP name": the facts never contain a space, the name may.
    let (facts, name) = line.split_once(' ')?;
    if !valid_name(name) {
        return None;
    }
    let mut kind = None;
    let mut size = None;
    let mut mtime = None;
    let mut mode = None;
    let mut link_target = None;
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (key, value) = fact.split_once('=')?;
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                let lower = value.to_ascii_lowercase();
                kind = Some(match lower.as_str() {
                    "file" => Kind::File,
                    "dir" => Kind::Dir,
                    "cdir" | "pdir" => return None,
                    _ if lower.starts_with("os.unix=slink") || lower == "os.unix=symlink" => {
                        // "OS.unix=slink:target" (the target keeps its case).
                        link_target = value
                            .split_once(':')
                            .map(|(_, t)| t.to_string())
                            .filter(|t| !t.is_empty());
                        Kind::Symlink
                    }
                    // Other OS-specific types (devices, etc.) read as files.
                    _ => Kind::File,
                });
            }
            "size" | "sizd" => size = Some(parse_size(value)?),
            "modify" => mtime = parse_mlsd_time(value),
            "unix.mode" => mode = parse_mode(value),
            _ => {}
        }
    }
    let kind = kind.unwrap_or(Kind::File);
    Some(RemoteEntry {
        name: name.to_string(),
        kind,
        size: if kind == Kind::Dir {
            0
        } else {
            size.unwrap_or(0)
        },
        mtime,
        mode,
        link_target,
    })
}

/// Parses one `LIST` line, unix or DOS style. `now` decides the year of year-less dates.
pub fn parse_list_line(line: &str, now: SystemTime) -> Option<RemoteEntry> {
    let first = line.as_bytes().first()?;
    if first.is_ascii_digit() {
        parse_dos_line(line)
    } else {
        parse_unix_line(line, now)
    }
}

/// Splits `s` into whitespace-separated tokens with their byte ranges.
fn tokens(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        if c == ' ' || c == '\t' {
            if let Some(st) = start.take() {
                out.push((st, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push((st, s.len()));
    }
    out
}

fn parse_unix_line(line: &str, now: SystemTime) -> Option<RemoteEntry> {
    let toks = tokens(line);
    if toks.is_empty() {
        return None; // blank: only spaces and tabs
    }
    let tok = |i: usize| &line[toks[i].0..toks[i].1];
    let perms = tok(0);
    if perms.len() < 10 {
        return None; // "total 12" and other chatter
    }
    let kind = match perms.as_bytes()[0] {
        b'd' => Kind::Dir,
        b'l' => Kind::Symlink,
        b'-' | b'c' | b'b' | b'p' | b's' | b'D' => Kind::File,
        _ => return None,
    };
    let mode = parse_perm_string(perms.get(1..10)?)?;
    // Find "SIZE MONTH DAY TIME|YEAR" after the permissions: owner and group columns vary
    // (missing group, numeric ids, spaces in names on some servers), the date pattern does not.
    let n = toks.len();
    let mut i = 2;
    while i + 3 < n {
        if let (Some(month), Some(size)) = (month_number(tok(i)), parse_size_opt(tok(i - 1))) {
            if let (Ok(day), Some(when)) = (tok(i + 1).parse::<u32>(), Some(tok(i + 2))) {
                if (1..=31).contains(&day) {
                    if let Some(mtime) = unix_list_time(month, day, when, now) {
                        // The name starts one space after the time/year column; everything
                        // after that is the name, leading spaces and all.
                        let rest = line.get(toks[i + 2].1 + 1..)?;
                        return finish_unix_entry(kind, size?, mtime, mode, rest);
                    }
                }
            }
        }
        i += 1;
    }
    None
}

fn finish_unix_entry(
    kind: Kind,
    size: u64,
    mtime: SystemTime,
    mode: u32,
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
        mode: Some(mode),
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

fn parse_dos_line(line: &str) -> Option<RemoteEntry> {
    // "01-02-21  10:30AM       <DIR>          name" or "12-31-2020  11:59PM  1,234 name"
    let toks = tokens(line);
    if toks.len() < 4 {
        return None;
    }
    let tok = |i: usize| &line[toks[i].0..toks[i].1];
    let mut date = tok(0).split(['-', '/']);
    let (m, d, y) = (date.next()?, date.next()?, date.next()?);
    let (month, day, mut year) = (
        m.parse::<u32>().ok()?,
        d.parse::<u32>().ok()?,
        y.parse::<i64>().ok()?,
    );
    if y.len() == 2 {
        // Two-digit years: 70-99 are the 1900s, as IIS and the DOS tools mean them.
        year += if year >= 70 { 1900 } else { 2000 };
    }
    let time = tok(1).to_ascii_uppercase();
    let (clock, pm) = if let Some(t) = time.strip_suffix("PM") {
        (t, Some(true))
    } else if let Some(t) = time.strip_suffix("AM") {
        (t, Some(false))
    } else {
        (time.as_str(), None)
    };
    let (h, min) = clock.split_once(':')?;
    let (mut hour, minute) = (h.parse::<u32>().ok()?, min.parse::<u32>().ok()?);
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    let mtime = civil_to_time(year, month, day, hour, minute, 0)?;
    let (kind, size) = if tok(2).eq_ignore_ascii_case("<DIR>") {
        (Kind::Dir, 0)
    } else {
        (Kind::File, parse_size(&tok(2).replace(',', ""))?)
    };
    let name = &line[toks[3].0..];
    if !valid_name(name) {
        return None;
    }
    Some(RemoteEntry {
        name: name.to_string(),
        kind,
        size,
        mtime: Some(mtime),
        mode: None,
        link_target: None,
    })
}

fn parse_size(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().filter(|&n| n <= MAX_SIZE)
}

/// Like [`parse_size`] but distinguishes "not a number" (`None`) from "a number out of
/// range" (`Some(None)`), so an absurd size drops the entry instead of the parse moving on.
fn parse_size_opt(s: &str) -> Option<Option<u64>> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        Some(parse_size(s))
    } else {
        None
    }
}

/// `644`, `0644`, `0o644` → mode bits; anything else is ignored (the fact, not the line).
fn parse_mode(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    u32::from_str_radix(digits, 8).ok().filter(|&m| m <= 0o7777)
}

/// `YYYYMMDDHHMMSS[.sss]`, UTC (MLSD's `modify` fact, and `MDTM` replies).
pub fn parse_mlsd_time(s: &str) -> Option<SystemTime> {
    let (main, frac) = s.split_once('.').unwrap_or((s, ""));
    if main.len() != 14 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| main[r].parse::<u32>().ok();
    let t = civil_to_time(
        i64::from(num(0..4)?),
        num(4..6)?,
        num(6..8)?,
        num(8..10)?,
        num(10..12)?,
        num(12..14)?,
    )?;
    let millis = frac
        .get(..frac.len().min(3))
        .and_then(|f| format!("{f:0<3}").parse::<u64>().ok())
        .unwrap_or(0);
    Some(t + Duration::from_millis(millis))
}

/// `YYYYMMDDHHMMSS` in UTC, as MFMT and MDTM take it.
pub fn format_ftp_time(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn month_number(s: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    if s.len() != 3 {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| *m == lower)
        .map(|i| i as u32 + 1)
}

/// `HH:MM` (year-less, recent) or `YYYY` (older files) in a unix listing.
fn unix_list_time(month: u32, day: u32, when: &str, now: SystemTime) -> Option<SystemTime> {
    if let Some((h, m)) = when.split_once(':') {
        let (hour, minute) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        let this_year = civil_from_days(days_since_epoch(now)).0;
        let t = civil_to_time(this_year, month, day, hour, minute, 0)?;
        if t > now + Duration::from_secs(86_400) {
            civil_to_time(this_year - 1, month, day, hour, minute, 0)
        } else {
            Some(t)
        }
    } else if when.len() == 4 {
        civil_to_time(when.parse().ok()?, month, day, 0, 0, 0)
    } else {
        None
    }
}

fn days_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() / 86_400) as i64,
        Err(e) => -((e.duration().as_secs() / 86_400) as i64) - 1,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn civil_to_time(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
) -> Option<SystemTime> {
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
        || !(1..=9999).contains(&year)
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec);
    if secs >= 0 {
        Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> SystemTime {
        civil_to_time(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn ftp_times_format_as_mfmt_wants_them() {
        assert_eq!(format_ftp_time(at(2024, 1, 2, 3, 4, 5)), "20240102030405");
        assert_eq!(
            parse_mlsd_time(&format_ftp_time(at(1999, 12, 31, 23, 59, 59))),
            Some(at(1999, 12, 31, 23, 59, 59))
        );
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            at(2000, 3, 1, 0, 0, 0),
            UNIX_EPOCH + Duration::from_secs(951_868_800)
        );
    }

    #[test]
    fn mlsd_lines_from_real_servers() {
        // pure-ftpd
        let e = parse_mlsd_line(
            "type=file;size=1024;modify=20240102030405;UNIX.mode=0644;UNIX.uid=1000;UNIX.gid=1000;unique=803g2; notes.txt",
        )
        .unwrap();
        assert_eq!(e.name, "notes.txt");
        assert_eq!((e.kind, e.size, e.mode), (Kind::File, 1024, Some(0o644)));
        assert_eq!(e.mtime, Some(at(2024, 1, 2, 3, 4, 5)));
        // pyftpdlib writes the mode with a Python octal prefix.
        let e = parse_mlsd_line(
            "type=dir;size=4096;modify=20231231235959;unix.mode=0o755;perm=elcmp; my dir",
        )
        .unwrap();
        assert_eq!(
            (e.name.as_str(), e.kind, e.size, e.mode),
            ("my dir", Kind::Dir, 0, Some(0o755))
        );
        // Facts in odd case, fractional seconds, a name with "; " inside.
        let e = parse_mlsd_line("TYPE=File;Size=7;Modify=20240102030405.250; a; b=c").unwrap();
        assert_eq!((e.name.as_str(), e.size), ("a; b=c", 7));
        assert_eq!(
            e.mtime,
            Some(at(2024, 1, 2, 3, 4, 5) + Duration::from_millis(250))
        );
        // Symlinks as ProFTPD reports them.
        let e =
            parse_mlsd_line("type=OS.unix=slink:/srv/Target;modify=20240102030405; link").unwrap();
        assert_eq!(
            (e.kind, e.link_target.as_deref()),
            (Kind::Symlink, Some("/srv/Target"))
        );
        // No facts at all.
        assert_eq!(parse_mlsd_line(" bare").unwrap().kind, Kind::File);
    }

    #[test]
    fn mlsd_drops_self_parent_and_hostile_names() {
        for line in [
            "type=cdir;modify=20240102030405; .",
            "type=pdir;modify=20240102030405; ..",
            "type=file;size=1; ..",
            "type=file;size=1; a/b",
            "type=file;size=1; /etc",
            "type=file;size=1; ",
            "type=file;size=-5; negative",
            "type=file;size=99999999999999999999999; absurd",
            "nospace",
        ] {
            assert_eq!(parse_mlsd_line(line), None, "{line:?}");
        }
    }

    #[test]
    fn mlsd_ignores_a_bad_fact_value_but_keeps_the_entry() {
        let e = parse_mlsd_line("type=file;size=3;modify=garbage;unix.mode=rwx; f").unwrap();
        assert_eq!((e.mtime, e.mode, e.size), (None, None, 3));
    }

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
    fn unix_list_chatter_and_hostile_lines_are_skipped() {
        let now = at(2024, 6, 15, 12, 0, 0);
        for line in [
            "total 24",
            "drwxr-xr-x 2 a b 4096 Jan 1 2020 .",
            "drwxr-xr-x 2 a b 4096 Jan 1 2020 ..",
            "-rw-r--r-- 1 a b 10 Jan 1 2020 ../escape",
            "-rw-r--r-- 1 a b 10 Jan 1 2020 a/b",
            "-rw-r--r-- 1 a b 99999999999999999999 Jan 1 2020 huge",
            "-rw-r--r-- 1 a b 10 Foo 1 2020 badmonth",
            "-rw-r--r-- 1 a b 10 Jan 32 2020 badday",
            "-rw-r--r-- 1 a b 10 Jan 1 25:00 badtime",
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

    #[test]
    fn dos_list_lines() {
        let now = at(2024, 6, 15, 12, 0, 0);
        let e =
            parse_list_line("01-02-21  10:30AM       <DIR>          Program Files", now).unwrap();
        assert_eq!((e.name.as_str(), e.kind), ("Program Files", Kind::Dir));
        assert_eq!(e.mtime, Some(at(2021, 1, 2, 10, 30, 0)));
        let e =
            parse_list_line("12-31-2020  11:59PM            1,234,567 report.pdf", now).unwrap();
        assert_eq!((e.size, e.kind), (1_234_567, Kind::File));
        assert_eq!(e.mtime, Some(at(2020, 12, 31, 23, 59, 0)));
        let e = parse_list_line("07-04-99  12:05AM  12 old.txt", now).unwrap();
        assert_eq!(e.mtime, Some(at(1999, 7, 4, 0, 5, 0)));
        assert_eq!(parse_list_line("13-45-2020  11:59PM 1 bad", now), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_lines_never_panic_and_never_yield_unsafe_names(line in ".{0,300}") {
            let now = SystemTime::now();
            for e in [parse_mlsd_line(&line), parse_list_line(&line, now)].into_iter().flatten() {
                proptest::prop_assert!(crate::remote::valid_name(&e.name));
                proptest::prop_assert!(e.size <= MAX_SIZE);
            }
        }

        #[test]
        fn listing_shaped_lines_never_panic(
            perms in "[-dlcbps][-rwxsStT]{9}",
            size in "[0-9-]{0,25}",
            month in "[A-Za-z]{3}",
            day in "[0-9]{1,2}",
            when in "[0-9:]{1,5}",
            name in ".{0,40}",
            facts in "([a-zA-Z.]{1,10}=[^; ]{0,20};){0,6}",
        ) {
            let now = SystemTime::now();
            let _ = parse_list_line(&format!("{perms} 1 u g {size} {month} {day} {when} {name}"), now);
            let _ = parse_list_line(&format!("{day}-{day}-{when} {when}PM {size} {name}"), now);
            let _ = parse_mlsd_line(&format!("{facts} {name}"));
        }
    }
}
