//! Changing what is not a file's content: its mode (`SITE CHMOD`), its time (`MFMT`, or
//! vsftpd's `MDTM time path`), and copies made by the server (`SITE CPFR`/`CPTO`).
//!
//! None of these is in RFC 959, and servers differ in which they have and for what: vsftpd
//! and pyftpdlib set a file's time but never a directory's, libunftp has no `SITE CHMOD`
//! and reads `MDTM time path` as a file name, proftpd copies only with `mod_copy`. Asking
//! each time would cost a round trip per refusal for the life of the mount, so each
//! refusal that says "not here" is learned once ([`Capability`], [`ServerInfo::learn`])
//! and answered without asking afterwards.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use suppaftp::Status;

use super::caps::{Capability, Refusal, ServerInfo};
use super::retry::Repeat;
use super::{listing, FtpRemote, MTIME_MDTM, MTIME_MFMT, MTIME_NONE, MTIME_UNKNOWN};
use crate::error::{Error, Op, Result};
use crate::remote::Kind;

/// Whether a reply says "this command does not exist here" rather than "not for this file".
fn not_implemented(e: &Error) -> bool {
    matches!(e.code(), Some(500 | 501 | 502 | 504))
}

/// The error a learned refusal gives without asking: what the server said the first time,
/// and "not supported" when the command does not exist there.
fn replay(r: Refusal) -> Error {
    let e = r.error();
    if not_implemented(&e) {
        Error::Unsupported
    } else {
        e
    }
}

impl FtpRemote {
    /// `SITE CHMOD`, or the refusal learned before.
    pub(super) fn set_mode(&self, path: &str, kind: Kind, mode: u32) -> Result<()> {
        let cap = Capability::Chmod {
            dir: kind == Kind::Dir,
        };
        if let Some(r) = self.pool.info().refusal(cap) {
            return Err(replay(r));
        }
        let path = self.abs(path);
        let r = self.meta(&format_args!("chmod {path}"), Repeat::Safe, |c| {
            c.ftp
                .site(format!("CHMOD {:o} {path}", mode & 0o7777))
                .map(drop)
                .map_err(|e| Error::from_ftp(Op::Chmod, e))
        });
        match r {
            Ok(()) => {
                self.pool.info().worked(cap);
                Ok(())
            }
            Err(e) => Err(self.learn_from(cap, e)),
        }
    }

    /// `SITE CPFR from` (350) then `SITE CPTO to` (250), one pair on one connection: the
    /// source is the connection's state between the two. Few servers list it in `FEAT`
    /// (proftpd's mod_copy does not), so the first copy is the probe: a `500`-`504` to
    /// `CPFR` is learned and later copies are [`Error::Unsupported`] without asking.
    /// Repeated as a whole after a broken connection, which is safe: it rewrites `to`.
    pub(super) fn copy_on_server(&self, from: &str, to: &str) -> Result<()> {
        let cap = Capability::Copy;
        if let Some(r) = self.pool.info().refusal(cap) {
            return Err(replay(r));
        }
        let (from, to) = (self.abs(from), self.abs(to));
        let r = self.meta(&format_args!("copy {from} to {to}"), Repeat::Safe, |c| {
            c.ftp
                .custom_command(format!("SITE CPFR {from}"), &[Status::RequestFilePending])
                .map_err(|e| Error::from_ftp(Op::Copy, e))?;
            c.ftp
                .custom_command(
                    format!("SITE CPTO {to}"),
                    &[Status::RequestedFileActionOk, Status::CommandOk],
                )
                .map(drop)
                .map_err(|e| Error::from_ftp(Op::Copy, e))
        });
        match r {
            Ok(()) => {
                self.pool.info().worked(cap);
                Ok(())
            }
            Err(e) => Err(self.learn_from(cap, e)),
        }
    }

    /// `MFMT`, or vsftpd's `MDTM time path`, whichever the server has (learned on first
    /// use), or the refusal learned before.
    pub(super) fn set_time(&self, path: &str, kind: Kind, mtime: SystemTime) -> Result<()> {
        let cap = Capability::SetTime {
            dir: kind == Kind::Dir,
        };
        if let Some(r) = self.pool.info().refusal(cap) {
            return Err(replay(r));
        }
        let path = self.abs(path);
        let stamp = listing::format_ftp_time(mtime);
        // MFMT (RFC draft, most servers); vsftpd instead takes "MDTM time path". Which one
        // works is learned on first use.
        loop {
            let how = self.mtime_cmd.load(Ordering::Relaxed);
            let cmd = match how {
                MTIME_UNKNOWN | MTIME_MFMT => format!("MFMT {stamp} {path}"),
                MTIME_MDTM => format!("MDTM {stamp} {path}"),
                _ => return Err(Error::Unsupported),
            };
            let r = self.meta(&format_args!("set time of {path}"), Repeat::Safe, |c| {
                c.ftp
                    .custom_command(cmd.clone(), &[Status::File])
                    .map(drop)
                    .map_err(|e| Error::from_ftp(Op::SetTime, e))
            });
            match r {
                Err(e) if not_implemented(&e) && how != MTIME_MDTM && how != MTIME_NONE => {
                    let next = if how == MTIME_MFMT || how == MTIME_UNKNOWN {
                        MTIME_MDTM
                    } else {
                        MTIME_NONE
                    };
                    self.mtime_cmd.store(next, Ordering::Relaxed);
                }
                Err(e) if not_implemented(&e) => {
                    self.mtime_cmd.store(MTIME_NONE, Ordering::Relaxed);
                    return Err(self.learn_from(cap, e));
                }
                Ok(()) => {
                    if how == MTIME_UNKNOWN {
                        self.mtime_cmd.store(MTIME_MFMT, Ordering::Relaxed);
                    }
                    self.pool.info().worked(cap);
                    return Ok(());
                }
                // `MDTM time path` is vsftpd's; a server without it (libunftp) reads the
                // whole argument as a name and answers `550 File not found` for a file the
                // listing just showed. Until it has worked once, that means "cannot".
                Err(e) if how == MTIME_MDTM && self.mdtm_took_time_as_name(&e) => {
                    self.mtime_cmd.store(MTIME_NONE, Ordering::Relaxed);
                    log::info!(
                        "{} has neither MFMT nor `MDTM time path` ({e}): times cannot be set; \
                         not asking again during this mount",
                        self.pool.endpoint().display()
                    );
                    return Err(Error::Unsupported);
                }
                Err(e) => return Err(self.learn_from(cap, e)),
            }
        }
    }

    /// Whether `MDTM time path`, never seen working on this mount, was refused as if the
    /// time were part of the file name.
    fn mdtm_took_time_as_name(&self, e: &Error) -> bool {
        let info = self.pool.info();
        let Error::Reply {
            code: 550, text, ..
        } = e
        else {
            return false;
        };
        let t = text.to_ascii_lowercase();
        (t.contains("not found") || t.contains("no such file"))
            && !info.has_worked(Capability::SetTime { dir: false })
            && !info.has_worked(Capability::SetTime { dir: true })
    }

    /// Learns what a refusal of `cap` (a chmod or a time, on a file or a directory) says
    /// about the server, and returns the error to report now.
    ///
    /// - A command the server does not implement: not supported, for files and directories.
    /// - A refusal that names a policy ([`Error::refuses_command`]): refused for this kind.
    /// - A plain `5xx` without an OS error in its text, for a kind that never worked, when
    ///   the other kind did: vsftpd (`550 Could not set file modification time.`) and
    ///   pyftpdlib (`550 ... is not retrievable`) set files' times but never directories'.
    ///   The first such refusal is taken as the rule for the kind; the error is the same
    ///   either way, only the round trip is saved.
    ///
    /// Anything else (`550 d: Permission denied`, a timeout) concerns this one object and is
    /// not learned.
    fn learn_from(&self, cap: Capability, e: Error) -> Error {
        learn_from(self.pool.info(), &self.pool.endpoint().display(), cap, e)
    }
}

/// See [`FtpRemote::learn_from`].
fn learn_from(info: &ServerInfo, server: &str, cap: Capability, e: Error) -> Error {
    let other = match cap {
        Capability::Chmod { dir } => Capability::Chmod { dir: !dir },
        Capability::SetTime { dir } => Capability::SetTime { dir: !dir },
        c => c,
    };
    if not_implemented(&e) {
        info.learn(&[cap, other], &e, server);
        return Error::Unsupported;
    }
    let for_this_kind = e.refuses_command()
        || (e.code().is_some_and(|c| (500..600).contains(&c))
            && !e.names_file_error()
            && !info.has_worked(cap)
            && info.has_worked(other));
    if for_this_kind {
        info.learn(&[cap], &e, server);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(op: Op, code: u32, text: &str) -> Error {
        Error::Reply {
            op,
            code,
            text: text.into(),
        }
    }

    const FILE_TIME: Capability = Capability::SetTime { dir: false };
    const DIR_TIME: Capability = Capability::SetTime { dir: true };

    #[test]
    fn a_directory_time_refused_where_file_times_work_is_learned_for_directories_only() {
        let info = ServerInfo::default();
        info.worked(FILE_TIME);
        let vsftpd = said(Op::SetTime, 550, "Could not set file modification time.");
        let e = learn_from(&info, "s", DIR_TIME, vsftpd);
        assert_eq!(e.errno(), libc::EPERM, "the server's refusal, as it was");
        assert_eq!(replay(info.refusal(DIR_TIME).unwrap()).errno(), libc::EPERM);
        assert!(info.refusal(FILE_TIME).is_none());
    }

    #[test]
    fn a_refusal_that_names_the_file_is_not_learned() {
        let info = ServerInfo::default();
        info.worked(FILE_TIME);
        let e = learn_from(
            &info,
            "s",
            DIR_TIME,
            said(Op::SetTime, 550, "d: Permission denied"),
        );
        assert_eq!(e.errno(), libc::EACCES);
        assert!(info.refusal(DIR_TIME).is_none());
        // Nor a plain refusal before anything showed the command works at all.
        let fresh = ServerInfo::default();
        learn_from(
            &fresh,
            "s",
            DIR_TIME,
            said(Op::SetTime, 550, "Could not set"),
        );
        assert!(fresh.refusal(DIR_TIME).is_none());
        // Nor one for a kind that worked before: it is this object.
        info.worked(DIR_TIME);
        learn_from(
            &info,
            "s",
            DIR_TIME,
            said(Op::SetTime, 550, "Could not set"),
        );
        assert!(info.refusal(DIR_TIME).is_none());
    }

    #[test]
    fn a_missing_command_is_unsupported_for_both_kinds() {
        let info = ServerInfo::default();
        let chmod = Capability::Chmod { dir: false };
        let e = learn_from(
            &info,
            "s",
            chmod,
            said(Op::Chmod, 502, "SITE CHMOD unknown"),
        );
        assert!(matches!(e, Error::Unsupported));
        for dir in [false, true] {
            let r = info.refusal(Capability::Chmod { dir }).unwrap();
            assert!(matches!(replay(r), Error::Unsupported));
        }
    }

    #[test]
    fn a_policy_refusal_is_learned_at_once() {
        let info = ServerInfo::default();
        let chmod_dir = Capability::Chmod { dir: true };
        let e = said(Op::Chmod, 550, "CHMOD not allowed on directories");
        assert_eq!(learn_from(&info, "s", chmod_dir, e).errno(), libc::EPERM);
        assert!(info.refusal(chmod_dir).is_some());
        assert!(info.refusal(Capability::Chmod { dir: false }).is_none());
    }
}
