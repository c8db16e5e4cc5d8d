//! The validated configuration, built from the command line and `-o` option strings.
//!
//! The CLI struct ([`crate::cli`]) is what the user typed; [`Config`] is what the program
//! runs with: the source URL parsed, `-o` options checked (`config::options`: unknown ones
//! are errors, options meant for mount(8) or systemd are accepted and ignored), and the
//! password found without ever needing it in argv: `--password-file`, `FTPFS_PASSWORD`,
//! `~/.netrc` (or `$NETRC`), a prompt on a terminal, in that order. A password written in the
//! URL still works, with a warning.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::MountArgs;
use crate::ftp::conn::Endpoint;
pub use crate::secret::Secret;

mod credentials;
mod options;
use credentials::netrc_path;
pub use credentials::{
    credentials, is_tty, parse_netrc, read_credentials_file, NetrcEntry, PasswordSources,
};
pub use options::{parse_mount_options, MountOpts};

/// `[ftp://][USER[:PASSWORD]@]HOST[:PORT][/PATH]`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// `ftps://`: implicit TLS.
    pub implicit_tls: bool,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
    pub path: String,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub endpoint: Endpoint,
    pub path: String,
    pub mountpoint: PathBuf,
    pub connections: usize,
    pub dir_cache_ttl: Duration,
    pub read_only: bool,
    pub allow_other: bool,
    pub allow_root: bool,
    pub default_permissions: bool,
    pub uid: u32,
    pub gid: u32,
    /// `-o umask=`: masks every mode shown. Unset, the modes the server reports are shown
    /// as they are, and `022` masks only the defaults used where it reports none.
    pub umask: Option<u32>,
    pub foreground: bool,
    pub listing: crate::ftp::ListingMode,
    /// Exact file times from `MDTM` on `LIST` listings (`-o exact_times=on|off`).
    pub exact_times: bool,
    /// `MODE Z` for downloads (`-o compress=on|off|auto`).
    pub compress: crate::ftp::deflate::Compress,
    /// A directory time the server cannot set fails (`-o strict_times`).
    pub strict_times: bool,
    /// List subdirectories and read small files ahead of a walk (`-o prefetch=on|off`).
    pub prefetch: bool,
    pub spool_dir: PathBuf,
    pub recovery_dir: PathBuf,
    pub upload: crate::fs::UploadMode,
    /// `-o writeback[=SIZE]`: `close` returns once the data is journaled on local disk, and
    /// the upload is queued; `None` uploads at `close` (see [`crate::upload::queue`]). The
    /// value bounds the bytes queued: past it `close` uploads as without write-back.
    pub writeback: Option<u64>,
    pub log_file: Option<PathBuf>,
    /// Options handed to the kernel as they are (nodev, nosuid, noexec, noatime…).
    pub kernel_options: Vec<String>,
    /// The source as shown in `mount` output (no password).
    pub fsname: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .field("tls", &self.tls.mode)
            .field("limit_recheck", &self.limit_recheck)
            .field("keepalive", &self.keepalive)
            .field("dialogue", &self.dialogue)
            .finish()
    }
}

pub const DEFAULT_PORT: u16 = 21;
pub const DEFAULT_FTPS_PORT: u16 = 990;
/// One for listings and other metadata, four for transfers: four files read at once (a
/// parallel `cp -r`, `rsync`) each keep their stream. Measured: with 4, four readers of 64 MiB
/// files took 95 RETRs (readers taking each other's connection), with 5, four. Servers that allow
/// fewer are learned from their 421 (see [`crate::ftp::pool`]).
pub const DEFAULT_CONNECTIONS: usize = 5;
pub const DEFAULT_DIR_CACHE_TTL: u64 = 30;
pub const DEFAULT_TIMEOUT: u64 = 20;
/// The queued bytes past which `close` uploads itself again (`-o writeback_max=`).
pub const DEFAULT_WRITEBACK_MAX: u64 = 1 << 30;

pub fn parse_source(s: &str) -> Result<Source, String> {
    let (implicit_tls, rest) = match s.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ftp") => (false, rest),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("ftps") => (true, rest),
        Some((scheme, _)) => {
            return Err(format!(
                "unsupported URL scheme {scheme:?} (use ftp:// or ftps://)"
            ))
        }
        None => (false, s),
    };
    let default_port = if implicit_tls {
        DEFAULT_FTPS_PORT
    } else {
        DEFAULT_PORT
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((a, b)) => (a, Some(percent_decode(b)?)),
                None => (u, None),
            };
            if user.is_empty() {
                return Err("empty user name in source".into());
            }
            (Some(percent_decode(user)?), pass)
        }
        None => (None, None),
    };
    // `host:/path` (sshfs and fstab style): the colon ends the host, no port.
    let hostport = hostport.strip_suffix(':').unwrap_or(hostport);
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, after) = h.split_once(']').ok_or("unterminated [ in IPv6 address")?;
        let port = match after.strip_prefix(':') {
            Some(p) => parse_port(p)?,
            None if after.is_empty() => default_port,
            None => return Err(format!("unexpected {after:?} after IPv6 address")),
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), parse_port(p)?),
            None => (hostport.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err("no host in source".into());
    }
    Ok(Source {
        implicit_tls,
        user,
        password,
        host,
        port,
        path: percent_decode(path)?,
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("invalid port {p:?}"))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

impl Config {
    pub fn from_args(args: &MountArgs) -> Result<Config, String> {
        let source = parse_source(&args.source)?;
        let mut o = MountOpts::default();
        for s in &args.options {
            parse_mount_options(s, &mut o)?;
        }
        let sources = PasswordSources {
            credentials_file: o.credentials.as_deref(),
            password_file: args.password_file.as_deref(),
            env: std::env::var("FTPFS_PASSWORD").ok(),
            netrc: netrc_path(),
            interactive: is_tty(0),
        };
        let (user, password) = credentials(&source, &sources)?;
        let timeout = Duration::from_secs(o.timeout.or(args.timeout).unwrap_or(DEFAULT_TIMEOUT));
        let endpoint = Endpoint {
            host: source.host.clone(),
            port: source.port,
            user: user.clone(),
            password,
            timeout,
            limit_recheck: o
                .connections_recheck
                .map(Duration::from_secs)
                .unwrap_or(crate::ftp::pool::DEFAULT_LIMIT_RECHECK),
            keepalive: o
                .keepalive
                .map(Duration::from_secs)
                .unwrap_or(crate::ftp::conn::DEFAULT_KEEPALIVE),
            data: o.data.unwrap_or_default(),
            pasv_addr: o.pasv_addr.unwrap_or_default(),
            listen: crate::ftp::active::Listen {
                addr: o.active_addr,
                ports: o.active_ports,
            },
            pipelining: o.pipelining.unwrap_or(true),
            dialogue: crate::ftp::conn::Dialogue {
                host: o.vhost.clone(),
                allo: o.allo,
            },
            tls: {
                use crate::ftp::tls::{Tls, TlsMode};
                let mode = match (source.implicit_tls, o.tls) {
                    (true, None | Some(TlsMode::Implicit)) => TlsMode::Implicit,
                    (true, Some(m)) => {
                        return Err(format!(
                            "ftps:// means implicit TLS; it cannot be combined with tls={m:?}"
                        ))
                    }
                    (false, m) => m.unwrap_or_default(),
                };
                if o.insecure && mode != TlsMode::Off {
                    log::warn!(
                        "-o insecure: the server's certificate is not checked; anyone on the \
                         path can pose as the server and read the password"
                    );
                }
                Tls::new(mode, o.cafile.as_deref(), &o.fingerprints, o.insecure)?
            },
            policy: crate::ftp::retry::Policy {
                retries: o.retries.unwrap_or(crate::ftp::retry::DEFAULT_RETRIES),
                max_delay: o
                    .retry_delay
                    .map(Duration::from_secs)
                    .unwrap_or(crate::ftp::retry::DEFAULT_MAX_DELAY),
                deadline: o
                    .deadline
                    .map(Duration::from_secs)
                    .unwrap_or(crate::ftp::retry::DEFAULT_DEADLINE),
            },
        };
        let fsname = format!(
            "ftp://{}@{}{}",
            user,
            endpoint.display(),
            if source.path.is_empty() {
                "/"
            } else {
                &source.path
            }
        );
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Ok(Config {
            endpoint,
            path: source.path,
            mountpoint: args.mountpoint.clone(),
            connections: o
                .connections
                .or(args.connections)
                .unwrap_or(DEFAULT_CONNECTIONS),
            dir_cache_ttl: Duration::from_secs(
                o.dir_cache_ttl
                    .or(args.dir_cache_ttl)
                    .unwrap_or(DEFAULT_DIR_CACHE_TTL),
            ),
            read_only: o.read_only,
            allow_other: o.allow_other,
            allow_root: o.allow_root,
            default_permissions: o.default_permissions,
            uid: o.uid.unwrap_or(uid),
            gid: o.gid.unwrap_or(gid),
            umask: o.umask,
            foreground: args.foreground,
            listing: o.listing.unwrap_or_default(),
            exact_times: o.exact_times.unwrap_or(true),
            compress: o.compress.unwrap_or_default(),
            strict_times: o.strict_times,
            prefetch: o.prefetch.unwrap_or(true),
            spool_dir: o
                .spool_dir
                .unwrap_or_else(|| crate::upload::spool::default_dir("spool")),
            recovery_dir: o
                .recovery_dir
                .unwrap_or_else(|| crate::upload::spool::default_dir("recovered")),
            upload: o.upload.unwrap_or_default(),
            writeback: o
                .writeback
                .then(|| o.writeback_max.unwrap_or(DEFAULT_WRITEBACK_MAX)),
            log_file: args.log_file.clone().or(o.log_file),
            kernel_options: o.kernel,
            fsname,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_in_all_their_forms() {
        let s = parse_source("ftp://alice@ftp.example.org/pub").unwrap();
        assert_eq!(s.user.as_deref(), Some("alice"));
        assert_eq!(
            (s.host.as_str(), s.port, s.path.as_str()),
            ("ftp.example.org", 21, "/pub")
        );
        let s = parse_source("ftp.example.org").unwrap();
        assert_eq!((s.user, s.port, s.path.as_str()), (None, 21, ""));
        let s = parse_source("bob%40corp:p%3Ass@127.0.0.1:2121//srv/a%20b").unwrap();
        assert_eq!(s.user.as_deref(), Some("bob@corp"));
        assert_eq!(s.password.as_deref(), Some("p:ss"));
        assert_eq!((s.port, s.path.as_str()), (2121, "//srv/a b"));
        let s = parse_source("ftp://[::1]:2121/x").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 2121));
    }

    #[test]
    fn bad_sources_are_refused_with_a_reason() {
        for bad in [
            "sftp://h", "ftp://", "h:0", "h:99999", "@h", "[::1", "h/%zz",
        ] {
            assert!(parse_source(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn netrc_entries_and_default_come_in_order() {
        let text = "# comment\nmachine a.org login alice password s3cret\n\
                    default login anonymous password guest\n\
                    machine b.org\n  login bob\n  password 'x'\nmacdef init\ncd /pub\n\nmachine c.org login carol password c";
        let e = parse_netrc(text);
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].password.as_deref(), Some("s3cret"));
        assert_eq!(e[1].login.as_deref(), Some("bob"));
        assert_eq!(e[2].machine.as_deref(), Some("c.org"));
        assert_eq!(e[3].machine, None, "default comes last");
    }

    #[test]
    fn a_credentials_file_gives_user_and_password_and_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("creds");
        std::fs::write(&f, "# for fstab\nusername=bob\npassword=s3cr=t \n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let from = PasswordSources {
            credentials_file: Some(&f),
            password_file: None,
            env: Some("fromenv".into()),
            netrc: None,
            interactive: false,
        };
        let (user, pw) =
            credentials(&parse_source("ftp.example.org:/pub").unwrap(), &from).unwrap();
        assert_eq!((user.as_str(), pw.expose()), ("bob", "s3cr=t "));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = credentials(&parse_source("h").unwrap(), &from).unwrap_err();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn fstab_style_host_colon_path_is_a_source() {
        let s = parse_source("alice@ftp.example.org:/pub/x").unwrap();
        assert_eq!(
            (s.user.as_deref(), s.host.as_str(), s.port, s.path.as_str()),
            (Some("alice"), "ftp.example.org", 21, "/pub/x")
        );
        assert_eq!(parse_source("ftps://h").unwrap().port, 990);
    }

    #[test]
    fn credentials_come_from_file_env_netrc_in_that_order() {
        let dir = tempfile::tempdir().unwrap();
        let netrc = dir.path().join("netrc");
        std::fs::write(&netrc, "machine h login alice password fromnetrc\n").unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, "fromfile\n").unwrap();
        let src = parse_source("alice@h").unwrap();
        let mut from = PasswordSources {
            credentials_file: None,
            password_file: Some(&pwfile),
            env: Some("fromenv".into()),
            netrc: Some(netrc.clone()),
            interactive: false,
        };
        assert_eq!(credentials(&src, &from).unwrap().1.expose(), "fromfile");
        from.password_file = None;
        assert_eq!(credentials(&src, &from).unwrap().1.expose(), "fromenv");
        from.env = None;
        assert_eq!(credentials(&src, &from).unwrap().1.expose(), "fromnetrc");
        // No user: the netrc login for the host is used; unknown host: anonymous.
        let (u, _) = credentials(&parse_source("h").unwrap(), &from).unwrap();
        assert_eq!(u, "alice");
        let (u, _) = credentials(&parse_source("other").unwrap(), &from).unwrap();
        assert_eq!(u, "anonymous");
        from.netrc = None;
        assert!(
            credentials(&src, &from).is_err(),
            "no password and no terminal"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "****");
    }
}
