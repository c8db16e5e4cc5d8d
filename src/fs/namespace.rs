//! Changes to the namespace: `mkdir`, `unlink`, `rmdir` and `rename`.
//!
//! FTP's answers to a change are poor: one `550` may mean the name is missing, already
//! there, a directory not empty, or not permitted, and servers differ on whether `RNTO`
//! replaces an existing target. So each change checks the (cached) listing first and gives
//! POSIX's errno for what it finds (ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR); a refusal
//! that still comes is looked at again with a fresh listing (`explain`) before the server's
//! answer stands. What changed is written into the listing cache and the inode table, so
//! the next lookup costs no listing, and an open spool of a removed file does not bring it
//! back. Creating files (`create`) stays with opening them, in `fs`.
//!
//! With write-back, a `mkdir` inside a directory this mount made itself this session is
//! queued, not sent (the rule and why: `upload/mkdir.rs`); every change here that needs a
//! directory on the server first makes the queued `mkdir`s above it (`ensure_dirs`).

use std::ffi::OsStr;
use std::time::SystemTime;

use super::{Attr, FtpFs};
use crate::cache::Listing;
use crate::error::{Error, Result};
use crate::remote::{self, Kind, Remote, RemoteEntry};

impl<R: Remote> FtpFs<R> {
    /// `mode` (the caller's, its umask applied) is given to the new directory with `SITE
    /// CHMOD` when it differs from the 0755 servers commonly give.
    pub fn mkdir(&self, parent: u64, name: &OsStr, mode: u32) -> Result<Attr> {
        let name = self.new_name(name)?;
        let dir = self.path_of(parent)?;
        if self.listing(&dir)?.get(name).is_some() {
            return Err(Error::Exists);
        }
        let path = remote::join(&dir, name);
        let queued = if self.writes().queues_mkdir_in(&dir) {
            self.writes().queue_mkdir(&path, mode)
        } else {
            None
        };
        let shown_mode = match queued {
            Some(shown) => shown,
            None => {
                self.writes().ensure_dirs(&dir)?;
                if let Err(e) = self.remote.mkdir(&path) {
                    return Err(self.explain(&dir, name, e, true));
                }
                self.writes().made_on_server(&path);
                self.writes().apply_new_mode(&path, Kind::Dir, mode)
            }
        };
        let entry = RemoteEntry {
            name: name.to_string(),
            kind: Kind::Dir,
            size: 0,
            mtime: Some(SystemTime::now()),
            mode: shown_mode,
            link_target: None,
        };
        self.cache.update(&dir, name, Some(entry.clone()));
        // A directory we just made is empty: `mkdir -p a/b`, `tar x` and `cp -r` look up
        // names in it right away, and need not wait for a listing to learn that.
        self.cache
            .insert(&path, Listing::new(Vec::new()), self.cache.token());
        // The server let us make it, so it lets us write in it (unless the mode asked for
        // says otherwise): files created in it go up with their first flush, without the
        // empty STOR that proves a directory writable (a round trip, and a connection,
        // per directory of a `cp -r` or `tar x`).
        if mode & 0o200 != 0 {
            self.writes().dir_made(&path);
        }
        let ino = self.inodes.lookup(&path);
        Ok(self.attr_of(ino, &path, &entry))
    }

    /// After the server refused a change, looks again: the name appeared (someone else made
    /// it: EEXIST) or vanished (ENOENT); else the server's own answer stands.
    fn explain(&self, dir: &str, name: &str, err: Error, creating: bool) -> Error {
        self.cache.invalidate(dir);
        match self.listing(dir).map(|l| l.get(name).is_some()) {
            Ok(true) if creating => Error::Exists,
            Ok(false) if !creating => Error::NotFound,
            _ => err,
        }
    }

    pub fn unlink(&self, parent: u64, name: &OsStr) -> Result<()> {
        let name = self.new_name(name)?;
        let dir = self.path_of(parent)?;
        if self.kind_in(&dir, name)? == Kind::Dir {
            return Err(Error::IsDir);
        }
        let path = remote::join(&dir, name);
        self.prefetch_forget(&path);
        if !self.writes().forget_pending(&path) {
            self.writes().ensure_dirs(&dir)?;
            if let Err(e) = self.remote.delete(&path) {
                return Err(self.explain(&dir, name, e, false));
            }
        }
        self.cache.update(&dir, name, None);
        self.detach(&path);
        Ok(())
    }

    /// What `name` is in `dir`, from the (cached) listing; ENOENT if absent.
    fn kind_in(&self, dir: &str, name: &str) -> Result<Kind> {
        self.listing(dir)?
            .get(name)
            .map(|e| e.kind)
            .ok_or(Error::NotFound)
    }

    /// `path` is gone from the server: an open spool of it must not bring it back.
    fn detach(&self, path: &str) {
        if let Some(ino) = self.inodes.find(path) {
            self.writes().orphan(ino);
        }
        self.inodes.unlink(path);
    }

    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        let name = self.new_name(name)?;
        let dir = self.path_of(parent)?;
        if self.kind_in(&dir, name)? != Kind::Dir {
            return Err(Error::NotDir);
        }
        let path = remote::join(&dir, name);
        if !self.listing(&path)?.entries.is_empty() {
            return Err(Error::NotEmpty);
        }
        // A directory whose `mkdir` is queued is made first: what the server says about
        // removing it is the answer.
        self.writes().ensure_dirs(&path)?;
        if let Err(e) = self.remote.rmdir(&path) {
            self.cache.invalidate(&path);
            if self.listing(&path).is_ok_and(|l| !l.entries.is_empty()) {
                return Err(Error::NotEmpty);
            }
            return Err(self.explain(&dir, name, e, false));
        }
        self.cache.update(&dir, name, None);
        self.cache.invalidate_tree(&path);
        self.writes().forget_made(&path);
        self.inodes.unlink(&path);
        Ok(())
    }

    /// rename(2) over RNFR/RNTO. POSIX replaces an existing target; FTP servers differ, so
    /// an existing target is handled here: an empty directory is removed first, a file is
    /// replaced by the rename itself or, if the server refuses, deleted first.
    pub fn rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        noreplace: bool,
    ) -> Result<()> {
        let name = self.new_name(name)?;
        let newname = self.new_name(newname)?;
        let (dir, newdir) = (self.path_of(parent)?, self.path_of(newparent)?);
        let (from, to) = (remote::join(&dir, name), remote::join(&newdir, newname));
        let src = self
            .listing(&dir)?
            .get(name)
            .cloned()
            .ok_or(Error::NotFound)?;
        if from == to {
            return Ok(());
        }
        // The source and what is queued beneath it, and the target's directory (its queued
        // `mkdir`, with write-back), are on the server before RNFR/RNTO.
        self.writes().ensure_on_server(&from)?;
        self.writes().ensure_dirs(&newdir)?;
        self.prefetch_forget(&from);
        self.prefetch_forget(&to);
        if src.kind == Kind::Dir && to.starts_with(&format!("{from}/")) {
            return Err(Error::InvalidName);
        }
        let dst = self.listing(&newdir)?.get(newname).cloned();
        if let Some(d) = &dst {
            if noreplace {
                return Err(Error::Exists);
            }
            match (src.kind == Kind::Dir, d.kind == Kind::Dir) {
                (true, false) => return Err(Error::NotDir),
                (false, true) => return Err(Error::IsDir),
                (true, true) => {
                    if !self.listing(&to)?.entries.is_empty() {
                        return Err(Error::NotEmpty);
                    }
                    self.remote.rmdir(&to)?;
                }
                (false, false) => {}
            }
        }
        if let Err(e) = self.remote.rename(&from, &to) {
            let file_target = dst.as_ref().is_some_and(|d| d.kind != Kind::Dir);
            let replaced = file_target && self.writes().replace_by_moving_aside(&from, &to).is_ok();
            if !replaced {
                return Err(self.explain(&dir, name, e, false));
            }
        }
        self.cache.update(&dir, name, None);
        let mut moved = src;
        moved.name = newname.to_string();
        self.cache.update(&newdir, newname, Some(moved));
        self.cache.invalidate_tree(&from);
        self.cache.invalidate_tree(&to);
        self.writes().forget_made(&from);
        if dst.is_some() {
            self.detach(&to);
        }
        self.inodes.rename(&from, &to);
        Ok(())
    }
}
