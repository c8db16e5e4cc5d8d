//! EPLF, D. J. Bernstein's Easily Parsed LIST Format (<https://cr.yp.to/ftp/list/eplf.html>),
//! spoken by publicfile, anonftpd and a few embedded servers:
//!
//! ```text
//! +i8388621.29609,m824255902,/,\tdev
//! +i8388621.44468,m839956783,r,s10376,\tRFCEPLF
//! ```
//!
//! A `+`, then facts separated by commas, then a tab, then the name (which may contain
//! anything but CR/LF, spaces and commas included). Facts: `/` a directory (one can CWD
//! into it), `r` a file (one can RETR it), `s` its size, `m` its mtime in UNIX seconds, `i`
//! an identifier, `up` its permissions in octal. Unknown facts are ignored, as the format
//! asks. An entry that is neither `/` nor `r` cannot be used; it is listed as a file, so a
//! read says what the server says.

use super::time::from_unix_seconds;
use super::{parse_mode, parse_size};
use crate::remote::{valid_name, Kind, RemoteEntry};

pub(super) fn parse_eplf_line(line: &str) -> Option<RemoteEntry> {
    let (facts, name) = line.strip_prefix('+')?.split_once('\t')?;
    if !valid_name(name) {
        return None;
    }
    let (mut dir, mut size, mut mtime, mut mode) = (false, None, None, None);
    for fact in facts.split(',') {
        let Some(tag) = fact.chars().next() else {
            continue;
        };
        let value = &fact[tag.len_utf8()..];
        match tag {
            '/' => dir = true,
            's' => size = Some(parse_size(value)?),
            'm' => mtime = value.parse::<i64>().ok().and_then(from_unix_seconds),
            'u' => mode = value.strip_prefix('p').and_then(parse_mode),
            _ => {}
        }
    }
    let kind = if dir { Kind::Dir } else { Kind::File };
    Some(RemoteEntry {
        name: name.to_string(),
        kind,
        size: if dir { 0 } else { size.unwrap_or(0) },
        mtime,
        mode,
        link_target: None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse_list_line;
    use super::*;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    fn secs(s: u64) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(s))
    }

    #[test]
    fn eplf_lines_from_the_format_description() {
        let now = SystemTime::now();
        let e = parse_list_line("+i8388621.29609,m824255902,/,\tdev", now).unwrap();
        assert_eq!((e.name.as_str(), e.kind, e.size), ("dev", Kind::Dir, 0));
        assert_eq!(e.mtime, secs(824_255_902));
        let e = parse_list_line("+i8388621.44468,m839956783,r,s10376,\tRFCEPLF", now).unwrap();
        assert_eq!(
            (e.name.as_str(), e.kind, e.size),
            ("RFCEPLF", Kind::File, 10_376)
        );
        assert_eq!((e.mtime, e.mode), (secs(839_956_783), None));
    }

    #[test]
    fn eplf_permissions_odd_names_and_unknown_facts() {
        let now = SystemTime::now();
        let e = parse_list_line("+r,s0,up640,m0,xunknown,\t a, b\tc ", now).unwrap();
        assert_eq!(e.name, " a, b\tc ");
        assert_eq!((e.size, e.mode, e.mtime), (0, Some(0o640), secs(0)));
        // No facts at all: a file of unknown size and time.
        let e = parse_list_line("+\tbare", now).unwrap();
        assert_eq!((e.kind, e.size, e.mtime), (Kind::File, 0, None));
        // A bad time or mode is ignored, not the entry.
        let e = parse_list_line("+r,mnever,up999,s5,\tf", now).unwrap();
        assert_eq!((e.size, e.mtime, e.mode), (5, None, None));
    }

    #[test]
    fn eplf_lines_with_bad_sizes_or_names_are_skipped() {
        let now = SystemTime::now();
        for line in [
            "+r,s-1,\tneg",
            "+r,s99999999999999999999,\thuge",
            "+/,\t..",
            "+/,\t.",
            "+r,\ta/b",
            "+r,\t",
            "+r,s1, no tab",
        ] {
            assert_eq!(parse_list_line(line, now), None, "{line:?}");
        }
    }
}
