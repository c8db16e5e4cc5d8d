//! Reading a remote file through `REST` + `RETR` streams.
//!
//! The kernel reads a file in chunks (128 KiB and up), in order for `cat` and `cp`, at random
//! for `tail -c`, `less` or a database file, and, with several FUSE threads, sometimes a
//! little out of order (two readahead requests overtaking each other). An FTP download is a
//! stream: starting one costs several round trips (`EPSV`, connect, `REST`, `RETR`), reading
//! on from where it is costs nothing. So:
//!
//! - each open file keeps one stream and serves a read at the stream's position from it;
//! - a read ahead by at most [`SKIP_MAX`] reads through the gap instead of restarting;
//! - the last [`WINDOW`] bytes delivered are kept, so a read slightly behind (overtaken
//!   readahead, `less` scrolling back a page) costs nothing either. They are kept as the
//!   very buffers the reads were answered with (shared, not copied), and a buffer leaving
//!   the window is the next read's: bytes go from the socket to the kernel with no copy of
//!   ours in between, and no memory is allocated or zeroed per read;
//! - any other seek closes the stream and opens a new one with `REST` at the new offset. The
//!   stream is ended by closing the data connection and reading the server's reply (`426` or
//!   `226`); `ABOR` is not used, because pure-ftpd and pyftpdlib answer it in ways that leave
//!   the control connection out of step;
//! - a server without `REST` serves sequential reads; a read far from the stream's position
//!   fails with `ESPIPE` instead of returning wrong bytes (within [`NO_REST_SKIP`] of the start
//!   we restart at 0 and read through). A server that took the probe's `REST 0` but refuses
//!   `REST n` is treated the same from its first refusal on, for the whole mount (see
//!   [`super::caps::Capability`]), instead of failing every read that is not at 0;
//! - a transfer ends only with the server's `226`: a data connection that closes early without
//!   it is an error, never a silently short file;
//! - a broken transfer (server restarted, connection reset, `426`) is resumed with `REST` at
//!   the first byte not yet delivered, with the retry policy's backoff, within one deadline
//!   per read call (the watchdog ends a transfer that drips too slowly to meet it). The
//!   caller sees either the server's bytes or, once the retries are spent, an error;
//! - a stream too slow for the link (a server limiting each session) of a big file read in
//!   order is handed over to [`segments`]: ranges fetched on several connections at once.
//!
//! The per-file mutex is held while the stream is read: a stream has one position, so reads of
//! one file are sequential by nature. It is a per-file lock, never a shared one, and the pool
//! only ever `try_lock`s it (see [`super::pool`]).

use std::cell::Cell;
use std::io::Read;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use suppaftp::{FtpError, FtpResult, Status, TlsStream, TransferStream};

use super::caps::Capability;
use super::pool::{Lease, Pool, Purpose, Reclaim, Reclaimed};
use crate::error::{Error, Op, Result};
use crate::remote::{Buffers, Data, RemoteReader};

mod segments;
mod window;
use window::Window;

/// Forward gaps up to this size are read through rather than reopened. With 1 MiB kernel
/// readahead, concurrent requests arrive up to a few MiB out of order; below this, the
/// stream is read through and the overtaken request is served from the window.
pub const SKIP_MAX: u64 = 4 * 1024 * 1024;
/// Bytes kept behind the stream position for reads that come late (at most this much memory
/// per open file).
pub const WINDOW: usize = 4 * 1024 * 1024;
/// Without `REST`, a read this close to the start restarts at 0 and reads through.
pub const NO_REST_SKIP: u64 = 16 * 1024 * 1024;

pub struct FtpReader {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Arc<Pool>,
    path: String,
    /// The file's size as listed, if known: for `ftpfs status`, and to check a download
    /// that said goodbye early ([`Inner::short_after_early_close`]).
    size: Option<u64>,
    buffers: Arc<Buffers>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stream: Option<Stream>,
    window: Window,
    registered: bool,
    stats: Stats,
    /// Listed by `ftpfs status` from the first stream until the file is closed.
    transfer: Option<crate::status::Transfer>,
    segments: segments::Slot,
}

/// What one open file cost, logged at debug when it is closed.
#[derive(Default, Debug)]
struct Stats {
    requests: u64,
    bytes: u64,
    socket_reads: u64,
    from_window: u64,
    retrs: u64,
    resumes: u64,
}

/// An open `RETR` on a leased connection.
struct Stream {
    lease: Lease,
    transfer: Option<Box<dyn Transfer>>,
    pos: u64,
    /// Whether the server takes `REST`, so a restart anywhere is cheap.
    rest: bool,
    /// In `MODE Z` (see [`super::deflate`]); else a plain one, whose rate is measured.
    z: bool,
    start: u64,
    /// Time spent waiting in reads of this stream: the link's, not the reader's pauses.
    busy: std::time::Duration,
}

impl FtpReader {
    pub fn new(pool: Arc<Pool>, path: String) -> FtpReader {
        FtpReader {
            inner: Arc::new(Inner {
                pool,
                path,
                size: None,
                buffers: Buffers::new(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The size the listing gave: for the progress `ftpfs status` shows, and to check a
    /// download that said goodbye early.
    pub fn with_size(mut self, size: Option<u64>) -> FtpReader {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.size = size;
        }
        self
    }
}

impl RemoteReader for FtpReader {
    fn read_at(&self, offset: u64, len: usize) -> Result<Data> {
        let policy = *self.inner.pool.policy();
        let deadline = policy.deadline_from_now();
        let mut st = self.inner.state.lock();
        st.stats.requests += 1;
        // An overtaken readahead request, or `less` going back a page: the bytes are still
        // here, and usually in one piece.
        if let Some(d) = st.window.slice(offset, len) {
            st.stats.from_window += d.len() as u64;
            st.stats.bytes += d.len() as u64;
            return Ok(d);
        }
        let mut buf = self.inner.buffers.get(len);
        let from_window = st.window.copy_out(offset, &mut buf[..len]);
        st.stats.from_window += from_window as u64;
        let mut filled = from_window;
        // Fetched ahead on other connections (a slow stream of a big file).
        let at = offset + filled as u64;
        let end = match segments::serve(&mut st, at, &mut buf[filled..len], deadline) {
            Ok((n, eof)) => {
                filled += n;
                if eof {
                    filled
                } else {
                    len
                }
            }
            Err(e) => {
                self.inner.buffers.put(buf);
                return Err(e);
            }
        };
        // Each attempt reads on from the first byte not yet delivered; a failure that may be
        // repeated resumes there (REST), with the policy's backoff, within the one deadline.
        let pos = Cell::new(offset + filled as u64);
        let what = Resume {
            path: &self.inner.path,
            pos: &pos,
        };
        let mut attempts = 0u32;
        let read = policy.run_until(
            &what,
            deadline,
            |e| e.is_retryable(true),
            |deadline| {
                if attempts > 0 {
                    st.stats.resumes += 1;
                }
                attempts += 1;
                while filled < end {
                    pos.set(offset + filled as u64);
                    let n = self.inner.read_stream(
                        &mut st,
                        pos.get(),
                        &mut buf[filled..end],
                        deadline,
                    )?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                    // Handed over to segments midway: the rest comes from them.
                    if filled < end && segments::consider(&self.inner, &mut st) {
                        let at = offset + filled as u64;
                        let (n, eof) =
                            segments::serve(&mut st, at, &mut buf[filled..end], deadline)?;
                        filled += n;
                        if eof {
                            break;
                        }
                    }
                }
                Ok(())
            },
        );
        if let Err(e) = read {
            self.inner.buffers.put(buf);
            return Err(e);
        }
        st.stats.bytes += filled as u64;
        let data = self.inner.buffers.data(buf, 0, filled);
        // What came from the stream joins the window as it is: no copy.
        st.window
            .push(offset + from_window as u64, data.sub(from_window, filled));
        drop(st);
        // Between two reads this reader's stream may be taken by a waiting checkout.
        self.inner.pool.holder_idle();
        Ok(data)
    }
}

/// What a read that is retried is doing, for the retry loop's log lines: where it resumes
/// changes with each attempt.
struct Resume<'a> {
    path: &'a str,
    pos: &'a Cell<u64>,
}

impl std::fmt::Display for Resume<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "reading {}, resuming at byte {}",
            self.path,
            self.pos.get()
        )
    }
}

impl Drop for FtpReader {
    fn drop(&mut self) {
        let mut st = self.inner.state.lock();
        if st.stats.requests > 0 {
            log::debug!(
                "closed {}: {:?}, {} read buffers allocated",
                self.inner.path,
                st.stats,
                self.inner.buffers.allocated()
            );
        }
        let stream = st.stream.take();
        drop(st);
        if let Some(s) = stream {
            drop(s.close());
        }
    }
}

impl Inner {
    /// Reads from the stream positioned at `pos` (opening or moving it as needed). Returns 0
    /// at end of file.
    fn read_stream(
        self: &Arc<Self>,
        st: &mut State,
        pos: u64,
        out: &mut [u8],
        deadline: Instant,
    ) -> Result<usize> {
        loop {
            let current = st.stream.as_ref().map(|s| (s.pos, s.rest));
            match current {
                Some((p, _)) if p == pos => break,
                Some((p, rest))
                    if p < pos && pos - p <= if rest { SKIP_MAX } else { NO_REST_SKIP } =>
                {
                    // Read through the gap; what is read joins the window.
                    let want = (pos - p).min(1 << 20) as usize;
                    let mut scratch = self.buffers.get(want);
                    let n = match self.pull(st, &mut scratch[..want], deadline) {
                        Ok(n) => n,
                        Err(e) => {
                            self.buffers.put(scratch);
                            return Err(e);
                        }
                    };
                    st.window.push(p, self.buffers.data(scratch, 0, n));
                    if n == 0 {
                        return Ok(0);
                    }
                }
                Some(_) => {
                    if let Some(s) = st.stream.take() {
                        if self.pool.info().prepare_ahead() {
                            close_in_background(s);
                        } else {
                            // A fast link: see `close_in_background`.
                            drop(s.close());
                        }
                    }
                }
                None => {
                    // A stream that broke while reading through a gap (a readahead request
                    // that overtook the one before it came first) resumes where the window
                    // ends, not at the request: the overtaken request then finds its bytes
                    // in the window instead of costing a third RETR, and the gap is read
                    // through as it would have been without the break.
                    let w = &st.window;
                    let from = if w.bytes > 0 && w.end < pos && pos - w.end <= SKIP_MAX {
                        w.end
                    } else {
                        pos
                    };
                    let s = self.open_at(from, deadline)?;
                    if !st.registered {
                        let me: Weak<dyn Reclaim> = Arc::downgrade(self) as Weak<dyn Reclaim>;
                        self.pool.register(me);
                        st.registered = true;
                    }
                    // The window stays: a stream resumed after a break carries on where
                    // the window ends, and the reads the kernel sent just before the break
                    // may still come (overtaken readahead). A stream opened elsewhere is a
                    // gap, and the window resets itself on the next push.
                    st.stats.retrs += 1;
                    let (path, size, at) = (&self.path, self.size, s.pos);
                    let stats = crate::status::stats();
                    let transfer = st.transfer.get_or_insert_with(|| {
                        stats.transfer(path, crate::status::Direction::Download, size, at)
                    });
                    transfer.seek(at);
                    st.stream = Some(s);
                }
            }
        }
        self.pull(st, out, deadline)
    }

    /// One read from the stream, at its position.
    fn pull(&self, st: &mut State, out: &mut [u8], deadline: Instant) -> Result<usize> {
        let s = st.stream.as_mut().expect("caller positioned a stream");
        let pos = s.pos;
        let guard = s.lease.conn().guard(deadline);
        let transfer = s.transfer.as_mut().expect("an open stream has a transfer");
        let began = Instant::now();
        let r = transfer.read(out);
        s.busy += began.elapsed();
        let timed_out = |s: &mut Stream, e: Error| {
            if s.lease.conn().sockets.fired() {
                Error::Timeout { op: Op::Retr }
            } else {
                e
            }
        };
        match r {
            Ok(0) => {
                let mut s = st.stream.take().expect("checked above");
                let finished = s.finish_in_place();
                drop(guard);
                finished.map_err(|e| timed_out(&mut s, e))?;
                match self.short_after_early_close(&mut s) {
                    Some(e) => Err(e),
                    None => Ok(0),
                }
            }
            Ok(n) => {
                st.stats.socket_reads += 1;
                s.pos += n as u64;
                if let Some(t) = &st.transfer {
                    t.moved(n as u64, s.pos);
                }
                Ok(n)
            }
            Err(e) => {
                drop(guard);
                let mut s = st.stream.take().expect("checked above");
                s.lease.mark_broken();
                let err = timed_out(&mut s, Error::from_io(Op::Retr, e));
                // Dropping the stream would otherwise wait a full timeout for a reply.
                s.lease.conn().sockets.kill();
                log::warn!("download of {} broke at byte {pos}: {err}", self.path);
                Err(err)
            }
        }
    }

    /// A download whose data connection said goodbye early (TLS 1.3, see
    /// [`super::tls`]) and that then ended, even with `226`, before the size the listing
    /// gave: a server may have taken our `close_notify` for the end of the transfer. That is
    /// not trusted: early goodbyes end for the mount, and the error makes the read resume at
    /// this byte with a stream that waits for the server's own end. A file that really shrank
    /// on the server then ends at the same byte again, and the reader says so.
    fn short_after_early_close(&self, s: &mut Stream) -> Option<Error> {
        let size = self.size?;
        let sessions = s.lease.conn().sessions.as_ref()?;
        if s.pos >= size || !sessions.closed_early() {
            return None;
        }
        let why = format!(
            "the download of {} ended at byte {} of the {size} listed",
            self.path, s.pos
        );
        sessions.transfer_failed(&why);
        log::warn!("{why}, after an early close_notify: resuming there");
        Some(Error::Network {
            op: Op::Retr,
            source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, why),
        })
    }

    fn open_at(&self, pos: u64, deadline: Instant) -> Result<Stream> {
        let mut lease = self.pool.checkout(Purpose::Transfer, deadline)?;
        let info = self.pool.info();
        let rest = lease.conn().caps.rest && info.refusal(Capability::Rest).is_none();
        let start = if rest || pos == 0 {
            pos
        } else if pos <= NO_REST_SKIP {
            0
        } else {
            log::warn!(
                "{}: read at {pos} needs REST, which the server does not support",
                self.path
            );
            return Err(Error::NoRandomAccess);
        };
        let path = &self.path;
        // From byte 0 only: REST under MODE Z is not agreed between servers.
        let z = start == 0 && lease.conn().caps.mode_z && info.deflate.wanted();
        if z {
            let switched = lease.run(|c| {
                // Opened in MODE S; see `super::prepare`.
                c.ftp.drop_prepared_data_connection();
                c.ftp
                    .custom_command("MODE Z", &[Status::CommandOk])
                    .map_err(|e| Error::from_ftp(Op::Retr, e))?;
                c.mode_z = true;
                Ok(())
            });
            match switched {
                Ok(()) => {}
                Err(e @ Error::Reply { .. }) => {
                    info.deflate.refused(&e.to_string());
                    drop(lease);
                    return self.open_at(pos, deadline);
                }
                Err(e) => return Err(e),
            }
        }
        let transfer = lease.run(|c| retr_from(c, path, start));
        let transfer: Box<dyn Transfer> = match transfer {
            // The connection goes back in MODE S, or is not reused (see the pool's Lease).
            Err(e) if z => {
                let _ = back_to_mode_s(&mut lease);
                return Err(e);
            }
            Ok(t) if z => Box::new(Inflating(super::deflate::Inflate::new(t))),
            // REST and RETR were written together (pipelining) and went unanswered: a server
            // that takes one command per read lost the second. The read is retried, one
            // command at a time from now on.
            Err(e @ Error::Timeout { .. }) if start > 0 && info.pipelining() => {
                info.no_pipelining(
                    "REST and RETR written together went unanswered",
                    &self.pool.endpoint().display(),
                );
                return Err(e);
            }
            Err(e) if start > 0 && refuses_rest(&e) => {
                // Learned, and the same read again without REST (from 0, or ESPIPE).
                info.learn(&[Capability::Rest], &e, &self.pool.endpoint().display());
                // No offset was taken, so none needs clearing.
                lease.conn().rest_used = false;
                drop(lease);
                return self.open_at(pos, deadline);
            }
            r => Box::new(r?),
        };
        log::debug!(
            "RETR {path} from {start}{}",
            if z { " in MODE Z" } else { "" }
        );
        Ok(Stream {
            lease,
            transfer: Some(transfer),
            pos: start,
            rest,
            z,
            start,
            busy: std::time::Duration::ZERO,
        })
    }
}

/// A download's stream on a [`super::conn::Conn`].
pub(super) type Retrieval =
    TransferStream<<suppaftp::RustlsConnector as suppaftp::TlsConnector>::Stream>;

/// `RETR path` from byte `from` on `c`: with `REST from` before it (suppaftp sends it right
/// before `RETR`, after `EPSV`, as RFC 3659 asks), or at 0 with any offset a previous
/// command left cleared.
pub(super) fn retr_from(c: &mut super::conn::Conn, path: &str, from: u64) -> Result<Retrieval> {
    if from > 0 {
        c.ftp
            .resume_transfer(from as usize)
            .map_err(|e| Error::from_ftp(Op::Retr, e))?;
        c.rest_used = true;
    } else {
        c.clear_rest(Op::Retr)?;
    }
    let stream = c
        .ftp
        .retr_as_stream(path)
        .map_err(|e| Error::from_ftp(Op::Retr, e))?;
    super::active::adopt(c, &stream);
    Ok(stream)
}

/// The end of a transfer whose data connection we closed early: `Ok` when the control
/// connection is in step after it. `226` (the server had sent everything), `426`/`451` (it
/// noticed) and pure-ftpd's lone second `150` all are; any other failure is returned.
pub(super) fn ended_in_step(finished: FtpResult<()>) -> FtpResult<()> {
    match finished {
        Err(FtpError::UnexpectedResponse(r))
            if (400..600).contains(&r.status.code()) || (100..200).contains(&r.status.code()) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Whether the failure of `REST n` + `RETR` is the server refusing `REST`. suppaftp sends
/// both before reading either reply, and the failure does not say which one it answers; but
/// `RETR` of a file the listing showed is not refused as unknown or malformed (500, 501,
/// 502, 504), while `REST n` is, by servers that implement only `REST 0` or none in some mode
/// (proftpd in ASCII mode: `501 REST: Resuming transfers not allowed`). A refusal of the
/// command by policy counts too; one that names the file (`550 f: No such file`) does not.
fn refuses_rest(e: &Error) -> bool {
    matches!(e.code(), Some(500 | 501 | 502 | 504)) || e.refuses_command()
}

impl Reclaim for Inner {
    fn try_take(&self) -> Option<Box<dyn Reclaimed>> {
        let mut st = self.state.try_lock()?;
        let s = st.stream.take()?;
        Some(Box::new(s))
    }
}

impl Reclaimed for Stream {
    fn into_lease(self: Box<Self>) -> Option<Lease> {
        (*self).close()
    }
}

impl Stream {
    /// Ends the transfer early: close the data connection, then read the reply. `426` (or
    /// `451`) means the server noticed; `226` that it had already sent everything. pure-ftpd
    /// answers an early close with a single `150 0.004 seconds (measured here)...` line and
    /// nothing after it. All of these leave the control connection in step and it is
    /// reused (a late reply from some other server would make the idle connection
    /// readable, and the pool's staleness check drops it). Anything else, and it is dropped.
    fn close(mut self) -> Option<Lease> {
        let transfer = self.transfer.take()?;
        self.lease.conn().sockets.end_data();
        let finished = transfer.finish();
        if self.z && back_to_mode_s(&mut self.lease).is_err() {
            return None;
        }
        match ended_in_step(finished) {
            Ok(()) => Some(self.lease),
            Err(e) => {
                log::debug!("closing a transfer early broke its connection: {e}");
                self.lease.mark_broken();
                None
            }
        }
    }

    /// Ends a transfer that reached end of file: only `226` proves the file is complete.
    fn finish_in_place(&mut self) -> Result<()> {
        let transfer = self.transfer.take().expect("finish is called once");
        self.lease.conn().sockets.end_data();
        let finished = transfer.finish();
        if let (Err(e), Some(sessions)) = (&finished, &self.lease.conn().sessions) {
            // See `tls`: an early goodbye is not trusted again after a failed download.
            sessions.transfer_failed(e);
        }
        if self.z {
            // A connection that stays in MODE Z is closed by the pool; the file is whole.
            let _ = back_to_mode_s(&mut self.lease);
        } else if finished.is_ok() {
            let info = self.lease.pool_info();
            info.deflate.measured(self.pos - self.start, self.busy);
        }
        match finished {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = Error::from_ftp(Op::Retr, e);
                if err.breaks_connection() {
                    self.lease.mark_broken();
                }
                log::warn!("download ended without success reply: {err}");
                Err(err)
            }
        }
    }
}

/// An open download, plain or (later) TLS: bytes to read, then the server's final reply.
/// Ends an abandoned transfer (a read elsewhere in the file) on a thread of its own: ending
/// it waits a round trip for the server's reply (`426` or `226`), which the read that moved
/// away should not pay; it opens its stream on another connection meanwhile, and this one
/// goes back to the pool (and is prepared) once the server has answered. Bounded like any
/// reply, by the socket's timeout.
///
/// Not on a link where nothing is prepared ahead (a round trip under 1 ms, see
/// [`super::prepare`]): there the reply is a fraction of a millisecond, and a second server
/// process answering it while the next stream opens competes with that stream for the
/// cores when the server is on the same machine. Ended in place, random 4 KiB reads on
/// loopback took a median of 0.27 ms (p90 0.3–0.9) against 0.26 ms (p90 1.0–1.3).
fn close_in_background(mut s: Stream) {
    s.lease.coming_back();
    let spawned = crate::signals::spawn_blocked(
        std::thread::Builder::new().name("ftpfs-close".into()),
        move || drop(s.close()),
    );
    if let Err(e) = spawned {
        // The stream went with the closure and was ended as it was dropped.
        log::debug!("no thread to end a transfer in the background ({e})");
    }
}

pub(super) trait Transfer: Read + Send {
    fn finish(self: Box<Self>) -> FtpResult<()>;
}

/// A download in `MODE Z`: the file's bytes inflated from the data connection.
struct Inflating<T: TlsStream + Send>(super::deflate::Inflate<TransferStream<T>>);

impl<T: TlsStream + Send> Read for Inflating<T> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(out)
    }
}

impl<T: TlsStream + Send> Transfer for Inflating<T> {
    fn finish(self: Box<Self>) -> FtpResult<()> {
        self.0.into_inner().finish()
    }
}

/// `MODE S` again after a compressed transfer. A connection that cannot be switched back is
/// marked broken, so that no later transfer runs on it in the wrong mode.
fn back_to_mode_s(lease: &mut Lease) -> Result<()> {
    // Each wait is bounded by the socket timeouts; the lease's deadline may be long past
    // after a long transfer.
    let r = lease.run_unbounded(|c| {
        c.ftp
            .custom_command("MODE S", &[Status::CommandOk])
            .map_err(|e| Error::from_ftp(Op::Retr, e))?;
        c.mode_z = false;
        Ok(())
    });
    if let Err(e) = &r {
        log::debug!("MODE S after a compressed download failed ({e}); connection closed");
        lease.mark_broken();
    }
    r
}

impl<T: TlsStream + Send> Transfer for TransferStream<T> {
    fn finish(self: Box<Self>) -> FtpResult<()> {
        TransferStream::finish(*self)
    }
}
