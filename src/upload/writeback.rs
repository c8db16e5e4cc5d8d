//! The write path's side of write-back (the queue itself is [`super::queue`], the journal
//! [`super::journal`]): `close` journals the spool and queues it, a worker's job uploads it
//! and decides what a failure means for its data, `fsync` takes a file's upload over, and a
//! spool kept for its upload is dropped once it has landed.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::journal::{Base, Record};
use super::queue::{Job, Outcome, Queue};
use super::{SpoolEntry, Writes};
use crate::error::{Error, Result};
use crate::remote::{self, Remote};

/// Whether an upload replaces content on the server (atomically, see [`super::atomic`]): a
/// spool outlives its handles with write-back, so a file that was new when its spool was
/// made may have content on the server by now.
fn replaces(e: &SpoolEntry, s: &super::spool::Spool) -> bool {
    e.replaces || s.remote_len > 0
}

/// Whether a failed upload waits for the server to come back rather than failing: it could
/// not be reached at all. A reply, even a 4xx one after the remote's own retries, is an
/// answer, and fails the upload.
pub(super) fn unreachable(e: &Error) -> bool {
    matches!(e, Error::Network { .. } | Error::Timeout { .. })
}

impl<R: Remote> Writes<'_, R> {
    fn queue(&self) -> Option<&Arc<Queue>> {
        self.up.queue.as_ref()
    }

    /// `close` in write-back mode: journals the spool and queues its upload, or uploads at
    /// once when the queue is full or the journal cannot be written (said at warn). A close
    /// with nothing new reports a queued upload of the file that failed since.
    pub(super) fn flush_back(&self, ino: u64, e: &SpoolEntry, q: &Queue) -> Result<()> {
        let mut s = e.lock();
        if s.orphaned {
            self.stop_stream(&mut s);
        }
        if !s.dirty() || s.orphaned {
            return match q.take_error(ino) {
                Some(err) => Err(err),
                None => Ok(()),
            };
        }
        let path = self.inodes.path(ino).ok_or(Error::Stale)?;
        let tail = s.append_only();
        let from = if tail { s.base } else { 0 };
        let bytes = s.len - from;
        if !q.fits(bytes) {
            // As `fsync` does: an older queued version of the file is taken over too, so no
            // stale journal record outlives this upload.
            log::debug!("{path}: the write-back queue is full; uploading at close");
            drop(s);
            return self.fsync(ino);
        }
        if !tail {
            self.fill(ino, &mut s)?;
        }
        let base = match s.chain {
            Some(b) => b,
            None if self.up.pending.lock().contains_key(&path) => Base::New,
            None => Base::Size(s.remote_len),
        };
        let rec = Record {
            id: 0,
            path: path.clone(),
            base,
            tail,
            len: bytes,
            pid: std::process::id(),
            mtime: s.pending_mtime,
            mode: s.pending_mode,
            offset: 0,
            dir: false,
        };
        let written = s
            .reader_from(from)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|mut r| q.journal().write(rec, &mut r));
        match written {
            Ok(rec) => {
                s.chain = Some(base);
                drop(s);
                q.add(ino, &path, rec.id, bytes);
                self.hold(ino, &path, e);
                Ok(())
            }
            Err(err) => {
                log::warn!("{path}: cannot journal it for write-back ({err}); uploading at close");
                drop(s);
                self.fsync(ino)
            }
        }
    }

    /// Takes a reference on `ino` for the queue: the kernel forgets a closed file's inode
    /// when it drops its caches, and the queued upload still needs its path (it failed with
    /// ESTALE). Given back when the spool is dropped ([`Writes::retire`]).
    fn hold(&self, ino: u64, path: &str, e: &SpoolEntry) {
        if e.held.swap(true, Ordering::SeqCst) {
            return;
        }
        let held = self.inodes.lookup(path);
        if held != ino {
            // The name is another inode's by now (renamed over): not ours to hold.
            self.inodes.forget(held, 1);
            e.held.store(false, Ordering::SeqCst);
        }
    }

    /// Uploads `ino`'s spool if it has unsent changes, as `close` does without write-back.
    fn run_job(&self, ino: u64) -> Result<()> {
        let Some(e) = self.spool_of(ino) else {
            return Ok(());
        };
        let mut s = e.lock();
        if s.orphaned {
            self.stop_stream(&mut s);
        }
        if !s.dirty() || s.orphaned {
            return Ok(());
        }
        let path = self.inodes.path(ino).ok_or(Error::Stale)?;
        let replaces = replaces(&e, &s);
        self.upload_spool(ino, &path, &mut s, replaces)
    }

    /// A worker's job: upload, then tell the queue how it ended.
    pub fn work(&self, job: Job) {
        let Some(q) = self.queue() else {
            return;
        };
        if job.dir {
            return self.work_dir(job);
        }
        if job.attrs.is_some() {
            return self.work_attrs(job);
        }
        let ino = job.ino;
        let result = self.run_job(ino);
        let outcome = self.outcome(&job, result.as_ref().err());
        q.finish(job, outcome);
        self.retire(ino);
    }

    /// What a job's result means for its data.
    fn outcome(&self, job: &Job, err: Option<&Error>) -> Outcome {
        let Some(err) = err else {
            return Outcome::Done;
        };
        let path = self
            .inodes
            .path(job.ino)
            .unwrap_or_else(|| job.path.clone());
        if unreachable(err) {
            log::warn!("{path}: the server cannot be reached ({err}); the upload stays queued");
            return Outcome::Retry(err.to_string());
        }
        if job.records.is_empty() {
            // An fsync's own upload of unclosed data: the caller is told, the spool keeps it.
            return Outcome::Failed {
                path,
                kept: PathBuf::new(),
                errno: err.errno(),
                text: err.to_string(),
                in_journal: false,
            };
        }
        let saved = self.spool_of(job.ino).map(|e| {
            let mut s = e.lock();
            let saved = s.recover(&self.up.recovery_dir, &path);
            if saved.is_ok() {
                // Kept: not queued again by the next close or the last release, unless it
                // is written again. The next fsync or close reports the failure.
                s.dirty_from = None;
            }
            saved
        });
        let (kept, in_journal) = match saved {
            Some(Ok(p)) => {
                log::error!(
                    "{path}: the queued upload failed ({err}); its data was saved to {}",
                    p.display()
                );
                (p, false)
            }
            other => {
                let data = job
                    .records
                    .last()
                    .map(|id| self.queue().expect("write-back").journal().file_path(*id))
                    .unwrap_or_default();
                let why = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "its spool is gone".into(),
                };
                log::error!(
                    "{path}: the queued upload failed ({err}) and saving it failed ({why}); \
                     its data stays in {}",
                    data.display()
                );
                (data, true)
            }
        };
        // Closed by everyone: it never reached the server, so it must not linger in our
        // listings either. Still open: the spool keeps it for the next close or fsync.
        if self.writers(job.ino) == 0 && self.up.pending.lock().remove(&path).is_some() {
            self.cache
                .update(remote::parent(&path), remote::basename(&path), None);
        }
        Outcome::Failed {
            path,
            kept,
            errno: err.errno(),
            text: err.to_string(),
            in_journal,
        }
    }

    fn writers(&self, ino: u64) -> usize {
        self.spool_of(ino)
            .map_or(0, |e| e.writers.load(Ordering::SeqCst))
    }

    /// Drops the spool of a file nobody has open and nothing queued: its upload landed
    /// (or failed and was saved), and the server's listing is the truth again.
    pub(super) fn retire(&self, ino: u64) {
        let Some(q) = self.queue() else {
            return;
        };
        let Some(e) = self.spool_of(ino) else {
            return;
        };
        // Unsent changes keep it: whoever made them queues them (a truncate does, see
        // `truncate_open`), and a spool dropped now would lose them. Looked at outside the
        // map's lock: an upload holding the spool's lock may need the map (listings show
        // pending files from it).
        if e.writers.load(Ordering::SeqCst) != 0 || e.lock().dirty() {
            return;
        }
        let mut map = self.up.spools.lock();
        let idle = map
            .get(&ino)
            .is_some_and(|cur| Arc::ptr_eq(cur, &e) && cur.writers.load(Ordering::SeqCst) == 0);
        if !idle || q.has(ino) {
            return;
        }
        map.remove(&ino);
        drop(map);
        let path = self.inodes.path(ino).unwrap_or_default();
        if e.held.swap(false, Ordering::SeqCst) {
            self.inodes.forget(ino, 1);
        }
        // Still pending: it never reached the server (its data was saved elsewhere), so it
        // must not linger in our listings.
        if self.up.pending.lock().remove(&path).is_some() {
            self.cache
                .update(remote::parent(&path), remote::basename(&path), None);
        }
    }

    /// `fsync` of a file: its queued upload is taken over and run now; its errno, or that of
    /// a queued upload of it that failed since the last `fsync`, is returned.
    pub fn fsync(&self, ino: u64) -> Result<()> {
        let Some(q) = self.queue() else {
            return self.upload(ino);
        };
        let job = q.claim(ino);
        let result = self.run_job(ino);
        let outcome = self.outcome(&job, result.as_ref().err());
        q.finish(job, outcome);
        self.retire(ino);
        result?;
        match q.take_error(ino) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `fsync` of the mount's root: waits for the whole queue (see [`Queue::wait_idle`]).
    pub fn sync_all(&self) -> Result<()> {
        match self.queue() {
            Some(q) => q.wait_idle(),
            None => Ok(()),
        }
    }
}
