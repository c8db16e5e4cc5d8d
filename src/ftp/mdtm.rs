//! Exact modification times on servers without `MLSD`, from `MDTM`, pipelined.
//!
//! `LIST` dates are for people: `Jan  2 03:04` for recent files, `Jan  2  2020` for older
//! ones, so a time read from them is cut to the minute or to the day. Tools that compare
//! times (`rsync -a`, `make`, `cp -u`) then see every file as changed once a listing is
//! fetched again: on vsftpd, `rsync -a` re-sent 49 files of 49 on every run. `MDTM name`
//! answers `213 YYYYMMDDHHMMSS` in UTC, to the second.
//!
//! One `MDTM` per file at one round trip each would make listing a directory of 1000 files
//! cost 1000 round trips. So the commands for a directory's regular files are written back to
//! back on the control connection and the replies read afterwards, in order: one round trip
//! per [`BATCH`] files. suppaftp has no pipelining, so the commands go straight to the
//! control socket and the replies are read from it with the usual bounds (line length, the
//! socket's read timeout, the lease's deadline); that needs the plain socket, so over TLS the
//! commands go one at a time through suppaftp (correct, only slower).
//!
//! What can go wrong, and what we do:
//! - one file's `550` (vanished, not readable): that file keeps its `LIST` time;
//! - `502`, or a `500` before any `MDTM` ever worked (no such command), or `MDTM` not in
//!   `FEAT`: never asked again this mount; a `500` once `MDTM` has worked is about that
//!   file's name, which keeps its `LIST` time;
//! - a server that loses pipelined commands (no reply within the timeout, a reply that does
//!   not parse, bytes after the last expected reply): the connection is given up, the listing
//!   keeps its `LIST` times, and later directories ask one command at a time;
//! - a directory with more than [`MAX_FILES`] files: the rest keep their `LIST` times, so a
//!   huge directory does not hold a connection for long;
//! - asking stops once half the time left to the listing's deadline is spent (one command at
//!   a time over a slow link adds up): the files not asked keep their `LIST` times, and the
//!   listing itself still arrives within its deadline.
//!
//! `-o exact_times=off` turns all of this off.

use std::io::{BufReader, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Instant, SystemTime};

use suppaftp::{FtpError, Status};

use super::conn::Conn;
use super::listing::parse_mlsd_time;
use crate::error::{Error, Op, Result};
use crate::remote::{Kind, RemoteEntry};

/// Commands written before their replies are read: about 5 KiB of commands, well within
/// any socket buffer, so neither side can block writing while the other is not reading.
pub const BATCH: usize = 100;
/// The most files of one directory whose times are asked for.
pub const MAX_FILES: usize = 2000;
/// The longest reply line kept (a `213` is 20 bytes; a `550` repeats the name).
const MAX_REPLY_LINE: usize = 8 * 1024;

const PIPELINED: u8 = 0;
const ONE_BY_ONE: u8 = 1;
const NEVER: u8 = 2;

/// How this mount asks for exact times; learned as it goes.
pub struct ExactTimes {
    how: AtomicU8,
    /// Some `MDTM` was answered with a time: the server has the command.
    worked: AtomicBool,
}

/// What `MDTM` said about one file.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Time(SystemTime),
    /// Refused for this file (or a `213` we cannot read): keep the `LIST` time.
    Refused(u32),
    /// `500`/`502`: the server has no `MDTM`, unless it answered one before.
    Unknown,
}

/// Counts of what one listing cost, for the debug log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Asked {
    pub files: usize,
    pub round_trips: usize,
    pub exact: usize,
}

impl ExactTimes {
    pub fn new(on: bool) -> ExactTimes {
        ExactTimes {
            how: AtomicU8::new(if on { PIPELINED } else { NEVER }),
            worked: AtomicBool::new(false),
        }
    }

    /// Replaces the `LIST` times of the regular files in `entries` (listed from the server
    /// directory `dir`) by their `MDTM` times, within half the time left to `deadline`.
    /// `Err` means the connection is out of step and must not be reused; the entries keep
    /// whatever times they have then.
    pub fn fill(
        &self,
        c: &mut Conn,
        dir: &str,
        entries: &mut [RemoteEntry],
        deadline: Instant,
    ) -> Result<Asked> {
        let mut asked = Asked::default();
        let start = Instant::now();
        let stop_by = start + deadline.saturating_duration_since(start) / 2;
        if self.how.load(Ordering::Relaxed) == NEVER {
            return Ok(asked);
        }
        if !c.caps.mdtm {
            self.never("MDTM is not in the server's FEAT");
            return Ok(asked);
        }
        let files: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == Kind::File && !e.name.contains(['\r', '\n']))
            .map(|(i, _)| i)
            .collect();
        if files.len() > MAX_FILES {
            log::debug!(
                "{dir}: {} files; exact times for the first {MAX_FILES} only",
                files.len()
            );
        }
        let base = dir.trim_end_matches('/');
        for chunk in files[..files.len().min(MAX_FILES)].chunks(BATCH) {
            if Instant::now() >= stop_by {
                log::debug!("{dir}: out of time for MDTM; the other files keep LIST's times");
                break;
            }
            let paths: Vec<String> = chunk
                .iter()
                .map(|&i| format!("{base}/{}", entries[i].name))
                .collect();
            let pipelined = self.how.load(Ordering::Relaxed) == PIPELINED && !c.secure;
            let replies = if pipelined {
                match pipelined_mdtm(c, &paths) {
                    Ok(r) => {
                        asked.round_trips += 1;
                        r
                    }
                    Err(e) => {
                        if self.how.swap(ONE_BY_ONE, Ordering::Relaxed) == PIPELINED {
                            log::info!(
                                "{dir}: pipelined MDTM failed ({e}); asking one file at a time from now on"
                            );
                        }
                        return Err(e);
                    }
                }
            } else {
                let mut r = Vec::with_capacity(paths.len());
                for p in &paths {
                    if Instant::now() >= stop_by {
                        break;
                    }
                    r.push(one_mdtm(c, p)?);
                    asked.round_trips += 1;
                    if r.last() == Some(&Reply::Unknown) && !self.worked.load(Ordering::Relaxed) {
                        break;
                    }
                }
                r
            };
            for (&i, reply) in chunk.iter().zip(replies) {
                asked.files += 1;
                match reply {
                    Reply::Time(t) => {
                        entries[i].mtime = Some(t);
                        asked.exact += 1;
                        self.worked.store(true, Ordering::Relaxed);
                    }
                    Reply::Refused(code) => {
                        log::debug!("{base}/{}: MDTM refused ({code})", entries[i].name)
                    }
                    Reply::Unknown if self.worked.load(Ordering::Relaxed) => {
                        log::debug!("{base}/{}: MDTM refused (500)", entries[i].name)
                    }
                    Reply::Unknown => {
                        self.never("the server does not know MDTM");
                        return Ok(asked);
                    }
                }
            }
        }
        Ok(asked)
    }

    fn never(&self, why: &str) {
        if self.how.swap(NEVER, Ordering::Relaxed) != NEVER {
            log::info!("{why}: file times on LIST-only listings are as precise as LIST's");
        }
    }
}

/// Reads one reply's code: `213` with a time, anything else as a refusal.
fn classify(code: u32, text: &str) -> Reply {
    match code {
        213 => {
            let stamp = text.get(4..).unwrap_or("").trim();
            match parse_mlsd_time(stamp) {
                Some(t) => Reply::Time(t),
                None => Reply::Refused(code),
            }
        }
        500 | 502 => Reply::Unknown,
        c => Reply::Refused(c),
    }
}

/// One `MDTM` through suppaftp (TLS connections, and servers that cannot take pipelining).
fn one_mdtm(c: &mut Conn, path: &str) -> Result<Reply> {
    match c
        .ftp
        .custom_command(format!("MDTM {path}"), &[Status::File])
    {
        Ok(r) => Ok(classify(213, &String::from_utf8_lossy(&r.body))),
        Err(FtpError::UnexpectedResponse(r)) => Ok(classify(r.status.code(), "")),
        Err(e) => Err(Error::from_ftp(Op::List, e)),
    }
}

/// All commands written at once, then every reply read, in order. The control connection
/// is idle when this is called (suppaftp has read the last reply whole, and servers send
/// nothing unasked), so the bytes read here are exactly these replies; anything else is a
/// server out of step, and an error.
fn pipelined_mdtm(c: &mut Conn, paths: &[String]) -> Result<Vec<Reply>> {
    let io = |e| Error::from_io(Op::List, e);
    let socket = c.ftp.get_ref();
    let mut out = Vec::with_capacity(paths.len() * 48);
    for p in paths {
        // Names come from a listing that dropped CR and LF; UTF-8 has no 0xFF to escape.
        out.extend_from_slice(b"MDTM ");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    (&*socket).write_all(&out).map_err(io)?;
    crate::status::stats().written(&out);
    let mut reader = BufReader::with_capacity(16 * 1024, &*socket);
    let mut replies = Vec::with_capacity(paths.len());
    while replies.len() < paths.len() {
        let (code, text) = read_reply(&mut reader)?;
        replies.push(classify(code, &text));
    }
    if !reader.buffer().is_empty() {
        return Err(out_of_step("more replies than MDTM commands"));
    }
    Ok(replies)
}

fn out_of_step(detail: &str) -> Error {
    Error::Protocol {
        op: Op::List,
        detail: detail.into(),
    }
}

/// One reply, single- or multi-line (`213-…` up to `213 …`): its code and last line.
fn read_reply(r: &mut impl std::io::BufRead) -> Result<(u32, String)> {
    let mut line = Vec::with_capacity(64);
    let mut first: Option<u32> = None;
    // A multi-line reply is bounded too: a server that never ends one is out of step.
    for _ in 0..64 {
        line.clear();
        let (n, fits) = super::read_line_bounded(r, &mut line, MAX_REPLY_LINE)
            .map_err(|e| Error::from_io(Op::List, e))?;
        if n == 0 {
            return Err(Error::from_io(
                Op::List,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed before the MDTM replies",
                ),
            ));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let code = text
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u32>().ok());
        let sep = text.as_bytes().get(3).copied();
        match (first, code, sep) {
            (None, Some(c), Some(b' ')) if fits => return Ok((c, text)),
            (None, Some(c), Some(b'-')) => first = Some(c),
            (None, _, _) => return Err(out_of_step("a reply that does not start with a code")),
            (Some(f), Some(c), Some(b' ')) if c == f => return Ok((c, text)),
            (Some(_), _, _) => {}
        }
    }
    Err(out_of_step("a reply of more than 64 lines"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mdtm_replies_are_read_in_order_including_multi_line_ones() {
        let data = b"213 20200102030405\r\n550 gone: No such file\r\n213-a\r\n x\r\n213 20200102030406.5\r\n500 what?\r\n";
        let mut r = std::io::BufReader::new(&data[..]);
        let got: Vec<Reply> = (0..4)
            .map(|_| {
                let (c, t) = read_reply(&mut r).unwrap();
                classify(c, &t)
            })
            .collect();
        let t0 = parse_mlsd_time("20200102030405").unwrap();
        assert_eq!(got[0], Reply::Time(t0));
        assert_eq!(got[1], Reply::Refused(550));
        assert_eq!(
            got[2],
            Reply::Time(t0 + std::time::Duration::from_millis(1500))
        );
        assert_eq!(got[3], Reply::Unknown);
    }

    #[test]
    fn a_reply_without_a_code_or_a_closed_connection_is_an_error() {
        let mut r = std::io::BufReader::new(&b"hello\r\n"[..]);
        assert!(read_reply(&mut r).is_err());
        let mut r = std::io::BufReader::new(&b"213-never ends\r\n"[..]);
        assert!(read_reply(&mut r).is_err());
        let mut r = std::io::BufReader::new(&b"213 garbage\r\n"[..]);
        let (c, t) = read_reply(&mut r).unwrap();
        assert_eq!(classify(c, &t), Reply::Refused(213));
    }
}
