//! Errors, and the one place where they become errno values.
//!
//! FTP reports failure as a three-digit reply code whose meaning depends on the command that
//! got it: `550` after `RETR` means "no such file", after `MKD` of an existing name "exists",
//! after `RMD` of a full directory "not empty". So an error from the server is kept as
//! [`Error::Reply`] together with the [`Op`] that received it, and only [`Error::errno`]
//! decides what the kernel is told. That function is an exhaustive `match` without a catch-all
//! arm for our own variants, so a new variant or operation forces a decision here; the README's
//! *Semantics* section documents the same table.
//!
//! Each error also knows how loudly it should be logged ([`Error::log_level`]): an expected
//! `ENOENT` on lookup is debug noise, a server that vanished is worth a warning.

use std::fmt;
use std::io;

/// What the filesystem was doing when the server answered; it decides what a reply code means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Connect,
    Login,
    List,
    Retr,
    Stat,
    Store,
    Append,
    Rename,
    Delete,
    Mkdir,
    Rmdir,
    Chmod,
    SetTime,
    /// A server-side copy (`SITE CPFR`/`SITE CPTO`).
    Copy,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Connect => "connect",
            Op::Login => "login",
            Op::List => "list",
            Op::Retr => "retrieve",
            Op::Stat => "stat",
            Op::Store => "upload",
            Op::Append => "append",
            Op::Rename => "rename",
            Op::Delete => "delete",
            Op::Mkdir => "mkdir",
            Op::Rmdir => "rmdir",
            Op::Chmod => "chmod",
            Op::SetTime => "set mtime",
            Op::Copy => "server-side copy",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered `op` with a reply outside the expected set.
    #[error("{op}: server replied {code} {text}")]
    Reply { op: Op, code: u32, text: String },
    /// The server could not be reached, or the connection broke.
    #[error("{op}: {source}")]
    Network {
        op: Op,
        #[source]
        source: io::Error,
    },
    /// A deadline passed: the server accepted the connection but stopped answering.
    #[error("{op}: timed out")]
    Timeout { op: Op },
    /// The server said something that is not FTP (garbage, truncated or oversized replies).
    #[error("{op}: protocol error: {detail}")]
    Protocol { op: Op, detail: String },
    /// The name does not exist (decided locally, e.g. from a cached listing).
    #[error("no such file or directory")]
    NotFound,
    /// The path names a directory where a file is needed.
    #[error("is a directory")]
    IsDir,
    /// The path names a file where a directory is needed.
    #[error("not a directory")]
    NotDir,
    /// TLS could not be set up: the certificate does not verify, the server refuses `AUTH
    /// TLS` when it is required, the handshake fails.
    #[error("TLS: {0}")]
    Tls(String),
    /// A name that cannot be sent to an FTP server (`/`, NUL, CR or LF in it, or too long).
    #[error("invalid name")]
    InvalidName,
    /// A name longer than the kernel allows.
    #[error("name too long")]
    NameTooLong,
    /// A read at an offset the server cannot serve: it refuses `REST`.
    #[error("server does not support REST; random access is not possible")]
    NoRandomAccess,
    /// The mount is read-only.
    #[error("read-only filesystem")]
    ReadOnly,
    /// The name exists already (mkdir, O_EXCL create, rename with RENAME_NOREPLACE).
    #[error("file exists")]
    Exists,
    /// rmdir of a directory that still has entries.
    #[error("directory not empty")]
    NotEmpty,
    /// The server cannot do this at all (no SITE CHMOD, no MFMT, a rename flag FTP lacks).
    #[error("not supported by the server")]
    Unsupported,
    /// Changing what FTP cannot change (owner, group).
    #[error("operation not permitted")]
    NotPermitted,
    /// The local spool file failed (disk full, I/O error on the spool directory).
    #[error("spool: {0}")]
    Spool(#[source] io::Error),
    /// The caller lacks the permission bits we report.
    #[error("permission denied")]
    Access,
    /// An inode or file handle the kernel sent that we do not know (after forget, or a bug).
    #[error("stale handle")]
    Stale,
    /// `lseek(SEEK_DATA/SEEK_HOLE)` at or past the end of the file: there is no data or hole
    /// after it.
    #[error("offset at or past the end of the file")]
    PastEnd,
    /// The server refuses both `EPSV` and `PASV` (each with the reply given), and
    /// `-o data=passive` forbids active mode: no transfer can work, so the mount is refused.
    #[error(
        "refuses passive mode (EPSV: {epsv}, PASV: {pasv}), and data=passive forbids active \
         mode; mount with -o data=active or data=auto"
    )]
    NoPassive { epsv: String, pasv: String },
    /// A queued upload (write-back) failed after `close` had returned; `fsync` or `sync` of
    /// the mount learns it later, with the errno the failure had then.
    #[error("queued upload failed: {text}")]
    WriteBack { errno: i32, text: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Classifies a suppaftp error for operation `op`.
    pub fn from_ftp(op: Op, err: suppaftp::FtpError) -> Error {
        use suppaftp::FtpError;
        match err {
            // suppaftp ends a multi-line reply at any line with a code and a space (RFC 959
            // says: only at the opening code), so `999-a` / `998 b` / `999 c` stops at `998`
            // and leaves `999 c` to be taken as the next command's reply. Such a reply is a
            // protocol error: the connection is given up rather than read out of step.
            FtpError::UnexpectedResponse(resp) if ended_by_another_code(&resp.body) => {
                Error::Protocol {
                    op,
                    detail: format!(
                        "a multi-line reply ended by another code: {}",
                        reply_text(&resp.body)
                    ),
                }
            }
            FtpError::UnexpectedResponse(resp) => Error::Reply {
                op,
                code: reply_code(&resp),
                text: reply_text(&resp.body),
            },
            FtpError::ConnectionError(source)
                if source
                    .get_ref()
                    .is_some_and(|inner| inner.is::<suppaftp::ReplyTooLarge>()) =>
            {
                // An endless FEAT or greeting, a multi-line reply that never ends: suppaftp
                // stops reading at 256 KiB.
                Error::Protocol {
                    op,
                    detail: "reply too large".into(),
                }
            }
            FtpError::ConnectionError(source) => Error::from_io(op, source),
            FtpError::BadResponse => Error::Protocol {
                op,
                detail: "malformed reply".into(),
            },
            FtpError::InvalidAddress(e) => Error::Protocol {
                op,
                detail: format!("bad passive address: {e}"),
            },
            FtpError::SecureError(detail) => Error::Tls(detail),
            FtpError::DataConnectionAlreadyOpen => Error::Protocol {
                op,
                detail: "data connection already open".into(),
            },
        }
    }

    /// Classifies an I/O error on a control or data socket.
    pub fn from_io(op: Op, source: io::Error) -> Error {
        match source.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout { op },
            _ => Error::Network { op, source },
        }
    }

    /// The reply code, when the server gave one.
    pub fn code(&self) -> Option<u32> {
        match self {
            Error::Reply { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The operation that failed, for errors that come from the network.
    pub fn op(&self) -> Option<Op> {
        match self {
            Error::Reply { op, .. }
            | Error::Network { op, .. }
            | Error::Timeout { op }
            | Error::Protocol { op, .. } => Some(*op),
            _ => None,
        }
    }

    /// Whether trying the same thing again may succeed, given how safe a repetition is.
    ///
    /// A 4xx reply (and 120, "not ready yet") says the server did *not* do it and that the
    /// condition is temporary, so any operation may be repeated. A broken or silent connection
    /// leaves the outcome unknown; repeating is safe only for idempotent operations, or when
    /// the failure came while connecting or logging in, before the command was sent. 5xx
    /// replies are permanent, and a server that speaks garbage will not improve with asking.
    pub fn is_retryable(&self, idempotent: bool) -> bool {
        match self {
            // Only a 4xx without a more specific meaning: 452 (no storage) is 4xx by the
            // RFC, but a full disk does not empty itself within seconds; neither does a 4xx
            // whose text names a lasting cause (`451 ...: Permission denied`, proftpd's
            // `451 ...: Append/Restart not permitted, try again`).
            Error::Reply { code, .. } => {
                ((400..500).contains(code) && self.errno() == libc::EIO)
                    || *code == 120
                    || self.is_tls_reuse_refusal()
            }
            // Every port of `-o active_ports` busy: the listener failed before the command
            // was sent, so any operation may be repeated; ports free up as transfers end.
            Error::Network { source, .. } if source.kind() == io::ErrorKind::AddrInUse => true,
            Error::Network { op, .. } | Error::Timeout { op } => {
                idempotent || matches!(op, Op::Connect | Op::Login)
            }
            Error::Protocol { .. }
            | Error::Tls(_)
            | Error::NotFound
            | Error::IsDir
            | Error::NotDir
            | Error::InvalidName
            | Error::NameTooLong
            | Error::NoRandomAccess
            | Error::ReadOnly
            | Error::Exists
            | Error::NotEmpty
            | Error::Unsupported
            | Error::NotPermitted
            | Error::Spool(_)
            | Error::Access
            | Error::Stale
            | Error::PastEnd
            | Error::NoPassive { .. }
            | Error::WriteBack { .. } => false,
        }
    }

    /// Whether a refusal says the server does not do this *command* at all, rather than not
    /// for this file: a command it does not implement (`500`, `502`, `504`), or a policy
    /// named in the text (`451 f: Append/Restart not permitted`, `550 APPE not allowed`).
    /// An OS error about the file (`550 f: Permission denied`, `Operation not permitted`,
    /// `No such file or directory`) is about that file only, and so is a reply without a
    /// code of failure. This is what the FTP remote learns once per mount (see
    /// `ftp::caps::Capability`).
    pub fn refuses_command(&self) -> bool {
        let Error::Reply { code, text, .. } = self else {
            return false;
        };
        if matches!(code, 500 | 502 | 504) {
            return true;
        }
        if !(400..600).contains(code) {
            return false;
        }
        let t = text.to_ascii_lowercase();
        !self.names_file_error()
            && ["not permitted", "not allowed", "denied"]
                .iter()
                .any(|p| t.contains(p))
    }

    /// Whether a reply names an OS error about the file it concerns (`Permission denied`,
    /// `No such file or directory`...): a refusal of that file, not of the command.
    pub fn names_file_error(&self) -> bool {
        match self {
            Error::Reply { text, .. } => {
                let t = text.to_ascii_lowercase();
                FILE_ERRORS.iter().any(|f| t.contains(f))
            }
            _ => false,
        }
    }

    /// Whether the server refused a data connection because its TLS session did not resume
    /// the control connection's (vsftpd's `522 SSL connection failed: session reuse
    /// required`, FileZilla Server's `425 ... TLS session of data connection not resumed`).
    /// Nothing was transferred, so the transfer may be repeated even when it is not
    /// idempotent, on a new control connection, whose session is new (see `ftp::tls`).
    pub fn is_tls_reuse_refusal(&self) -> bool {
        let Error::Reply { code, text, .. } = self else {
            return false;
        };
        let t = text.to_ascii_lowercase();
        (400..600).contains(code)
            && (t.contains("session reuse") || t.contains("not resumed"))
            && (t.contains("ssl") || t.contains("tls"))
    }

    /// Whether a login failure says the server has too many connections (from us), rather
    /// than that the credentials are wrong: pure-ftpd, vsftpd and pyftpdlib send `421 Too
    /// many connections ...` instead of the greeting, proftpd `530 Sorry, the maximum number
    /// of connections ...` after `USER`.
    pub fn is_connection_limit(&self) -> bool {
        match self {
            Error::Reply {
                op: Op::Connect | Op::Login,
                code: code @ (421 | 530),
                text,
            } => {
                let t = text.to_ascii_lowercase();
                *code == 421
                    || ["too many", "maximum number", "connection limit"]
                        .iter()
                        .any(|n| t.contains(n))
            }
            _ => false,
        }
    }

    /// Whether the control connection that produced this error can no longer be trusted: the
    /// pool drops such connections instead of handing them out again.
    pub fn breaks_connection(&self) -> bool {
        match self {
            Error::Network { .. }
            | Error::Timeout { .. }
            | Error::Protocol { .. }
            | Error::Tls(_) => true,
            // 421 is the server closing the control connection; vsftpd ends the session
            // after refusing a data connection's TLS session, and its session is spent.
            Error::Reply { code, .. } => *code == 421 || self.is_tls_reuse_refusal(),
            Error::NotFound
            | Error::IsDir
            | Error::NotDir
            | Error::InvalidName
            | Error::NameTooLong
            | Error::NoRandomAccess
            | Error::ReadOnly
            | Error::Exists
            | Error::NotEmpty
            | Error::Unsupported
            | Error::NotPermitted
            | Error::Spool(_)
            | Error::Access
            | Error::Stale
            | Error::PastEnd
            | Error::NoPassive { .. }
            | Error::WriteBack { .. } => false,
        }
    }

    /// The errno the kernel is given. The table is documented in the README (Semantics).
    pub fn errno(&self) -> i32 {
        match self {
            Error::Reply { op, code, text } => text_errno(*code, text)
                .or_else(|| upload_write_failure(*op, *code, text))
                .or_else(|| lasting_refusal(*code, text))
                .unwrap_or_else(|| reply_errno(*op, *code)),
            // No free port in `-o active_ports`: the only local cause worth its own errno.
            Error::Network { source, .. } if source.kind() == io::ErrorKind::AddrInUse => {
                libc::EADDRINUSE
            }
            Error::Network { .. } => libc::EIO,
            Error::Timeout { .. } => libc::ETIMEDOUT,
            Error::Protocol { .. } => libc::EPROTO,
            Error::Tls(_) => libc::EIO,
            Error::NotFound => libc::ENOENT,
            Error::IsDir => libc::EISDIR,
            Error::NotDir => libc::ENOTDIR,
            Error::InvalidName => libc::EINVAL,
            Error::NameTooLong => libc::ENAMETOOLONG,
            Error::NoRandomAccess => libc::ESPIPE,
            Error::ReadOnly => libc::EROFS,
            Error::Exists => libc::EEXIST,
            Error::NotEmpty => libc::ENOTEMPTY,
            Error::Unsupported => libc::ENOTSUP,
            Error::NotPermitted => libc::EPERM,
            Error::Spool(e) => e.raw_os_error().unwrap_or(libc::EIO),
            Error::Access => libc::EACCES,
            Error::Stale => libc::ESTALE,
            Error::PastEnd => libc::ENXIO,
            Error::NoPassive { .. } => libc::ENOTSUP,
            Error::WriteBack { errno, .. } => *errno,
        }
    }

    /// How loudly to log this error when it reaches the kernel.
    pub fn log_level(&self) -> log::Level {
        match self {
            Error::NotFound
            | Error::IsDir
            | Error::NotDir
            | Error::Access
            | Error::ReadOnly
            | Error::Exists
            | Error::NotEmpty
            | Error::Unsupported
            | Error::NotPermitted
            | Error::PastEnd => log::Level::Debug,
            Error::Reply { code, .. } if *code == 550 => log::Level::Debug,
            Error::InvalidName | Error::NameTooLong | Error::Stale => log::Level::Info,
            Error::Reply { .. }
            | Error::Network { .. }
            | Error::Timeout { .. }
            | Error::Protocol { .. }
            | Error::Tls(_)
            | Error::Spool(_)
            | Error::NoRandomAccess
            | Error::NoPassive { .. }
            | Error::WriteBack { .. } => log::Level::Warn,
        }
    }
}

/// Many servers (pure-ftpd, vsftpd, proftpd) put the operating system's error text in
/// their failure replies, and it is more precise than the code: pure-ftpd answers a
/// forbidden rename with `451 Rename/move failure: Permission denied`, where 451 alone
/// would mean a transient local error. A failure reply whose text names one of these
/// errors gets that errno.
fn text_errno(code: u32, text: &str) -> Option<i32> {
    if !(400..600).contains(&code) {
        return None;
    }
    let t = text.to_ascii_lowercase();
    [
        ("permission denied", libc::EACCES),
        ("no such file or directory", libc::ENOENT),
        ("file exists", libc::EEXIST),
        ("directory not empty", libc::ENOTEMPTY),
        ("not a directory", libc::ENOTDIR),
        ("is a directory", libc::EISDIR),
        ("disk quota exceeded", libc::EDQUOT),
        ("quota exceeded", libc::EDQUOT),
        ("no space left on device", libc::ENOSPC),
        ("file name too long", libc::ENAMETOOLONG),
        ("read-only file system", libc::EROFS),
    ]
    .into_iter()
    .find(|(needle, _)| t.contains(needle))
    .map(|(_, errno)| errno)
}

/// A `451` during an upload that says the server could not *write* the file: pure-ftpd
/// (`451 Error during write to file`) and vsftpd (`451 Failure writing to local file`) send
/// it, without the OS error, when their disk or quota is full. It is not worth retrying, and
/// `ENOSPC` tells the user what to do about it.
fn upload_write_failure(op: Op, code: u32, text: &str) -> Option<i32> {
    let t = text.to_ascii_lowercase();
    (matches!(op, Op::Store | Op::Append) && code == 451 && t.contains("writ"))
        .then_some(libc::ENOSPC)
}

/// A `4xx` is "not now" by the RFC, but servers use `451` for refusals that will not go
/// away: proftpd answers `APPE` with `451 f: Append/Restart not permitted, try again` for
/// as long as `AllowStoreRestart` is off, whatever the "try again" says. A 4xx whose text
/// names such a cause is a permission error, so it is not retried (see
/// [`Error::is_retryable`]): "denied" is `EACCES`, "not permitted"/"not allowed" `EPERM`.
fn lasting_refusal(code: u32, text: &str) -> Option<i32> {
    if !(400..500).contains(&code) {
        return None;
    }
    let t = text.to_ascii_lowercase();
    if t.contains("denied") {
        Some(libc::EACCES)
    } else if t.contains("not permitted") || t.contains("not allowed") {
        Some(libc::EPERM)
    } else {
        None
    }
}

/// OS error texts that a server puts in a reply about one file, not about a command: a
/// refusal naming one of them says nothing about what the server can do.
const FILE_ERRORS: [&str; 4] = [
    "permission denied",
    "operation not permitted",
    "no such file",
    "read-only file system",
];

/// Reply code → errno for one operation. Codes follow RFC 959 and RFC 640: the first digit
/// says whether the failure is transient (4) or permanent (5); the second whether it concerns
/// syntax (0), the connection (2), authentication (3) or the file system (5).
fn reply_errno(op: Op, code: u32) -> i32 {
    match (op, code) {
        // 530 Not logged in / 532 need account: the server will not let us.
        (_, 530 | 532) => libc::EACCES,
        // 421 Service not available, closing control connection; 425/426 data connection
        // trouble: the request did not happen, and the caller may try again.
        (_, 421 | 425 | 426) => libc::EIO,
        // 450 file unavailable (busy), 451 local error: transient server-side trouble.
        (_, 450 | 451) => libc::EIO,
        // 452/552: out of storage, 552 specifically "exceeded storage allocation".
        (_, 452) => libc::ENOSPC,
        (_, 552) => libc::EDQUOT,
        // 500/501: the server did not understand a command we think is valid. 502/504: not
        // implemented. Reported as "operation not supported" rather than a generic EIO.
        (_, 500 | 501) => libc::EINVAL,
        (_, 502 | 504) => libc::ENOTSUP,
        // 550 "file unavailable": on lookup-type operations the name is missing. Servers use
        // the same code for "permission denied"; lookups cannot tell, ENOENT is what ls, find
        // and cp expect for an entry they cannot see.
        (Op::List | Op::Retr | Op::Stat, 550) => libc::ENOENT,
        (Op::Connect | Op::Login, 550) => libc::EACCES,
        // On changes, the filesystem checks existence first (missing → ENOENT, present →
        // EEXIST, full directory → ENOTEMPTY) from the listing, so a 550 that still comes is
        // the server refusing: permission.
        (Op::Store | Op::Append | Op::Rename | Op::Delete | Op::Mkdir | Op::Rmdir, 550) => {
            libc::EACCES
        }
        (Op::Chmod | Op::SetTime, 550) => libc::EPERM,
        // 553 "file name not allowed": pure-ftpd and others send it for a write refused by
        // permissions, so on changes it is EACCES; elsewhere the name itself was refused.
        (Op::Store | Op::Append | Op::Rename | Op::Mkdir, 553) => libc::EACCES,
        (_, 553) => libc::EINVAL,
        // 551 page type unknown, any other 5xx: permanent failure without finer meaning.
        (_, 500..=599) => libc::EIO,
        // 4xx not listed above: transient, but the operation did not happen.
        (_, 400..=499) => libc::EIO,
        // A 1xx/2xx/3xx arriving where a failure is reported means the dialogue went astray;
        // RFC 2228's protected 6xx replies (we never ask for protection) and codes no RFC
        // defines (0xx, 7xx-9xx) are not an answer we can act on: EPROTO, reply logged.
        (_, _) => libc::EPROTO,
    }
}

/// A multi-line reply (`ddd-` first) whose last line carries another code.
fn ended_by_another_code(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let (Some(first), Some(last)) = (lines.next(), text.lines().rfind(|l| !l.is_empty())) else {
        return false;
    };
    first.as_bytes().get(3) == Some(&b'-') && first.get(..3) != last.get(..3)
}

/// A reply's code as the server sent it: suppaftp knows the RFC 959 codes by name and says
/// 0 for any other (vsftpd's `522`, for one), so those are read from the reply itself.
pub fn reply_code(resp: &suppaftp::types::Response) -> u32 {
    match resp.status.code() {
        0 => resp
            .body
            .get(..3)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .and_then(|d| std::str::from_utf8(d).ok()?.parse().ok())
            .unwrap_or(0),
        code => code,
    }
}

/// The human part of a reply: the text after the code of each line, trimmed and joined
/// with "; ". Servers put the reason on the first line and statistics on the last
/// (pure-ftpd: `451-Error during write to file` / `451 0.023 seconds (measured here)...`).
pub fn reply_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let parts: Vec<&str> = text
        .lines()
        .map(|l| {
            let l = l.trim_end();
            let b = l.as_bytes();
            let coded = b.len() >= 3
                && b[..3].iter().all(u8::is_ascii_digit)
                && matches!(b.get(3), None | Some(b' ' | b'-'));
            if coded {
                l.get(4..).unwrap_or("").trim()
            } else {
                l.trim()
            }
        })
        .filter(|l| !l.is_empty())
        .collect();
    // A reply is bounded by suppaftp, but keep log lines readable.
    parts.join("; ").chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(op: Op, code: u32) -> Error {
        Error::Reply {
            op,
            code,
            text: String::new(),
        }
    }

    #[test]
    fn missing_file_on_lookup_and_retrieve_is_enoent() {
        assert_eq!(reply(Op::List, 550).errno(), libc::ENOENT);
        assert_eq!(reply(Op::Retr, 550).errno(), libc::ENOENT);
    }

    #[test]
    fn not_logged_in_is_eacces_whatever_the_operation() {
        for op in [Op::Login, Op::List, Op::Retr, Op::Stat, Op::Connect] {
            assert_eq!(reply(op, 530).errno(), libc::EACCES, "{op}");
        }
    }

    #[test]
    fn storage_replies_are_space_errors() {
        assert_eq!(reply(Op::Retr, 452).errno(), libc::ENOSPC);
        assert_eq!(reply(Op::Retr, 552).errno(), libc::EDQUOT);
    }

    #[test]
    fn transient_replies_are_eio_and_421_breaks_the_connection() {
        assert_eq!(reply(Op::Retr, 451).errno(), libc::EIO);
        assert!(reply(Op::List, 421).breaks_connection());
        assert!(!reply(Op::List, 550).breaks_connection());
    }

    #[test]
    fn the_servers_os_error_text_is_more_precise_than_its_code() {
        let e = |code, text: &str| Error::Reply {
            op: Op::Rename,
            code,
            text: text.into(),
        };
        assert_eq!(
            e(451, "Rename/move failure: Permission denied").errno(),
            libc::EACCES
        );
        assert_eq!(
            e(550, "Can't create directory: File exists").errno(),
            libc::EEXIST
        );
        assert_eq!(
            e(552, "Quota exceeded: [/x] won't be saved").errno(),
            libc::EDQUOT
        );
        assert_eq!(e(451, "Local error").errno(), libc::EIO);
        assert_eq!(
            e(226, "Permission denied").errno(),
            libc::EPROTO,
            "not a failure"
        );
    }

    #[test]
    fn a_success_code_reported_as_failure_is_a_protocol_error() {
        assert_eq!(reply(Op::List, 226).errno(), libc::EPROTO);
    }

    #[test]
    fn timeouts_are_etimedout_and_break_the_connection() {
        let e = Error::from_io(Op::Retr, io::Error::from(io::ErrorKind::WouldBlock));
        assert_eq!(e.errno(), libc::ETIMEDOUT);
        assert!(e.breaks_connection());
    }

    #[test]
    fn transient_replies_are_retried_and_permanent_ones_are_not() {
        assert!(reply(Op::Rename, 450).is_retryable(false));
        assert!(reply(Op::Connect, 120).is_retryable(false));
        assert!(!reply(Op::Store, 552).is_retryable(true));
        assert!(!reply(Op::List, 550).is_retryable(true));
        assert!(
            !reply(Op::Store, 452).is_retryable(true),
            "a full disk stays full"
        );
        let denied = Error::Reply {
            op: Op::Rename,
            code: 451,
            text: "Rename/move failure: Permission denied".into(),
        };
        assert!(!denied.is_retryable(true));
    }

    #[test]
    fn a_broken_connection_is_retried_only_when_repeating_is_safe() {
        let broken = |op| Error::from_io(op, io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(broken(Op::List).is_retryable(true));
        assert!(
            !broken(Op::Rename).is_retryable(false),
            "RNTO may have happened"
        );
        assert!(
            broken(Op::Login).is_retryable(false),
            "nothing was sent yet"
        );
    }

    #[test]
    fn too_many_connections_is_a_limit_and_a_wrong_password_is_not() {
        let login = |code, text: &str| Error::Reply {
            op: Op::Login,
            code,
            text: text.into(),
        };
        assert!(login(421, "Too many connections (2) from this IP").is_connection_limit());
        assert!(login(530, "Sorry, the maximum number of connections (2)").is_connection_limit());
        assert!(!login(530, "Login authentication failed").is_connection_limit());
        assert!(!reply(Op::List, 421).is_connection_limit());
    }

    #[test]
    fn reply_text_joins_the_lines_without_their_codes() {
        assert_eq!(
            reply_text(b"530-Sorry\r\n530 Login incorrect.\r\n"),
            "Sorry; Login incorrect."
        );
        assert_eq!(reply_text(b"5"), "5");
        assert_eq!(reply_text(b"550 \r\n"), "");
    }

    fn said(op: Op, code: u32, text: &str) -> Error {
        Error::Reply {
            op,
            code,
            text: text.into(),
        }
    }

    /// proftpd 1.3.8 by default: retried, it cost five attempts and six warnings per append.
    #[test]
    fn a_451_that_names_a_lasting_cause_is_not_transient() {
        let appe = said(
            Op::Append,
            451,
            "f: Append/Restart not permitted, try again",
        );
        assert_eq!(appe.errno(), libc::EPERM);
        assert!(!appe.is_retryable(true));
        let not_allowed = said(Op::Store, 450, "Uploads are not allowed here");
        assert_eq!(not_allowed.errno(), libc::EPERM);
        assert!(!not_allowed.is_retryable(true));
        let denied = said(Op::Delete, 451, "Access denied by policy");
        assert_eq!(denied.errno(), libc::EACCES);
        assert!(!denied.is_retryable(true));
        assert!(said(Op::Append, 451, "Local error").is_retryable(true));
        assert!(said(Op::Store, 450, "File busy, try again").is_retryable(false));
        assert_eq!(
            said(Op::Chmod, 550, "not permitted").errno(),
            libc::EPERM,
            "5xx keep their table"
        );
    }

    #[test]
    fn a_refused_command_is_told_from_a_refused_file() {
        // The server cannot or will not do it: learned once per mount.
        assert!(said(
            Op::Append,
            451,
            "f: Append/Restart not permitted, try again"
        )
        .refuses_command());
        assert!(said(Op::Append, 550, "APPE not allowed").refuses_command());
        assert!(said(Op::Chmod, 502, "Command not implemented").refuses_command());
        assert!(said(Op::SetTime, 500, "Unknown command").refuses_command());
        assert!(said(Op::Append, 504, "").refuses_command());
        // This file is refused: asked again next time.
        assert!(!said(Op::Append, 550, "f: Permission denied").refuses_command());
        assert!(!said(Op::Chmod, 550, "d: Operation not permitted").refuses_command());
        assert!(!said(Op::SetTime, 550, "x: No such file or directory").refuses_command());
        assert!(!said(Op::Append, 451, "Local error").refuses_command());
        assert!(!said(Op::Append, 553, "Could not create file.").refuses_command());
        assert!(!said(Op::Append, 226, "not permitted").refuses_command());
        assert!(!Error::Timeout { op: Op::Append }.refuses_command());
    }

    #[test]
    fn a_server_that_cannot_write_an_upload_is_out_of_space() {
        let e = Error::Reply {
            op: Op::Store,
            code: 451,
            text: reply_text(b"451-Error during write to file\r\n451 0.023 seconds\r\n"),
        };
        assert_eq!(e.errno(), libc::ENOSPC);
        assert!(!e.is_retryable(true));
        let busy = Error::Reply {
            op: Op::Store,
            code: 451,
            text: "Local error".into(),
        };
        assert!(busy.is_retryable(true));
    }

    #[test]
    fn a_reply_code_suppaftp_does_not_know_is_read_from_the_reply() {
        let resp = suppaftp::types::Response {
            status: suppaftp::Status::Unknown,
            body: b"522 SSL connection failed: session reuse required\r\n".to_vec(),
        };
        assert_eq!(reply_code(&resp), 522);
        let e = Error::from_ftp(Op::Store, suppaftp::FtpError::UnexpectedResponse(resp));
        assert_eq!(e.code(), Some(522));
        assert!(e.to_string().contains("522"), "{e}");
    }

    #[test]
    fn a_data_connection_refused_for_its_tls_session_is_repeated_on_a_new_connection() {
        let vsftpd = Error::Reply {
            op: Op::Append,
            code: 522,
            text: "SSL connection failed: session reuse required".into(),
        };
        let filezilla = Error::Reply {
            op: Op::Retr,
            code: 425,
            text: "Unable to build data connection: TLS session of data connection not resumed."
                .into(),
        };
        for e in [vsftpd, filezilla] {
            assert!(e.is_tls_reuse_refusal(), "{e}");
            assert!(e.is_retryable(false), "{e}: nothing was transferred");
            assert!(e.breaks_connection(), "{e}: its session is spent");
        }
        // EPRT's 522 (RFC 2428) is something else.
        let eprt = Error::Reply {
            op: Op::Store,
            code: 522,
            text: "Network protocol not supported, use (1)".into(),
        };
        assert!(!eprt.is_tls_reuse_refusal());
        assert!(!eprt.is_retryable(true));
    }
}
