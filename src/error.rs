//! Errors, and the one place where they become errno values.
//!
//! FTP reports failure as a three-digit reply code whose meaning depends on the command that
//! got it: `550` after `RETR` means "no such file", after `MKD` of an existing name "exists",
//! after `RMD` of a full directory "not empty". So an error from the server is kept as
//! [`Error::Reply`] together with the [`Op`] that received it, and only [`Error::errno`]
//! decides what the kernel is told. That function is an exhaustive `match` without a catch-all
//! arm for our own variants, so a new variant or operation forces a decision here; the README's
//! *Semantics* section documents the same table. What a reply's text and code say, read
//! closer than suppaftp does, is in `error::reply`; `errno` asks it and decides.
//!
//! Each error also knows how loudly it should be logged ([`Error::log_level`]): an expected
//! `ENOENT` on lookup is debug noise, a server that vanished is worth a warning.

use std::fmt;
use std::io;

mod reply;
use reply::{
    ended_by_another_code, lasting_refusal, reply_errno, text_errno, upload_write_failure,
    FILE_ERRORS,
};
pub use reply::{reply_code, reply_text};

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

    fn said(op: Op, code: u32, text: &str) -> Error {
        Error::Reply {
            op,
            code,
            text: text.into(),
        }
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
