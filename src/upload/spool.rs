//! Local spool files: where writes go before they reach the server.
//!
//! FTP can only upload a whole file (`STOR`) or add to its end (`APPE`); it cannot write at an
//! offset. Programs write at any offset, read back what they wrote, truncate, and expect
//! `close` to say whether it all worked. So every file opened for writing gets one spool
//! file on local disk, shared by all its handles: writes and reads go to the spool, and
//! `flush`/`fsync` upload it. Memory stays flat whatever the file size.
//!
//! The spool is filled from the server *lazily*: opening `log.txt` for `>>` downloads
//! nothing, and if every write lands at or after the server's size, the upload is an `APPE`
//! of the new bytes only. The first read or write below the server's size (or a truncate)
//! downloads the server's content first.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::remote::{Data, RemoteReader};

pub struct Spool {
    file: tempfile::NamedTempFile,
    /// Current length of the file as written.
    pub len: u64,
    /// Size of the server's file this spool stands for (at open, or at the last upload).
    pub base: u64,
    /// Whether `[0, base)` has been downloaded into the spool.
    pub filled: bool,
    /// Lowest offset changed (written or truncated to) since the last upload; `None` if clean.
    pub dirty_from: Option<u64>,
    /// Local time of the last change, shown as mtime until the upload.
    pub mtime: SystemTime,
    /// An mtime set while data was unsent, applied right after the upload (setting it
    /// before would be undone by the upload; uploading early to set it would send a
    /// partial file, since the kernel updates times between writes).
    pub pending_mtime: Option<SystemTime>,
    /// The mode its creator asked for, applied right after the first upload (a new file
    /// that waits for its first flush is not on the server before).
    pub pending_mode: Option<u32>,
    /// The file was unlinked while open: its data is not uploaded any more.
    pub orphaned: bool,
    /// Cut below the server's size since the last upload: only a whole upload can say so.
    truncated: bool,
    /// An APPE failed: some of its bytes may be on the server, so repeating it could
    /// duplicate them. Until an upload succeeds, only a whole STOR is safe.
    append_failed: bool,
    /// Written only from the start to the end so far (new or emptied file): the upload may
    /// run while it is written (see [`super::streaming`]).
    pub sequential: bool,
    /// The streamed upload running for this spool, if any.
    pub stream: Option<super::streaming::Streamer>,
    /// The server's size of the file as of the open or the last upload: the base a
    /// write-back journal record expects (see [`super::journal`]).
    pub remote_len: u64,
    /// The base of the journal records written for this spool since its last upload:
    /// a newer record replaces them and expects what the oldest expected.
    pub chain: Option<super::journal::Base>,
}

pub struct SpoolUpload<'a> {
    spool: &'a Spool,
    from: u64,
}

impl crate::remote::Upload for SpoolUpload<'_> {
    fn open(&self) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.spool.reader_from(self.from)?))
    }

    /// The spool file itself, unless it is shorter than the file (after an extending
    /// truncate the missing tail is zeros that only [`Spool::reader_from`] supplies).
    fn as_file(&self) -> Option<(&std::fs::File, u64, u64)> {
        let f = self.spool.file.as_file();
        let on_disk = f.metadata().ok()?.len();
        let len = self.spool.len.checked_sub(self.from)?;
        (on_disk >= self.spool.len).then_some((f, self.from, len))
    }
}

/// How much is downloaded per step when filling a spool.
const FILL_CHUNK: usize = 1024 * 1024;

impl Spool {
    /// A spool for a server file of `base` bytes, nothing downloaded yet.
    pub fn new(dir: &Path, base: u64) -> Result<Spool> {
        let file = tempfile::Builder::new()
            .prefix("spool-")
            .tempfile_in(dir)
            .map_err(Error::Spool)?;
        Ok(Spool {
            file,
            len: base,
            base,
            filled: base == 0,
            dirty_from: None,
            mtime: SystemTime::now(),
            pending_mtime: None,
            pending_mode: None,
            orphaned: false,
            truncated: false,
            append_failed: false,
            sequential: base == 0,
            stream: None,
            remote_len: base,
            chain: None,
        })
    }

    /// A file created here: it must be uploaded even if nothing is ever written to it.
    pub fn mark_new(&mut self) {
        self.changed(0);
    }

    pub fn dirty(&self) -> bool {
        self.dirty_from.is_some()
    }

    fn changed(&mut self, from: u64) {
        self.dirty_from = Some(self.dirty_from.map_or(from, |d| d.min(from)));
        self.mtime = SystemTime::now();
    }

    /// Downloads `[0, base)` if it is not here yet.
    pub fn fill(
        &mut self,
        reader: impl FnOnce() -> Result<Box<dyn RemoteReaderDyn>>,
    ) -> Result<()> {
        if self.filled {
            return Ok(());
        }
        let r = reader()?;
        let mut off = 0u64;
        while off < self.base {
            let want = FILL_CHUNK.min((self.base - off) as usize);
            let data = r.read_at_dyn(off, want)?;
            if data.is_empty() {
                // The server's file is shorter than it was listed: what is missing reads as
                // zeros, as after a truncate that extends.
                log::warn!("server file shorter than listed ({off} < {})", self.base);
                break;
            }
            self.file
                .as_file()
                .write_all_at(&data, off)
                .map_err(Error::Spool)?;
            off += data.len() as u64;
        }
        self.filled = true;
        Ok(())
    }

    /// A second descriptor of the spool file, for the upload thread's `pread`s.
    pub fn file_clone(&self) -> std::io::Result<std::fs::File> {
        self.file.as_file().try_clone()
    }

    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if offset != self.len {
            self.sequential = false;
        }
        self.file
            .as_file()
            .write_all_at(data, offset)
            .map_err(Error::Spool)?;
        self.len = self.len.max(offset + data.len() as u64);
        self.changed(offset);
        Ok(())
    }

    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        if offset >= self.len {
            return Ok(Vec::new());
        }
        let n = len.min((self.len - offset) as usize);
        let mut buf = vec![0u8; n];
        let mut done = 0;
        while done < n {
            match self
                .file
                .as_file()
                .read_at(&mut buf[done..], offset + done as u64)
            {
                Ok(0) => break, // a hole at the end (extended by truncate): zeros
                Ok(k) => done += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::Spool(e)),
            }
        }
        Ok(buf)
    }

    /// Cuts or extends the file. Whoever cuts to a size above 0 fills the spool first (the
    /// kept prefix must be here); a cut to 0 needs nothing from the server.
    pub fn truncate(&mut self, size: u64) -> Result<()> {
        self.file.as_file().set_len(size).map_err(Error::Spool)?;
        if size != self.len {
            self.sequential = size == 0;
        }
        self.len = size;
        if size < self.base {
            self.base = size;
            self.truncated = true;
        }
        if size == 0 {
            self.filled = true;
        }
        self.changed(size);
        Ok(())
    }

    /// Whether the upload can be an `APPE` of `[base, len)`: the server's content was never
    /// needed, nothing below the server's size was written, and nothing was cut.
    pub fn append_only(&self) -> bool {
        !self.filled
            && !self.truncated
            && !self.append_failed
            && self.dirty_from.is_some_and(|d| d >= self.base)
            && self.len > self.base
    }

    /// After a failed APPE: the next upload sends the whole file.
    pub fn append_failed(&mut self) {
        self.append_failed = true;
    }

    /// A reader over `[from, len)` of the spool, for STOR or APPE.
    pub fn reader_from(&self, from: u64) -> Result<impl Read + '_> {
        let mut f = self.file.as_file();
        f.seek(SeekFrom::Start(from)).map_err(Error::Spool)?;
        // The spool file may be shorter than `len` after an extending truncate: pad with
        // zeros so the server gets exactly `len` bytes.
        let on_disk = f.metadata().map_err(Error::Spool)?.len();
        let pad = self.len.saturating_sub(on_disk.max(from));
        Ok(f.take(self.len.saturating_sub(from).saturating_sub(pad))
            .chain(std::io::repeat(0).take(pad)))
    }

    /// The spool's bytes from `from` on, as an upload that can be restarted.
    pub fn upload_from(&self, from: u64) -> SpoolUpload<'_> {
        SpoolUpload { spool: self, from }
    }

    /// Marks the spool as matching the server after a successful upload. `filled` stays as
    /// it was: after an APPE the spool holds only the tail, and a later read or write below
    /// it must still download the prefix.
    pub fn uploaded(&mut self) {
        self.base = self.len;
        self.remote_len = self.len;
        self.chain = None;
        self.dirty_from = None;
        self.truncated = false;
        self.append_failed = false;
    }

    /// Moves the spool file out of the way, into `dir`, so its data survives: for data that
    /// could not be uploaded and that nobody is left to report to. Returns the new path.
    ///
    /// The name is `<seconds>-<pid>-<name>`, and `<seconds>-<pid>-<n>-<name>` when that is
    /// taken: the same file can fail twice in one second, and each version is kept. Names
    /// are claimed with `O_EXCL`, so two releases racing for one name cannot overwrite each
    /// other. The directory is 0700 and the files 0600 whatever the umask: they hold other
    /// people's data, possibly in a shared home.
    pub fn recover(&self, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let safe: String = name
            .chars()
            .map(|c| if c == '/' { '_' } else { c })
            .take(150)
            .collect();
        let pid = std::process::id();
        // A copy, not a rename: the spool may be on another filesystem, and whoever still
        // holds it may keep using it.
        let (target, mut out) = (0u32..)
            .map(|n| match n {
                0 => dir.join(format!("{stamp}-{pid}-{safe}")),
                n => dir.join(format!("{stamp}-{pid}-{n}-{safe}")),
            })
            .find_map(|target| {
                let opened = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target);
                match opened {
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                    other => Some(other.map(|f| (target, f))),
                }
            })
            .expect("an endless sequence of names ends in a free one or an error")?;
        // Exactly 0600 even under an odd umask (0277 would leave the owner unable to write).
        out.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let copied = std::io::copy(
            &mut self.reader_from(0).map_err(std::io::Error::other)?,
            &mut out,
        )
        .and_then(|_| out.sync_all());
        if let Err(e) = copied {
            // A partial copy (disk full) is still the best there is: keep it, and say so.
            return Err(std::io::Error::new(
                e.kind(),
                format!("{e} (a partial copy is in {})", target.display()),
            ));
        }
        Ok(target)
    }
}

/// Object-safe view of a [`RemoteReader`], so a spool can be filled from any remote.
pub trait RemoteReaderDyn {
    fn read_at_dyn(&self, offset: u64, len: usize) -> Result<Data>;
}

impl<T: RemoteReader> RemoteReaderDyn for T {
    fn read_at_dyn(&self, offset: u64, len: usize) -> Result<Data> {
        self.read_at(offset, len)
    }
}

/// The default spool directory: `$XDG_CACHE_HOME/ftpfs/spool`, `~/.cache/ftpfs/spool`, or
/// under the temporary directory.
pub fn default_dir(leaf: &str) -> PathBuf {
    // An empty or relative value is to be ignored (XDG base directory specification): it
    // would put the spool wherever the daemon's working directory is.
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("ftpfs").join(leaf)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<u8>);
    impl RemoteReaderDyn for Fixed {
        fn read_at_dyn(&self, offset: u64, len: usize) -> Result<Data> {
            let s = (offset as usize).min(self.0.len());
            Ok(self.0[s..(s + len).min(self.0.len())].to_vec().into())
        }
    }

    fn read_all(s: &Spool) -> Vec<u8> {
        let mut out = Vec::new();
        s.reader_from(0).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn appends_beyond_the_server_size_need_no_download() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path(), 5).unwrap();
        s.write_at(5, b"more").unwrap();
        assert!(s.append_only());
        let mut tail = Vec::new();
        s.reader_from(5).unwrap().read_to_end(&mut tail).unwrap();
        assert_eq!(tail, b"more");
    }

    #[test]
    fn a_write_inside_the_old_content_needs_it_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path(), 5).unwrap();
        s.fill(|| Ok(Box::new(Fixed(b"hello".to_vec())))).unwrap();
        s.write_at(1, b"EL").unwrap();
        assert!(!s.append_only());
        assert_eq!(read_all(&s), b"hELlo");
    }

    /// Regression: after an APPE the spool was marked filled although it held only the
    /// tail, so the next writer of the same spool uploaded zeros in front of it.
    #[test]
    fn after_an_append_the_prefix_is_still_not_here() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path(), 5).unwrap();
        s.write_at(5, b"12").unwrap();
        assert!(s.append_only());
        s.uploaded();
        assert!(!s.filled && s.base == 7);
        s.write_at(7, b"34").unwrap();
        assert!(s.append_only(), "a second append is an append too");
    }

    /// Regression: O_TRUNC then write looked like an append and was APPE'd onto the old
    /// content.
    #[test]
    fn truncation_forces_a_whole_upload() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path(), 5).unwrap();
        s.truncate(0).unwrap();
        s.write_at(0, b"new").unwrap();
        assert!(!s.append_only());
        assert!(s.filled, "nothing of the old content is needed");
    }

    #[test]
    fn extending_truncate_reads_and_uploads_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path(), 0).unwrap();
        s.write_at(0, b"ab").unwrap();
        s.truncate(6).unwrap();
        assert_eq!(s.read_at(0, 10).unwrap(), b"ab\0\0\0\0");
        assert_eq!(read_all(&s), b"ab\0\0\0\0");
        s.truncate(1).unwrap();
        assert_eq!(read_all(&s), b"a");
    }

    #[test]
    fn recovered_spools_keep_their_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path(), 0).unwrap();
        s.write_at(0, b"precious").unwrap();
        let p = s.recover(&dir.path().join("recovered"), "a/b.txt").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"precious");
        assert!(p
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("a_b.txt"));
    }

    /// Regression (issue 13): the same file failing twice in one second lost the second
    /// version to `File exists`.
    #[test]
    fn recovering_the_same_file_twice_keeps_both_versions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("recovered");
        let mut paths = Vec::new();
        for content in [&b"first"[..], b"second", b"third"] {
            let mut s = Spool::new(dir.path(), 0).unwrap();
            s.write_at(0, content).unwrap();
            paths.push((s.recover(&rec, "app.txt").unwrap(), content));
        }
        for (p, content) in &paths {
            assert_eq!(&std::fs::read(p).unwrap(), content, "{}", p.display());
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let mode = std::fs::metadata(&rec).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
