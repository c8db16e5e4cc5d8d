//! Replacing a file on the server without ever leaving it half-written or gone.
//!
//! FTP has no "write these bytes into the file at once": a STOR onto the target truncates it
//! first, so a transfer that fails halfway leaves other clients (and our next mount) a cut
//! file. An upload that replaces content therefore goes to a hidden temporary name beside
//! the target and is renamed over it when complete. Servers differ on that rename: some
//! refuse to rename onto an existing name (the old file is then moved aside first, and back
//! if the second rename fails), and pure-ftpd answers 552 to an RNTO that takes a user over
//! quota after doing it (the listing is asked). The old content is never deleted before the
//! new one is in place, and a temporary file is deleted whenever the upload fails.

use std::sync::atomic::Ordering;

use super::spool::Spool;
use super::Writes;
use crate::error::Result;
use crate::remote::{self, Remote};

impl<R: Remote> Writes<'_, R> {
    /// STOR to a temporary name beside the target, then rename over it. The temporary file
    /// is removed on any failure, and the old content is never removed before the new one
    /// is in place: a server that refuses to rename onto an existing name gets the old file
    /// moved aside first and moved back if the second rename fails too.
    pub(super) fn replace_atomically(&self, path: &str, s: &Spool) -> Result<()> {
        let tmp = self.temp_name(path, "part");
        if let Err(e) = self.remote.store(&tmp, &s.upload_from(0)) {
            let _ = self.remote.delete(&tmp);
            return Err(e);
        }
        self.put_in_place(&tmp, path, s.len)
    }

    /// Renames the complete upload `tmp` (of `len` bytes) onto `path`, with the fallbacks
    /// for servers that refuse to rename onto an existing name; `tmp` is deleted on failure.
    pub(super) fn put_in_place(&self, tmp: &str, path: &str, len: u64) -> Result<()> {
        let Err(first) = self.remote.rename(tmp, path) else {
            return Ok(());
        };
        if self.renamed_after_all(tmp, path, len) {
            log::warn!("{path}: the server answered the rename with \"{first}\" but did it");
            return Ok(());
        }
        match self.replace_by_moving_aside(tmp, path) {
            Ok(()) => Ok(()),
            Err(_) => {
                let _ = self.remote.delete(tmp);
                Err(first)
            }
        }
    }

    /// For servers that refuse to rename onto an existing name: `target` is moved aside,
    /// `source` renamed into its place, and the old file deleted, or moved back if the
    /// second rename failed. The target is never deleted before its replacement is in place.
    /// (Also the fallback of `rename(2)` onto an existing file.)
    pub fn replace_by_moving_aside(&self, source: &str, target: &str) -> Result<()> {
        let old = self.temp_name(target, "old");
        self.remote.rename(target, &old)?;
        match self.remote.rename(source, target) {
            Ok(()) => {
                log::info!(
                    "{target}: the server refuses renaming onto a name; moved the old one aside"
                );
                if let Err(e) = self.remote.delete(&old) {
                    log::warn!("{target}: the replaced old version stays as {old}: {e}");
                }
                Ok(())
            }
            Err(e) => {
                if let Err(e2) = self.remote.rename(&old, target) {
                    log::error!(
                        "{target}: the old version is kept as {old}; restoring it failed: {e2}"
                    );
                }
                Err(e)
            }
        }
    }

    /// Whether a rename the server reported as failed happened anyway: the temporary name is
    /// gone and the target has exactly the uploaded size (pure-ftpd answers 552 to an RNTO
    /// that takes a user over quota, after doing it).
    fn renamed_after_all(&self, tmp: &str, path: &str, len: u64) -> bool {
        let dir = remote::parent(path);
        self.cache.invalidate(dir);
        match self.listing(dir) {
            Ok(l) => {
                l.get(remote::basename(tmp)).is_none()
                    && l.get(remote::basename(path)).is_some_and(|e| e.size == len)
            }
            Err(_) => false,
        }
    }

    /// A hidden name beside `path` for an upload in progress or an old version.
    pub(super) fn temp_name(&self, path: &str, what: &str) -> String {
        let n = self.up.temp_names.fetch_add(1, Ordering::Relaxed);
        let short: String = remote::basename(path).chars().take(100).collect();
        remote::join(
            remote::parent(path),
            &format!(".ftpfs-{short}.{}-{n}.{what}", std::process::id()),
        )
    }
}
