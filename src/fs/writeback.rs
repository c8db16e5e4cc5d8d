//! The filesystem's side of write-back (`-o writeback`; the queue and journal are in
//! [`crate::upload::queue`] and [`crate::upload::journal`]): turning it on, replaying what an
//! earlier session left before serving, the workers, `fsync` and `fsync` of the root, and
//! the drain at the end of the session.

use std::sync::Arc;

use super::handles::Handle;
use super::FtpFs;
use crate::error::{Error, Result};
use crate::inode::ROOT;
use crate::remote::Remote;
use crate::upload::journal::{Journal, Replayed};
use crate::upload::queue::{Queue, QueueStats};

impl<R: Remote + 'static> FtpFs<R> {
    /// Turns write-back on, with `journal` and at most `max_bytes` and `max_files` queued.
    pub fn enable_writeback(&mut self, journal: Journal, max_bytes: u64, max_files: usize) {
        self.uploader
            .set_queue(Queue::new(journal, max_bytes, max_files));
    }

    /// Finishes what an earlier session of this server and path left in the journal; to be
    /// called before the mount serves anything.
    pub fn replay_journal(&self) -> Replayed {
        match self.uploader.queue() {
            Some(q) => self.writes().replay(q.journal()),
            None => Replayed::default(),
        }
    }

    /// Finishes a journal an earlier write-back session left, for a mount without
    /// write-back; to be called before the mount serves anything.
    pub fn replay_leftover(&self, journal: &Journal) -> Replayed {
        self.writes().replay(journal)
    }

    /// Starts `workers` upload threads (the pool's size: they never wait for each other's
    /// connections). Their work is background work ([`crate::remote::in_background`]): it
    /// never delays a request a process waits for.
    pub fn start_writeback(self: &Arc<Self>, workers: usize) -> std::io::Result<()> {
        let Some(q) = self.uploader.queue() else {
            return Ok(());
        };
        for _ in 0..workers.max(1) {
            let (fs, queue) = (Arc::clone(self), Arc::clone(q));
            q.spawn(move || {
                crate::remote::in_background(|| queue.serve(|job| fs.writes().work(job)))
            })?;
        }
        Ok(())
    }

    /// The end of the session: waits for the queue, stops the workers; what could not be
    /// uploaded is logged with where its data is.
    pub fn drain_writeback(&self) {
        if let Some(q) = self.uploader.queue() {
            q.drain();
        }
    }

    /// The write-back queue now; `None` without write-back.
    pub fn writeback_stats(&self) -> Option<QueueStats> {
        self.uploader.queue().map(|q| q.stats())
    }

    /// `fsync(2)` of a file: waits for its upload and returns its errno (with write-back,
    /// also that of a queued upload of it that failed since).
    pub fn fsync(&self, fh: u64) -> Result<()> {
        match self.written_ino(fh)? {
            Some(ino) => self.writes().fsync(ino),
            None => Ok(()),
        }
    }

    /// `fsync(2)` of a directory. Directory changes are made on the server when they happen,
    /// but for the queued `mkdir`s of write-back ([`crate::upload`]'s `mkdir`), which the
    /// whole queue includes: the root waits for the whole queue (`sync MOUNTPOINT`; the kernel
    /// sends no `syncfs` to FUSE daemons).
    pub fn fsyncdir(&self, ino: u64) -> Result<()> {
        if ino == ROOT {
            return self.writes().sync_all();
        }
        Ok(())
    }

    /// The inode of a write handle; `None` for other handles.
    pub(super) fn written_ino(&self, fh: u64) -> Result<Option<u64>> {
        let handle = self.handles.get(fh).ok_or(Error::Stale)?;
        Ok(match &*handle {
            Handle::File {
                ino, write: true, ..
            } => Some(*ino),
            _ => None,
        })
    }
}
