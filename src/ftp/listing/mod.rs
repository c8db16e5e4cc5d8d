//! Parsing directory listings.
//!
//! FTP has two ways to list a directory. `MLSD` (RFC 3659) is machine-readable: `facts; name`,
//! with UTC times. `LIST` has no specification at all: it returns whatever the server's `ls`
//! (or its imitation) prints. In the wild that is:
//! - unix `ls -l` lines and their variants (`unix.rs`): numeric or missing owner and group
//!   columns, ACL/SELinux marks after the mode, devices with `major, minor`, year-less dates
//!   in the server's unknown timezone, symlinks as `name -> target`, NetWare's `d [RWCE…]`;
//! - Windows/IIS "MS-DOS" lines (`dos.rs`): `01-02-21  10:30AM  <DIR>  name`;
//! - EPLF (`eplf.rs`), Bernstein's `+i8388621.29609,m824255902,/,\tdir`.
//!
//! The format is decided per line, from its first character (`+` EPLF, a digit DOS, anything
//! else unix), so a listing that mixes chatter (`total 24`) with entries, or formats, loses
//! nothing but the lines that fit no format.
//!
//! The rules here:
//! - one line that cannot be parsed is skipped (logged at debug by the caller) and never
//!   empties the listing; a parse never panics, whatever the bytes (property tests check
//!   each format);
//! - names that are empty, `.`, `..`, or contain `/`, NUL, CR or LF are dropped, so no path
//!   outside the mount can be formed from a listing;
//! - an entry whose size is negative or absurd is dropped rather than shown wrongly;
//! - LIST dates are taken as UTC, since the server's zone is unknown; a year-less date
//!   that would lie more than a day in the future belongs to the previous year, as `ls` means.

mod dos;
mod eplf;
mod mlsd;
mod time;
mod unix;

use std::time::SystemTime;

use crate::remote::RemoteEntry;

pub use mlsd::parse_mlsd_line;
pub use time::{format_ftp_time, parse_mlsd_time};

/// The largest size we believe: 2^62 bytes (4 EiB). Anything larger is a broken listing.
const MAX_SIZE: u64 = 1 << 62;

/// Parses one `LIST` line, whatever its format. `now` decides the year of year-less dates.
/// Returns `None` for lines to skip (chatter, unparseable, unsafe names).
pub fn parse_list_line(line: &str, now: SystemTime) -> Option<RemoteEntry> {
    match line.as_bytes().first()? {
        b'+' => eplf::parse_eplf_line(line),
        b'0'..=b'9' => dos::parse_dos_line(line),
        _ => unix::parse_unix_line(line, now),
    }
}

/// Splits `s` into space- or tab-separated tokens, as byte ranges.
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

fn parse_size(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().filter(|&n| n <= MAX_SIZE)
}

/// `644`, `0644`, `0o644` → mode bits; anything else is ignored (the fact, not the line).
fn parse_mode(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    u32::from_str_radix(digits, 8).ok().filter(|&m| m <= 0o7777)
}

#[cfg(test)]
mod tests {
    use super::time::at;
    use super::*;
    use crate::remote::{valid_name, Kind};

    /// Parses a fixture from tests/fixtures/listings the way the remote does: every line,
    /// skipping those that parse to nothing.
    fn fixture(file: &str, now: SystemTime) -> (Vec<RemoteEntry>, usize) {
        let path = format!(
            "{}/tests/fixtures/listings/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (mut entries, mut skipped) = (Vec::new(), 0);
        for line in text.lines() {
            let parsed = if file.ends_with(".mlsd") {
                parse_mlsd_line(line)
            } else {
                parse_list_line(line, now)
            };
            match parsed {
                Some(e) => entries.push(e),
                None => skipped += 1,
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        (entries, skipped)
    }

    fn summary(entries: &[RemoteEntry]) -> Vec<(&str, Kind, u64)> {
        entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.size))
            .collect()
    }

    /// The moment the server fixtures were captured, for their year-less dates.
    fn captured() -> SystemTime {
        at(2026, 12, 2, 6, 0, 0)
    }

    #[test]
    fn every_real_server_listing_of_the_same_tree_parses_alike() {
        let link = |kind, size| (kind, size);
        for (file, (link_kind, link_size), skipped) in [
            ("pure-ftpd.list", link(Kind::Symlink, 5), 2),
            ("pure-ftpd.mlsd", link(Kind::Symlink, 5), 2),
            ("proftpd.list", link(Kind::Symlink, 5), 2),
            ("proftpd.mlsd", link(Kind::Symlink, 5), 2),
            ("vsftpd.list", link(Kind::Symlink, 5), 2),
            ("pyftpdlib.list", link(Kind::Symlink, 5), 0),
            ("pyftpdlib.mlsd", link(Kind::File, 6), 0),
            ("libunftp.list", link(Kind::Symlink, 5), 0),
            ("libunftp.mlsd", link(Kind::File, 5), 0),
        ] {
            let (entries, n) = fixture(file, captured());
            assert_eq!(n, skipped, "{file}: lines skipped");
            let mut want = vec![
                (" lead", Kind::File, 1000),
                ("a.txt", Kind::File, 6),
                ("link", link_kind, link_size),
                ("sub dir", Kind::Dir, 0),
            ];
            match file {
                "vsftpd.list" => want.insert(3, ("null", Kind::File, 0)),
                f if f.starts_with("pyftpdlib") => want.insert(3, ("pipe", Kind::File, 0)),
                _ => {}
            }
            assert_eq!(summary(&entries), want, "{file}");
            let a = entries.iter().find(|e| e.name == "a.txt").unwrap();
            // MLSD has the time to the second; LIST's year form only the day.
            let day = if file.ends_with(".mlsd") {
                at(2019, 3, 3, 12, 0, 0)
            } else {
                at(2019, 3, 3, 0, 0, 0)
            };
            assert_eq!(a.mtime, Some(day), "{file}");
            let lead = entries.iter().find(|e| e.name == " lead").unwrap();
            // libunftp's MLSD has no mode, pyftpdlib's only after `OPTS MLST` (not captured).
            if !matches!(file, "libunftp.mlsd" | "pyftpdlib.mlsd") {
                assert_eq!(lead.mode, Some(0o644), "{file}");
            }
            // Year-less dates of today land in the capture's year.
            let year = lead.mtime.unwrap().duration_since(at(2026, 1, 1, 0, 0, 0));
            assert!(year.is_ok(), "{file}: {:?}", lead.mtime);
            if file.ends_with(".list") {
                let link = entries.iter().find(|e| e.name == "link").unwrap();
                assert_eq!(link.link_target.as_deref(), Some("a.txt"), "{file}");
            }
        }
    }

    #[test]
    fn unix_variants_from_the_wild_parse_and_only_chatter_is_skipped() {
        let now = at(2017, 3, 10, 23, 0, 0);
        let (entries, skipped) = fixture("unix-wild.list", now);
        // `total 24` and the line that fits no format.
        assert_eq!(skipped, 2);
        let by = |name: &str| {
            entries
                .iter()
                .find(|e| e.name == name)
                .unwrap_or_else(|| panic!("{name:?} missing from {:?}", summary(&entries)))
        };
        assert_eq!(entries.len(), 17);
        assert_eq!(
            (by("pub").kind, by("pub").mtime),
            (Kind::Dir, Some(at(2009, 12, 2, 0, 0, 0)))
        );
        assert_eq!(by("2016031611G087802-001.newsml").size, 12_016);
        assert_eq!(by("bin").link_target.as_deref(), Some("usr/bin"));
        assert_eq!(by("!!!-Tipp des Haus!").kind, Kind::Dir);
        assert_eq!(by("ls-lR.Z").mode, Some(0));
        // A year-less date more than a day ahead is last year's.
        assert_eq!(by("Softlib").mtime, Some(at(2016, 11, 9, 19, 45, 0)));
        assert_eq!(by("RegularFile").size, 65_222_236);
        assert_eq!(
            (by("data.csv").size, by("data.csv").mode),
            (2080, Some(0o764))
        );
        assert_eq!(by("selinux.txt").size, 42);
        assert_eq!(by(" foo bar ").size, 1_234_567);
        assert_eq!(by("numeric-owner-no-group").size, 5);
        assert_eq!((by("null").kind, by("null").size), (Kind::File, 0));
        assert_eq!(by("sda").size, 0);
        assert_eq!(by("iso.txt").mtime, Some(at(2024, 1, 2, 3, 4, 0)));
        assert_eq!((by("login").kind, by("login").mode), (Kind::Dir, None));
        assert_eq!(by("cx.exe").size, 214_059);
        assert!(entries.iter().any(|e| e.name == "message.ftp"));
    }

    #[test]
    fn iis_listings_parse_every_line() {
        let (entries, skipped) = fixture("iis.list", captured());
        assert_eq!(skipped, 0);
        assert_eq!(
            summary(&entries),
            [
                ("Billing", Kind::Dir, 0),
                ("Post_PRR_20150901_1166_265118_13049.dat", Kind::File, 718),
                ("Program Files", Kind::Dir, 0),
                ("log.txt", Kind::File, 42),
                ("name", Kind::Dir, 0),
                ("old.txt", Kind::File, 12),
                ("report.pdf", Kind::File, 1_234_567),
            ]
        );
        assert!(entries
            .iter()
            .all(|e| e.mtime.is_some() && e.mode.is_none()));
    }

    #[test]
    fn eplf_listings_parse_every_line() {
        let (entries, skipped) = fixture("eplf.list", captured());
        assert_eq!(skipped, 0);
        assert_eq!(
            summary(&entries),
            [
                ("README", Kind::File, 612),
                ("RFCEPLF", Kind::File, 10_376),
                ("a.txt", Kind::File, 6),
                ("dev", Kind::Dir, 0),
                ("sub dir", Kind::Dir, 0),
            ]
        );
        let a = &entries[2];
        assert_eq!(
            (a.mtime, a.mode),
            (Some(at(2019, 3, 3, 12, 0, 0)), Some(0o644))
        );
    }

    fn check(e: Option<RemoteEntry>) -> Result<(), proptest::test_runner::TestCaseError> {
        if let Some(e) = e {
            proptest::prop_assert!(valid_name(&e.name));
            proptest::prop_assert!(e.size <= MAX_SIZE);
            proptest::prop_assert!(e.mode.is_none_or(|m| m <= 0o7777));
        }
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_lines_never_panic_and_never_yield_unsafe_names(line in ".{0,300}") {
            let now = SystemTime::now();
            check(parse_mlsd_line(&line))?;
            check(parse_list_line(&line, now))?;
            // Every format, whatever the first character would have chosen.
            check(unix::parse_unix_line(&line, now))?;
            check(dos::parse_dos_line(&line))?;
            check(eplf::parse_eplf_line(&format!("+{line}")))?;
        }

        #[test]
        fn unix_shaped_lines_never_panic(
            perms in "[-dlcbpsDZ][-rwxsStT]{9}[+.@]?",
            owner in "[a-z0-9 ]{0,12}",
            size in "[0-9,-]{0,25}",
            month in "[A-Za-z]{3}",
            day in "[0-9]{1,2}",
            when in "[0-9:]{1,5}",
            iso in "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{3,8}",
            name in ".{0,40}",
        ) {
            let now = SystemTime::now();
            check(parse_list_line(&format!("{perms} 1 {owner} {size} {month} {day} {when} {name}"), now))?;
            check(parse_list_line(&format!("{perms} 1 {owner} {size} {iso} {name}"), now))?;
            check(parse_list_line(&format!("d [RWCEAFMS] {owner} {size} {month} {day} {when} {name}"), now))?;
        }

        #[test]
        fn dos_shaped_lines_never_panic(
            date in "[0-9]{1,4}[-/.][0-9]{1,4}[-/.][0-9]{1,5}",
            time in "[0-9]{1,3}:[0-9]{1,3}(AM|PM|am|pm)?",
            size in "([0-9,]{0,25}|<DIR>|<dir>)",
            name in ".{0,40}",
        ) {
            check(parse_list_line(&format!("{date}  {time}  {size} {name}"), SystemTime::now()))?;
        }

        #[test]
        fn eplf_shaped_lines_never_panic(
            facts in "([/rsmiu][-0-9a-z.]{0,24},){0,8}",
            name in ".{0,40}",
        ) {
            check(parse_list_line(&format!("+{facts}\t{name}"), SystemTime::now()))?;
        }

        #[test]
        fn mlsd_shaped_lines_never_panic(
            facts in "([a-zA-Z.]{1,10}=[^; ]{0,20};){0,6}",
            name in ".{0,40}",
        ) {
            check(parse_mlsd_line(&format!("{facts} {name}")))?;
        }
    }
}
