//! One `STOR` or `APPE` on a data connection: written to, then ended once with the
//! server's verdict.
//!
//! The end is where uploads go wrong in the field. A server reads the last bytes out of
//! the TCP buffers after our last write, slowly when it is rate-limited, so its reply is
//! waited for as long as it keeps taking bytes; over TLS it sends a session ticket on the
//! data connection that must be read, or vsftpd's `require_ssl_reuse` refuses the next
//! data connection once the tickets run out; in `MODE Z` its `226` does not prove the file
//! whole (proftpd bug #1896), so the size is checked. The bytes come from the spool with
//! `sendfile` where they can.
//!
//! A small file's upload is mostly round trips (issue 16): the `STOR` goes with its bytes,
//! its `226` comes one round trip later, and the next data connection's `EPSV` took one
//! more. So a whole-file `STOR` with pipelining writes that `EPSV` as soon as its data
//! connection is closed, before reading the `226` (suppaftp's `finish_with_passive`); the
//! `229` is read and its data connection opened when the connection comes back to the pool
//! ([`super::prepare`]). The server may still be reading the upload when the `EPSV` comes
//! (it comes right behind the upload's last bytes): vsftpd leaves it unread until the
//! transfer's end, proftpd refuses it with `450` and pure-ftpd with `500` (the `226`
//! follows; nothing is lost but the preparation), pyftpdlib closes the upload's data
//! connection for the new one and never answers the upload (the file is short). So:
//!
//! - the `EPSV` is written a short pause after the close (a tenth of the round trip, at
//!   most 5 ms), so that on a network that keeps the order of packets the server has read
//!   the upload's end first; only where the round trip, measured on earlier uploads, is
//!   long enough (4 ms) to be worth it;
//! - a refusal is harmless; mostly refused, it is not written early again;
//! - anything else but a `226` where the verdict is read breaks the connection, turns the
//!   early `EPSV` off for the mount, and the upload is sent again (by
//!   `FtpRemote::store_once`): an upload is done only when the server said `226` for it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pool::{self, Pool, Purpose};
use super::retry::Repeat;
use super::{active, deflate, tls};
use crate::error::{Error, Op, Result};
use crate::remote::UploadStream;

/// Where an upload's bytes come from: a range of a local file (sent with `sendfile`), or
/// any reader.
pub(super) enum Source<'a> {
    File((&'a std::fs::File, u64, u64)),
    Read(Box<dyn std::io::Read + 'a>),
}

/// An open STOR or APPE: written to, then ended once with the server's verdict. Used whole
/// by [`FtpRemote::store_once`] and fed as the bytes come by [`Remote::store_stream`].
pub(super) struct FtpUpload {
    lease: pool::Lease,
    op: Op,
    stream: Option<std::io::BufWriter<suppaftp::TransferStream<TlsStreamOf>>>,
    /// Sent in `MODE Z`, deflated on the way; the connection goes back to `MODE S` after
    /// the reply.
    pub(super) z: Option<deflate::Deflater>,
    /// Bytes given to the upload (before compression).
    pub(super) sent: u64,
    /// Listed by `ftpfs status` while it runs.
    transfer: crate::status::Transfer,
    /// The next `EPSV` is written as soon as the data connection is closed, before the
    /// reply (see [`FtpUpload::end`]); any failure of [`FtpUpload::end`] then leaves the
    /// outcome to the caller's repetition.
    early_passive: bool,
}

impl FtpUpload {
    /// Sends the command (within the lease's deadline) and opens the data connection; a
    /// `STOR` of `size` bytes is announced with `ALLO` first when `-o allo` asks for it.
    ///
    /// `early`: with pipelining, on a plain passive connection, the bytes go out with the
    /// command instead of a round trip later, after its `150`; a refusal of the command is
    /// then the error of [`FtpUpload::end`] instead of this one. Only for callers that
    /// treat both alike (a whole-file `STOR`, repeated as a whole).
    pub(super) fn open(
        mut lease: pool::Lease,
        op: Op,
        path: &str,
        size: Option<u64>,
        early: bool,
    ) -> Result<FtpUpload> {
        let info_pipelining = lease.pool_info().pipelining();
        let early_passive = early
            && op == Op::Store
            && lease.pool_info().early_passive()
            && lease.conn().active.is_none();
        let stream = lease.run(|c| {
            c.clear_rest(op)?;
            if let (Op::Store, Some(size)) = (op, size) {
                c.allocate(size)?;
            }
            if early {
                c.ftp.set_early_upload();
            }
            if early && !c.secure && c.active.is_none() && info_pipelining {
                log::debug!("{op} {path}: the bytes go with the command");
            }
            let stream = match op {
                Op::Append => c.ftp.append_with_stream(path),
                _ => c.ftp.put_with_stream(path),
            }
            .map_err(|e| Error::from_ftp(op, e))?;
            active::adopt(c, &stream);
            Ok(stream)
        })?;
        Ok(FtpUpload {
            lease,
            op,
            // Below glibc's mmap threshold (256 KiB, set in main): a bigger buffer was an
            // mmap and munmap per upload, which a small file's upload felt, and big pieces
            // bypass the buffer anyway.
            stream: Some(std::io::BufWriter::with_capacity(64 * 1024, stream)),
            z: None,
            sent: 0,
            early_passive,
            transfer: crate::status::stats().transfer(
                path,
                crate::status::Direction::Upload,
                size,
                0,
            ),
        })
    }

    pub(super) fn writer(&mut self) -> &mut impl std::io::Write {
        self.stream.as_mut().expect("written until ended")
    }

    /// Sends `data`, deflated in `MODE Z`.
    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        let w = self.stream.as_mut().expect("written until ended");
        self.sent += data.len() as u64;
        self.transfer.moved(data.len() as u64, self.sent);
        match &mut self.z {
            Some(d) => d.write(data, w),
            None => std::io::Write::write_all(w, data),
        }
    }

    /// Sends a range of a local file: with `sendfile` on a plain data connection, through
    /// the writer (and TLS) otherwise.
    pub(super) fn send_file(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
    ) -> std::io::Result<()> {
        use std::io::Write;
        if self.z.is_some() {
            return crate::remote::read_pieces(file, offset, len, |e| e, |piece| self.put(piece));
        }
        let base = self.sent;
        self.sent += len;
        let transfer = &self.transfer;
        let w = self.stream.as_mut().expect("written until ended");
        w.flush()?;
        if let suppaftp::DataStream::Tcp(socket) = w.get_ref().get_ref() {
            // In pieces, so that `ftpfs status` sees a big upload progress: one sendfile
            // of the whole file returns only at its end.
            let mut done = 0;
            while done < len {
                let n = (len - done).min(PROGRESS_PIECE);
                crate::remote::send_file(socket, file, offset + done, n)?;
                done += n;
                transfer.moved(n, base + done);
            }
            return Ok(());
        }
        let mut done = 0;
        crate::remote::read_pieces(
            file,
            offset,
            len,
            |e| e,
            |piece| {
                w.write_all(piece)?;
                done += piece.len() as u64;
                transfer.moved(piece.len() as u64, base + done);
                Ok(())
            },
        )
    }

    /// Flushes, closes the data connection and reads the server's reply, which decides: a
    /// `452`/`552` explains a reset better than the reset itself. `written` is how writing
    /// went. Only each wait is bounded here, not the transfer.
    pub(super) fn end(self, written: std::io::Result<()>) -> Result<()> {
        self.end_telling(written).0
    }

    /// [`FtpUpload::end`], and whether the next `EPSV` was written before the verdict was
    /// read (then a failure may be the server mistaking it for something else, see the
    /// module's documentation).
    pub(super) fn end_telling(mut self, written: std::io::Result<()>) -> (Result<()>, bool) {
        use std::io::Write;
        let op = self.op;
        let mut w = self.stream.take().expect("ended once");
        let sent = written
            .and_then(|()| match &mut self.z {
                Some(d) => d.finish(&mut w),
                None => Ok(()),
            })
            .and_then(|()| w.flush());
        // Flushed, or failed: any bytes still buffered are not going anywhere.
        let (mut stream, _) = w.into_parts();
        let extra = match sent.as_ref().map(|()| self.wait_taken(&stream)) {
            Ok(Ok(extra)) => extra,
            Ok(Err(e)) => {
                // The server stopped taking data: its reply would be waited for in vain.
                self.lease.conn().sockets.kill();
                self.lease.mark_broken();
                drop(stream);
                return (Err(Error::from_io(op, e)), false);
            }
            Err(_) => Duration::ZERO,
        };
        // Not after a MODE Z upload, whose `MODE S` would close the data connection, nor
        // after a long wait for the server to read (it reads the control connection too).
        let candidate =
            self.early_passive && self.z.is_none() && sent.is_ok() && extra == Duration::ZERO;
        let pause = self.lease.pool_info().early_passive_pause();
        let early_passive = candidate && pause.is_some();
        let pause = pause.unwrap_or_default();
        let timeout = self.lease.timeout();
        let mut took = Duration::ZERO;
        let finished = self.lease.run_unbounded(|c| {
            c.sockets.end_data();
            if extra > Duration::ZERO {
                c.sockets.set_reply_timeout(timeout + extra);
            }
            if let Some(sessions) = &c.sessions {
                // The next data connection's session (see `tls`): the wait for the server to
                // close this one, which suppaftp makes anyway, now reads its tickets.
                tls::read_tickets(stream.get_mut(), sessions, TICKET_WAIT.min(timeout));
            }
            let closed = Instant::now();
            let r = if early_passive {
                c.ftp.finish_with_passive(stream, pause)
            } else {
                stream.finish()
            }
            .map_err(|e| Error::from_ftp(op, e));
            took = closed.elapsed().saturating_sub(pause);
            if extra > Duration::ZERO {
                c.sockets.set_reply_timeout(timeout);
            }
            r
        });
        if candidate && finished.is_ok() {
            self.lease.pool_info().upload_replied(took);
        }
        match &finished {
            Ok(()) if early_passive => {
                let pool = Arc::clone(self.lease.pool());
                let taken = self.lease.conn().ftp.passive_pending();
                if taken {
                    log::debug!("{op}: answered, with the next data connection asked for already");
                } else {
                    log::debug!("{op}: answered; the EPSV written early was refused during it");
                }
                pool.info()
                    .early_passive_outcome(taken, &pool.endpoint().display());
            }
            // The `EPSV`'s reply may come next, or may have been read as the verdict.
            Err(_) if early_passive => self.lease.mark_broken(),
            _ => {}
        }
        if self.z.is_some() && !self.lease.is_broken() {
            deflate::to_mode(&mut self.lease, false);
        }
        let verdict = match (sent, finished) {
            (Ok(()), r) => r,
            (Err(_), Err(reply @ Error::Reply { .. })) => Err(reply),
            (Err(io), _) => {
                self.lease.mark_broken();
                Err(Error::from_io(op, io))
            }
        };
        (verdict, early_passive)
    }
}

impl FtpUpload {
    /// How long to wait for the server's reply once the last byte is written.
    ///
    /// A bandwidth-limited server (pure-ftpd `-T`, many hosting plans) or a slow disk reads
    /// an upload out of the TCP buffers long after our last write returned: ours (up to
    /// 4 MiB on Linux) and its own receive buffer (1.6 MB measured, autotuned), and it
    /// replies only then. Waiting just `timeout` for that reply failed uploads that were
    /// progressing all along: 4 MiB to a 50 KB/s server was `ETIMEDOUT` on every attempt
    /// with the default 20 s. So:
    ///
    /// 1. While more than [`DRAIN_WATCH`] bytes of ours are unacknowledged, wait as long as
    ///    the server keeps taking them; `timeout` bounds a pause in which it takes none
    ///    (a dead or stalled server). This also measures the pace it reads at.
    /// 2. Its own buffer cannot be watched from here. At that pace, reading
    ///    [`SERVER_BUFFER`] more takes `SERVER_BUFFER / pace`, which is added to `timeout`
    ///    for the reply. A fast server, or a small upload, gets plain `timeout`.
    ///
    /// A reply that comes early (`452` mid-way) ends the wait at once. Returns the extra
    /// time for the reply.
    fn wait_taken(
        &mut self,
        stream: &suppaftp::TransferStream<TlsStreamOf>,
    ) -> std::io::Result<Duration> {
        let stall = self.lease.timeout();
        let data = stream.get_ref().get_ref();
        let mut queued = unsent(data)?;
        if queued <= DRAIN_WATCH {
            return Ok(Duration::ZERO);
        }
        let sockets = Arc::clone(&self.lease.conn().sockets);
        // (when, bytes still queued), to measure the pace over the last second: earlier on,
        // the server's buffer was still filling at the network's speed.
        let mut samples = std::collections::VecDeque::from([(Instant::now(), queued)]);
        let mut since = Instant::now();
        let mut pause = Duration::from_millis(1);
        while queued > 0 {
            if sockets.ctrl_readable(pause) {
                return Ok(Duration::ZERO);
            }
            pause = (pause * 2).min(Duration::from_millis(100));
            let now = unsent(data)?;
            if now < queued {
                queued = now;
                since = Instant::now();
            } else if since.elapsed() >= stall {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the server took none of the last {queued} bytes for {} s",
                        stall.as_secs()
                    ),
                ));
            }
            samples.push_back((Instant::now(), queued));
            while samples.len() > 2 && samples[1].0.elapsed() >= Duration::from_secs(1) {
                samples.pop_front();
            }
        }
        let (then, was) = samples[0];
        let pace = was as f64 / then.elapsed().as_secs_f64().max(0.001);
        let extra = Duration::from_secs_f64(SERVER_BUFFER as f64 / pace);
        log::debug!(
            "upload: the server took its last {was} bytes at {:.0} KB/s; its reply may take {:.1} s more",
            pace / 1000.0,
            extra.as_secs_f64()
        );
        Ok(extra)
    }
}

/// The most one `sendfile` call sends before the upload's progress is noted.
const PROGRESS_PIECE: u64 = 8 * 1024 * 1024;

/// How long an upload's data connection is read for session tickets at most: they come
/// right after the handshake, so long before the server closes it (as suppaftp's own wait).
const TICKET_WAIT: Duration = Duration::from_secs(1);

/// Below this many unacknowledged bytes at the end of an upload, the server's reply is
/// awaited at once (at 50 KB/s, 256 KiB take 5 s of the 20 s `timeout`). Small files
/// never wait for the watch.
const DRAIN_WATCH: u64 = 256 * 1024;

/// The largest upload sent early (see [`FtpUpload::open`]): one that ends below the
/// [`DRAIN_WATCH`]. A bigger one would need the watch, which cannot tell the `150` still
/// unread on the control connection from an early verdict; and a round trip saved is
/// little against its transfer.
pub(super) const EARLY_MAX: u64 = DRAIN_WATCH;

/// What a server's TCP receive buffer is assumed to hold at most (Linux autotunes it up to
/// 6 MiB by default).
const SERVER_BUFFER: u64 = 8 * 1024 * 1024;

/// Bytes of a socket's output not yet acknowledged by the peer.
fn unsent(socket: &std::net::TcpStream) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd;
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) on an open TCP socket writes one int.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut n) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n.max(0) as u64)
}

/// The TLS stream type of our control connections.
type TlsStreamOf = <suppaftp::RustlsConnector as suppaftp::TlsConnector>::Stream;

impl UploadStream for FtpUpload {
    fn write_all(&mut self, data: &[u8]) -> Result<()> {
        let written = self.put(data);
        written.map_err(|e| {
            self.lease.mark_broken();
            Error::from_io(self.op, e)
        })
    }

    fn write_file(&mut self, file: &std::fs::File, offset: u64, len: u64) -> Result<()> {
        self.send_file(file, offset, len).map_err(|e| {
            self.lease.mark_broken();
            Error::from_io(self.op, e)
        })
    }

    fn finish(self: Box<Self>) -> Result<()> {
        self.end(Ok(()))
    }
}

/// Reads `r` to its end into the upload.
pub(super) fn read_into(r: &mut dyn std::io::Read, up: &mut FtpUpload) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => up.put(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// After a `MODE Z` upload of `sent` bytes to `path`: `SIZE` must say the same. A wrong
/// size, or none, turns `MODE Z` uploads off for the mount (one warning) and is an error,
/// so that [`FtpRemote::store_once`] sends the file again.
pub(super) fn verify_size(pool: &Arc<Pool>, path: &str, sent: u64) -> Result<()> {
    let size = pool
        .policy()
        .run(&format_args!("size of {path}"), Repeat::Safe, |deadline| {
            let mut lease = pool.checkout(Purpose::Meta, deadline)?;
            lease.run(|c| c.ftp.size(path).map_err(|e| Error::from_ftp(Op::Stat, e)))
        });
    let why = match size {
        Ok(n) if n as u64 == sent => return Ok(()),
        Ok(n) => format!("the server kept {n} bytes of {sent} sent"),
        Err(e) => format!("{e}"),
    };
    pool.info()
        .deflate
        .upload_failed(&pool.endpoint().display(), &why);
    Err(Error::Protocol {
        op: Op::Store,
        detail: format!("MODE Z upload of {path} not verified: {why}"),
    })
}

impl Drop for FtpUpload {
    /// Abandoned before `finish`: the data connection is closed (the server keeps what it
    /// got, which the caller deletes) and the connection is not reused.
    fn drop(&mut self) {
        if let Some(w) = self.stream.take() {
            self.lease.conn().sockets.kill();
            self.lease.mark_broken();
            let (stream, _) = w.into_parts();
            drop(stream);
        }
    }
}
