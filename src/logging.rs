//! Where the log goes, so that a detached daemon's errors reach somebody.
//!
//! In the foreground the log is stderr. A mount started from fstab, systemd or a plain
//! `ftpfs mount` detaches from the terminal, and some of what it logs then matters more
//! than anything else it says: "the upload failed and your data was saved to the recovery
//! directory" is logged at error level when no `close` is left to report it. So a detached
//! ftpfs logs to the file named by `--log-file` or `-o log_file=`, and otherwise to syslog
//! (the `/dev/log` socket, which journald also serves; `FTPFS_SYSLOG_SOCKET` names another),
//! and only if neither is there, nowhere. Secrets are masked in every line, and a panic is
//! logged before the process ends.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use parking_lot::Mutex;

/// The syslog socket unless `FTPFS_SYSLOG_SOCKET` says otherwise.
pub const SYSLOG_SOCKET: &str = "/dev/log";

enum Sink {
    Stderr,
    File(std::fs::File),
    Syslog(UnixDatagram),
    Discard,
}

static SINK: Mutex<Sink> = Mutex::new(Sink::Stderr);
/// Set while the sink is syslog: records are formatted as syslog messages then.
static SYSLOG: AtomicBool = AtomicBool::new(false);
static SECRET: OnceLock<String> = OnceLock::new();
/// Lines syslog did not take (its queue was full) since the last one it took.
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// env_logger's target: one formatted record per write, to wherever the log goes now.
struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut *SINK.lock() {
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(buf);
            }
            Sink::File(f) => {
                let _ = f.write_all(buf);
            }
            // A syslog that went away, or stopped reading, must not take the file system
            // with it: the socket does not block (a full queue drops the line; the lines
            // dropped are counted and said when one gets through again).
            Sink::Syslog(s) => {
                let dropped = DROPPED.load(Ordering::Relaxed);
                if dropped > 0 {
                    let note = format!(
                        "<{}>ftpfs[{}]: WARN ftpfs::logging: {dropped} log messages dropped: syslog was not reading",
                        syslog_priority(log::Level::Warn),
                        std::process::id()
                    );
                    if s.send(note.as_bytes()).is_ok() {
                        DROPPED.fetch_sub(dropped, Ordering::Relaxed);
                    }
                }
                if s.send(buf).is_err() {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
            }
            Sink::Discard => {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sets up logging: warnings and errors by default, ftpfs's debug messages with `debug`,
/// anything `RUST_LOG` says on top; to `log_file` if given, else stderr until [`detach`].
pub fn init(log_file: Option<&Path>, debug: bool) -> Result<(), String> {
    if let Some(path) = log_file {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
        *SINK.lock() = Sink::File(f);
    }
    let mut b = env_logger::Builder::new();
    b.filter_level(log::LevelFilter::Warn);
    // fuser warns "Unmount failed: Invalid argument" when the mount was already removed by
    // `fusermount3 -u`, the normal way to unmount; real failures are still errors.
    b.filter_module("fuser::mnt", log::LevelFilter::Error);
    if debug {
        b.filter_module("ftpfs", log::LevelFilter::Debug);
    }
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.target(env_logger::Target::Pipe(Box::new(Writer)));
    b.format(|buf, record| {
        let msg = crate::secret::mask_secrets(&record.args().to_string(), SECRET.get());
        if SYSLOG.load(Ordering::Relaxed) {
            write!(
                buf,
                "<{}>ftpfs[{}]: {} {}: {}",
                syslog_priority(record.level()),
                std::process::id(),
                record.level(),
                record.target(),
                msg
            )
        } else {
            writeln!(
                buf,
                "[{} {} {}] {}",
                buf.timestamp_millis(),
                record.level(),
                record.target(),
                msg
            )
        }
    });
    let inner = b.build();
    // Trace records reach the logger whatever it prints: suppaftp's record of each command
    // it sends is what `ftpfs status` counts commands from (see crate::status).
    log::set_max_level(log::LevelFilter::Trace);
    log::set_boxed_logger(Box::new(Demoting(inner))).map_err(|e| e.to_string())?;
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log::error!("{info}");
        default_hook(info);
    }));
    Ok(())
}

/// Messages that dependencies log at error or warning level for things that are normal in
/// ftpfs, each with what it means there. An error line at every unmount, or a warning each
/// time ftpfs gives up on a stalled transfer, hides the lines that matter. These records
/// become debug lines that say what they mean; every other record passes as is.
struct Demoting(env_logger::Logger);

/// A known message: the target it comes from (a prefix), its level, how it starts, and
/// what it means.
struct Known {
    target: &'static str,
    level: log::Level,
    text: &'static str,
    meaning: &'static str,
}

const KNOWN: &[Known] = &[
    // The kernel no longer waits for a reply: the request was interrupted, or the file
    // system was unmounted while a `release` (sent after `close` has returned) was still
    // being handled. The work was done and nobody waits for its answer.
    Known {
        target: "fuser::reply",
        level: log::Level::Error,
        text: "Failed to send FUSE reply: No such file or directory",
        meaning: "a reply was not needed any more (request interrupted, or unmounted during \
                  a release)",
    },
    // ftpfs abandons a transfer (a stalled upload, a server that stopped taking data) by
    // shutting its sockets down and discarding the connection; dropping the stream then
    // makes suppaftp try to read the final reply from a socket that is already shut. The
    // upload's own error is reported by ftpfs.
    Known {
        target: "suppaftp",
        level: log::Level::Warn,
        text: "failed to finalize a dropped transfer stream",
        meaning: "a transfer ftpfs abandoned (its connection is closed, not reused)",
    },
    // A TLS connection that failed (a refused certificate, a peer that closed first) is
    // dropped, and suppaftp's drop tries to say goodbye on it and logs at error level that
    // it could not. ftpfs reports the failure itself, in one line.
    Known {
        target: "suppaftp",
        level: log::Level::Error,
        text: "error in flushing rustls stream on drop",
        meaning: "a TLS connection that had failed was closed",
    },
    Known {
        target: "suppaftp",
        level: log::Level::Error,
        text: "error in terminating rustls stream",
        meaning: "a TLS connection that had failed was closed",
    },
];

fn known(record: &log::Record) -> Option<&'static Known> {
    KNOWN.iter().find(|k| {
        record.level() == k.level
            && record.target().starts_with(k.target)
            && record.args().to_string().starts_with(k.text)
    })
}

impl log::Log for Demoting {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        crate::status::observe_log(record);
        let Some(k) = known(record) else {
            return self.0.log(record);
        };
        // env_logger drops it unless debug is enabled for its target.
        self.0.log(
            &log::Record::builder()
                .args(format_args!("{}: {}", k.meaning, record.args()))
                .level(log::Level::Debug)
                .target(record.target())
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// The password, to be masked wherever it would appear in a log line.
pub fn set_secret(secret: &str) {
    let _ = SECRET.set(secret.to_string());
}

/// The process is leaving its terminal: a log that went to stderr goes to syslog now, or
/// nowhere if there is no syslog socket. A log file stays as it is.
pub fn detach() {
    let mut sink = SINK.lock();
    if !matches!(*sink, Sink::Stderr) {
        return;
    }
    let path = std::env::var_os("FTPFS_SYSLOG_SOCKET").unwrap_or_else(|| SYSLOG_SOCKET.into());
    let connected = UnixDatagram::unbound()
        .and_then(|s| s.connect(&path).map(|()| s))
        .and_then(|s| s.set_nonblocking(true).map(|()| s));
    *sink = match connected {
        Ok(s) => {
            SYSLOG.store(true, Ordering::Relaxed);
            Sink::Syslog(s)
        }
        Err(_) => Sink::Discard,
    };
}

/// Facility daemon (3), and the syslog severity closest to the level.
fn syslog_priority(level: log::Level) -> u8 {
    let severity = match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    };
    3 * 8 + severity
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a record of `target` at `level` saying `msg` would be demoted.
    fn demoted(target: &str, level: log::Level, msg: &str) -> bool {
        known(
            &log::Record::builder()
                .args(format_args!("{msg}"))
                .level(level)
                .target(target)
                .build(),
        )
        .is_some()
    }

    #[test]
    fn only_known_harmless_messages_are_demoted() {
        use log::Level::{Error, Warn};
        let stale = "Failed to send FUSE reply: No such file or directory (os error 2)";
        assert!(demoted("fuser::reply", Error, stale));
        assert!(
            !demoted(
                "fuser::reply",
                Error,
                "Failed to send FUSE reply: Broken pipe (os error 32)"
            ),
            "other send failures stay errors"
        );
        assert!(
            !demoted("ftpfs::fuse", Error, stale),
            "only fuser's message"
        );
        let dropped = "failed to finalize a dropped transfer stream: Transport endpoint is not \
                       connected (os error 107)";
        assert!(demoted(
            "suppaftp::sync_ftp::transfer_stream",
            Warn,
            dropped
        ));
        assert!(
            !demoted("ftpfs::ftp", Warn, dropped),
            "only suppaftp's message"
        );
        assert!(
            !demoted("suppaftp::sync_ftp", Warn, "some other warning"),
            "other suppaftp warnings stay"
        );
        assert!(
            !demoted("suppaftp::sync_ftp", Error, dropped),
            "at its own level only"
        );
    }

    #[test]
    fn syslog_priorities_are_daemon_facility_with_matching_severity() {
        assert_eq!(syslog_priority(log::Level::Error), 27);
        assert_eq!(syslog_priority(log::Level::Warn), 28);
        assert_eq!(syslog_priority(log::Level::Info), 30);
        assert_eq!(syslog_priority(log::Level::Debug), 31);
    }
}
