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
                  ftpfs umount /mnt/ftp"
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
    },
}

#[derive(Args, Debug, Clone)]
pub struct MountArgs {
    /// [ftp://][USER@]HOST[:PORT][/PATH]; no USER means anonymous. PATH is relative to the
    /// login directory; start it with // for an absolute path
    pub source: String,
    /// An existing, empty directory
    pub mountpoint: PathBuf,

    /// Read the password from FILE (first line)
    #[arg(long, value_name = "FILE", help_heading = "Connection")]
    pub password_file: Option<PathBuf>,
    /// Most control connections to open at once [default: 4]
    #[arg(long, value_name = "N", help_heading = "Connection")]
    pub connections: Option<usize>,
    /// Seconds to wait for a connection, a reply or data before giving up [default: 20]
    #[arg(long, value_name = "SECS", help_heading = "Connection")]
    pub timeout: Option<u64>,

    /// Seconds a directory listing is trusted before it is fetched again [default: 30]
    #[arg(long, value_name = "SECS", help_heading = "Cache")]
    pub dir_cache_ttl: Option<u64>,

    /// Mount options, comma separated: ro, allow_other, allow_root, default_permissions,
    /// uid=N, gid=N, umask=OOO, dir_cache_ttl=SECS, connections=N, timeout=SECS,
    /// retries=N (after a transient failure; default 5), retry_delay=SECS (longest wait
    /// between attempts; default 5), deadline=SECS (the most one operation may take, retries
    /// included; default 30), tls=off|try|required|implicit (default try; ftps:// means
    /// implicit), cafile=PATH (trust this CA instead of the system's), insecure (do not
    /// verify the server's certificate),
    /// listing=auto|list (list: use LIST even when MLSD is offered), spool_dir=DIR,
    /// recovery_dir=DIR, upload=atomic|inplace, debug,
    /// nodev, nosuid, noexec, noatime. Options for mount(8) and systemd (_netdev, noauto,
    /// nofail, x-systemd.*, ...) are accepted and ignored
    #[arg(short = 'o', value_name = "OPTIONS", help_heading = "Mount")]
    pub options: Vec<String>,
    /// Stay in the foreground instead of detaching once mounted
    #[arg(short, long, help_heading = "Mount")]
    pub foreground: bool,

    /// Append logs to FILE (a detached ftpfs has no terminal to log to)
    #[arg(long, value_name = "FILE", help_heading = "Logging")]
    pub log_file: Option<PathBuf>,
}
