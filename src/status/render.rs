//! `ftpfs status [MOUNTPOINT] [--json] [--watch]`: ask the mounts and print what they say.
//!
//! The command exists to look at a mount that misbehaves, so it must not hang on one: it
//! never `stat`s the mountpoint (a hung mount would hang it too), but finds the mount in the
//! kernel's mount table and its socket by name (see [`super::socket`]), and gives every
//! answer [`DEADLINE`]. A path that is not an ftpfs mount, or whose process does not answer,
//! is a one-line message and exit status 1.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::socket::{self, QueryError};
use super::{Direction, Snapshot};

/// How long a mount has to answer.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// What the user asked for.
pub struct Request {
    pub mountpoint: Option<PathBuf>,
    pub json: bool,
    pub watch: bool,
    pub interval: Duration,
}

/// Runs the command; the exit code is 1 when a mount named could not be asked.
pub fn run(req: &Request) -> ExitCode {
    let tty = std::io::stdout().is_terminal();
    loop {
        let (shown, failed) = match &req.mountpoint {
            Some(mp) => match one(mp) {
                Ok(s) => (Shown::One(Box::new(s)), false),
                // Watching a mount that went away ends the watch, and is no failure.
                Err(Failure::NotMounted(_)) if req.watch => {
                    println!("{}: no longer mounted", mp.display());
                    return ExitCode::SUCCESS;
                }
                Err(e) => {
                    eprintln!("ftpfs: {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => {
                let (snaps, errors) = every();
                for e in &errors {
                    eprintln!("ftpfs: {e}");
                }
                (Shown::All(snaps), !errors.is_empty())
            }
        };
        let mut out = String::new();
        if req.json {
            let doc = match &shown {
                Shown::One(s) => serde_json::to_value(s),
                Shown::All(v) => serde_json::to_value(v),
            }
            .unwrap_or_default();
            let text = if req.watch {
                serde_json::to_string(&doc)
            } else {
                serde_json::to_string_pretty(&doc)
            };
            out.push_str(&text.unwrap_or_default());
            out.push('\n');
        } else {
            if req.watch && tty {
                // Home and clear: the table is redrawn in place.
                out.push_str("\x1b[H\x1b[2J");
            }
            match &shown {
                Shown::One(s) => out.push_str(&table(s)),
                Shown::All(v) if v.is_empty() => out.push_str("no ftpfs mounts\n"),
                Shown::All(v) => {
                    for (i, s) in v.iter().enumerate() {
                        if i > 0 {
                            out.push('\n');
                        }
                        out.push_str(&table(s));
                    }
                }
            }
            if req.watch && !tty {
                out.push('\n');
            }
        }
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`ftpfs status --watch | head`) ends the command.
        if stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return ExitCode::SUCCESS;
        }
        drop(stdout);
        if !req.watch {
            return if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
        if matches!(&shown, Shown::All(v) if v.is_empty()) {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(req.interval);
    }
}

enum Shown {
    One(Box<Snapshot>),
    All(Vec<Snapshot>),
}

/// Why a mount could not be shown.
enum Failure {
    NotMounted(PathBuf),
    Query(PathBuf, QueryError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotMounted(p) => write!(f, "{}: not an ftpfs mount", p.display()),
            Failure::Query(p, QueryError::Gone) => write!(
                f,
                "{}: the ftpfs process behind it does not answer (no control socket for it in \
                 {}; started by another user, or by an older ftpfs)",
                p.display(),
                socket::dirs_in_use()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Failure::Query(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

/// The snapshot of the mount at `mountpoint`.
fn one(mountpoint: &Path) -> Result<Snapshot, Failure> {
    // A path in the mount (`ftpfs status .` in a subdirectory) names the mount, as `df`
    // takes any path; found from the mount table alone. A symlink needs resolving, which
    // stats its parent: only then.
    let abs = match enclosing_ftpfs_mount(&lexical(mountpoint)) {
        Some(m) => m,
        None => {
            let abs = resolve(mountpoint);
            match crate::mount::mountinfo::mount_at(&abs) {
                Some((fstype, _)) if fstype == "fuse.ftpfs" => abs,
                _ => return Err(Failure::NotMounted(mountpoint.to_path_buf())),
            }
        }
    };
    // Where a socket is missing, or nobody listens on it, the next directory may have it.
    for dir in socket::dirs_in_use() {
        let Some(sock) = socket::path_in(&dir, &abs) else {
            continue;
        };
        match socket::query(&sock, DEADLINE) {
            Err(QueryError::Gone) => continue,
            // Another mount that was at this path once, detached and still finishing.
            Ok(s) if s.mountpoint != abs => continue,
            r => return r.map_err(|e| Failure::Query(mountpoint.to_path_buf(), e)),
        }
    }
    Err(Failure::Query(mountpoint.to_path_buf(), QueryError::Gone))
}

/// Every mount of this user that answers on its socket; a socket whose process is gone is
/// passed over, one that does not answer is an error.
fn every() -> (Vec<Snapshot>, Vec<Failure>) {
    let mut snaps = Vec::new();
    let mut errors = Vec::new();
    // Asked in parallel: each has its deadline, and one stuck mount must not multiply it.
    let asked: Vec<_> = socket::all()
        .into_iter()
        .map(|p| {
            let q = p.clone();
            (p, std::thread::spawn(move || socket::query(&q, DEADLINE)))
        })
        .collect();
    for (path, handle) in asked {
        match handle.join() {
            Ok(Ok(s)) => snaps.push(s),
            Ok(Err(QueryError::Gone)) => {}
            Ok(Err(e)) => errors.push(Failure::Query(path, e)),
            Err(_) => errors.push(Failure::Query(path, QueryError::Other("panic".into()))),
        }
    }
    snaps.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    (snaps, errors)
}

/// The ftpfs mount `abs` is in (or is), from /proc/self/mountinfo: the deepest mountpoint
/// above it, the last mounted one where several share a path; `None` when that is not an
/// ftpfs mount.
fn enclosing_ftpfs_mount(abs: &Path) -> Option<PathBuf> {
    use crate::mount::mountinfo::unescape_mountinfo;
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(PathBuf, bool)> = None;
    for line in table.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mp) = left.split(' ').nth(4).map(unescape_mountinfo) else {
            continue;
        };
        let mp = PathBuf::from(mp);
        let deeper = best
            .as_ref()
            .is_none_or(|(b, _)| mp.components().count() >= b.components().count());
        if abs.starts_with(&mp) && deeper {
            let ftpfs = right.split(' ').next() == Some("fuse.ftpfs");
            best = Some((mp, ftpfs));
        }
    }
    best.filter(|(_, ftpfs)| *ftpfs).map(|(mp, _)| mp)
}

/// `p` made absolute and free of symlinks without looking inside the mount: `.` and `..`
/// are resolved in the path, the parent directory by the kernel, and a symlink in the last
/// component by reading it (which does not enter a mount on it).
fn resolve(p: &Path) -> PathBuf {
    let mut p = p.to_path_buf();
    // Bounded as the kernel bounds symlink chains.
    for _ in 0..40 {
        let abs = lexical(&p);
        let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
            return abs;
        };
        let parent = std::fs::canonicalize(parent).unwrap_or(parent.to_path_buf());
        let here = parent.join(name);
        match std::fs::read_link(&here) {
            Ok(target) => p = parent.join(target),
            Err(_) => return here,
        }
    }
    lexical(&p)
}

/// Absolute, with `.` and `..` taken out by their names.
fn lexical(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The readable form of one mount's snapshot.
pub fn table(s: &Snapshot) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{}  {}  (pid {}, up {})",
        s.mountpoint.display(),
        s.server.url,
        s.pid,
        duration(s.uptime_secs as f64)
    );
    let tls = match (&*s.server.tls, &s.server.tls_protocol) {
        ("off", _) => "TLS off".to_string(),
        (mode, Some(p)) => format!("TLS {mode} ({p})"),
        (mode, None) => format!("TLS {mode}"),
    };
    let _ = writeln!(
        t,
        "  server       {tls}, data connections {}",
        s.server.data
    );
    let c = &s.connections;
    let _ = writeln!(
        t,
        "  connections  {} open: {} busy ({} transferring), {} idle; at most {}{}",
        c.open,
        c.busy,
        c.transfers,
        c.idle,
        c.max,
        c.limit
            .map(|l| format!(", the server allows {l}"))
            .unwrap_or_default()
    );
    if s.transfers.is_empty() {
        let _ = writeln!(t, "  transfers    none");
    }
    for (i, x) in s.transfers.iter().enumerate() {
        let arrow = match x.direction {
            Direction::Download => "download",
            Direction::Upload => "upload  ",
        };
        let of = x
            .size
            .map(|n| format!(" of {}", bytes(n)))
            .unwrap_or_default();
        let rate = x
            .rate
            .map(|r| format!(", {}/s", bytes(r as u64)))
            .unwrap_or_default();
        let eta = x
            .eta_secs
            .map(|e| format!(", {} left", duration(e)))
            .unwrap_or_default();
        let segments = match x.segments {
            0 => String::new(),
            n => format!(", {n} segments"),
        };
        let _ = writeln!(
            t,
            "  {}{arrow} {}  {}{of}{rate}{eta}{segments}",
            if i == 0 {
                "transfers    "
            } else {
                "             "
            },
            x.path,
            bytes(x.bytes)
        );
    }
    let w = &s.writeback;
    if w.enabled {
        let _ = writeln!(
            t,
            "  write-back   {} files, {} queued{}{}",
            w.files,
            bytes(w.bytes),
            w.oldest_secs
                .map(|o| format!(", oldest {}", duration(o)))
                .unwrap_or_default(),
            if w.waiting.is_empty() {
                String::new()
            } else {
                format!(", {} waiting for the server", w.waiting.len())
            }
        );
    } else {
        let _ = writeln!(t, "  write-back   off");
    }
    let failed: Vec<(&str, &Path)> = s
        .failures
        .iter()
        .map(|f| (f.path.as_str(), f.saved_to.as_path()))
        .chain(
            w.failed
                .iter()
                .map(|f| (f.path.as_str(), f.saved_to.as_path())),
        )
        .collect();
    for (i, (path, saved_to)) in failed.iter().enumerate() {
        let _ = writeln!(
            t,
            "  {}{} not uploaded; saved to {}",
            if i == 0 {
                "failures     "
            } else {
                "             "
            },
            path,
            saved_to.display()
        );
    }
    let k = &s.counters;
    let commands: Vec<String> = k
        .commands
        .iter()
        .map(|(verb, n)| format!("{verb} {n}"))
        .collect();
    let _ = writeln!(
        t,
        "  commands     {}",
        if commands.is_empty() {
            "none".to_string()
        } else {
            commands.join(", ")
        }
    );
    let _ = writeln!(
        t,
        "  counters     {} retries, {} logins, {} lost, {} reconnects; listing cache {} hits, {} misses",
        k.retries, k.logins, k.lost, k.reconnects, k.cache_hits, k.cache_misses
    );
    t
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_resolved_by_name_without_entering_the_path() {
        assert_eq!(lexical(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(lexical(Path::new("/..")), Path::new("/"));
        let tmp = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(real.join("mnt")).unwrap();
        std::os::unix::fs::symlink(real.join("mnt"), real.join("link")).unwrap();
        assert_eq!(resolve(&real.join("link")), real.join("mnt"));
        assert_eq!(resolve(&real.join("mnt/../mnt")), real.join("mnt"));
    }

    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(duration(59.4), "59s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(7300.0), "2h01m");
    }
}
