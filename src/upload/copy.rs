//! The write side of a server-side copy (see `fs::copy` for when one is made): the source
//! settled on the server first, the destination's spool made to stand for the copy.

use super::Writes;
use crate::error::{Error, Result};
use crate::remote::{self, Kind, Remote, RemoteEntry};

impl<R: Remote> Writes<'_, R> {
    /// Uploads the unsent writes of `ino` (at `path`) and makes sure the file exists on the
    /// server, so that a copy made there copies what the program sees.
    pub fn settle(&self, ino: u64, path: &str) -> Result<()> {
        if let Some(e) = self.spool_of(ino) {
            self.upload_entry(ino, &e)?;
        }
        self.ensure_on_server(path)
    }

    /// Copies `from` (`size` bytes) onto `to`, the file of write handle inode `ino_out`, on
    /// the server, when `to` is still empty; returns the bytes copied. `Unsupported` sends
    /// the caller to reading and writing. The destination's spool then stands for the
    /// server's new file: clean, its content downloaded only if it is read or written below
    /// its end, so its close uploads nothing (an empty upload there would undo the copy).
    pub fn copy_on_server(&self, ino_out: u64, from: &str, to: &str, size: u64) -> Result<u64> {
        let Some(e) = self.spool_of(ino_out) else {
            return Err(Error::Stale);
        };
        // The destination's lock is held across the copy, as across an upload: a write
        // through another handle waits for the outcome instead of landing in between.
        let mut s = e.lock();
        // Its directory's `mkdir` is still queued (write-back): the server has no place for
        // it yet; reading and writing queue it behind that `mkdir` instead.
        if s.len != 0 || s.orphaned || self.is_queued_dir(remote::parent(to)) {
            return Err(Error::Unsupported);
        }
        match self.remote.copy(from, to) {
            Ok(()) => {}
            Err(Error::Unsupported) => return Err(Error::Unsupported),
            // The server refused this copy (a permission, a quota): reading and writing
            // will meet the same refusal, or not, and report it as the data path does.
            Err(
                e @ Error::Reply {
                    code: 500..=599, ..
                },
            ) => {
                log::info!(
                    "server-side copy of {from} to {to} refused ({e}); copying through ftpfs"
                );
                return Err(Error::Unsupported);
            }
            Err(e) => {
                log::warn!("server-side copy of {from} to {to} failed: {e}");
                return Err(e);
            }
        }
        log::debug!("copied {from} to {to} on the server ({size} bytes)");
        self.stop_stream(&mut s);
        let (wanted_mode, wanted_mtime) = (s.pending_mode.take(), s.pending_mtime.take());
        *s = super::spool::Spool::new(&self.up.spool_dir, size)?;
        self.up.pending.lock().remove(to);
        // What the creator asked for applies to the copy as to an upload, and a time the
        // server refuses is reported as after an upload (the copy stands).
        let applied_mode = wanted_mode.and_then(|m| self.apply_new_mode(to, Kind::File, m));
        let time_set = match wanted_mtime {
            Some(t) => self
                .remote
                .set_mtime(to, Kind::File, t)
                .map(|()| s.mtime = t),
            None => Ok(()),
        };
        let mut entry = self.cache.entry(to).unwrap_or(RemoteEntry {
            name: remote::basename(to).to_string(),
            kind: Kind::File,
            size: 0,
            mtime: None,
            mode: None,
            link_target: None,
        });
        entry.size = size;
        entry.mtime = Some(s.mtime);
        if wanted_mode.is_some() {
            entry.mode = applied_mode;
        }
        self.cache
            .update(remote::parent(to), &entry.name.clone(), Some(entry));
        time_set.map(|()| size)
    }
}
