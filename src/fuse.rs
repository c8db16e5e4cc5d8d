//! The `fuser` adapter: converts kernel requests to [`FtpFs`] calls and replies exactly once.
//!
//! No filesystem logic lives here. Errors become errno through [`Error::errno`] and are logged
//! at the level the error itself chooses.

use std::ffi::OsStr;
use std::sync::Arc;

use std::time::SystemTime;

use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType,
    Filesystem, FopenFlags, Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner,
    OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::error::Error;
use crate::fs::{Attr, FtpFs, OpenMode, SetAttr};
use crate::remote::{Kind, Remote};

/// Largest read the kernel may send in one request and read-ahead it may do; big reads mean
/// fewer round trips through FUSE for a stream that is sequential anyway.
const MAX_READAHEAD: u32 = 1024 * 1024;

pub struct Fuse<R: Remote> {
    fs: Arc<FtpFs<R>>,
}

impl<R: Remote> Fuse<R> {
    pub fn new(fs: Arc<FtpFs<R>>) -> Self {
        Fuse { fs }
    }
}

fn errno(op: &str, e: &Error) -> Errno {
    log::log!(e.log_level(), "{op}: {e}");
    Errno::from_i32(e.errno())
}

/// The process (thread group) of the thread that made a request: FUSE gives the thread's
/// id, and a write handle must recognise its opener from any of its threads. One read of
/// the head of `/proc/<tid>/status` (`Tgid:` is its fourth line, well within 512 bytes);
/// `read_to_string` took ten reads of a growing buffer.
fn process_of(tid: u32) -> u32 {
    use std::io::Read;
    let mut buf = [0u8; 512];
    let n = std::fs::File::open(format!("/proc/{tid}/status"))
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(tid)
}

/// Replies to an operation that returns nothing.
fn empty(reply: ReplyEmpty, op: &str, r: crate::error::Result<()>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(op, &e)),
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: 1,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        // cp and friends size their buffers by st_blksize.
        blksize: 128 * 1024,
        flags: 0,
    }
}

/// The entry for "no such name": inode 0 makes the kernel cache a negative entry.
fn absent() -> FileAttr {
    file_attr(&Attr {
        ino: 0,
        size: 0,
        mtime: SystemTime::UNIX_EPOCH,
        kind: Kind::File,
        perm: 0,
        uid: 0,
        gid: 0,
    })
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
    }
}

impl<R: Remote> Filesystem for Fuse<R> {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // readdirplus: `ls -l` gets every attribute with the names, no lookup per entry.
        // parallel dirops: lookups in one directory need not queue behind each other.
        // Atomic O_TRUNC: without it the kernel truncates with a separate setattr before
        // open, which ftpfs must treat as truncate(2) and upload at once, so `cmd > file`
        // whose upload then failed left an empty file where the old one was. With it,
        // O_TRUNC reaches open and is applied by the upload, or not at all.
        for flag in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_ATOMIC_O_TRUNC,
        ] {
            if let Err(unsupported) = config.add_capabilities(flag) {
                log::debug!("kernel lacks {unsupported:?}");
            }
        }
        let _ = config.set_max_readahead(MAX_READAHEAD);
        // Writes land in a local spool: large requests mean fewer round trips through FUSE.
        let _ = config.set_max_write(MAX_READAHEAD);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.fs.lookup(parent.0, name) {
            Ok(a) => reply.entry(&self.fs.ttl(), &file_attr(&a), Generation(0)),
            // A name that is not there is cached by the kernel for as long as the listing
            // that says so (inode 0 means "no such entry, valid for the TTL"). `cp`, `tar`
            // and `rsync` stat every name before creating it, often twice; without this each
            // stat is a round trip through FUSE. Our own creates and renames go through the
            // kernel, which replaces the negative entry.
            Err(Error::NotFound) => {
                log::debug!("lookup: {name:?} not found");
                reply.entry(&self.fs.ttl(), &absent(), Generation(0))
            }
            Err(e) => reply.error(errno("lookup", &e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(ino.0) {
            Ok(a) => {
                log::trace!("getattr {} -> size {}", ino.0, a.size);
                reply.attr(&self.fs.ttl(), &file_attr(&a))
            }
            Err(e) => reply.error(errno("getattr", &e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs.readlink(ino.0) {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(errno("readlink", &e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let mode = OpenMode {
            write,
            truncate: flags.0 & libc::O_TRUNC != 0,
            // Only a write handle's close uploads, so only it needs its opener.
            owner: if write { process_of(req.pid()) } else { 0 },
        };
        match self.fs.open(ino.0, mode) {
            Ok((fh, keep)) => {
                let f = if keep {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                };
                reply.opened(FileHandle(fh), f)
            }
            Err(e) => reply.error(errno("open", &e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        log::trace!("read {} at {offset} len {size}", fh.0);
        match self.fs.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno("read", &e)),
        }
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Every close(2) comes here: this is where the upload's result reaches the program.
        empty(
            reply,
            "flush",
            self.fs.flush_from(fh.0, req.pid(), process_of),
        );
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(reply, "fsync", self.fs.fsync(fh.0));
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(reply, "fsyncdir", self.fs.fsyncdir(ino.0));
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        log::trace!("write {} at {offset} len {}", fh.0, data.len());
        match self.fs.write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(errno("write", &e)),
        }
    }

    /// `cp` on Linux tries this first; see [`crate::fs`]'s copy module for when it is a
    /// server-side copy. `ENOTSUP` sends the kernel (or `cp`) back to reading and writing.
    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        match self
            .fs
            .copy_range(fh_in.0, offset_in, fh_out.0, offset_out, len)
        {
            // copy_range never reports more than u32::MAX: FUSE's reply cannot carry it.
            Ok(n) => reply.written(u32::try_from(n).unwrap_or(u32::MAX)),
            Err(e) => reply.error(errno("copy_file_range", &e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let owner = process_of(req.pid());
        let exclusive = flags & libc::O_EXCL != 0;
        match self
            .fs
            .create(parent.0, name, exclusive, owner, mode & !umask)
        {
            Ok((a, fh)) => reply.created(
                &self.fs.ttl(),
                &file_attr(&a),
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(errno("create", &e)),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        match self.fs.mkdir(parent.0, name, mode & !umask) {
            Ok(a) => reply.entry(&self.fs.ttl(), &file_attr(&a), Generation(0)),
            Err(e) => reply.error(errno("mkdir", &e)),
        }
    }

    /// A regular file is created as by `open(O_CREAT|O_EXCL)` and `close`; FTP has no
    /// device nodes, FIFOs or sockets: `EPERM`, as for symlinks and hard links (fuser's
    /// defaults answer `ENOSYS` or log a warning per call).
    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            log::debug!("mknod {name:?}: mode {mode:o} is not a regular file");
            reply.error(errno("mknod", &Error::NotPermitted));
            return;
        }
        match self
            .fs
            .create(parent.0, name, true, process_of(req.pid()), mode & !umask)
        {
            Ok((a, fh)) => {
                self.fs.release(fh);
                // After the release: its upload may have changed the attributes.
                let a = self.fs.getattr(a.ino).unwrap_or(a);
                reply.entry(&self.fs.ttl(), &file_attr(&a), Generation(0));
            }
            Err(e) => reply.error(errno("mknod", &e)),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        log::debug!("symlink {link_name:?}: FTP cannot create symbolic links");
        reply.error(errno("symlink", &Error::NotPermitted));
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        log::debug!("link {newname:?}: FTP cannot create hard links");
        reply.error(errno("link", &Error::NotPermitted));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, "unlink", self.fs.unlink(parent.0, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, "rmdir", self.fs.rmdir(parent.0, name));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            // FTP has no way to swap two names atomically.
            reply.error(Errno::EINVAL);
            return;
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        match self
            .fs
            .rename(parent.0, name, newparent.0, newname, noreplace)
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno("rename", &e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // FTP keeps no access time: an atime-only change has nothing to change (README).
        let set = SetAttr {
            mode,
            uid,
            gid,
            size,
            mtime: mtime.map(|t| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            }),
        };
        match self.fs.setattr(ino.0, set) {
            Ok(a) => {
                log::trace!("setattr {} {set:?} -> size {}", ino.0, a.size);
                reply.attr(&self.fs.ttl(), &file_attr(&a))
            }
            Err(e) => reply.error(errno("setattr", &e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        reply.ok();
    }

    /// The kernel asks only for `SEEK_DATA` and `SEEK_HOLE`; it does the others itself.
    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let data = match whence {
            libc::SEEK_DATA => true,
            libc::SEEK_HOLE => false,
            _ => return reply.error(errno("lseek", &Error::Unsupported)),
        };
        // Before the start is ENXIO too, as ext4 and XFS answer (iomap_seek_data).
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(errno("lseek", &Error::PastEnd));
        };
        match self.fs.seek_data(ino.0, offset, data) {
            Ok(off) => reply.offset(off as i64),
            Err(e) => reply.error(errno("lseek", &e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno("opendir", &e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.fs.readdir(ino.0, fh.0, offset, 4096, false) {
            Ok(entries) => {
                for e in &entries {
                    let kind = file_type(e.attr.kind);
                    if reply.add(INodeNo(e.attr.ino), e.next_offset, kind, &e.name) {
                        break;
                    }
                }
                reply.ok()
            }
            Err(e) => reply.error(errno("readdir", &e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        // The kernel's buffer holds some dozens of entries; ask for a few more than fit and
        // give back the references of those that did not.
        match self.fs.readdir(ino.0, fh.0, offset, 256, true) {
            Ok(entries) => {
                let ttl = self.fs.ttl();
                let mut used = entries.len();
                for (i, e) in entries.iter().enumerate() {
                    let attr = file_attr(&e.attr);
                    let full = reply.add(
                        INodeNo(e.attr.ino),
                        e.next_offset,
                        &e.name,
                        &ttl,
                        &attr,
                        Generation(0),
                    );
                    if full {
                        used = i;
                        break;
                    }
                }
                self.fs.readdir_unused(&entries[used..]);
                reply.ok()
            }
            Err(e) => reply.error(errno("readdirplus", &e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.bsize,
        );
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        // FTP has no extended attributes. ENOSYS makes the kernel stop asking for the rest of
        // the mount (fuser's default answers the same but logs a warning each time).
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        // As for getxattr: the kernel remembers ENOSYS and tells programs EOPNOTSUPP,
        // which `cp -a` and `sed -i` take as "no extended attributes here".
        reply.error(Errno::ENOSYS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS);
    }

    fn ioctl(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        out_size: u32,
        reply: ReplyIoctl,
    ) {
        // The write-back queue for `ftpfs umount`, on the root; no other ioctls (sed and cp
        // probe a few): the kernel reports ENOTTY to the caller.
        use crate::upload::queue::STATS_IOCTL;
        match self.fs.writeback_stats() {
            Some(stats) if ino.0 == crate::inode::ROOT && cmd == STATS_IOCTL => {
                reply.ioctl(0, &stats.encode(out_size as usize))
            }
            _ => reply.error(Errno::ENOSYS),
        }
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        empty(
            reply,
            "access",
            self.fs.access(ino.0, mask.bits(), req.uid(), req.gid()),
        );
    }
}
