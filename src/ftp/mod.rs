//! The [`Remote`] over FTP: a connection pool, listings and streaming reads.
//!
//! Listings: `MLSD <path>` when the server advertises `MLST`, since its lines are
//! machine-readable and its times are UTC. Otherwise `CWD <path>` then `LIST -a` (falling back
//! to plain `LIST` if the server refuses the flag): many servers glob or parse options in a
//! `LIST` argument, so a directory named `-l` or `[abc]` would list the wrong thing, while
//! `CWD` takes its argument literally. Listing data is read with bounds: a line longer than
//! [`MAX_LINE`] is skipped, a listing larger than [`MAX_LISTING`] fails with `EPROTO`.
//! `LIST` times are cut to the minute or the day, so a `LIST` listing's regular files get
//! their exact times from pipelined `MDTM` on the same connection ([`mdtm`]).

pub mod active;
mod attrs;
pub mod caps;
pub mod conn;
pub mod deflate;
pub mod features;
pub mod listing;
pub mod mdtm;
pub mod pool;
mod prepare;
pub mod reader;
pub mod reply;
pub mod resolve;
pub mod retry;
mod session;
mod spare;
pub mod tls;
mod upload;
pub mod watchdog;

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use suppaftp::Status;

use self::caps::{Capability, ServerInfo};
use self::conn::Endpoint;
use self::pool::{Pool, Purpose};
use self::reader::FtpReader;
use self::retry::Repeat;
use self::upload::{read_into, verify_size, FtpUpload, Source};
use crate::error::{Error, Op, Result};
use crate::remote::{Kind, Remote, RemoteEntry, Upload, UploadStream};

/// The longest listing line we keep (a name is at most 255 bytes; facts add little).
pub const MAX_LINE: usize = 16 * 1024;
/// The most listing bytes we read for one directory.
pub const MAX_LISTING: u64 = 256 * 1024 * 1024;

pub struct FtpRemote {
    pool: Arc<Pool>,
    /// Absolute server path of the mount's root, without trailing slash ("" for "/").
    root: String,
    /// Set once the server refused `LIST -a`.
    plain_list: AtomicBool,
    listing: ListingMode,
    /// How this server sets mtimes: unknown, MFMT, MDTM with a time, or not at all.
    mtime_cmd: AtomicU8,
    /// Exact times for `LIST` listings (`-o exact_times=`).
    exact: mdtm::ExactTimes,
}

const MTIME_UNKNOWN: u8 = 0;
const MTIME_MFMT: u8 = 1;
const MTIME_MDTM: u8 = 2;
const MTIME_NONE: u8 = 3;

/// Which listing command to use (`-o listing=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ListingMode {
    /// MLSD when advertised, else LIST.
    #[default]
    Auto,
    /// Always LIST, for servers whose MLSD is broken.
    List,
}

impl FtpRemote {
    /// Connects and logs in once (so a wrong password or an unreachable server is reported
    /// before anything is mounted), resolves the root path and checks it is a directory.
    ///
    /// `path` follows curl's reading of FTP URLs: relative to the login directory, absolute
    /// when it starts with `//` (`ftp://host//srv/data`).
    pub fn connect(
        endpoint: Endpoint,
        connections: usize,
        path: &str,
        listing: ListingMode,
    ) -> Result<FtpRemote> {
        let info = Arc::new(ServerInfo::new(endpoint.pipelining));
        let pool = Pool::new(endpoint, info, connections);
        // No retries here: a mount that cannot log in says so at once.
        let mut lease = pool.checkout(Purpose::Meta, pool.policy().deadline_from_now())?;
        let root = lease.run(|c| {
            // The first connection asked PWD with its set-up commands (see `session`).
            let home = match (path.starts_with("//"), c.home.take()) {
                (true, _) => String::new(),
                (false, Some(home)) => home,
                (false, None) => reply::pwd(&mut c.ftp)?,
            };
            let joined = format!("{}/{}", home.trim_end_matches('/'), path.trim_matches('/'));
            let root = normalize(&joined);
            // The home directory (PWD just named it) and `/` need no CWD to prove they are
            // directories; a path below does. Every command names absolute paths, so this
            // CWD keeps the data connection the first connection has open (suppaftp's `cwd`
            // would close it unused, which libunftp can answer with the next transfer
            // empty, see `active`).
            if !path.trim_matches('/').is_empty() {
                let dir = if root.is_empty() { "/" } else { &root };
                let r = reply::ask(&c.ftp, &format!("CWD {dir}"), Op::Stat)?;
                if !matches!(r.code, 200 | 250) {
                    return Err(Error::Reply {
                        op: Op::Stat,
                        code: r.code,
                        text: r.text(),
                    });
                }
            }
            Ok(root)
        })?;
        drop(lease);
        // A second connection, logged in while the mount goes live (see `grow_one`).
        pool.grow_one();
        log::info!(
            "mounted root is {:?} on {}",
            if root.is_empty() { "/" } else { &root },
            pool.endpoint().display()
        );
        Ok(FtpRemote {
            pool,
            root,
            plain_list: AtomicBool::new(false),
            listing,
            mtime_cmd: AtomicU8::new(MTIME_UNKNOWN),
            exact: mdtm::ExactTimes::new(true),
        })
    }

    /// `-o exact_times=off`: `LIST` listings keep `LIST`'s times, without `MDTM`.
    pub fn with_exact_times(mut self, on: bool) -> FtpRemote {
        self.exact = mdtm::ExactTimes::new(on);
        self
    }

    /// `-o compress=`: `MODE Z` for downloads (see [`deflate`]).
    pub fn with_compress(self, c: deflate::Compress) -> FtpRemote {
        self.pool.info().deflate.set(c);
        self
    }

    /// The absolute server path of a mount-relative path.
    fn abs(&self, rel: &str) -> String {
        match (self.root.is_empty(), rel.is_empty()) {
            (true, true) => "/".to_string(),
            (true, false) => format!("/{rel}"),
            (false, true) => self.root.clone(),
            (false, false) => format!("{}/{rel}", self.root),
        }
    }

    pub fn shutdown(&self) {
        self.pool.shutdown();
    }

    /// The connection pool, for `ftpfs status`.
    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
}

impl Remote for FtpRemote {
    type Reader = FtpReader;

    fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>> {
        let path = self.abs(dir);
        self.pool
            .policy()
            .run(&format_args!("list {path}"), Repeat::Safe, |deadline| {
                self.list_once(&path, deadline)
            })
    }

    fn list_spare(
        &self,
        dir: &str,
        claim: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Vec<RemoteEntry>>> {
        self.list_on_spare(dir, claim)
    }

    fn warm_spare(&self) {
        self.pool.grow_ahead();
    }

    fn read_spare(&self, path: &str, size: u64) -> Result<Option<Vec<u8>>> {
        self.read_on_spare(path, size)
    }

    fn open_reader(&self, path: &str, size_hint: u64) -> Result<FtpReader> {
        let size = (size_hint > 0).then_some(size_hint);
        Ok(FtpReader::new(Arc::clone(&self.pool), self.abs(path)).with_size(size))
    }

    fn root(&self) -> &str {
        &self.root
    }

    fn store(&self, path: &str, data: &dyn Upload) -> Result<()> {
        let path = self.abs(path);
        self.pool
            .policy()
            .run(&format_args!("upload {path}"), Repeat::Safe, |deadline| {
                self.store_once(&path, data, deadline)
            })
    }

    /// APPE is repeated only while no byte can have reached the server: opening it (connect,
    /// login, the command and its reply) is retried as an unsafe operation, which repeats
    /// only 4xx refusals and failures before the command was sent; the data is sent once.
    /// A tail small enough to go out with the command has no such reply to wait for: its
    /// failures come at the end, where the caller sends the whole file instead of a
    /// transient one (see `upload::Writes`), as it does for any failed append.
    ///
    /// A server that refuses `APPE` as such (proftpd's default `451 ... Append/Restart not
    /// permitted`, a `502`) gets [`Error::Unsupported`], now and for the rest of the mount
    /// without asking again; the caller then sends the whole file. A refusal about this
    /// file (`550 ...: Permission denied`) is returned as it is, and not learned.
    ///
    /// A data connection refused for its TLS session ([`Error::is_tls_reuse_refusal`]) took
    /// no byte, so that APPE is made once more, on a new connection.
    fn append(&self, path: &str, data: &dyn Upload) -> Result<()> {
        let info = self.pool.info();
        if info.refusal(Capability::Append).is_some() {
            return Err(Error::Unsupported);
        }
        let path = self.abs(path);
        let mut renewed = false;
        // A small tail goes out with its APPE (see `FtpUpload::open`): a refusal of the
        // command then comes at its end, and is learned there.
        let early = data.size().is_some_and(|n| n <= upload::EARLY_MAX);
        loop {
            let mut source = data.open()?;
            let opened = self.pool.policy().run(
                &format_args!("append {path}"),
                Repeat::Unsafe,
                |deadline| {
                    let lease = self.pool.checkout(Purpose::Transfer, deadline)?;
                    FtpUpload::open(lease, Op::Append, &path, None, early)
                },
            );
            let mut up = match opened {
                Err(e) if e.refuses_command() => {
                    info.learn(&[Capability::Append], &e, &self.pool.endpoint().display());
                    return Err(Error::Unsupported);
                }
                r => r?,
            };
            let copied = std::io::copy(&mut source, up.writer()).map(drop);
            match up.end(copied) {
                // Refused as a command (proftpd's `451 ... Append/Restart not permitted`),
                // not during a transfer: nothing was appended.
                Err(e) if early && e.refuses_command() => {
                    info.learn(&[Capability::Append], &e, &self.pool.endpoint().display());
                    return Err(Error::Unsupported);
                }
                Err(e) if e.is_tls_reuse_refusal() && !renewed => {
                    log::info!("append {path}: {e}; again on a new connection");
                    renewed = true;
                }
                r => return r,
            }
        }
    }

    /// Always `MODE S`. A `MODE Z` stream to Debian 12's proftpd, which aborts compressed
    /// uploads, stalled for minutes instead of failing (seen with a 12 MiB random file,
    /// not yet understood), so streamed uploads stay plain; the whole-file `STOR` of the
    /// spool ([`Self::store_once`]) is where `MODE Z` uploads are made and checked.
    fn store_stream(&self, path: &str) -> Result<Option<Box<dyn UploadStream>>> {
        let path = self.abs(path);
        let deadline = self.pool.policy().deadline_from_now();
        if self.pool.endpoint().dialogue.allo {
            // ALLO needs the size before the first byte: the upload at close announces it.
            return Ok(None);
        }
        let Some(lease) = self.pool.checkout_nowait(Purpose::Transfer, deadline)? else {
            return Ok(None);
        };
        let up = FtpUpload::open(lease, Op::Store, &path, None, false)?;
        log::debug!("STOR {path} streaming");
        Ok(Some(Box::new(up)))
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (from, to) = (self.abs(from), self.abs(to));
        self.meta(&format_args!("rename {from}"), Repeat::Unsafe, |c| {
            c.ftp
                .rename(&from, &to)
                .map_err(|e| Error::from_ftp(Op::Rename, e))
        })
    }

    fn delete(&self, path: &str) -> Result<()> {
        let path = self.abs(path);
        self.meta(&format_args!("delete {path}"), Repeat::Unsafe, |c| {
            c.ftp.rm(&path).map_err(|e| Error::from_ftp(Op::Delete, e))
        })
    }

    fn mkdir(&self, path: &str) -> Result<()> {
        let path = self.abs(path);
        self.meta(&format_args!("mkdir {path}"), Repeat::Unsafe, |c| {
            c.ftp
                .mkdir(&path)
                .map_err(|e| Error::from_ftp(Op::Mkdir, e))
        })
    }

    fn rmdir(&self, path: &str) -> Result<()> {
        let path = self.abs(path);
        self.meta(&format_args!("rmdir {path}"), Repeat::Unsafe, |c| {
            c.ftp
                .rmdir(&path)
                .map_err(|e| Error::from_ftp(Op::Rmdir, e))
        })
    }

    fn chmod(&self, path: &str, kind: Kind, mode: u32) -> Result<()> {
        self.set_mode(path, kind, mode)
    }

    fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.copy_on_server(from, to)
    }

    fn set_mtime(&self, path: &str, kind: Kind, mtime: SystemTime) -> Result<()> {
        self.set_time(path, kind, mtime)
    }
}

impl FtpRemote {
    /// One attempt at listing `path`.
    fn list_once(&self, path: &str, deadline: std::time::Instant) -> Result<Vec<RemoteEntry>> {
        let lease = self.pool.checkout(Purpose::Meta, deadline)?;
        self.list_on(lease, path, deadline)
    }

    /// Lists `path` on `lease` (a demand checkout or a spare one, see [`spare`]).
    fn list_on(
        &self,
        mut lease: pool::Lease,
        path: &str,
        deadline: Instant,
    ) -> Result<Vec<RemoteEntry>> {
        let path = path.to_string();
        let mlsd = lease.conn().caps.mlsd && self.listing == ListingMode::Auto;
        let lines = if mlsd {
            lease.run(|c| data_lines(c, &format!("MLSD {path}")))?
        } else {
            lease.run(|c| {
                c.ftp.cwd(&path).map_err(|e| Error::from_ftp(Op::List, e))?;
                if !self.plain_list.load(Ordering::Relaxed) {
                    match data_lines(c, "LIST -a") {
                        Err(Error::Reply { code, .. }) if (500..=504).contains(&code) => {
                            log::info!("server refuses `LIST -a`; using `LIST`");
                            self.plain_list.store(true, Ordering::Relaxed);
                        }
                        other => return other,
                    }
                }
                data_lines(c, "LIST")
            })?
        };
        let now = SystemTime::now();
        let mut entries = self.parse(&path, &lines, mlsd, now);
        if !mlsd {
            let server = self.pool.endpoint().display();
            let asker = (self.pool.info(), server.as_str());
            match lease.run(|c| self.exact.fill(c, asker, &path, &mut entries, deadline)) {
                Ok(asked) if asked.files > 0 => log::debug!(
                    "{path}: MDTM gave exact times of {} of {} files; round trips: {}",
                    asked.exact,
                    asked.files,
                    asked.round_trips
                ),
                Ok(_) => {}
                Err(e) => {
                    // Out of step: the listing stands with LIST's times, the connection not.
                    log::debug!("{path}: no exact times: {e}");
                    lease.mark_broken();
                }
            }
        }
        // MLSD from pure-ftpd says "OS.unix=slink:" without the target; one LIST of the
        // directory shows it ("a -> b"). Only directories with such links pay for it.
        if mlsd
            && entries
                .iter()
                .any(|e| e.kind == Kind::Symlink && e.link_target.is_none())
        {
            let listed = lease.run(|c| {
                c.ftp.cwd(&path).map_err(|e| Error::from_ftp(Op::List, e))?;
                data_lines(c, "LIST -a")
            });
            match listed {
                Ok(lines) => {
                    let targets: std::collections::HashMap<String, String> = self
                        .parse(&path, &lines, false, now)
                        .into_iter()
                        .filter_map(|e| Some((e.name, e.link_target?)))
                        .collect();
                    for e in entries.iter_mut().filter(|e| e.kind == Kind::Symlink) {
                        e.link_target = targets.get(&e.name).cloned();
                    }
                }
                Err(e) => log::debug!("{path}: no symlink targets from LIST: {e}"),
            }
        }
        drop(lease);
        log::debug!("listed {path}: {} entries", entries.len());
        Ok(entries)
    }

    /// One STOR of the whole file (the server's reply after a broken transfer decides the
    /// errno, see [`FtpUpload::end`]).
    ///
    /// Only each wait is bounded, not the transfer: a big file on a slow link takes what it
    /// takes.
    fn store_once(&self, path: &str, data: &dyn Upload, deadline: Instant) -> Result<()> {
        let mut lease = self.pool.checkout(Purpose::Transfer, deadline)?;
        // The source is opened before the command: a spool that cannot be read is not
        // worth a STOR that would leave an empty file behind.
        let mut source = match data.as_file() {
            Some(range) => Source::File(range),
            None => Source::Read(data.open()?),
        };
        let deflate = &self.pool.info().deflate;
        // A small file is not worth three more round trips (MODE Z, MODE S, SIZE).
        let big = matches!(source, Source::File((_, _, len)) if len >= deflate::UPLOAD_MIN);
        let z = big
            && lease.conn().caps.mode_z
            && deflate.upload_wanted()
            && matches!(&source, Source::File((file, offset, len))
                if deflate::worth_compressing(&deflate::sample_of(file, *offset, *len)))
            && deflate::to_mode(&mut lease, true);
        let early = data.size().is_some_and(|n| n <= upload::EARLY_MAX);
        let mut up = FtpUpload::open(lease, Op::Store, path, data.size(), early)?;
        if !z {
            let copied = match &mut source {
                Source::File((file, offset, len)) => up.send_file(file, *offset, *len),
                Source::Read(r) => std::io::copy(r, up.writer()).map(drop),
            };
            return match up.end_telling(copied) {
                // The server may have taken the `EPSV` written before the verdict for
                // something else (pyftpdlib ends the upload short, libunftp answers the
                // `EPSV` first; a refusal such as pure-ftpd's `500` is no failure): the
                // upload is sent again, with the `EPSV` after its reply from now on (no
                // third time). A failure without an early `EPSV` is the upload's own.
                (Err(e), true) => {
                    self.pool.info().no_early_passive(
                        &format!("an upload with the next EPSV right behind it failed ({e})"),
                        &self.pool.endpoint().display(),
                    );
                    self.store_once(path, data, deadline)
                }
                (r, _) => r,
            };
        }
        up.z = Some(deflate::Deflater::default());
        let copied = match &mut source {
            Source::File((file, offset, len)) => up.send_file(file, *offset, *len),
            Source::Read(r) => read_into(r, &mut up),
        };
        let sent = up.sent;
        // The server's 226 does not prove a MODE Z upload whole (proftpd bug #1896). Any
        // doubt, and it is sent again plain, as are all later uploads.
        // verify_size turns MODE Z uploads off when it fails; a failed transfer does here,
        // so the second attempt is plain (and there is no third).
        let result = match up.end(copied) {
            Ok(()) => verify_size(&self.pool, path, sent),
            Err(e) => {
                deflate.upload_failed(&self.pool.endpoint().display(), &e.to_string());
                Err(e)
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(_) => self.store_once(path, data, deadline),
        }
    }

    /// Runs a short command on a metadata connection, with retries.
    fn meta<T>(
        &self,
        what: &dyn std::fmt::Display,
        repeat: Repeat,
        mut f: impl FnMut(&mut conn::Conn) -> Result<T>,
    ) -> Result<T> {
        self.pool.policy().run(what, repeat, |deadline| {
            let mut lease = self.pool.checkout(Purpose::Meta, deadline)?;
            lease.run(&mut f)
        })
    }
}

impl FtpRemote {
    fn parse(&self, path: &str, lines: &[String], mlsd: bool, now: SystemTime) -> Vec<RemoteEntry> {
        let mut entries = Vec::with_capacity(lines.len());
        let mut seen = std::collections::HashSet::new();
        for line in lines {
            let parsed = if mlsd {
                listing::parse_mlsd_line(line)
            } else {
                listing::parse_list_line(line, now)
            };
            match parsed {
                Some(e) if seen.insert(e.name.clone()) => entries.push(e),
                Some(e) => log::debug!("{path}: duplicate entry {:?} ignored", e.name),
                None => log::debug!("{path}: skipped listing line {line:?}"),
            }
        }
        entries
    }
}

/// Runs a listing command and reads its data connection as lines, with bounds.
fn data_lines(c: &mut conn::Conn, command: &str) -> Result<Vec<String>> {
    let (_, stream) = c
        .ftp
        .custom_data_command(command, &[Status::AboutToSend, Status::AlreadyOpen])
        .map_err(|e| Error::from_ftp(Op::List, e))?;
    active::adopt(c, &stream);
    let sockets = &c.sockets;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut lines = Vec::new();
    let mut line = Vec::with_capacity(256);
    let mut total: u64 = 0;
    // Whether the last line read had no end of line: a listing cut short (see below).
    let mut unterminated = false;
    loop {
        line.clear();
        let (n, complete) = match read_line_bounded(&mut reader, &mut line, MAX_LINE) {
            Ok(read) => read,
            Err(e) => {
                // The data connection stalled or broke, and the connection is given up
                // (the error breaks it). Shut it first: dropping the stream makes suppaftp
                // wait for the transfer's reply, a whole `timeout` more, for nothing.
                sockets.kill();
                return Err(Error::from_io(Op::List, e));
            }
        };
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > MAX_LISTING {
            log::warn!("{command}: listing exceeds {MAX_LISTING} bytes; giving up");
            // Dropping the stream closes the data connection; the reply is read by finish.
            sockets.end_data();
            let _ = reader.into_inner().finish();
            return Err(Error::Protocol {
                op: Op::List,
                detail: "listing too large".into(),
            });
        }
        if !complete {
            log::debug!("{command}: skipped a listing line longer than {MAX_LINE} bytes");
            continue;
        }
        unterminated = line.last() != Some(&b'\n');
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(&line) {
            Ok(s) => lines.push(s.to_string()),
            Err(_) => log::debug!(
                "{command}: skipped a line that is not UTF-8: {:?}",
                String::from_utf8_lossy(&line)
            ),
        }
    }
    sockets.end_data();
    let finished = reader.into_inner().finish();
    if let (Err(e), Some(sessions)) = (&finished, &c.sessions) {
        // A listing whose data connection said goodbye early is not trusted to do so again.
        sessions.transfer_failed(e);
    }
    finished.map_err(|e| Error::from_ftp(Op::List, e))?;
    if unterminated {
        if let Some(sessions) = c.sessions.as_ref().filter(|s| s.closed_early()) {
            // Cut inside a line after our early goodbye: the server may have taken it for
            // the end. Not trusted again, and the listing is repeated (see `tls`).
            let why = format!("{command}: the listing ended inside a line");
            sessions.transfer_failed(&why);
            log::warn!("{why}, after an early close_notify: listing again");
            return Err(Error::Network {
                op: Op::List,
                source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, why),
            });
        }
    }
    Ok(lines)
}

/// Reads up to and including `\n`, keeping at most `max` bytes. Returns the number of bytes
/// consumed and whether the whole line fit.
fn read_line_bounded(
    r: &mut (impl BufRead + ?Sized),
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut fits = true;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((consumed, fits));
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if fits && line.len() + take <= max {
            line.extend_from_slice(&buf[..take]);
        } else {
            fits = false;
            line.clear();
        }
        r.consume(take);
        consumed += take;
        if done {
            return Ok((consumed, fits));
        }
    }
}

/// Resolves `.` and `..` in an absolute server path; returns "" for the root.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("/{}", parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_paths_normalize() {
        assert_eq!(normalize("/"), "");
        assert_eq!(normalize("//pub/./a/../b/"), "/pub/b");
        assert_eq!(normalize("/home/alice/pub"), "/home/alice/pub");
        assert_eq!(normalize("/../.."), "");
    }

    #[test]
    fn long_lines_are_skipped_whole_and_reading_goes_on() {
        let mut data = vec![b'x'; 100_000];
        data.extend_from_slice(b"\nshort\r\n");
        let mut r = BufReader::with_capacity(1000, &data[..]);
        let mut line = Vec::new();
        let (n, fits) = read_line_bounded(&mut r, &mut line, 1024).unwrap();
        assert_eq!((n, fits), (100_001, false));
        line.clear();
        let (_, fits) = read_line_bounded(&mut r, &mut line, 1024).unwrap();
        assert!(fits);
        assert_eq!(line, b"short\r\n");
        line.clear();
        assert_eq!(read_line_bounded(&mut r, &mut line, 1024).unwrap().0, 0);
    }
}
