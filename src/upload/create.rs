//! Creating files: a refusal at `open(2)`, and one transfer per new file.
//!
//! FTP has no "create": a file exists on the server once something was stored under its
//! name. Errors belong at `open(2)`, since many programs never look at `close(2)` (a shell's
//! `>` does not), so the first create in a directory is an empty STOR, and a refusal
//! (EACCES, EDQUOT) is reported there. Once a directory has taken a file, a file created in
//! it waits for its first flush to reach the server (one transfer per new file, not two);
//! until then it is *pending*, and this mount's listings show it. A new file or directory
//! gets the mode its creator asked for with `SITE CHMOD`, when that differs from what
//! servers commonly give.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use super::{queue, Writes, NEW_DIR_MODE, NEW_FILE_MODE};
use crate::error::Result;
use crate::remote::{self, Kind, Remote, RemoteEntry};

impl<R: Remote> Writes<'_, R> {
    /// Files created here but not uploaded yet exist for us even if the server's listing
    /// does not show them.
    pub(crate) fn add_pending(&self, dir: &str, entries: &mut Vec<RemoteEntry>) {
        let pending: Vec<(String, u64)> = self
            .up
            .pending
            .lock()
            .iter()
            .filter(|(p, _)| remote::parent(p) == dir)
            .map(|(p, &i)| (p.clone(), i))
            .collect();
        for (path, ino) in pending {
            let name = remote::basename(&path);
            if entries.iter().any(|e| e.name == name) {
                continue;
            }
            // The spool may be busy uploading; its size is only a detail here (getattr
            // asks the spool itself).
            let (size, mtime) = self
                .spool_of(ino)
                .and_then(|e| e.spool.try_lock().map(|s| (s.len, s.mtime)))
                .unwrap_or((0, SystemTime::now()));
            entries.push(RemoteEntry {
                name: name.to_string(),
                kind: Kind::File,
                size,
                mtime: Some(mtime),
                mode: None,
                link_target: None,
            });
        }
        self.add_queued_dirs(dir, entries);
        self.add_dir_attrs(dir, entries);
    }

    /// The first step of creating the file `path` in `dir`. Errors belong at open(2): many
    /// programs never look at close(2) (a shell's `>` does not). So the first create in a
    /// directory is an empty STOR, and a refusal (EACCES, EDQUOT) is reported here. Once a
    /// directory has taken a file, later creates in it wait for their first flush: one
    /// transfer per new file, not two, and our own listings show the file meanwhile (it is
    /// pending). Returns whether the file waits (`true`) and the mode applied, if any.
    pub fn create_on_server(
        &self,
        dir: &str,
        path: &str,
        mode: u32,
    ) -> Result<(bool, Option<u32>)> {
        let proven = self
            .up
            .writable_dirs
            .lock()
            .get(dir)
            .is_some_and(|t| t.elapsed() < self.up.proven_for);
        if proven || self.queued_made_dir(dir) {
            return Ok((true, None));
        }
        self.ensure_dirs(dir)?;
        self.remote.store(path, &remote::Empty)?;
        self.up
            .writable_dirs
            .lock()
            .insert(dir.to_string(), Instant::now());
        Ok((false, self.apply_new_mode(path, Kind::File, mode)))
    }

    /// `dir` was just made by this mount: it is known writable, as a directory that took
    /// a file is (see [`Writes::create_on_server`]).
    pub fn dir_made(&self, dir: &str) {
        self.up
            .writable_dirs
            .lock()
            .insert(dir.to_string(), Instant::now());
        self.up.made.lock().insert(dir.to_string());
    }

    /// The second step: the new file's spool and its first write handle. A file that waits
    /// for its first flush is pending, and gets `mode` after that upload; returns the mode
    /// to show meanwhile.
    pub fn create_spool(
        &self,
        ino: u64,
        path: &str,
        waits: bool,
        mode: u32,
    ) -> Result<Option<u32>> {
        let e = self.writer_spool(ino, 0)?;
        if !waits {
            return Ok(None);
        }
        let mut shown = None;
        let mut s = e.lock();
        s.mark_new();
        let mode = mode & 0o7777;
        if mode != NEW_FILE_MODE && !self.up.no_site_chmod.load(Ordering::Relaxed) {
            s.pending_mode = Some(mode);
            shown = Some(mode);
        }
        drop(s);
        self.up.pending.lock().insert(path.to_string(), ino);
        Ok(shown)
    }

    /// Gives a new file or directory the mode its creator asked for, when that differs from
    /// the usual 0644 or 0755 (what servers commonly give: the mode of a new entry is not
    /// known without listing it again, which would cost more than the `SITE CHMOD` it could
    /// save). Returns the mode applied, to be shown until the next listing says what the
    /// server has. The object exists either way: a server without `SITE CHMOD` (learned
    /// once), or one that refuses it, leaves the mode it gave, logged, and the creation
    /// succeeds.
    pub fn apply_new_mode(&self, path: &str, kind: Kind, mode: u32) -> Option<u32> {
        let usual = if kind == Kind::Dir {
            NEW_DIR_MODE
        } else {
            NEW_FILE_MODE
        };
        let mode = mode & 0o7777;
        if mode == usual || self.up.no_site_chmod.load(Ordering::Relaxed) {
            return None;
        }
        match self.remote.chmod(path, kind, mode) {
            Ok(()) => Some(mode),
            // The remote answers a SITE CHMOD it learned the server lacks with that first
            // reply (`502`), without asking again.
            Err(e) if e.errno() == libc::ENOTSUP => {
                if !self.up.no_site_chmod.swap(true, Ordering::Relaxed) {
                    log::info!(
                        "the server has no SITE CHMOD: new files and directories keep the mode it gives them"
                    );
                }
                None
            }
            Err(e) => {
                log::info!("{path}: created, but mode {mode:o} was not applied: {e}");
                None
            }
        }
    }

    /// Drops a created-but-never-uploaded file: true if `path` was one (nothing to delete
    /// on the server). Decided under the spool's lock, so an upload cannot slip in between.
    pub fn forget_pending(&self, path: &str) -> bool {
        if let Some(q) = &self.up.queue {
            let queued = self.inodes.find(path).filter(|&i| q.has(i));
            if let Some(ino) = queued {
                if !self.up.pending.lock().contains_key(path) {
                    // On the server already: its queued upload lands first and the delete
                    // follows, or the upload would bring the file back after the unlink.
                    let _ = self.fsync(ino);
                }
            }
        }
        let Some(ino) = self.up.pending.lock().get(path).copied() else {
            return false;
        };
        let Some(e) = self.spool_of(ino) else {
            return self.up.pending.lock().remove(path).is_some();
        };
        let mut s = e.lock();
        let still = self.up.pending.lock().remove(path).is_some();
        if still {
            s.orphaned = true;
            self.stop_stream(&mut s);
        }
        drop(s);
        if let (true, Some(q)) = (still, &self.up.queue) {
            // Its journal record goes now: a replay must not create what was removed.
            let job = q.claim(ino);
            q.finish(job, queue::Outcome::Done);
        }
        still
    }
}
