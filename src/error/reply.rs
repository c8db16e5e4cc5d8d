//! What a server's failure reply says, read more closely than its code.
//!
//! A reply code alone is too coarse, and servers reuse codes: pure-ftpd answers a forbidden
//! rename with `451` (by the RFC, a transient local error) and puts the real cause, the
//! operating system's error text, in the reply (`Rename/move failure: Permission denied`);
//! proftpd refuses `APPE` for good with a `451 ... try again`; pure-ftpd and vsftpd say "could
//! not write" for a full disk. suppaftp knows only the RFC 959 codes by name, and ends a
//! multi-line reply at any coded line. So this module reads the reply itself: its code as
//! sent ([`reply_code`]), its text without the codes ([`reply_text`]), and the errno its
//! text or code implies for one [`Op`]. It only answers questions:
//! [`Error::errno`](super::Error::errno) remains the one place that decides, and asks here
//! in a fixed order.

use super::Op;

/// Many servers (pure-ftpd, vsftpd, proftpd) put the operating system's error text in
/// their failure replies, and it is more precise than the code: pure-ftpd answers a
/// forbidden rename with `451 Rename/move failure: Permission denied`, where 451 alone
/// would mean a transient local error. A failure reply whose text names one of these
/// errors gets that errno.
pub(super) fn text_errno(code: u32, text: &str) -> Option<i32> {
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
pub(super) fn upload_write_failure(op: Op, code: u32, text: &str) -> Option<i32> {
    let t = text.to_ascii_lowercase();
    (matches!(op, Op::Store | Op::Append) && code == 451 && t.contains("writ"))
        .then_some(libc::ENOSPC)
}

/// A `4xx` is "not now" by the RFC, but servers use `451` for refusals that will not go
/// away: proftpd answers `APPE` with `451 f: Append/Restart not permitted, try again` for
/// as long as `AllowStoreRestart` is off, whatever the "try again" says. A 4xx whose text
/// names such a cause is a permission error, so it is not retried (see
/// [`Error::is_retryable`](super::Error::is_retryable)): "denied" is `EACCES`, "not
/// permitted"/"not allowed" `EPERM`.
pub(super) fn lasting_refusal(code: u32, text: &str) -> Option<i32> {
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
pub(super) const FILE_ERRORS: [&str; 4] = [
    "permission denied",
    "operation not permitted",
    "no such file",
    "read-only file system",
];

/// Reply code → errno for one operation. Codes follow RFC 959 and RFC 640: the first digit
/// says whether the failure is transient (4) or permanent (5); the second whether it concerns
/// syntax (0), the connection (2), authentication (3) or the file system (5).
pub(super) fn reply_errno(op: Op, code: u32) -> i32 {
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
pub(super) fn ended_by_another_code(body: &[u8]) -> bool {
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
    use crate::error::Error;

    fn said(op: Op, code: u32, text: &str) -> Error {
        Error::Reply {
            op,
            code,
            text: text.into(),
        }
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
}
