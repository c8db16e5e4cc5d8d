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
use std::sync::atomic::{AtomicBool, Ordering};
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
            // A syslog that went away must not take the file system with it.
            Sink::Syslog(s) => {
                let _ = s.send(buf);
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
        let msg = crate::error::mask_secrets(&record.args().to_string(), SECRET.get());
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
    log::set_max_level(inner.filter());
    log::set_boxed_logger(Box::new(Demoting(inner))).map_err(|e| e.to_string())?;
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log::error!("{info}");
        default_hook(info);
    }));
    Ok(())
}

/// fuser logs "Failed to send FUSE reply: No such file or directory" at error level when the
/// kernel no longer waits for a reply: the request was interrupted, or the file system was
/// unmounted while a `release` (which the kernel sends after `close` has returned) was still
/// being handled. Nothing is lost then, the work was done and nobody waits for its answer,
/// but an error line at every unmount after a write hides the errors that matter. That one
/// message becomes a debug line that says what it means; every other record passes as is.
struct Demoting(env_logger::Logger);

/// What fuser says, and what it means.
const STALE_REPLY: &str = "Failed to send FUSE reply: No such file or directory";

fn is_stale_reply(record: &log::Record) -> bool {
    record.target() == "fuser::reply"
        && record.level() == log::Level::Error
        && record.args().to_string().starts_with(STALE_REPLY)
}

impl log::Log for Demoting {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record) {
        if !is_stale_reply(record) {
            return self.0.log(record);
        }
        let args = format_args!(
            "a reply was not needed any more (request interrupted, or unmounted during \
             a release): {}",
            record.args()
        );
        // env_logger drops it unless debug is enabled for fuser::reply.
        self.0.log(
            &log::Record::builder()
                .args(args)
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
    *sink = match UnixDatagram::unbound().and_then(|s| s.connect(&path).map(|()| s)) {
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

    /// Whether an error record of `target` saying `msg` would be demoted.
    fn demoted(target: &str, msg: &str) -> bool {
        is_stale_reply(
            &log::Record::builder()
                .args(format_args!("{msg}"))
                .level(log::Level::Error)
                .target(target)
                .build(),
        )
    }

    #[test]
    fn only_the_stale_reply_error_is_demoted() {
        assert!(demoted(
            "fuser::reply",
            &format!("{STALE_REPLY} (os error 2)")
        ));
        assert!(
            !demoted(
                "fuser::reply",
                "Failed to send FUSE reply: Broken pipe (os error 32)"
            ),
            "other send failures stay errors"
        );
        assert!(!demoted("ftpfs::fuse", STALE_REPLY), "only fuser's message");
    }

    #[test]
    fn syslog_priorities_are_daemon_facility_with_matching_severity() {
        assert_eq!(syslog_priority(log::Level::Error), 27);
        assert_eq!(syslog_priority(log::Level::Warn), 28);
        assert_eq!(syslog_priority(log::Level::Info), 30);
        assert_eq!(syslog_priority(log::Level::Debug), 31);
    }
}
