//! Command-line definitions. Validation happens in [`crate::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "ftpfs",
    version,
    about = "Mount an FTP server as a local filesystem",
    long_about = "Mount an FTP server as a local filesystem, so that ls, cp, grep and every \
                  other program work on remote files.\n\n\
                  The password is never needed on the command line: it comes from \
                  --password-file, the FTPFS_PASSWORD environment variable, ~/.netrc, or a \
                  prompt. Set RUST_LOG (e.g. RUST_LOG=ftpfs=debug) for logs; passwords are \
                  masked in them.",
    after_help = "Examples:\n  ftpfs mount ftp.example.org /mnt/ftp\n  \
                  FTPFS_PASSWORD=... ftpfs mount ftp://alice@ftp.example.org/pub /mnt/ftp\n  \
                  ftpfs status /mnt/ftp\n  ftpfs umount /mnt/ftp"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Mount SOURCE on MOUNTPOINT (returns once the mount is live, unless --foreground)
    Mount(MountArgs),
    /// Unmount MOUNTPOINT, also when the ftpfs process behind it has died
    Umount {
        /// The directory the server is mounted on
        mountpoint: PathBuf,
        /// When the mount is busy (open files, a shell inside it), detach it now and let the
        /// kernel finish the unmount once it is no longer used
        #[arg(short, long)]
        lazy: bool,
    },
    /// Show what mounts are doing: server, connections, transfers, failures, counters
    Status {
        /// The mount to ask (or any path in it); without it, every ftpfs mount of this user
        mountpoint: Option<PathBuf>,
        /// Print JSON (the format the README documents) instead of a table
        #[arg(long)]
        json: bool,
        /// Print again every --interval seconds, until Ctrl-C or the mount goes away
        #[arg(short, long)]
        watch: bool,
        /// Seconds between two prints with --watch (0.1 to 3600)
        #[arg(short = 'n', long, value_name = "SECS", default_value = "2", value_parser = interval)]
        interval: std::time::Duration,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
}

/// The mount-helper calling conventions, rewritten into `ftpfs mount ...`:
///
/// - `mount -t fuse.ftpfs` and fstab entries of type `fuse.ftpfs` run (through
///   `mount.fuse3`) `ftpfs SOURCE MOUNTPOINT -o OPTIONS`;
/// - `mount -t ftpfs` runs `mount.ftpfs SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS]` (a link to
///   this binary).
///
/// `-s` (sloppy), `-n` (no mtab) and `-v` (verbose) mean nothing to us; `-f` ("fake") makes
/// the mount a no-op, as mount(8) asks: `None`. Anything that is not helper-style passes
/// unchanged.
pub fn helper_args(args: Vec<std::ffi::OsString>) -> Option<Vec<std::ffi::OsString>> {
    use std::ffi::OsString;
    let prog = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let as_helper = prog.starts_with("mount.");
    let first = args.get(1).map(|a| a.to_string_lossy().to_string());
    let known = ["mount", "umount", "status", "completions", "help"];
    let plain = match &first {
        None => true,
        Some(f) => f.starts_with('-') || known.contains(&f.as_str()),
    };
    if !as_helper && plain {
        return Some(args);
    }
    let mut out: Vec<OsString> = vec!["ftpfs".into(), "mount".into()];
    let mut positional = Vec::new();
    let mut options = Vec::new();
    let mut it = args.into_iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy().to_string();
        match s.as_str() {
            "-o" => options.extend(it.next()),
            "-f" => return None,
            "-s" | "-n" | "-v" => {}
            "-t" => {
                it.next();
            }
            o if o.starts_with("-o") => options.push(OsString::from(&o[2..])),
            _ => positional.push(a),
        }
    }
    out.extend(positional);
    for o in options {
        out.push("-o".into());
        out.push(o);
    }
    Some(out)
}

/// `--interval`: seconds, bounded so that `--watch` neither spins nor sleeps for ever.
fn interval(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=3600.0).contains(&v) => Ok(std::time::Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a number of seconds from 0.1 to 3600")),
    }
}

#[derive(Args, Debug, Clone)]
pub struct MountArgs {
    // The help text is an attribute, not a doc comment: rustdoc would read its brackets as
    // links.
    #[arg(
        help = "[ftp://|ftps://][USER@]HOST[:PORT][/PATH] (ftps:// is implicit TLS, port 990), \
                or [USER@]HOST:/PATH as in fstab; no USER means anonymous. PATH is relative \
                to the login directory; start it with // for an absolute path"
    )]
    pub source: String,
    /// An existing, empty directory
    pub mountpoint: PathBuf,

    /// Read the password from FILE (first line)
    #[arg(long, value_name = "FILE", help_heading = "Connection")]
    pub password_file: Option<PathBuf>,
    /// Most control connections to open at once [default: 5]
    #[arg(long, value_name = "N", help_heading = "Connection")]
    pub connections: Option<usize>,
    /// Seconds to wait for a connection, a reply or data before giving up [default: 20]
    #[arg(long, value_name = "SECS", help_heading = "Connection")]
    pub timeout: Option<u64>,

    /// Seconds a directory listing is trusted before it is fetched again [default: 30]
    #[arg(long, value_name = "SECS", help_heading = "Cache")]
    pub dir_cache_ttl: Option<u64>,

    /// Mount options, comma separated (-o a,b=c; -o may be repeated):
    ///
    /// Connection:
    ///   connections=N          most control connections at once (default 5)
    ///   timeout=SECS           wait for a connection, a reply or data (default 20)
    ///   deadline=SECS          the most one operation may take, retries included (30)
    ///   retries=N              attempts after a transient failure (default 5)
    ///   retry_delay=SECS       longest wait between attempts (default 5)
    ///   keepalive=SECS         TCP keepalive on idle control connections; 0 off (60)
    ///   connections_recheck=SECS  after a refused connection, how long to stay below
    ///                          that number before trying one more (default 60)
    ///   credentials=FILE       username= and password= lines, for fstab (mode 600)
    ///   host=NAME              virtual host named with HOST before USER (default: the
    ///                          URL's host name, when the server lists HOST)
    /// TLS:
    ///   tls=off|try|required|implicit  FTPS (default try; ftps:// means implicit)
    ///   cafile=PATH            trust the CAs in this PEM file (a certificate in it that
    ///                          is the server's own is trusted as it is)
    ///   fingerprint=sha256:HEX trust the server certificate with this fingerprint
    ///   insecure               do not verify the server's certificate
    /// Data connections:
    ///   data=auto|passive|active  auto: passive, active when the server refuses passive
    ///                          mode or its passive ports cannot be reached
    ///   pasv_addr=fix|trust    trust: use a private address in a 227 reply as it is
    ///   active_addr=IP         active mode: the address announced (a client behind NAT)
    ///   active_ports=LOW:HIGH  active mode: listen only on these ports
    ///   pipelining=on|off      off: one command at a time, no data connection ahead
    /// Listings and times:
    ///   dir_cache_ttl=SECS     how long a listing is trusted (default 30)
    ///   listing=auto|list      list: use LIST even when MLSD is offered
    ///   exact_times=on|off     exact file times from MDTM on LIST-only servers (on)
    ///   strict_times           a directory time the server cannot set is EPERM
    ///   prefetch=on|off        list subdirectories and read small files ahead of a
    ///                          walk on idle connections (on)
    /// Writes:
    ///   upload=atomic|inplace  replace through a temporary name, or STOR in place
    ///   allo                   ALLO with the size before each STOR
    ///   compress=on|off|auto   MODE Z where offered; auto: once the link measured slow
    ///   spool_dir=DIR          where written data waits for upload
    ///   recovery_dir=DIR       where unsent data is kept when nobody can be told
    ///   writeback              close returns once data is journaled; uploads queued
    ///   writeback_max=SIZE     queued bytes past which close uploads itself (1G)
    /// Access:
    ///   ro                     read-only mount
    ///   allow_other, allow_root, default_permissions
    ///   uid=N, gid=N, umask=OOO  owner and mode mask shown for every file
    /// Mount and logging:
    ///   nodev, nosuid, noexec, noatime  passed to the kernel
    ///   debug, log_file=FILE
    ///   _netdev, noauto, nofail, x-systemd.*, ... (for mount(8) and systemd): ignored
    #[arg(
        short = 'o',
        value_name = "OPTIONS",
        help_heading = "Mount",
        verbatim_doc_comment
    )]
    pub options: Vec<String>,
    /// Stay in the foreground instead of detaching once mounted
    #[arg(short, long, help_heading = "Mount")]
    pub foreground: bool,

    /// Append logs to FILE; without it a detached ftpfs logs to syslog (/dev/log)
    #[arg(long, value_name = "FILE", help_heading = "Logging")]
    pub log_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::helper_args;
    use std::ffi::OsString;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn mount_helper_calls_become_mount_commands() {
        assert_eq!(
            helper_args(v(&["ftpfs", "h:/pub", "/mnt", "-o", "rw,_netdev"])),
            Some(v(&["ftpfs", "mount", "h:/pub", "/mnt", "-o", "rw,_netdev"]))
        );
        assert_eq!(
            helper_args(v(&["/sbin/mount.ftpfs", "h", "/mnt", "-s", "-n", "-oro"])),
            Some(v(&["ftpfs", "mount", "h", "/mnt", "-o", "ro"]))
        );
        assert_eq!(helper_args(v(&["mount.ftpfs", "h", "/mnt", "-f"])), None);
    }

    #[test]
    fn ordinary_commands_pass_unchanged() {
        for a in [
            v(&["ftpfs", "mount", "h", "/m"]),
            v(&["ftpfs", "--help"]),
            v(&["ftpfs", "umount", "/m"]),
            v(&["ftpfs"]),
        ] {
            assert_eq!(helper_args(a.clone()), Some(a));
        }
    }
}
