//! Attributes: what `setattr`, `access` and `statfs` change and answer.
//!
//! FTP has no single "set attributes" command: a mode is `SITE CHMOD` (often missing), a
//! time is `MFMT` or `MDTM` with a time (often refused for directories), ownership cannot
//! change at all, and a size is a new upload. Each change is tried on its own, and what the
//! server cannot do is answered as the README's Semantics section says. A file open for
//! writing keeps a time set before its data is sent and applies it after the upload (see
//! [`crate::upload`]).

use super::{Attr, FtpFs, SetAttr, StatFs};
use crate::error::{Error, Result};
use crate::remote::{self, Kind, Remote, NAME_MAX};
use crate::upload::queue::DirAttrs;

impl<R: Remote> FtpFs<R> {
    /// chmod, chown (only to what is shown), truncate, utimens.
    pub fn setattr(&self, ino: u64, set: SetAttr) -> Result<Attr> {
        let any = set.mode.is_some() || set.size.is_some() || set.mtime.is_some();
        if any && self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        if set.uid.is_some_and(|u| u != self.opts.uid)
            || set.gid.is_some_and(|g| g != self.opts.gid)
        {
            return Err(Error::NotPermitted);
        }
        let path = self.path_of(ino)?;
        if set.size.is_some() || set.mtime.is_some() {
            self.prefetch_forget(&path);
        }
        if let Some(size) = set.size {
            self.truncate(ino, &path, size)?;
        }
        // Servers may allow a change for files and not for directories.
        let kind = || self.getattr(ino).map(|a| a.kind);
        // With write-back, a directory's mode and time wait for what is queued beneath it
        // (`upload::dirattrs`); with strict_times a refused time must reach the caller.
        if (set.mode.is_some() || set.mtime.is_some())
            && !self.opts.strict_times
            && kind()? == Kind::Dir
        {
            let attrs = DirAttrs {
                mode: set.mode.map(|m| m & 0o7777),
                time: set.mtime,
            };
            if self.writes().defer_dir_attrs(&path, attrs) {
                return self.getattr(ino);
            }
        }
        if let Some(mode) = set.mode {
            if !self.writes().defer_mode(ino, &path, mode) {
                self.writes().ensure_on_server(&path)?;
                self.remote.chmod(&path, kind()?, mode)?;
            }
            if let Some(mut e) = self.cache.entry(&path) {
                e.mode = Some(mode & 0o7777);
                self.cache
                    .update(remote::parent(&path), &e.name.clone(), Some(e));
            }
        }
        if let Some(mtime) = set.mtime {
            if !self.writes().defer_mtime(ino, mtime) {
                // A directory whose `mkdir` is queued (write-back) is made first.
                self.writes().ensure_dirs(&path)?;
                if let Err(e) = self.remote.set_mtime(&path, kind()?, mtime) {
                    return self.dir_time_not_set(ino, &path, e);
                }
                self.writes().mtime_set(ino, mtime);
                if let Some(mut e) = self.cache.entry(&path) {
                    e.mtime = Some(mtime);
                    self.cache
                        .update(remote::parent(&path), &e.name.clone(), Some(e));
                }
            }
        }
        self.getattr(ino)
    }

    /// A time the server refused to set. For a directory it is accepted and not applied
    /// (unless `strict_times`): many FTP servers (vsftpd, pyftpdlib) cannot set a
    /// directory's time at all, it is not data, and failing it made `cp -a`, `tar x` and
    /// `rsync -a` exit non-zero after copying everything. A file's time stays an error:
    /// `rsync` relies on it to know the file is up to date. Only a refusal is accepted,
    /// not a network failure or a timeout.
    fn dir_time_not_set(&self, ino: u64, path: &str, e: Error) -> Result<Attr> {
        let refused = matches!(e, Error::Unsupported)
            || matches!(e, Error::Reply { code, .. } if (500..600).contains(&code));
        if !refused || self.opts.strict_times {
            return Err(e);
        }
        let attr = self.getattr(ino)?;
        if attr.kind != Kind::Dir {
            return Err(e);
        }
        let first = !self
            .dir_time_logged
            .swap(true, std::sync::atomic::Ordering::Relaxed);
        if first {
            log::info!(
                "/{path}: the server cannot set a directory's time ({e}); directory times \
                 are left as the server keeps them (-o strict_times makes this an error)"
            );
        } else {
            log::debug!("/{path}: directory time not set: {e}");
        }
        Ok(attr)
    }

    /// With a writer open the spool is cut and uploaded at its flush; `truncate(2)` of a
    /// file nobody has open is uploaded at once, since no flush will follow.
    fn truncate(&self, ino: u64, path: &str, size: u64) -> Result<()> {
        if let Some(cut) = self.writes().truncate_open(ino, size) {
            return cut;
        }
        let entry = self.entry(path)?;
        if entry.kind == Kind::Dir {
            return Err(Error::IsDir);
        }
        if entry.size == size {
            return Ok(());
        }
        self.writes().truncate_closed(ino, path, entry.size, size)
    }

    pub fn statfs(&self) -> StatFs {
        // FTP has no "df". Nominal numbers keep tools that check free space from refusing.
        StatFs {
            blocks: 1 << 40,
            bfree: 1 << 40,
            bavail: 1 << 40,
            files: 1 << 20,
            ffree: 1 << 20,
            bsize: 4096,
            namelen: NAME_MAX as u32,
        }
    }

    /// `access(2)`: checks `mask` (R_OK=4, W_OK=2, X_OK=1) against the mode we report.
    /// Whether the server will allow a change is only known when it is tried.
    pub fn access(&self, ino: u64, mask: i32, uid: u32, gid: u32) -> Result<()> {
        let attr = self.getattr(ino)?;
        if mask & libc::W_OK != 0 && self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        let perm = u32::from(attr.perm);
        let granted = if uid == 0 {
            // root may read and write anything, and execute what has any x bit.
            let x = if attr.kind == Kind::Dir || perm & 0o111 != 0 {
                1
            } else {
                0
            };
            6 | x
        } else if uid == attr.uid {
            (perm >> 6) & 7
        } else if gid == attr.gid {
            (perm >> 3) & 7
        } else {
            perm & 7
        };
        if (mask as u32) & 7 & !granted != 0 {
            return Err(Error::Access);
        }
        Ok(())
    }
}
