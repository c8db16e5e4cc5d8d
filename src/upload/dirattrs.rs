//! Directory modes and times under write-back.
//!
//! `tar x`, `cp -a` and `rsync -a` write what is in a directory first and then set the
//! directory's time and mode (GNU tar makes each directory `0700` and gives it its real
//! mode at the end). With `-o writeback` the files in it are usually still queued when that
//! happens. Changing the mode at once made every upload beneath it synchronous (a read-only
//! mode set before them would refuse them), which cost `tar x` all that write-back saves;
//! setting the time at once did not even stay, as the uploads that landed after it changed
//! the directory's time on the server again. So a mode or time set on a directory while
//! anything at or beneath it is queued or uploading is queued as well, and set once all of
//! that has landed ([`super::queue::Queue::add_attrs`]), mode first:
//! - `stat` and listings show them at once (and the server's again if it refuses them);
//! - `sync MOUNTPOINT` and `ftpfs umount` wait for them like for an upload;
//! - renaming the directory (or one above it) sets them first, since the queue names the
//!   old path; removing it drops them;
//! - a server that refuses to set a directory's time (vsftpd, pyftpdlib) is treated as
//!   without write-back: the directory keeps the time the server gives it, said once in the
//!   log (with `-o strict_times` nothing is queued, and the refusal is the caller's). A mode
//!   the server refuses is logged at warn: the caller was told success;
//! - they are not journaled: after a crash, the directory keeps the server's mode and time.

use std::sync::atomic::Ordering;

use super::queue::{DirAttrs, Job, Outcome};
use super::Writes;
use crate::error::Error;
use crate::remote::{self, Kind, Remote, RemoteEntry};

impl<R: Remote> Writes<'_, R> {
    /// Queues `attrs` for the directory `path` if write-back has something queued or
    /// uploading at or beneath it; returns whether it did (else the caller sets them now).
    pub fn defer_dir_attrs(&self, path: &str, attrs: DirAttrs) -> bool {
        let Some(q) = self.up.queue.as_ref() else {
            return false;
        };
        // Held while the queue is told: a worker ending the previous job of `path` sees
        // this one (see `retire_attrs`).
        let mut queued = self.up.dir_attrs.lock();
        if !q.busy_beneath(path) {
            return false;
        }
        let (key, all) = match queued.get(path) {
            Some(&(key, before)) => (key, before.and(attrs)),
            None => (self.up.dir_keys.fetch_add(1, Ordering::Relaxed), attrs),
        };
        queued.insert(path.to_string(), (key, all));
        q.add_attrs(key, path, attrs);
        drop(queued);
        self.show_dir_attrs(path, attrs);
        true
    }

    /// The modes and times queued for directories in `dir`, shown in its listing.
    pub(super) fn add_dir_attrs(&self, dir: &str, entries: &mut [RemoteEntry]) {
        let queued = self.up.dir_attrs.lock();
        if queued.is_empty() {
            return;
        }
        for e in entries.iter_mut().filter(|e| e.kind == Kind::Dir) {
            if let Some((_, a)) = queued.get(&remote::join(dir, &e.name)) {
                e.mode = a.mode.or(e.mode);
                e.mtime = a.time.or(e.mtime);
            }
        }
    }

    /// A worker's job for a directory's queued mode and time.
    pub(super) fn work_attrs(&self, job: Job) {
        let Some(q) = self.up.queue.as_ref() else {
            return;
        };
        let (key, path) = (job.ino, job.path.clone());
        // Dropped meanwhile (the directory was removed or renamed): nothing to set.
        let wanted = self
            .up
            .dir_attrs
            .lock()
            .get(&path)
            .is_some_and(|&(k, _)| k == key);
        if let (true, Some(a)) = (wanted, job.attrs) {
            self.set_dir_attrs(&path, a);
        }
        q.finish(job, Outcome::Done);
        self.retire_attrs(&path, key);
    }

    /// Sets the modes and times queued at or beneath `path` now (before a rename: the
    /// queue names the old paths). The uploads beneath have landed (see
    /// `ensure_on_server`).
    pub(super) fn dir_attrs_now(&self, path: &str) {
        let Some(q) = self.up.queue.as_ref() else {
            return;
        };
        let prefix = format!("{path}/");
        let mut due: Vec<(String, u64)> = self
            .up
            .dir_attrs
            .lock()
            .iter()
            .filter(|(p, _)| path.is_empty() || *p == path || p.starts_with(&prefix))
            .map(|(p, &(k, _))| (p.clone(), k))
            .collect();
        // Deepest first, as the queue would.
        due.sort_by(|a, b| b.0.cmp(&a.0));
        for (p, key) in due {
            let job = q.claim(key);
            if let Some(a) = job.attrs {
                self.set_dir_attrs(&p, a);
            }
            q.finish(job, Outcome::Done);
            self.retire_attrs(&p, key);
        }
    }

    /// `path` and what was beneath it are gone (removed or renamed): what was queued for
    /// them is not set.
    pub(super) fn forget_dir_attrs(&self, path: &str) {
        let prefix = format!("{path}/");
        self.up
            .dir_attrs
            .lock()
            .retain(|p, _| p != path && !p.starts_with(&prefix));
    }

    /// The job of `path` ended: forgotten, unless a newer change was queued meanwhile.
    fn retire_attrs(&self, path: &str, key: u64) {
        let Some(q) = self.up.queue.as_ref() else {
            return;
        };
        let mut queued = self.up.dir_attrs.lock();
        if queued.get(path).is_some_and(|&(k, _)| k == key) && !q.has(key) {
            queued.remove(path);
        }
    }

    fn set_dir_attrs(&self, path: &str, a: DirAttrs) {
        if let Some(mode) = a.mode {
            match self.remote.chmod(path, Kind::Dir, mode) {
                Ok(()) => self.show_dir_attrs(
                    path,
                    DirAttrs {
                        mode: a.mode,
                        time: None,
                    },
                ),
                Err(e) => {
                    log::warn!("/{path}: the queued mode {mode:o} was not set: {e}");
                    // Shown since the chmod; the server's own is shown from now on.
                    self.cache.invalidate(remote::parent(path));
                }
            }
        }
        let Some(t) = a.time else {
            return;
        };
        match self.remote.set_mtime(path, Kind::Dir, t) {
            Ok(()) => self.show_dir_attrs(
                path,
                DirAttrs {
                    mode: None,
                    time: a.time,
                },
            ),
            Err(e) if refused(&e) => {
                self.cache.invalidate(remote::parent(path));
                if !self.up.dir_time_refused.swap(true, Ordering::Relaxed) {
                    log::info!(
                        "/{path}: the server cannot set a directory's time ({e}); directory \
                         times are left as the server keeps them"
                    );
                } else {
                    log::debug!("/{path}: directory time not set: {e}");
                }
            }
            Err(e) => {
                log::warn!("/{path}: the queued directory time was not set: {e}");
                self.cache.invalidate(remote::parent(path));
            }
        }
    }

    fn show_dir_attrs(&self, path: &str, a: DirAttrs) {
        if let Some(mut e) = self.cache.entry(path) {
            e.mode = a.mode.or(e.mode);
            e.mtime = a.time.or(e.mtime);
            self.cache
                .update(remote::parent(path), &e.name.clone(), Some(e));
        }
    }
}

/// A refusal, as opposed to a failure to ask (as `crate::fs`'s `dir_time_not_set` judges).
fn refused(e: &Error) -> bool {
    matches!(e, Error::Unsupported)
        || matches!(e, Error::Reply { code, .. } if (500..600).contains(code))
}
