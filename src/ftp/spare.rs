//! Speculative work on spare connections: listing a directory, or reading a small file
//! whole, before anyone asked (see [`crate::fs`]'s prefetch).
//!
//! A guess must never cost a request the kernel is waiting for: these run only on a
//! connection that is idle (or can be made) while another stays free
//! ([`Pool::checkout_spare`]), are tried once (a guess that fails is simply not used), and
//! give up at once, with `Ok(None)`, when there is no such connection. A small file is read
//! plain (`MODE S`) from byte 0, and only whole: the bytes count only if the server ends the
//! transfer with its `226` and they are exactly as many as the listing said.

use std::io::Read;
use std::time::{Duration, Instant};

use super::pool::Pool;
use super::FtpRemote;
use crate::error::{Error, Op, Result};
use crate::remote::RemoteEntry;

/// How long speculative work waits for a spare connection before it gives up for now.
pub const SPARE_WAIT: Duration = Duration::from_millis(200);

impl FtpRemote {
    /// [`crate::remote::Remote::list_spare`] over FTP.
    pub(super) fn list_on_spare(
        &self,
        dir: &str,
        claim: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Vec<RemoteEntry>>> {
        let deadline = self.pool.policy().deadline_from_now();
        let Some(lease) = self.spare(deadline)? else {
            return Ok(None);
        };
        if !claim() {
            return Ok(None);
        }
        self.list_on(lease, &self.abs(dir), deadline).map(Some)
    }

    /// [`crate::remote::Remote::read_spare`] over FTP: the bytes, at most `size + 1` of them
    /// (more than `size` means the file grew).
    pub(super) fn read_on_spare(&self, path: &str, size: u64) -> Result<Option<Vec<u8>>> {
        let deadline = self.pool.policy().deadline_from_now();
        let Some(mut lease) = self.spare(deadline)? else {
            return Ok(None);
        };
        let path = self.abs(path);
        let data = lease.run(|c| {
            let mut stream = super::reader::retr_from(c, &path, 0)?;
            // One byte more than the listing said tells a file that grew since.
            let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
            let read = (&mut stream).take(size + 1).read_to_end(&mut data);
            if let Err(e) = read {
                c.sockets.kill();
                return Err(Error::from_io(Op::Retr, e));
            }
            c.sockets.end_data();
            // Reading stopped at `size + 1` bytes for a file that grew: the server may
            // answer the early close with 426 (or pure-ftpd's second 150), which leaves the
            // connection in doubt; the caller sees the length differ and does not use them.
            stream.finish().map_err(|e| Error::from_ftp(Op::Retr, e))?;
            if (data.len() as u64) < size {
                if let Some(sessions) = c.sessions.as_ref().filter(|s| s.closed_early()) {
                    // The server may have taken our early goodbye for the end (see `tls`).
                    sessions.transfer_failed(&format_args!(
                        "the download of {path} ended at byte {} of the {size} listed",
                        data.len()
                    ));
                }
            }
            Ok(Some(data))
        });
        if data.is_err() {
            // Whatever the reply was, a connection that ended a transfer in doubt is not
            // worth keeping for a guess.
            lease.mark_broken();
        }
        data
    }

    fn spare(&self, deadline: Instant) -> Result<Option<super::pool::Lease>> {
        Pool::checkout_spare(&self.pool, deadline, Instant::now() + SPARE_WAIT)
    }
}
