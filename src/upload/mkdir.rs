//! Queued `mkdir` (write-back): `cp -r` and `tar x` need not wait for a round trip per
//! directory.
//!
//! With `-o writeback`, files go up behind `close`, but every `mkdir` of a `cp -r` still
//! waited for its `MKD`: one round trip each, the largest part of what a copy of a tree of
//! small files waited for on a distant server. So a `mkdir` is queued too, under one rule:
//! only *inside a directory this mount made itself this session* and still knows writable
//! (see [`Writes::dir_made`]). The first `mkdir` of a `cp -r` into an existing directory is
//! synchronous and gets the server's honest answer (EACCES, EEXIST, ENOSPC); only the ones
//! beneath it, which ask a server that just let us make their parent, are queued. A
//! directory without write permission for its owner (`mkdir -m 555`) takes no queued
//! `mkdir`s.
//!
//! A queued `mkdir` is journaled durably (a directory record, replayed before anything
//! beneath its path: [`super::replay`]) and shown at once: its parent's listing has it and
//! its own listing is answered here, empty but for what was made in it, without asking the
//! server (which would say 550), also after the cache expired, as pending files are. In the
//! queue, nothing beneath its path starts before its `MKD` is done
//! ([`super::queue::Queue::add_dir`]). Anything that needs the directory on the server
//! first (renaming or removing it or anything beneath, changing attributes where they do
//! not wait in the queue themselves (see [`super::dirattrs`]), an upload that cannot wait
//! for the queue) makes the queued `MKD`s above it first ([`Writes::ensure_dirs`]).
//!
//! A `MKD` the server refuses (any answer but success or "it exists and is a directory")
//! means nothing beneath can go up: the directory goes from our listings, each queued file
//! beneath fails with that errno, its data saved to the recovery directory and logged at
//! error level, as a failed upload is; `fsync`, `sync MOUNTPOINT` and `ftpfs umount`
//! report it the same way.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::journal::{Base, Record};
use super::queue::{Job, Outcome};
use super::{Writes, NEW_DIR_MODE};
use crate::error::{Error, Result};
use crate::remote::{self, Kind, Remote, RemoteEntry};

/// Queue keys of directories: above every inode number, so never a file's.
pub(super) const FIRST_KEY: u64 = 1 << 62;

/// A directory whose `mkdir` is queued.
pub(super) struct QueuedDir {
    key: u64,
    /// The mode asked for (the caller's umask applied).
    mode: u32,
}

impl<R: Remote> Writes<'_, R> {
    /// Whether a `mkdir` in `dir` is queued (see the module's doc).
    pub fn queues_mkdir_in(&self, dir: &str) -> bool {
        if self.up.queue.is_none() || !self.up.made.lock().contains(dir) {
            return false;
        }
        self.is_queued_dir(dir)
            || self
                .up
                .writable_dirs
                .lock()
                .get(dir)
                .is_some_and(|t| t.elapsed() < self.up.proven_for)
    }

    /// Whether `dir`'s `mkdir` is queued, not done yet.
    pub(super) fn is_queued_dir(&self, dir: &str) -> bool {
        let dirs = self.up.queued_dirs.lock();
        !dirs.is_empty() && dirs.contains_key(dir)
    }

    /// Whether `dir` is queued and made writable here: files created in it wait for their
    /// first flush (the empty STOR that proves a directory writable cannot go up yet).
    pub(super) fn queued_made_dir(&self, dir: &str) -> bool {
        self.is_queued_dir(dir) && self.up.made.lock().contains(dir)
    }

    /// Journals and queues the `mkdir` of `path` with `mode`; returns the mode to show, or
    /// `None` if the journal could not take it (said at warn): the caller makes it now.
    pub fn queue_mkdir(&self, path: &str, mode: u32) -> Option<Option<u32>> {
        let q = self.up.queue.as_ref()?;
        let mode = mode & 0o7777;
        let rec = Record {
            id: 0,
            path: path.to_string(),
            base: Base::New,
            tail: false,
            len: 0,
            pid: std::process::id(),
            mtime: None,
            mode: Some(mode),
            offset: 0,
            dir: true,
        };
        let rec = match q.journal().write(rec, &mut std::io::empty()) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("{path}: cannot journal its mkdir for write-back ({e}); made now");
                return None;
            }
        };
        let key = self.up.dir_keys.fetch_add(1, Ordering::Relaxed);
        self.up.refused_dirs.lock().remove(path);
        self.up
            .queued_dirs
            .lock()
            .insert(path.to_string(), QueuedDir { key, mode });
        q.add_dir(key, path, rec.id);
        let chmod_known_missing = self.up.no_site_chmod.load(Ordering::Relaxed);
        Some((mode != NEW_DIR_MODE && !chmod_known_missing).then_some(mode))
    }

    /// `path` was made on the server now (a synchronous `mkdir`): an earlier refusal of a
    /// queued `mkdir` of it no longer holds for what is queued beneath it from now on.
    pub fn made_on_server(&self, path: &str) {
        self.up.refused_dirs.lock().remove(path);
    }

    /// `path` and what was beneath it are gone from where this mount made them (removed or
    /// renamed): `mkdir`s there are not queued any more.
    pub fn forget_made(&self, path: &str) {
        let prefix = format!("{path}/");
        self.up
            .made
            .lock()
            .retain(|p| p != path && !p.starts_with(&prefix));
        self.forget_dir_attrs(path);
    }

    /// The queued directories in `dir`, for its listing.
    pub(super) fn add_queued_dirs(&self, dir: &str, entries: &mut Vec<RemoteEntry>) {
        let names: Vec<(String, u32)> = {
            let dirs = self.up.queued_dirs.lock();
            if dirs.is_empty() {
                return;
            }
            dirs.iter()
                .filter(|(p, _)| remote::parent(p) == dir)
                .map(|(p, d)| (remote::basename(p).to_string(), d.mode))
                .collect()
        };
        for (name, mode) in names {
            if entries.iter().any(|e| e.name == name) {
                continue;
            }
            entries.push(RemoteEntry {
                name,
                kind: Kind::Dir,
                size: 0,
                mtime: Some(SystemTime::now()),
                mode: (mode != NEW_DIR_MODE).then_some(mode),
                link_target: None,
            });
        }
    }

    /// Makes the queued `mkdir`s of `path` and of the directories above it now, from the
    /// top: an operation on the server beneath them needs them. The errno of one the server
    /// refused (now or earlier this session) is returned.
    pub fn ensure_dirs(&self, path: &str) -> Result<()> {
        if let Some(e) = self.refusal_above(path) {
            return Err(e);
        }
        let mut queued: Vec<String> = {
            let dirs = self.up.queued_dirs.lock();
            if dirs.is_empty() {
                return Ok(());
            }
            let mut p = path;
            let mut found = Vec::new();
            loop {
                if dirs.contains_key(p) {
                    found.push(p.to_string());
                }
                match p.rfind('/') {
                    Some(i) => p = &p[..i],
                    None => break,
                }
            }
            found
        };
        queued.reverse();
        for dir in queued {
            self.make_queued_dir_now(&dir)?;
        }
        Ok(())
    }

    /// Makes every queued `mkdir` beneath `path` now, parents first (before a rename of
    /// `path`: the queue names their old paths).
    pub fn ensure_dirs_below(&self, path: &str) -> Result<()> {
        let prefix = format!("{path}/");
        let mut below: Vec<String> = self
            .up
            .queued_dirs
            .lock()
            .keys()
            .filter(|p| path.is_empty() || p.starts_with(&prefix))
            .cloned()
            .collect();
        below.sort();
        for dir in below {
            self.ensure_dirs(&dir)?;
        }
        Ok(())
    }

    /// The refusal of a queued `mkdir` of `path` or of a directory above it.
    fn refusal_above(&self, path: &str) -> Option<Error> {
        let refused = self.up.refused_dirs.lock();
        if refused.is_empty() {
            return None;
        }
        let mut p = path;
        loop {
            if let Some((errno, text)) = refused.get(p) {
                return Some(Error::WriteBack {
                    errno: *errno,
                    text: format!("its directory {p} could not be made: {text}"),
                });
            }
            p = &p[..p.rfind('/')?];
        }
    }

    /// Takes the queued `mkdir` of `dir` over from the queue (waiting while a worker runs
    /// it) and runs it.
    fn make_queued_dir_now(&self, dir: &str) -> Result<()> {
        let Some(q) = self.up.queue.as_ref() else {
            return Ok(());
        };
        let Some(key) = self.up.queued_dirs.lock().get(dir).map(|d| d.key) else {
            return self.refusal_above(dir).map_or(Ok(()), Err);
        };
        let job = q.claim(key);
        let result = self.run_dir(dir);
        let outcome = self.dir_outcome(&job, dir, result.as_ref().err());
        q.finish(job, outcome);
        result
    }

    /// A worker's job for a queued `mkdir`.
    pub(super) fn work_dir(&self, job: Job) {
        let Some(q) = self.up.queue.as_ref() else {
            return;
        };
        let path = job.path.clone();
        let result = self.run_dir(&path);
        let outcome = self.dir_outcome(&job, &path, result.as_ref().err());
        q.finish(job, outcome);
    }

    /// The `MKD` of a queued directory, if it is still queued (a worker or another request
    /// may have made it meanwhile), and its mode.
    fn run_dir(&self, dir: &str) -> Result<()> {
        let Some(mode) = self.up.queued_dirs.lock().get(dir).map(|d| d.mode) else {
            return self.refusal_above(dir).map_or(Ok(()), Err);
        };
        if let Some(e) = self.refusal_above(remote::parent(dir)) {
            return Err(e);
        }
        match self.remote.mkdir(dir) {
            Ok(()) => {
                self.apply_new_mode(dir, Kind::Dir, mode);
                Ok(())
            }
            Err(e) if super::writeback::unreachable(&e) => Err(e),
            // Made already: an earlier attempt whose answer was lost.
            Err(e) => match self.remote.list(remote::parent(dir)) {
                Ok(l)
                    if l.iter()
                        .any(|x| x.name == remote::basename(dir) && x.kind == Kind::Dir) =>
                {
                    Ok(())
                }
                Err(le) if super::writeback::unreachable(&le) => Err(le),
                _ => Err(e),
            },
        }
    }

    /// What a queued `mkdir`'s result means: done, waiting for the server, or refused for
    /// good (see the module's doc).
    fn dir_outcome(&self, job: &Job, dir: &str, err: Option<&Error>) -> Outcome {
        let Some(err) = err else {
            let removed = self.up.queued_dirs.lock().remove(dir);
            if let Some(d) = removed {
                // A listing of the parent fetched before the `MKD` landed must not hide it:
                // the update refuses it (after the removal above, so that none slips in).
                let e = self.cache.entry(dir).unwrap_or_else(|| RemoteEntry {
                    name: remote::basename(dir).to_string(),
                    kind: Kind::Dir,
                    size: 0,
                    mtime: Some(SystemTime::now()),
                    mode: (d.mode != NEW_DIR_MODE).then_some(d.mode),
                    link_target: None,
                });
                self.cache
                    .update(remote::parent(dir), &e.name.clone(), Some(e));
            }
            return Outcome::Done;
        };
        if super::writeback::unreachable(err) {
            log::warn!("{dir}: the server cannot be reached ({err}); its mkdir stays queued");
            return Outcome::Retry(err.to_string());
        }
        if self.up.queued_dirs.lock().remove(dir).is_some() {
            log::error!(
                "{dir}: the queued mkdir failed ({err}); what was queued beneath it goes to {}",
                self.up.recovery_dir.display()
            );
            self.up
                .refused_dirs
                .lock()
                .insert(dir.to_string(), (err.errno(), err.to_string()));
            self.up.made.lock().remove(dir);
            self.cache
                .update(remote::parent(dir), remote::basename(dir), None);
            self.cache.invalidate_tree(dir);
        }
        Outcome::Failed {
            path: job.path.clone(),
            kept: std::path::PathBuf::new(),
            errno: err.errno(),
            text: format!("mkdir {dir}: {err}"),
            in_journal: false,
        }
    }
}
