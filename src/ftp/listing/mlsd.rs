//! `MLSD` lines (RFC 3659 §7): `fact=value;fact=value; name`.
//!
//! Facts never contain a space, so the first space ends them and exactly that one space
//! separates them from the name: everything after it, leading spaces included, is the name.
//! Fact names are matched case-insensitively; a fact whose value does not parse is ignored,
//! not the line (pyftpdlib writes `unix.mode=0o644`, which suppaftp's own parser rejects).

use super::{parse_mode, parse_size, time::parse_mlsd_time};
use crate::remote::{valid_name, Kind, RemoteEntry};

/// Parses one `MLSD` line. Returns `None` for lines to skip (unparseable, `cdir`/`pdir`,
/// unsafe names).
pub fn parse_mlsd_line(line: &str) -> Option<RemoteEntry> {
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

#[cfg(test)]
mod tests {
    use super::super::time::at;
    use super::*;
    use std::time::Duration;

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
    fn mlsd_names_keep_their_leading_and_trailing_spaces() {
        // Exactly one space separates the facts from the name (RFC 3659 §7.2).
        let e = parse_mlsd_line("type=file;size=1;  leading").unwrap();
        assert_eq!(e.name, " leading");
        let e = parse_mlsd_line("type=dir;modify=20240102030405;    three and trailing ").unwrap();
        assert_eq!(
            (e.name.as_str(), e.kind),
            ("   three and trailing ", Kind::Dir)
        );
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
}
