//! `copy_file_range(2)` within the mount, as a copy on the server.
//!
//! Copying a file on an FTP server the ordinary way moves every byte twice over the link:
//! down to us and back up. Some servers copy on request (proftpd's mod_copy: `SITE CPFR`
//! then `SITE CPTO`), and `cp` on Linux asks the kernel for `copy_file_range` before it
//! reads anything (coreutils 9), which FUSE hands to us. FTP copies whole files only, so
//! the request is taken when it means exactly that: from offset 0 of the source, to offset
//! 0 of a destination that is empty, for at least the source's whole length. Anything else
//! (a range, a destination with content, a server without the command, a source of 4 GiB or
//! more, whose count FUSE cannot report) is `ENOTSUP`, and the kernel or `cp` falls back
//! to reading and writing, which decides the outcome as it always did.
//!
//! The source's pending writes are uploaded first, so the server copies what the program
//! sees. The destination handle's spool then stands for the server's new file: clean, its
//! content downloaded only if it is read or written below its end, so its close uploads
//! nothing (an empty upload there would undo the copy).

use super::handles::Handle;
use super::FtpFs;
use crate::error::{Error, Result};
use crate::remote::{self, Kind, Remote, RemoteEntry};

impl<R: Remote> FtpFs<R> {
    /// Copies `[off_in, off_in + len)` of handle `fh_in`'s file to `off_out` of `fh_out`'s,
    /// on the server; returns the bytes copied (0 at or past the source's end).
    pub fn copy_range(
        &self,
        fh_in: u64,
        off_in: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
    ) -> Result<u64> {
        let source = self.handles.get(fh_in).ok_or(Error::Stale)?;
        let target = self.handles.get(fh_out).ok_or(Error::Stale)?;
        let (
            Handle::File { ino: ino_in, .. },
            Handle::File {
                ino: ino_out,
                write,
                ..
            },
        ) = (&*source, &*target)
        else {
            return Err(Error::IsDir);
        };
        let (ino_in, ino_out) = (*ino_in, *ino_out);
        if !*write {
            return Err(Error::Access);
        }
        if self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        let from = self.path_of(ino_in)?;
        let to = self.path_of(ino_out)?;
        // What the program sees of the source: its own unsent writes count.
        if let Some(e) = self.spool_of(ino_in) {
            self.upload_entry(ino_in, &e)?;
        }
        self.ensure_on_server(&from)?;
        let size = self.getattr(ino_in)?.size;
        if off_in >= size {
            return Ok(0);
        }
        let whole = off_in == 0 && off_out == 0 && len >= size;
        if ino_in == ino_out || !whole || size > u64::from(u32::MAX) {
            log::debug!("copy of {from} to {to}: not a whole file ({off_in}+{len} of {size} to {off_out}); read and write instead");
            return Err(Error::Unsupported);
        }
        let Some(e) = self.spool_of(ino_out) else {
            return Err(Error::Stale);
        };
        // The destination's lock is held across the copy, as across an upload: a write
        // through another handle waits for the outcome instead of landing in between.
        let mut s = e.spool.lock();
        if s.len != 0 || s.orphaned {
            return Err(Error::Unsupported);
        }
        match self.remote.copy(&from, &to) {
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
        *s = crate::spool::Spool::new(&self.opts.spool_dir, size)?;
        self.pending.lock().remove(&to);
        // What the creator asked for applies to the copy as to an upload.
        let applied_mode = wanted_mode.and_then(|m| self.apply_new_mode(&to, Kind::File, m));
        if let Some(t) = wanted_mtime {
            match self.remote.set_mtime(&to, Kind::File, t) {
                Ok(()) => s.mtime = t,
                Err(Error::Unsupported) => {}
                Err(e) => log::warn!("{to}: copied, but setting its time failed: {e}"),
            }
        }
        let mut entry = self.cached_entry(&to).unwrap_or(RemoteEntry {
            name: remote::basename(&to).to_string(),
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
            .update(remote::parent(&to), &entry.name.clone(), Some(entry));
        Ok(size)
    }
}
