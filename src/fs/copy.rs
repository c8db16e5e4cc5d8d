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
use crate::remote::Remote;

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
        let writes = self.writes();
        // What the program sees of the source: its own unsent writes count.
        writes.settle(ino_in, &from)?;
        let size = self.getattr(ino_in)?.size;
        if off_in >= size {
            return Ok(0);
        }
        let whole = off_in == 0 && off_out == 0 && len >= size;
        if ino_in == ino_out || !whole || size > u64::from(u32::MAX) {
            log::debug!("copy of {from} to {to}: not a whole file ({off_in}+{len} of {size} to {off_out}); read and write instead");
            return Err(Error::Unsupported);
        }
        writes.copy_on_server(ino_out, &from, &to, size)
    }
}
