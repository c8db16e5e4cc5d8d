//! Where the password comes from, never argv: `-o credentials=FILE` (fstab), `--password-file`,
//! `FTPFS_PASSWORD`, a password in the URL (with a warning), `~/.netrc` (or `$NETRC`), then
//! a prompt on a terminal, in that order. A credentials file others may read is refused,
//! as ssh refuses such keys.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use super::Source;
use crate::secret::Secret;

/// Where a password may come from, in order, besides the command line's own sources.
pub struct PasswordSources<'a> {
    /// `-o credentials=FILE`: `username=` and `password=` lines, for fstab.
    pub credentials_file: Option<&'a Path>,
    pub password_file: Option<&'a Path>,
    pub env: Option<String>,
    pub netrc: Option<PathBuf>,
    pub interactive: bool,
}

/// Finds user and password. No user means anonymous, unless `.netrc` has a login for the host.
/// Reads a credentials file (`-o credentials=`): `username=NAME` (or `user=`) and
/// `password=SECRET` lines, `#` comments, like mount.cifs's. A file that its group or others
/// may read or write is refused, as ssh refuses such keys: the password would not be secret.
pub fn read_credentials_file(path: &Path) -> Result<(Option<String>, Option<String>), String> {
    use std::os::unix::fs::MetadataExt;
    let md =
        std::fs::metadata(path).map_err(|e| format!("credentials file {}: {e}", path.display()))?;
    if md.mode() & 0o077 != 0 {
        return Err(format!(
            "credentials file {} is accessible by others (mode {:o}); chmod 600 it",
            path.display(),
            md.mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("credentials file {}: {e}", path.display()))?;
    let (mut user, mut password) = (None, None);
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some(("username" | "user", v)) => user = Some(v.trim().to_string()),
            Some(("password" | "pass", v)) => {
                password = Some(v.trim_end_matches(['\r', '\n']).to_string())
            }
            _ => {
                return Err(format!(
                    "credentials file {}: unexpected line (want username= or password=)",
                    path.display()
                ))
            }
        }
    }
    Ok((user, password))
}

pub fn credentials(source: &Source, from: &PasswordSources) -> Result<(String, Secret), String> {
    if let Some(path) = from.credentials_file {
        let (file_user, file_password) = read_credentials_file(path)?;
        let user = source
            .user
            .clone()
            .or(file_user)
            .ok_or_else(|| format!("credentials file {}: no username=", path.display()))?;
        if let Some(p) = file_password {
            return Ok((user, Secret::new(p)));
        }
        let with_user = Source {
            user: Some(user),
            ..source.clone()
        };
        let rest = PasswordSources {
            credentials_file: None,
            password_file: from.password_file,
            env: from.env.clone(),
            netrc: from.netrc.clone(),
            interactive: from.interactive,
        };
        return credentials(&with_user, &rest);
    }
    let netrc = from
        .netrc
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| parse_netrc(&text))
        .unwrap_or_default();
    let for_host = |login: Option<&str>| {
        netrc
            .iter()
            .find(|e| {
                e.machine.as_deref().is_none_or(|m| m == source.host)
                    && login.is_none_or(|l| e.login.as_deref() == Some(l))
            })
            .cloned()
    };
    let user = match &source.user {
        Some(u) => u.clone(),
        None => match for_host(None).and_then(|e| e.login) {
            Some(l) => l,
            None => return Ok(("anonymous".into(), Secret::new("ftpfs@"))),
        },
    };
    if let Some(path) = from.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read password file {}: {e}", path.display()))?;
        return Ok((user, Secret::new(text.trim_end_matches(['\r', '\n']))));
    }
    if let Some(p) = &from.env {
        return Ok((user, Secret::new(p.clone())));
    }
    if let Some(p) = &source.password {
        log::warn!("the password is in the URL, where ps and shell history can see it; use FTPFS_PASSWORD, --password-file or ~/.netrc");
        return Ok((user, Secret::new(p.clone())));
    }
    if let Some(p) = for_host(Some(&user)).and_then(|e| e.password) {
        return Ok((user, Secret::new(p)));
    }
    if user == "anonymous" || user == "ftp" {
        return Ok((user, Secret::new("ftpfs@")));
    }
    if from.interactive {
        return prompt_password(&user, &source.host).map(|p| (user, p));
    }
    Err(format!(
        "no password for {user}@{}: set FTPFS_PASSWORD, use --password-file or ~/.netrc, or run on a terminal",
        source.host
    ))
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetrcEntry {
    /// `None` for the `default` entry.
    pub machine: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
}

/// Parses `.netrc`: `machine`/`default` entries with `login` and `password`; `macdef`
/// bodies (up to an empty line) are skipped. `default` is only used after all machines.
pub fn parse_netrc(text: &str) -> Vec<NetrcEntry> {
    let mut entries = Vec::new();
    let mut default = None;
    let mut cur: Option<NetrcEntry> = None;
    let mut lines = text.lines();
    let mut pending: Vec<String> = Vec::new();
    loop {
        if pending.is_empty() {
            match lines.next() {
                Some(l) => {
                    if l.trim_start().starts_with('#') {
                        continue;
                    }
                    pending = l.split_whitespace().rev().map(String::from).collect()
                }
                None => break,
            }
            continue;
        }
        let tok = pending.pop().unwrap_or_default();
        let mut value = || pending.pop();
        match tok.as_str() {
            "machine" => {
                if let Some(e) = cur.take() {
                    entries.push(e);
                }
                cur = Some(NetrcEntry {
                    machine: value(),
                    ..Default::default()
                });
            }
            "default" => {
                if let Some(e) = cur.take() {
                    entries.push(e);
                }
                cur = Some(NetrcEntry::default());
            }
            "login" => {
                let v = value();
                if let Some(e) = cur.as_mut() {
                    e.login = v;
                }
            }
            "password" => {
                let v = value();
                if let Some(e) = cur.as_mut() {
                    e.password = v;
                }
            }
            "account" => {
                value();
            }
            "macdef" => {
                pending.clear();
                for l in lines.by_ref() {
                    if l.trim().is_empty() {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(e) = cur.take() {
        entries.push(e);
    }
    entries.retain(|e| {
        if e.machine.is_none() {
            default = Some(e.clone());
            false
        } else {
            true
        }
    });
    entries.extend(default);
    entries
}

pub(super) fn netrc_path() -> Option<PathBuf> {
    std::env::var_os("NETRC")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".netrc")))
}

pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Reads a password from the terminal with echo off.
fn prompt_password(user: &str, host: &str) -> Result<Secret, String> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|e| format!("cannot open terminal for password prompt: {e}"))?;
    use std::os::fd::AsRawFd;
    let fd = tty.as_raw_fd();
    // SAFETY: termios is plain data; tcgetattr fills it, and we only pass our own fd.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    let have_term = unsafe { libc::tcgetattr(fd, &mut term) } == 0;
    if have_term {
        let mut quiet = term;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let _ = write!(tty, "Password for {user}@{host}: ");
    let _ = tty.flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    if have_term {
        // SAFETY: restores the settings read above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
    }
    let _ = writeln!(tty);
    read.map_err(|e| format!("cannot read password: {e}"))?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
}
