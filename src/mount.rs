//! Mounting and unmounting: the FUSE session, the mount(2) call, and taking a mount away.
//!
//! fuser 0.18 mounts with file system type `fuse` and drops the subtype, so as root ftpfs
//! makes the mount(2) call itself (type `fuse.ftpfs`, what `mount -t fuse.ftpfs`, fstab,
//! `findmnt -t` and `umount -a -t` expect); without root fusermount3 mounts and records the
//! subtype. Taking a mount away must never hit a mount that replaced ours at the same path,
//! so every unmount by path first checks the device in the mount table ([`mountinfo`]).

pub mod mountinfo;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;

use fuser::{MountOption, SessionACL};

use self::mountinfo::{mount_device, still_mounted};
use crate::config::Config;
use crate::ftp::FtpRemote;
use crate::fuse::Fuse;

/// FUSE worker threads: requests mostly wait on the network, so more threads than cores.
const FUSE_THREADS: usize = 8;

/// A running FUSE session, and who owns its mount.
pub enum Session {
    /// Mounted by ftpfs itself (as root): `device` is the mount's `major:minor`, to make
    /// sure a later unmount by path hits this mount and not one that replaced it.
    Own {
        session: fuser::BackgroundSession,
        device: String,
    },
    /// Mounted by fuser (through fusermount3 when not root).
    Fuser {
        session: fuser::BackgroundSession,
        device: String,
    },
}

impl Session {
    pub fn finished(&self) -> bool {
        match self {
            Session::Own { session, .. } | Session::Fuser { session, .. } => {
                session.guard.is_finished()
            }
        }
    }
}

/// How a session ended, given whether its mount is gone. When the last open file of a
/// detached mount is closed, the kernel shuts the connection down, and a worker thread that
/// took a request off the queue at that moment gets ECONNABORTED instead of ENODEV
/// (fs/fuse/dev.c, `fuse_dev_do_read`: a request must not go on the processing queue of a
/// connection already shut down). Seen once in CI on Linux 6.18, in the SIGTERM-with-an-
/// open-file test: the daemon served the file to the end, then exited 1. With the mount
/// gone that is the normal end. With the mount still there, someone aborted the connection
/// (`/sys/fs/fuse/connections/N/abort`), and that stays an error.
pub fn session_end(joined: std::io::Result<()>, mount_gone: bool) -> std::io::Result<()> {
    match joined {
        Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) && mount_gone => {
            log::debug!("the kernel shut down the connection of the unmounted filesystem: {e}");
            Ok(())
        }
        other => other,
    }
}

/// Mounts and starts serving.
///
/// As root ftpfs makes the mount(2) call itself, because fuser 0.18 mounts with file system
/// type `fuse` and drops the subtype: the mount table would say `fuse`, and `findmnt -t
/// fuse.ftpfs`, `umount -a -t fuse.ftpfs` or `df -t fuse.ftpfs` would not find the mount
/// that `mount -t fuse.ftpfs` or an fstab line made. Without root, fusermount3 mounts, and
/// it records the subtype itself.
pub fn start_session(
    fs: Fuse<FtpRemote>,
    mountpoint: &Path,
    cfg: &Config,
) -> std::io::Result<Session> {
    let config = fuse_config(cfg);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return spawn_fuser_mount(fs, mountpoint, &config);
    }
    let fd = match mount_fuse(mountpoint, &config) {
        Ok(fd) => fd,
        // Root without CAP_SYS_ADMIN (a container): fusermount3 may still be allowed to.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            log::debug!("mount(2): {e}; trying fusermount3");
            return spawn_fuser_mount(fs, mountpoint, &config);
        }
        Err(e) => return Err(e),
    };
    let device = mount_device(mountpoint).unwrap_or_default();
    let acl = config.acl;
    match fuser::Session::from_fd(fs, fd, acl, config).and_then(|s| s.spawn()) {
        Ok(session) => Ok(Session::Own { session, device }),
        Err(e) => {
            if let Err(u) = unmount_own(mountpoint, &device) {
                log::error!("cannot unmount {}: {u}", mountpoint.display());
            }
            Err(e)
        }
    }
}

/// Mounts through fuser (fusermount3 without root).
fn spawn_fuser_mount(
    fs: Fuse<FtpRemote>,
    mountpoint: &Path,
    config: &fuser::Config,
) -> std::io::Result<Session> {
    let session = fuser::spawn_mount(fs, mountpoint, config)?;
    let device = mount_device(mountpoint).unwrap_or_default();
    Ok(Session::Fuser { session, device })
}

/// mount(2) of a FUSE file system of type `fuse.ftpfs` on `mountpoint`, as `config` asks
/// (the options fuser would have mounted with), returning the `/dev/fuse` descriptor that
/// serves it. Options as libfuse and fusermount3 pass them.
fn mount_fuse(mountpoint: &Path, config: &fuser::Config) -> std::io::Result<OwnedFd> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;

    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let root_mode = std::fs::metadata(mountpoint)?.mode() & libc::S_IFMT;
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut data = format!(
        "fd={},rootmode={root_mode:o},user_id={uid},group_id={gid}",
        dev.as_raw_fd()
    );
    if config.acl != SessionACL::Owner {
        data.push_str(",allow_other");
    }
    let mut source = "ftpfs";
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
    for o in &config.mount_options {
        match o {
            MountOption::FSName(name) => source = name,
            MountOption::DefaultPermissions => data.push_str(",default_permissions"),
            MountOption::RO => flags |= libc::MS_RDONLY,
            MountOption::RW => flags &= !libc::MS_RDONLY,
            MountOption::Dev => flags &= !libc::MS_NODEV,
            MountOption::NoDev => flags |= libc::MS_NODEV,
            MountOption::Suid => flags &= !libc::MS_NOSUID,
            MountOption::NoSuid => flags |= libc::MS_NOSUID,
            MountOption::Exec => flags &= !libc::MS_NOEXEC,
            MountOption::NoExec => flags |= libc::MS_NOEXEC,
            MountOption::Atime => flags &= !libc::MS_NOATIME,
            MountOption::NoAtime => flags |= libc::MS_NOATIME,
            MountOption::Sync => flags |= libc::MS_SYNCHRONOUS,
            MountOption::Async => flags &= !libc::MS_SYNCHRONOUS,
            MountOption::DirSync => flags |= libc::MS_DIRSYNC,
            MountOption::Subtype(_) => {} // the type says it
            other => log::warn!("mount option {other:?} is not passed to the kernel"),
        }
    }
    let c = |s: &[u8]| CString::new(s).map_err(std::io::Error::other);
    let source = c(source.as_bytes())?;
    let target = c(mountpoint.as_os_str().as_bytes())?;
    let fstype = c(b"fuse.ftpfs")?;
    let data = c(data.as_bytes())?;
    // SAFETY: all pointers are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(OwnedFd::from(dev))
}

/// Unmounts a mount ftpfs made itself, if it is still the one at `mountpoint`; a busy mount
/// is detached (it goes away when its last user lets go, and is served until then). An
/// error means the mount is still there and the session will not end by itself.
pub fn unmount_own(mountpoint: &Path, device: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if !still_mounted(mountpoint, device) {
        log::info!("{} is no longer our mount", mountpoint.display());
        return Ok(());
    }
    let target =
        std::ffi::CString::new(mountpoint.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: a NUL-terminated path that outlives the calls.
    unsafe {
        if libc::umount2(target.as_ptr(), 0) == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        log::warn!("unmounting {}: {e}; detaching it", mountpoint.display());
        if libc::umount2(target.as_ptr(), libc::MNT_DETACH) == 0 {
            return Ok(());
        }
    }
    Err(std::io::Error::last_os_error())
}

/// The kernel caps a FUSE mount's readahead at its backing device's `read_ahead_kb`, 128 KiB
/// by default, whatever the filesystem asks for at INIT. Measured on loopback (256 MiB,
/// BENCHMARKS.md): 128 KiB requests read at ~800 MiB/s, 1 MiB requests at ~1.1 GiB/s, and
/// 4 MiB requests arrive out of order by more than the reader's window and force restarts.
/// Raising it takes root; without it ftpfs works, just with smaller reads.
const READ_AHEAD_KB: u32 = 1024;

pub fn raise_readahead(mountpoint: &Path) {
    // Never stat our own mount from here: that is a FUSE request to ourselves, and a
    // SIGKILL arriving while it is in flight leaves the process unkillable in D state with
    // the mount behind (found by the killed-daemon test). The kernel's mount table names
    // the device without asking the filesystem.
    let Some(dev) = mount_device(mountpoint) else {
        log::debug!("{} not found in /proc/self/mountinfo", mountpoint.display());
        return;
    };
    let bdi = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    match std::fs::write(&bdi, READ_AHEAD_KB.to_string()) {
        Ok(()) => log::debug!("{bdi} set to {READ_AHEAD_KB}"),
        Err(e) => log::debug!("cannot raise readahead ({bdi}): {e}"),
    }
}

fn fuse_config(cfg: &Config) -> fuser::Config {
    let mut opts = vec![
        MountOption::FSName(cfg.fsname.clone()),
        MountOption::Subtype("ftpfs".into()),
        if cfg.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    if cfg.default_permissions {
        opts.push(MountOption::DefaultPermissions);
    }
    for k in &cfg.kernel_options {
        opts.push(match k.as_str() {
            "nodev" => MountOption::NoDev,
            "dev" => MountOption::Dev,
            "nosuid" => MountOption::NoSuid,
            "suid" => MountOption::Suid,
            "noexec" => MountOption::NoExec,
            "exec" => MountOption::Exec,
            "noatime" => MountOption::NoAtime,
            "atime" => MountOption::Atime,
            "sync" => MountOption::Sync,
            "async" => MountOption::Async,
            "dirsync" => MountOption::DirSync,
            other => MountOption::CUSTOM(other.to_string()),
        });
    }
    let mut config = fuser::Config::default();
    config.mount_options = opts;
    config.acl = if cfg.allow_other {
        SessionACL::All
    } else if cfg.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(FUSE_THREADS);
    config.clone_fd = true;
    config
}

/// `ftpfs umount`: `fusermount3 -u`. A busy mount is refused, as umount(8) does, unless
/// `lazy` asks to detach it now; a mount whose process died is detached either way (it
/// cannot be used any more, and nothing else would take it away).
///
/// A write-back mount is first waited for until its queue is uploaded (a progress line on a
/// terminal), or until what is left waits for a server that cannot be reached; then each
/// file that could not be uploaded is named with where its data is, and each directory the
/// server refused to make with why, and the exit is 1.
pub fn umount(mountpoint: &Path, lazy: bool) -> ExitCode {
    let left = wait_for_writeback(mountpoint);
    if let Err(e) = fusermount_unmount(mountpoint, lazy) {
        return crate::daemon::fail(&e);
    }
    let Some(left) = left else {
        return ExitCode::SUCCESS;
    };
    for (path, kept) in &left.failed {
        eprintln!(
            "ftpfs: {path}: could not be uploaded; its data is in {}",
            kept.display()
        );
    }
    for (path, data) in &left.waiting {
        eprintln!(
            "ftpfs: {path}: not uploaded, the server cannot be reached; its data stays in {} \
             and the next mount of this server uploads it",
            data.display()
        );
    }
    for (dir, why) in &left.refused_dirs {
        eprintln!("ftpfs: {dir}/: the directory could not be made on the server ({why})");
    }
    if left.failed.is_empty() && left.waiting.is_empty() && left.refused_dirs.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The write-back queue of the mount at `mountpoint`, from the ioctl its root answers;
/// `None` for a mount without write-back (or not ours), or one that does not answer within
/// 5 s (a stopped daemon must not hang `ftpfs umount`; the thread asking is left behind).
fn writeback_queue(mountpoint: &Path) -> Option<crate::upload::queue::QueueStats> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mp = mountpoint.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(ask_writeback_queue(&mp));
    });
    rx.recv_timeout(std::time::Duration::from_secs(5))
        .ok()
        .flatten()
}

fn ask_writeback_queue(mountpoint: &Path) -> Option<crate::upload::queue::QueueStats> {
    use crate::upload::queue::{QueueStats, STATS_IOCTL, STATS_SIZE};
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(mountpoint).ok()?;
    let mut buf = vec![0u8; STATS_SIZE];
    // SAFETY: the request's size is STATS_SIZE, the buffer's length.
    let r = unsafe { libc::ioctl(dir.as_raw_fd(), STATS_IOCTL as _, buf.as_mut_ptr()) };
    if r < 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    QueueStats::decode(&String::from_utf8_lossy(&buf[..end]))
}

/// Waits for the write-back queue at `mountpoint` as `sync MOUNTPOINT` does (fsync of its
/// root: until every upload landed or failed, or what is left found the server
/// unreachable once more), showing progress on a terminal; returns its last state.
fn wait_for_writeback(mountpoint: &Path) -> Option<crate::upload::queue::QueueStats> {
    use std::io::IsTerminal;
    let first = writeback_queue(mountpoint)?;
    let root = mountpoint.to_path_buf();
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let synced = std::fs::File::open(&root).and_then(|d| d.sync_all());
        let _ = done_tx.send(synced);
    });
    let tty = std::io::stderr().is_terminal();
    let mut stats = first;
    let mut shown = false;
    // The fsync's own wait is bounded (see above); this loop only reports on it.
    while done
        .recv_timeout(std::time::Duration::from_millis(250))
        .is_err_and(|e| e == std::sync::mpsc::RecvTimeoutError::Timeout)
    {
        if let Some(s) = writeback_queue(mountpoint) {
            stats = s;
        }
        if tty && stats.files > 0 {
            eprint!(
                "\rftpfs: uploading {} queued file(s), {:.1} MiB left…   ",
                stats.files,
                stats.bytes as f64 / 1048576.0
            );
            shown = true;
        }
    }
    if shown {
        eprintln!();
    }
    writeback_queue(mountpoint).or(Some(stats))
}

pub fn fusermount_unmount(mountpoint: &Path, lazy: bool) -> Result<(), String> {
    let run = |lazy: bool| {
        let mut cmd = std::process::Command::new("fusermount3");
        cmd.arg("-u");
        if lazy {
            cmd.arg("-z");
        }
        cmd.arg(mountpoint)
            .stderr(std::process::Stdio::piped())
            .output()
    };
    match run(lazy) {
        Ok(o) if o.status.success() => return Ok(()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            if err.contains("busy") {
                return Err(format!(
                    "{}: target is busy (a file is open or a process is inside it); \
                     `ftpfs umount --lazy` detaches it now and unmounts once it is unused",
                    mountpoint.display()
                ));
            }
            if !err.contains("not connected") {
                return Err(err.trim().to_string());
            }
        }
        Err(e) => return Err(format!("cannot run fusermount3: {e}")),
    }
    match run(true) {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Err(format!("cannot run fusermount3: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_shut_down_with_its_mount_gone_is_a_normal_end() {
        let aborted = || Err(std::io::Error::from_raw_os_error(libc::ECONNABORTED));
        assert!(session_end(aborted(), true).is_ok());
        // The mount is still there: someone aborted the connection under it.
        let e = session_end(aborted(), false).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECONNABORTED));
        // Any other failure stays one, mount or not.
        let other = Err(std::io::Error::from_raw_os_error(libc::EIO));
        assert!(session_end(other, true).is_err());
        assert!(session_end(Ok(()), false).is_ok());
    }
}
