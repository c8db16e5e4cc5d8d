//! Reading what servers actually answer, not what RFC 959 says they answer.
//!
//! suppaftp's reply reader ends a multi-line reply at *any* line that starts with three
//! digits and a space (a tolerance for glFTPd), and its `FEAT` parser refuses the whole reply
//! when one line inside is not indented. Servers in the wild send both: a `211-` block with
//! `999 what is this` in it, features without the leading space. lftp, curl and rclone mount
//! such servers; ftpfs failed with `protocol error: malformed reply`. suppaftp's reader is
//! private, so it cannot be made tolerant from outside; wrapping its stream is not possible
//! either (it owns the socket, and over TLS the bytes are encrypted below it).
//!
//! The smallest robust design: the one reply where it matters at mount time, `FEAT`, is read
//! here, as [`super::mdtm`] reads pipelined `MDTM` replies: the command is written on the
//! control stream and the reply read from suppaftp's own buffered reader ([`exchange`],
//! through the one hook our vendored suppaftp adds for it, so plain and TLS connections
//! alike) by [`read_reply`], which follows RFC 959 §4.2 (only a line starting with the
//! opening code and a space ends a multi-line reply; anything else inside is text) with the
//! usual bounds ([`MAX_REPLY`] bytes, [`MAX_LINES`] lines, the socket's read timeout and the
//! connection's watchdog). Between two commands suppaftp's buffer is empty, so nothing is
//! lost; bytes after the reply mean the dialogue is out of step, and the connection is given
//! up.
//!
//! The greeting, read by suppaftp as it connects, gets the same treatment on a plain
//! connection: [`skip_to_greeting`] reads a multi-line greeting up to its last line (and any
//! `120 not ready` before it), so suppaftp only sees that line.
//!
//! The other replies go through suppaftp, with tolerant expectations where servers differ:
//! `PWD` without quotes ([`pwd_path`]), `TYPE I` answered `250`. ftpfs sends no `SYST`.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use crate::error::{Error, Op, Result};

/// The most bytes one reply may have (suppaftp's own limit).
pub const MAX_REPLY: usize = 256 * 1024;
/// The most lines one reply may have.
pub const MAX_LINES: usize = 4096;

/// One reply: its code, and its lines without line ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u32,
    pub lines: Vec<String>,
}

impl Reply {
    /// The reply as the server sent it, for a log line or an error.
    pub fn text(&self) -> String {
        self.lines.join("; ")
    }
}

/// The code of a reply line: three digits, then a space, a dash, or the end of the line.
fn code_of(line: &str) -> Option<(u32, Option<u8>)> {
    let b = line.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code = line[..3].parse().ok()?;
    Some((code, b.get(3).copied()))
}

/// Reads one reply, following RFC 959 §4.2. `Err` is `EPROTO` for a reply that does not
/// start with a code or exceeds the bounds, the I/O error otherwise.
pub fn read_reply(r: &mut (impl BufRead + ?Sized), op: Op) -> Result<Reply> {
    let protocol = |detail: &str| Error::Protocol {
        op,
        detail: detail.into(),
    };
    let mut lines = Vec::new();
    let mut total = 0;
    let mut opened: Option<u32> = None;
    let mut raw = Vec::with_capacity(128);
    while lines.len() < MAX_LINES {
        raw.clear();
        let (n, fits) = super::read_line_bounded(r, &mut raw, MAX_REPLY - total)
            .map_err(|e| Error::from_io(op, e))?;
        if n == 0 {
            return Err(Error::from_io(
                op,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a reply",
                ),
            ));
        }
        total += n;
        if !fits {
            return Err(protocol("reply too large"));
        }
        let line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        match (opened, code_of(&line)) {
            (None, Some((code, None | Some(b' ')))) => {
                lines.push(line);
                return Ok(Reply { code, lines });
            }
            (None, Some((code, Some(b'-')))) => opened = Some(code),
            (None, _) => {
                log::warn!("a reply that does not start with a code: {line:?}");
                return Err(protocol("malformed reply"));
            }
            (Some(open), Some((code, Some(b' ') | None))) if code == open => {
                lines.push(line);
                return Ok(Reply { code, lines });
            }
            // Text: RFC 959 allows anything here, including other codes.
            (Some(_), _) => {}
        }
        lines.push(line);
    }
    Err(protocol("reply of too many lines"))
}

/// Reads off the socket what comes before the greeting's last line, so that suppaftp, which
/// takes the first reply as the greeting and ends a multi-line reply at any line with a
/// code, reads a greeting it understands:
///
/// - `120 Service ready in nnn minutes`, sent by a server starting up or busy before the real
///   `220` (at most 16 of them);
/// - a multi-line greeting (`220-` ... `220 `) up to its last line: its text may hold lines
///   like `999 what is this`, which suppaftp would take for the end.
///
/// Lines are peeked before they are read, so the last line stays for suppaftp. Bounded: a line
/// of 4 KiB, [`MAX_REPLY`] bytes in all, a partial line waited for at most `wait` (each peek
/// by the socket's read timeout and the connection's watchdog).
pub fn skip_to_greeting(stream: &std::net::TcpStream, wait: std::time::Duration) -> Result<()> {
    let op = Op::Connect;
    let io = |e| Error::from_io(op, e);
    let protocol = |detail: &str| Error::Protocol {
        op,
        detail: detail.into(),
    };
    let until = std::time::Instant::now() + wait;
    let (mut not_ready, mut opened, mut consumed) = (0, false, 0);
    let mut head = vec![0u8; 4096];
    loop {
        let n = stream.peek(&mut head).map_err(io)?;
        if n == 0 {
            // Closed: suppaftp reports it.
            return Ok(());
        }
        let Some(end) = head[..n].iter().position(|&b| b == b'\n') else {
            if n == head.len() {
                return Err(protocol("greeting line too long"));
            }
            if std::time::Instant::now() >= until {
                return Ok(());
            }
            // A partial line: wait for the rest.
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        };
        let line = String::from_utf8_lossy(&head[..end]).trim_end().to_string();
        match (opened, code_of(&line)) {
            (false, Some((120, _))) => {
                not_ready += 1;
                if not_ready > 16 {
                    return Err(protocol("too many 120 replies"));
                }
                log::info!("server is not ready yet: {line}");
            }
            (false, Some((220, Some(b'-')))) => opened = true,
            (false, _) => return Ok(()),
            (true, Some((220, Some(b' ') | None))) => return Ok(()),
            (true, _) => {
                if code_of(&line).is_some() {
                    log::debug!("greeting: a line with a code inside: {line:?}");
                }
            }
        }
        consumed += end + 1;
        if consumed > MAX_REPLY {
            return Err(protocol("reply too large"));
        }
        std::io::Read::read_exact(&mut &*stream, &mut head[..end + 1]).map_err(io)?;
    }
}

/// Sends `command` on the control connection of `ftp` and reads its reply with
/// [`read_reply`]. Only between commands.
pub fn ask(ftp: &super::conn::Ftp, command: &str, op: Op) -> Result<Reply> {
    log::trace!("CC OUT (direct): {command}");
    let reply = exchange(ftp, format!("{command}\r\n").as_bytes(), op, |r| {
        read_reply(r, op)
    })?;
    log::trace!("CC IN (direct): {}", reply.text());
    Ok(reply)
}

/// Writes `out` (whole command lines) on the control connection of `ftp`, plain or TLS, and
/// lets `read` read the replies from suppaftp's own buffered reader (the patched
/// `with_control_stream`), so no byte of a later reply is lost to another buffer. Only
/// between commands: the connection is idle (suppaftp has read the last reply whole, and
/// servers send nothing unasked), so what is read is exactly these replies; bytes left
/// after them mean a server out of step, and an error.
pub fn exchange<R>(
    ftp: &super::conn::Ftp,
    out: &[u8],
    op: Op,
    read: impl FnOnce(&mut dyn BufRead) -> Result<R>,
) -> Result<R> {
    ftp.with_control_stream(|stream| {
        let io = |e| Error::from_io(op, e);
        stream.get_mut().write_all(out).map_err(io)?;
        stream.get_mut().flush().map_err(io)?;
        crate::status::stats().written(out);
        let r = read(stream)?;
        if !stream.buffer().is_empty() {
            return Err(Error::Protocol {
                op,
                detail: "bytes after the replies".into(),
            });
        }
        Ok(r)
    })
}

/// The features of a `211` `FEAT` reply, names upper-cased, each with its parameters.
///
/// Tolerant, as RFC 2389 asks clients to be: the opening and closing lines are not features;
/// unindented lines count as well as indented ones; a line that carries a reply code (`999
/// what is this`), an empty one, or one whose name is not a command word is skipped with a
/// debug line.
pub fn parse_feat(reply: &Reply) -> HashMap<String, String> {
    let mut features = HashMap::new();
    let n = reply.lines.len();
    if n < 3 {
        return features;
    }
    for line in &reply.lines[1..n - 1] {
        let text = line.trim();
        let (name, params) = text.split_once(' ').unwrap_or((text, ""));
        let word = !name.is_empty()
            && name.len() <= 16
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !word || code_of(text).is_some() {
            log::debug!("FEAT: ignoring line {line:?}");
            continue;
        }
        features.insert(name.to_ascii_uppercase(), params.trim().to_string());
    }
    features
}

/// The current directory, from `PWD`, tolerant of servers that answer without quotes
/// (see [`pwd_path`]).
pub fn pwd(ftp: &mut super::conn::Ftp) -> Result<String> {
    let r = ftp
        .custom_command("PWD", &[suppaftp::Status::PathCreated])
        .map_err(|e| Error::from_ftp(Op::Stat, e))?;
    let body = String::from_utf8_lossy(&r.body);
    super::reply::pwd_path(&body).ok_or_else(|| {
        log::warn!("PWD: no directory in the reply {:?}", body.trim_end());
        Error::Protocol {
            op: Op::Stat,
            detail: "no directory in the PWD reply".into(),
        }
    })
}

/// The directory in a `257` reply to `PWD`: between the first and the last double quote
/// (`""` inside is one quote, RFC 959 appendix II), or, from servers that send no quotes,
/// the first word that is an absolute path.
pub fn pwd_path(body: &str) -> Option<String> {
    let text = body.lines().next()?.get(4..)?.trim();
    if let (Some(a), Some(b)) = (text.find('"'), text.rfind('"')) {
        if a < b {
            return Some(text[a + 1..b].replace("\"\"", "\""));
        }
    }
    text.split_whitespace()
        .find(|w| w.starts_with('/'))
        .map(|w| w.trim_end_matches([',', ';', '.']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn read(s: &str) -> Result<Reply> {
        read_reply(&mut BufReader::new(s.as_bytes()), Op::Connect)
    }

    #[test]
    fn a_multiline_reply_ends_only_at_its_own_code_and_a_space() {
        let r = read(
            "211-Features:\r\n MDTM\r\n999 what is this\r\nUTF8\r\n211-not yet\r\n211 End\r\n",
        )
        .unwrap();
        assert_eq!(r.code, 211);
        assert_eq!(r.lines.len(), 6);
        let f = parse_feat(&r);
        assert!(f.contains_key("MDTM") && f.contains_key("UTF8"), "{f:?}");
        assert!(
            !f.contains_key("999") && !f.contains_key("211-NOT"),
            "{f:?}"
        );
    }

    #[test]
    fn feat_parameters_are_kept_and_names_upper_cased() {
        let r = read("211-x\r\n mlst type*;size*;\r\n REST STREAM\r\n211 end\r\n").unwrap();
        let f = parse_feat(&r);
        assert_eq!(f["MLST"], "type*;size*;");
        assert_eq!(f["REST"], "STREAM");
        assert!(parse_feat(&read("211 no features\r\n").unwrap()).is_empty());
    }

    #[test]
    fn garbage_and_endless_replies_are_protocol_errors() {
        assert!(matches!(read("hello\r\n"), Err(Error::Protocol { .. })));
        assert!(read("211-never ends\r\n text\r\n").is_err());
        let endless = format!("211-x\r\n{}", " UTF8\r\n".repeat(MAX_LINES));
        assert!(matches!(read(&endless), Err(Error::Protocol { .. })));
        let long = format!("211 {}\r\n", "a".repeat(MAX_REPLY));
        assert!(matches!(read(&long), Err(Error::Protocol { .. })));
    }

    #[test]
    fn protected_and_unknown_codes_are_read_as_replies() {
        assert_eq!(read("631 base64data\r\n").unwrap().code, 631);
        assert_eq!(read("999-a\r\n998 b\r\n999 c\r\n").unwrap().code, 999);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_replies_never_panic_and_end_within_bounds(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2000)
        ) {
            let mut r = BufReader::new(&bytes[..]);
            // Whatever comes, each call consumes something or ends: at most one per byte.
            for _ in 0..=bytes.len() {
                match read_reply(&mut r, Op::Connect) {
                    Ok(reply) => {
                        parse_feat(&reply);
                        pwd_path(&reply.lines.join("\n"));
                    }
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn coded_lines_inside_a_multiline_reply_never_end_it(
            inner in proptest::collection::vec("[0-9]{3}[ -][ -~]{0,20}", 0..20)
        ) {
            let inner: Vec<String> = inner.into_iter().filter(|l| !l.starts_with("211 ")).collect();
            let text = format!("211-start\r\n{}211 end\r\n", inner.iter().map(|l| format!("{l}\r\n")).collect::<String>());
            let reply = read_reply(&mut BufReader::new(text.as_bytes()), Op::Connect).unwrap();
            proptest::prop_assert_eq!(reply.code, 211);
            proptest::prop_assert_eq!(reply.lines.len(), inner.len() + 2);
        }
    }

    #[test]
    fn pwd_is_read_with_or_without_quotes() {
        assert_eq!(
            pwd_path("257 \"/home/a\" is cwd").as_deref(),
            Some("/home/a")
        );
        assert_eq!(
            pwd_path("257 \"/a \"\"q\"\" b\"").as_deref(),
            Some("/a \"q\" b")
        );
        assert_eq!(
            pwd_path("257 /srv/ftp is the current directory").as_deref(),
            Some("/srv/ftp")
        );
        assert_eq!(pwd_path("257 is current.").as_deref(), None);
    }
}
