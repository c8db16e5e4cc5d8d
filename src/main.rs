//! `ftpfs` entry point: parse, set up logging, mount or unmount; exit codes.
//!
//! Mounting in the background has one hard requirement: errors that happen before the mount
//! is live (server unreachable, wrong password, bad mountpoint) must reach the user's
//! terminal and exit status, not a log nobody reads. So the process forks *before* starting
//! any thread; the child connects, logs in, mounts, and then tells the waiting parent through
//! a pipe either `OK` or the one-line error, and the parent exits 0 or 1 accordingly. Only
//! then does the child let go of the terminal.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage error.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use fuser::{MountOption, SessionACL};

use ftpfs::cli::{Cli, Command, MountArgs};
use ftpfs::config::Config;
use ftpfs::error::{Error, Op};
use ftpfs::fs::{FsOptions, FtpFs};
use ftpfs::ftp::FtpRemote;
use ftpfs::fuse::Fuse;

/// FUSE worker threads: requests mostly wait on the network, so more threads than cores.
const FUSE_THREADS: usize = 8;

fn main() -> ExitCode {
    // Read buffers are a megabyte each, allocated on one fuser thread and often freed on
    // another. glibc's default raises its mmap threshold after the first such free and
    // serves them from per-thread arenas, which keep freed megabytes resident: reading a
    // 1 GiB file peaked at 28 to 39 MiB that way. A fixed threshold keeps large blocks in
    // their own mappings, returned to the system when freed; they are rare (buffers are
    // reused, see `remote::Buffers`).
    // SAFETY: called before any other thread exists; mallopt only sets an allocator tunable.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
    // Copied out before the argument memory is changed: std reads argv lazily from it.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    hide_url_password();
    let Some(args) = ftpfs::cli::helper_args(argv) else {
        // mount -f: pretend.
        return ExitCode::SUCCESS;
    };
    // clap exits 2 on a usage error; every failure of ftpfs is 1 (the README says so).
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Mount(args) => mount(args),
        Command::Umount { mountpoint, lazy } => umount(&mountpoint, lazy),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "ftpfs", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// A password written in the source URL (`ftp://user:pw@host`) is overwritten with `*` in
/// this process's own argument memory, so `/proc/<pid>/cmdline` (and `ps`) of the running
/// mount does not show it. The kernel reads cmdline from the range `arg_start..arg_end`
/// given in `/proc/self/stat`, which is this process's stack: writable by us.
fn hide_url_password() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may contain spaces) start at field 3.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // arg_start and arg_end are fields 48 and 49 (1-based), 46 and 47 after the comm.
    let (Some(start), Some(end)) = (
        fields.get(45).and_then(|f| f.parse::<usize>().ok()),
        fields.get(46).and_then(|f| f.parse::<usize>().ok()),
    ) else {
        return;
    };
    if start == 0 || end <= start || end - start > 1 << 20 {
        return;
    }
    // SAFETY: [start, end) is this process's argument area, mapped and writable for as long
    // as the process lives; nothing else holds references into it (Rust copied the args).
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    for arg in area.split_mut(|&b| b == 0) {
        let Some(scheme) = arg.windows(3).position(|w| w == b"://") else {
            continue;
        };
        let after = scheme + 3;
        let authority = arg[after..]
            .iter()
            .position(|&b| b == b'/')
            .unwrap_or(arg.len() - after);
        let Some(at) = arg[after..after + authority]
            .iter()
            .rposition(|&b| b == b'@')
        else {
            continue;
        };
        let userinfo = &mut arg[after..after + at];
        if let Some(colon) = userinfo.iter().position(|&b| b == b':') {
            userinfo[colon + 1..].fill(b'*');
        }
    }
}

fn mount(args: MountArgs) -> ExitCode {
    // Logging starts before the options are validated, so that errors in them are logged.
    let early = |key: &str| {
        args.options
            .iter()
            .flat_map(|o| o.split(','))
            .find_map(|x| match x.split_once('=') {
                Some((k, v)) if k == key => Some(v.to_string()),
                None if x == key => Some(String::new()),
                _ => None,
            })
    };
    let log_file = args
        .log_file
        .clone()
        .or_else(|| early("log_file").map(Into::into));
    if let Err(e) = ftpfs::logging::init(log_file.as_deref(), early("debug").is_some()) {
        return fail(&e.to_string());
    }
    let cfg = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    ftpfs::logging::set_secret(cfg.endpoint.password.expose());
    match std::fs::metadata(&cfg.mountpoint) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return fail(&format!("{}: not a directory", cfg.mountpoint.display())),
        Err(e) => return fail(&format!("{}: {e}", cfg.mountpoint.display())),
    }
    // Mounting again on top would hide the first mount, whose process goes on serving
    // nobody, and `ftpfs umount` would take off only the top one.
    let abs = std::fs::canonicalize(&cfg.mountpoint).unwrap_or_else(|_| cfg.mountpoint.clone());
    if let Some((_, source)) = mount_at(&abs).filter(|(fstype, _)| fstype == "fuse.ftpfs") {
        return fail(&format!(
            "{}: already mounted ({source}); `ftpfs umount {}` first",
            cfg.mountpoint.display(),
            cfg.mountpoint.display()
        ));
    }
    if cfg.foreground {
        return serve(cfg, None);
    }
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return fail(&format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: the descriptors were just created and are owned by nobody else.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no thread has been started yet, so the child is a faithful copy.
    match unsafe { libc::fork() } {
        -1 => fail(&format!("fork: {}", std::io::Error::last_os_error())),
        0 => {
            drop(rd);
            // SAFETY: setsid has no preconditions; it detaches from the terminal's session.
            unsafe { libc::setsid() };
            serve(cfg, Some(wr))
        }
        _child => {
            drop(wr);
            let mut msg = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut msg);
            match msg.strip_prefix("OK") {
                Some(_) => ExitCode::SUCCESS,
                None if msg.is_empty() => {
                    fail("the mount process ended before the mount was ready")
                }
                None => fail(msg.trim_end()),
            }
        }
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("ftpfs: {msg}");
    ExitCode::FAILURE
}

/// Connects, mounts and serves until unmounted or signalled. `notify` is the pipe to the
/// waiting parent in background mode.
fn serve(cfg: Config, notify: Option<OwnedFd>) -> ExitCode {
    let logged = cfg.log_file.is_some();
    let report = |notify: Option<OwnedFd>, msg: &str| -> ExitCode {
        // Without a log file the log is this terminal, where the message goes anyway.
        if logged {
            log::error!("{msg}");
        }
        match notify {
            Some(fd) => {
                let _ = std::fs::File::from(fd).write_all(msg.as_bytes());
            }
            None => eprintln!("ftpfs: {msg}"),
        }
        ExitCode::FAILURE
    };
    if !cfg.read_only {
        use std::os::unix::fs::DirBuilderExt;
        let made = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cfg.spool_dir);
        if let Err(e) = made {
            return report(
                notify,
                &format!(
                    "cannot create spool directory {}: {e}",
                    cfg.spool_dir.display()
                ),
            );
        }
    }
    let remote = match FtpRemote::connect(
        cfg.endpoint.clone(),
        cfg.connections,
        &cfg.path,
        cfg.listing,
    ) {
        Ok(r) => r
            .with_exact_times(cfg.exact_times)
            .with_compress(cfg.compress),
        Err(e) => return report(notify, &describe_connect_error(&cfg, &e)),
    };
    let fs = Arc::new(FtpFs::new(
        remote,
        FsOptions {
            uid: cfg.uid,
            gid: cfg.gid,
            umask: cfg.umask,
            ttl: cfg.dir_cache_ttl,
            max_cached_entries: 200_000,
            read_only: cfg.read_only,
            spool_dir: cfg.spool_dir.clone(),
            recovery_dir: cfg.recovery_dir.clone(),
            upload: cfg.upload,
            strict_times: cfg.strict_times,
        },
    ));

    // Block the stop signals before fuser starts its threads, so they inherit the mask and
    // only this thread receives them (with sigtimedwait below).
    let signals = stop_signals();
    // SAFETY: the set was initialised by stop_signals; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut()) };

    // Absolute and free of symlinks, to find the mount in /proc/self/mountinfo later
    // (resolving it after mounting would ask our own filesystem).
    let mountpoint = std::fs::canonicalize(&cfg.mountpoint).unwrap_or(cfg.mountpoint.clone());
    let session = match start_session(Fuse::new(Arc::clone(&fs)), &mountpoint, &cfg) {
        Ok(s) => s,
        Err(e) => {
            fs.remote().shutdown();
            return report(
                notify,
                &format!("cannot mount on {}: {e}", cfg.mountpoint.display()),
            );
        }
    };
    log::info!("mounted {} on {}", cfg.fsname, cfg.mountpoint.display());
    raise_readahead(&mountpoint);
    if let Some(fd) = notify {
        let _ = std::fs::File::from(fd).write_all(b"OK");
        detach_stdio(cfg.log_file.as_deref());
        ftpfs::logging::detach();
    }

    let mut signalled = None;
    while !session.finished() {
        let wait = libc::timespec {
            tv_sec: 0,
            tv_nsec: 200_000_000,
        };
        // SAFETY: valid set and timespec; a null siginfo pointer is allowed.
        let sig = unsafe { libc::sigtimedwait(&signals, std::ptr::null_mut(), &wait) };
        if sig > 0 {
            signalled = Some(sig);
            break;
        }
    }
    let result = match (signalled, session) {
        (Some(sig), Session::Own { session, device }) => {
            log::info!("signal {sig}: unmounting {}", cfg.mountpoint.display());
            // Joining a session whose mount stayed would wait for ever.
            unmount_own(&mountpoint, &device).and_then(|()| {
                session_end(session.join(), !dead_mount_remains(&mountpoint, &device))
            })
        }
        (Some(sig), Session::Fuser { session, .. }) => {
            log::info!("signal {sig}: unmounting {}", cfg.mountpoint.display());
            // Its unmount went first: an error after that is from the join.
            session_end(session.umount_and_join(), true)
        }
        (None, session) => {
            let (joined, device, own) = match session {
                Session::Own { session, device } => (session.join(), device, true),
                Session::Fuser { session, device } => {
                    // Joining would drop fuser's mount guard, which unmounts the mountpoint
                    // *by path* because its "still mounted?" test is inverted in fuser 0.18
                    // (POLLERR on /dev/fuse is taken to mean mounted). If the mount was
                    // already replaced by a new one (`umount && mount` in a script, an
                    // automount restart), that would unmount the new mount. The thread has
                    // finished; its guard is leaked instead, and the process exits.
                    std::mem::forget(session);
                    (Ok(()), device, false)
                }
            };
            if dead_mount_remains(&mountpoint, &device) {
                // The kernel ended the session under a mount that is still there: someone
                // aborted the connection (`/sys/fs/fuse/connections/N/abort`). Every access
                // to the mount now fails with ENOTCONN; take it away, as libfuse does when
                // its loop ends, so no dead mount is left behind, and say why we stop.
                log::error!(
                    "the FUSE connection of {} was aborted; unmounting it",
                    cfg.mountpoint.display()
                );
                let unmounted = if own {
                    unmount_own(&mountpoint, &device)
                } else {
                    // Dead: nothing can be using it; detach it whatever it says.
                    fusermount_unmount(&mountpoint, true).map_err(std::io::Error::other)
                };
                unmounted.and(Err(std::io::Error::from_raw_os_error(libc::ECONNABORTED)))
            } else {
                // Someone unmounted us (`fusermount3 -u`, `umount`).
                log::info!("{} was unmounted", cfg.mountpoint.display());
                session_end(joined, true)
            }
        }
    };
    // Every request is answered; a release the kernel dropped with the mount is done now.
    fs.release_all();
    fs.remote().shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("session ended with error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A running FUSE session, and who owns its mount.
enum Session {
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
    fn finished(&self) -> bool {
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
fn session_end(joined: std::io::Result<()>, mount_gone: bool) -> std::io::Result<()> {
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
fn start_session(fs: Fuse<FtpRemote>, mountpoint: &Path, cfg: &Config) -> std::io::Result<Session> {
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
fn unmount_own(mountpoint: &Path, device: &str) -> std::io::Result<()> {
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

fn raise_readahead(mountpoint: &Path) {
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

/// Whether the mount on `mountpoint` is still the one with `device`, not gone or replaced.
fn still_mounted(mountpoint: &Path, device: &str) -> bool {
    mount_device(mountpoint).as_deref() == Some(device)
}

/// After our session ended: whether our mount is still there, dead. The device number alone
/// cannot tell: once our mount is gone, a new mount at the same path often gets the same
/// anonymous device (`umount && mount` in a script), and unmounting that one would be a
/// disaster (the remount test caught it). A dead FUSE mount answers everything with
/// ENOTCONN at once, without asking any daemon; a live one is served by its own process,
/// never by this one, whose session has ended.
fn dead_mount_remains(mountpoint: &Path, device: &str) -> bool {
    still_mounted(mountpoint, device)
        && std::fs::metadata(mountpoint).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN))
}

/// The `major:minor` of the mount at `mountpoint`, from /proc/self/mountinfo (the last,
/// i.e. topmost, mount there).
fn mount_device(mountpoint: &Path) -> Option<String> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = mountpoint.to_str()?;
    table.lines().rev().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() > 4 && unescape_mountinfo(f[4]) == want).then(|| f[2].to_string())
    })
}

/// The file system type and source of the topmost mount at `mountpoint`, from
/// /proc/self/mountinfo.
fn mount_at(mountpoint: &Path) -> Option<(String, String)> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = mountpoint.to_str()?;
    table.lines().rev().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if unescape_mountinfo(left.split(' ').nth(4)?) != want {
            return None;
        }
        let mut r = right.split(' ');
        Some((r.next()?.to_string(), unescape_mountinfo(r.next()?)))
    })
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`...).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        });
        match (b[i], octal) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

/// The one line a user sees when the mount cannot start.
fn describe_connect_error(cfg: &Config, e: &Error) -> String {
    let ep = &cfg.endpoint;
    match e {
        Error::Reply {
            op: Op::Login,
            code,
            text,
        } => format!(
            "login to {} as {} failed: {code} {text}",
            ep.display(),
            ep.user
        ),
        Error::Reply {
            op: Op::Stat,
            code,
            text,
        } => format!(
            "cannot use directory {:?} on {}: {code} {text}",
            if cfg.path.is_empty() { "/" } else { &cfg.path },
            ep.display()
        ),
        Error::Timeout { .. } => format!(
            "no answer from {} within {} s",
            ep.display(),
            ep.timeout.as_secs()
        ),
        Error::Network { source, .. } => format!("cannot connect to {}: {source}", ep.display()),
        other => format!("{}: {other}", ep.display()),
    }
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Lets go of the terminal: stdin and stdout to /dev/null, stderr to the log file (so a
/// panic message lands there) or /dev/null. Keeping the caller's stderr would hold open a
/// pipe that `ftpfs mount ... | tail` or a test harness waits on until unmount.
fn detach_stdio(log_file: Option<&Path>) {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null");
    let log = log_file.and_then(|p| std::fs::OpenOptions::new().append(true).open(p).ok());
    if let Ok(null) = &null {
        let err = log.as_ref().map_or(null.as_raw_fd(), |f| f.as_raw_fd());
        // SAFETY: dup2 onto the standard descriptors; both sources stay open until after.
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(err, 2);
        }
    }
    let _ = std::env::set_current_dir("/");
}

/// `ftpfs umount`: `fusermount3 -u`. A busy mount is refused, as umount(8) does, unless
/// `lazy` asks to detach it now; a mount whose process died is detached either way (it
/// cannot be used any more, and nothing else would take it away).
fn umount(mountpoint: &Path, lazy: bool) -> ExitCode {
    match fusermount_unmount(mountpoint, lazy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fusermount_unmount(mountpoint: &Path, lazy: bool) -> Result<(), String> {
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
    fn mountinfo_escapes_are_undone() {
        assert_eq!(
            unescape_mountinfo(r"/tmp/a\040b\011c\134d"),
            "/tmp/a b\tc\\d"
        );
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/bad\04"), r"/bad\04");
    }

    #[test]
    fn the_device_of_a_mount_comes_from_the_mount_table() {
        let dev = mount_device(Path::new("/")).expect("/ is mounted");
        let (major, minor) = dev.split_once(':').unwrap();
        assert!(
            major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok(),
            "{dev}"
        );
        assert_eq!(mount_device(Path::new("/no/such/mount")), None);
    }

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
