//! The one seam between filesystem semantics and the network.
//!
//! [`crate::fs::FtpFs`] knows nothing about FTP: it asks a [`Remote`] for directory listings
//! and for readers of file contents. The real implementation is [`crate::ftp::FtpRemote`];
//! tests use an in-memory double that can be told to fail, so every error path of the
//! filesystem can be exercised without a server that misbehaves on cue.
//!
//! Paths crossing this seam are relative to the mount's root, `/`-separated, without a leading
//! slash (`""` is the root). Every component was checked by [`valid_name`] before it got here:
//! the remote side never sees `.`, `..`, an empty component or one containing `/` or NUL.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use crate::error::Result;

thread_local! {
    static BACKGROUND: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` as background work: nobody waits for what it asks of the remote (the
/// write-back queue's uploads), so the remote serves it only when no request a process waits
/// for would be delayed by it (see [`crate::ftp::pool`]). Everything `f` does on this thread
/// counts, and nothing else.
pub fn in_background<T>(f: impl FnOnce() -> T) -> T {
    let was = BACKGROUND.with(|b| b.replace(true));
    let out = f();
    BACKGROUND.with(|b| b.set(was));
    out
}

/// Whether this thread is doing background work ([`in_background`]).
pub fn is_background() -> bool {
    BACKGROUND.with(|b| b.get())
}

/// What an entry is. Devices, pipes and sockets in a unix listing show up as files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One entry of a directory listing, as much as the server told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteEntry {
    pub name: String,
    pub kind: Kind,
    pub size: u64,
    /// Modification time; `None` when the listing had no parseable date.
    pub mtime: Option<SystemTime>,
    /// Permission bits (`0o7777` at most) when the listing carries them.
    pub mode: Option<u32>,
    /// The target of a symbolic link, when the listing shows it.
    pub link_target: Option<String>,
}

/// Reads one remote file. `read_at` returns `len` bytes from `offset`, fewer only at end of
/// file: the kernel takes a short read as EOF. The reader allocates the buffer itself, once
/// it is its turn: the kernel sends several readahead requests for one file at once, and
/// buffers allocated by requests still queueing would add up to megabytes for nothing.
pub trait RemoteReader: Send + Sync + 'static {
    fn read_at(&self, offset: u64, len: usize) -> Result<Data>;
}

/// Bytes read from a file: a range of a shared buffer. The FTP reader keeps the buffers it
/// returned as its window of recent data, so a read goes from the socket to the kernel
/// without being copied on the way; a buffer from [`Buffers`] goes back there when the last
/// `Data` sharing it is dropped.
#[derive(Clone, Debug, Default)]
pub struct Data {
    buf: Arc<Vec<u8>>,
    start: usize,
    end: usize,
    home: Option<Weak<Buffers>>,
}

impl Data {
    /// `buf[start..end]`.
    pub fn shared(buf: Arc<Vec<u8>>, start: usize, end: usize) -> Data {
        assert!(
            start <= end && end <= buf.len(),
            "a range inside the buffer"
        );
        Data {
            buf,
            start,
            end,
            home: None,
        }
    }

    /// Part of these bytes, `self[from..to]`, sharing the buffer.
    pub fn sub(&self, from: usize, to: usize) -> Data {
        assert!(from <= to && to <= self.len(), "a range inside the data");
        Data {
            buf: Arc::clone(&self.buf),
            start: self.start + from,
            end: self.start + to,
            home: self.home.clone(),
        }
    }
}

impl Drop for Data {
    fn drop(&mut self) {
        let Some(home) = self.home.take().and_then(|w| w.upgrade()) else {
            return;
        };
        if Arc::strong_count(&self.buf) == 1 {
            if let Ok(buf) = Arc::try_unwrap(std::mem::take(&mut self.buf)) {
                home.put(buf);
            }
        }
    }
}

impl std::ops::Deref for Data {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
}

impl From<Vec<u8>> for Data {
    fn from(v: Vec<u8>) -> Data {
        let end = v.len();
        Data::shared(Arc::new(v), 0, end)
    }
}

/// The read buffers of one open file. Reading a megabyte per request into a new buffer
/// costs zeroing it, and freeing it on another thread than the one that allocated it (fuser
/// answers on several) leaves freed megabytes in the allocator's per-thread arenas: the
/// process grew by 15 MiB reading a 1 GiB file that way. So buffers come back here when
/// their last [`Data`] is dropped, and a sequential reader cycles through a few of them.
#[derive(Debug, Default)]
pub struct Buffers {
    free: parking_lot::Mutex<Vec<Vec<u8>>>,
    allocated: std::sync::atomic::AtomicU64,
}

/// Free buffers kept per file, beyond those in use.
const KEEP_BUFFERS: usize = 2;

impl Buffers {
    pub fn new() -> Arc<Buffers> {
        Arc::new(Buffers::default())
    }

    /// A buffer of at least `len` bytes (and not twice as many), contents undefined. Sizes
    /// are powers of two from 64 KiB, so reads of nearby sizes share buffers.
    pub fn get(&self, len: usize) -> Vec<u8> {
        let len = len.max(64 * 1024).next_power_of_two();
        let mut free = self.free.lock();
        let fits = free
            .iter()
            .position(|b| b.len() >= len && b.len() / 2 <= len);
        if let Some(i) = fits {
            return free.swap_remove(i);
        }
        drop(free);
        self.allocated
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        vec![0u8; len]
    }

    /// Takes a buffer back; the largest [`KEEP_BUFFERS`] are kept.
    pub fn put(&self, buf: Vec<u8>) {
        let mut free = self.free.lock();
        if free.len() < KEEP_BUFFERS {
            free.push(buf);
        } else if let Some(smallest) = free.iter_mut().min_by_key(|b| b.len()) {
            if smallest.len() < buf.len() {
                *smallest = buf;
            }
        }
    }

    /// `buf[start..end]` as data that brings `buf` back here when it is done with.
    pub fn data(self: &Arc<Self>, buf: Vec<u8>, start: usize, end: usize) -> Data {
        let mut d = Data::shared(Arc::new(buf), start, end);
        d.home = Some(Arc::downgrade(self));
        d
    }

    /// How many buffers were allocated rather than reused.
    pub fn allocated(&self) -> u64 {
        self.allocated.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The bytes of an upload, which can be read again from their start.
pub trait Upload {
    fn open(&self) -> Result<Box<dyn std::io::Read + '_>>;

    /// The same bytes as a range `(file, offset, len)` of a local file, when they are
    /// exactly that, so they can go to the socket without passing through our memory.
    fn as_file(&self) -> Option<(&File, u64, u64)> {
        None
    }

    /// How many bytes, when known before reading them (for `ALLO`).
    fn size(&self) -> Option<u64> {
        self.as_file().map(|(_, _, len)| len)
    }
}

/// An upload in progress, fed as the bytes come (see [`Remote::store_stream`]).
pub trait UploadStream: Send {
    fn write_all(&mut self, data: &[u8]) -> Result<()>;

    /// Sends `len` bytes of `file` from `offset`. This default reads and writes them in
    /// 1 MiB pieces; the FTP upload hands them to the kernel instead ([`send_file`]).
    fn write_file(&mut self, file: &File, offset: u64, len: u64) -> Result<()> {
        read_pieces(file, offset, len, crate::error::Error::Spool, |piece| {
            self.write_all(piece)
        })
    }

    /// Ends the upload and returns the server's verdict: only `Ok` means the file is whole.
    fn finish(self: Box<Self>) -> Result<()>;
}

/// No bytes: creating an empty file.
pub struct Empty;

impl Upload for Empty {
    fn open(&self) -> Result<Box<dyn std::io::Read + '_>> {
        Ok(Box::new(std::io::empty()))
    }

    fn size(&self) -> Option<u64> {
        Some(0)
    }
}

/// Reads `len` bytes of `file` from `offset` in pieces of at most 1 MiB and hands each to
/// `out`. With `pread`: the spool's file offset is shared with its clones and stays alone.
pub fn read_pieces<E>(
    file: &File,
    offset: u64,
    len: u64,
    read_error: impl Fn(std::io::Error) -> E,
    mut out: impl FnMut(&[u8]) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut buf = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0;
    while done < len {
        let n = buf.len().min((len - done) as usize);
        file.read_exact_at(&mut buf[..n], offset + done)
            .map_err(&read_error)?;
        out(&buf[..n])?;
        done += n as u64;
    }
    Ok(())
}

/// Copies `len` bytes of `file` from `offset` into the socket `out` with `sendfile(2)`: from
/// the page cache to the socket in the kernel, without the read into and the write out of a
/// buffer of ours, which is most of the CPU a big upload costs. The socket's send timeout
/// bounds each wait as it bounds `write`.
pub fn send_file(out: &impl AsRawFd, file: &File, offset: u64, len: u64) -> std::io::Result<()> {
    let mut off = libc::off_t::try_from(offset).map_err(std::io::Error::other)?;
    let end = offset + len;
    while (off as u64) < end {
        let want = ((end - off as u64) as usize).min(1 << 30);
        // SAFETY: both descriptors are open for the duration of the call and `off` is a
        // valid, exclusively borrowed offset.
        let n = unsafe { libc::sendfile(out.as_raw_fd(), file.as_raw_fd(), &mut off, want) };
        match n {
            0 => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the spool file is shorter than the upload",
                ))
            }
            n if n > 0 => {}
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

impl Upload for Vec<u8> {
    fn open(&self) -> Result<Box<dyn std::io::Read + '_>> {
        Ok(Box::new(self.as_slice()))
    }

    fn size(&self) -> Option<u64> {
        Some(self.len() as u64)
    }
}

pub trait Remote: Send + Sync + 'static {
    type Reader: RemoteReader;

    /// Lists directory `dir`, without `.` and `..` and without entries whose names are unsafe.
    fn list(&self, dir: &str) -> Result<Vec<RemoteEntry>>;

    /// Lists `dir` speculatively, on a connection no request is waiting for; `Ok(None)`
    /// when there is none to spare (or the remote cannot tell). Tried once. `claim` is
    /// asked once a connection is in hand (getting one may take a login): unless it says
    /// yes, nothing is sent and the answer is `Ok(None)` too.
    fn list_spare(
        &self,
        _dir: &str,
        _claim: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Vec<RemoteEntry>>> {
        Ok(None)
    }

    /// A walk is starting: connections that speculative work will want are made now, in
    /// the background, rather than one by one when each is first wanted.
    fn warm_spare(&self) {}

    /// Reads the whole of `path`, expected to be `size` bytes, speculatively as
    /// [`Remote::list_spare`] lists. At most `size + 1` bytes are read: a length other than
    /// `size` says the file changed.
    fn read_spare(&self, _path: &str, _size: u64) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Prepares to read `path`. Network work is deferred to the first `read_at`, so opening a
    /// file that is never read costs nothing.
    fn open_reader(&self, path: &str, size_hint: u64) -> Result<Self::Reader>;

    /// Uploads `data` as the whole content of `path` (STOR). May read `data` more than once
    /// (a retry after a broken connection starts over).
    fn store(&self, path: &str, data: &dyn Upload) -> Result<()>;

    /// Appends `data` to `path` (APPE). Not repeated once bytes may have reached the server:
    /// the caller decides how to recover (a whole STOR, see [`crate::fs`]).
    /// [`crate::error::Error::Unsupported`] when the server does not append at all (nothing
    /// was sent).
    fn append(&self, path: &str, data: &dyn Upload) -> Result<()>;

    /// Starts a STOR of `path` whose bytes are written as they come, for big sequential
    /// writes. `None` when no connection is free right now (the caller then uploads the
    /// spool at close as usual); never waits for one. Not retried: a failed stream is
    /// replaced by an ordinary upload of the spool.
    fn store_stream(&self, path: &str) -> Result<Option<Box<dyn UploadStream>>>;

    /// Renames `from` to `to` (RNFR immediately followed by RNTO).
    fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Copies the file `from` to `to` on the server, without its bytes passing through
    /// us (`SITE CPFR`/`SITE CPTO`). [`crate::error::Error::Unsupported`] when the server
    /// cannot (learned once); `to` is created or replaced.
    fn copy(&self, from: &str, to: &str) -> Result<()>;

    /// Deletes the file `path` (DELE).
    fn delete(&self, path: &str) -> Result<()>;

    fn mkdir(&self, path: &str) -> Result<()>;

    fn rmdir(&self, path: &str) -> Result<()>;

    /// Sets permission bits (SITE CHMOD) of `path`, a `kind` (servers may allow it for
    /// files and not for directories); [`crate::error::Error::Unsupported`] if the server
    /// has no way to.
    fn chmod(&self, path: &str, kind: Kind, mode: u32) -> Result<()>;

    /// Sets the modification time (MFMT, or vsftpd's `MDTM time path`) of `path`, a `kind`;
    /// [`crate::error::Error::Unsupported`] if the server has no way to.
    fn set_mtime(&self, path: &str, kind: Kind, mtime: SystemTime) -> Result<()>;

    /// The absolute server path of the mount's root (`""` for the server's `/`), used to
    /// rewrite absolute symlink targets.
    fn root(&self) -> &str;
}

/// Rewrites a symlink target so that the kernel resolves it inside the mount. An absolute
/// target means a path on the *server*; taken literally the kernel would follow it on the
/// local machine (`link -> /etc/passwd` would open the local file). Like sshfs's
/// `transform_symlinks`, it becomes relative to the link's directory: a target under the
/// mounted root points at the same file through the mount, one outside it dangles inside
/// the mount rather than leading out of it. Relative targets are the kernel's to resolve
/// and stay as they are.
pub fn mount_relative_target(target: &str, link_path: &str, root: &str) -> String {
    let Some(abs) = target.strip_prefix('/') else {
        return target.to_string();
    };
    let root = root.trim_matches('/');
    let inside = if root.is_empty() {
        abs
    } else {
        abs.strip_prefix(root)
            .and_then(|r| r.strip_prefix('/').or(r.is_empty().then_some("")))
            .unwrap_or(abs)
    };
    let depth = parent(link_path)
        .split('/')
        .filter(|c| !c.is_empty())
        .count();
    let mut out = "../".repeat(depth);
    out.push_str(inside.trim_start_matches('/'));
    if out.is_empty() {
        ".".to_string()
    } else {
        out.trim_end_matches('/').to_string()
    }
}

/// The kernel's limit on one path component.
pub const NAME_MAX: usize = 255;

/// Whether `name` may be a single path component. Anything else, from the kernel or from a
/// server's listing, could form a path outside the mount or a second FTP command.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= NAME_MAX
        && !name
            .bytes()
            .any(|b| matches!(b, b'/' | b'\0' | b'\r' | b'\n'))
}

/// Joins a relative directory path and a (validated) name.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The parent of a relative path (`""` for a top-level name).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// The last component of a relative path.
pub fn basename(path: &str) -> &str {
    path.rsplit_once('/').map(|(_, n)| n).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/abs",
            "a\0b",
            "a\rb",
            "a\nb",
            &"x".repeat(256),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        for good in ["a", "...", "-rf", " lead", "ünï", "a b", &"x".repeat(255)] {
            assert!(valid_name(good), "{good:?}");
        }
    }

    #[test]
    fn absolute_symlink_targets_stay_inside_the_mount() {
        assert_eq!(
            mount_relative_target("/etc/passwd", "link", ""),
            "etc/passwd"
        );
        assert_eq!(
            mount_relative_target("/etc/passwd", "a/b/link", ""),
            "../../etc/passwd"
        );
        assert_eq!(
            mount_relative_target("/pub/x/y", "d/link", "/pub"),
            "../x/y"
        );
        assert_eq!(mount_relative_target("/pub", "link", "/pub"), ".");
        assert_eq!(mount_relative_target("/other/z", "link", "/pub"), "other/z");
        assert_eq!(mount_relative_target("rel/t", "a/link", "/pub"), "rel/t");
        assert_eq!(mount_relative_target("../t", "a/link", ""), "../t");
    }

    #[test]
    fn paths_join_and_split() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a/b", "c"), "a/b/c");
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
        assert_eq!(basename("a/b/c"), "c");
        assert_eq!(basename("a"), "a");
    }

    #[test]
    fn send_file_puts_exactly_the_range_on_the_socket() {
        use std::io::{Read, Write};
        let mut file = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        file.write_all(&data).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            got
        });
        let socket = std::net::TcpStream::connect(addr).unwrap();
        send_file(&socket, &file, 12_345, 2_000_000).unwrap();
        drop(socket);
        assert!(receiver.join().unwrap() == data[12_345..2_012_345]);
        // Asking for more than the file holds is an error, not a short upload.
        let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let socket = std::net::TcpStream::connect(sink.local_addr().unwrap()).unwrap();
        let _peer = sink.accept().unwrap();
        let err = send_file(&socket, &file, 2_999_000, 5_000).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
