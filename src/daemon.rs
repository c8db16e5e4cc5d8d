//! The mount process: connect, mount, serve until unmounted or signalled, then end cleanly.
//!
//! Mounting in the background has one hard requirement: errors that happen before the mount
//! is live (server unreachable, wrong password, bad mountpoint) must reach the user's
//! terminal and exit status, not a log nobody reads. So the process forks *before* starting
//! any thread ([`background`]); the child connects, logs in, mounts, and then tells the
//! waiting parent through a pipe either `OK` or the one-line error, and the parent exits 0
//! or 1 accordingly. Only then does the child let go of the terminal.
//!
//! A session ends three ways, each of which must leave no mount and no data behind: a stop
//! signal (SIGINT, SIGTERM, SIGHUP: this process unmounts), an unmount by someone else, or
//! an aborted FUSE connection (the dead mount is taken away). Either way every written file
//! whose last release never came is uploaded or saved before the process exits.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::Config;
use crate::error::{Error, Op};
use crate::fs::{FsOptions, FtpFs};
use crate::ftp::FtpRemote;
use crate::fuse::Fuse;
use crate::mount::mountinfo::dead_mount_remains;
use crate::mount::{
    fusermount_unmount, raise_readahead, session_end, start_session, unmount_own, Session,
};

/// The one-line error a user sees on the terminal, and exit status 1.
pub fn fail(msg: &str) -> ExitCode {
    eprintln!("ftpfs: {msg}");
    ExitCode::FAILURE
}

/// Runs `serve` in a child process detached from the terminal's session, and returns once
/// the child reports through the pipe it is given: `OK` (exit 0) or an error (printed, exit
/// 1). Must be called before any thread is started. In the child, returns what `serve`
/// returns.
pub fn background(serve: impl FnOnce(OwnedFd) -> ExitCode) -> ExitCode {
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
            serve(wr)
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

/// Connects, mounts and serves until unmounted or signalled. `notify` is the pipe to the
/// waiting parent in background mode.
pub fn serve(cfg: Config, notify: Option<OwnedFd>) -> ExitCode {
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
    let mut fs = FtpFs::new(
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
    );
    if !cfg.read_only {
        // Per server and path, as the uploads it holds are; replayed before the mount
        // serves anything, so nothing of this session races with them. A journal left by a
        // write-back session is finished by the next mount with or without write-back.
        use crate::upload::{journal, queue};
        let key = format!(
            "{}@{}:{}/{}",
            cfg.endpoint.user, cfg.endpoint.host, cfg.endpoint.port, cfg.path
        );
        let dir = journal::dir_for(&cfg.spool_dir, &key);
        match cfg.writeback {
            Some(max) => match journal::Journal::open(dir.clone()) {
                Ok(j) => {
                    fs.enable_writeback(j, max, queue::open_file_budget());
                    fs.replay_journal();
                }
                Err(e) => {
                    fs.remote().shutdown();
                    return report(
                        notify,
                        &format!("cannot open the write-back journal {}: {e}", dir.display()),
                    );
                }
            },
            // Without write-back nothing is made: only a journal that is there is read.
            None if dir.is_dir() => match journal::Journal::open(dir.clone()) {
                Ok(j) => {
                    fs.replay_leftover(&j);
                }
                Err(e) => log::error!("cannot read the write-back journal {}: {e}", dir.display()),
            },
            None => {}
        }
    }
    let fs = Arc::new(fs);

    // Block the stop signals before fuser starts its threads, so they inherit the mask and
    // only this thread receives them (with sigtimedwait below); the threads started while
    // connecting block them themselves (see crate::signals). Until here a signal ends the
    // process at once: nothing is mounted yet.
    crate::signals::block_here();
    let signals = crate::signals::stop_set();
    if let Err(e) = fs.start_writeback(cfg.connections) {
        fs.remote().shutdown();
        return report(notify, &format!("cannot start the write-back workers: {e}"));
    }
    if cfg.prefetch {
        fs.start_prefetch(cfg.connections);
    }

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
    let status = start_status(&cfg, &mountpoint, &fs);
    if let Some(fd) = notify {
        let _ = std::fs::File::from(fd).write_all(b"OK");
        detach_stdio(cfg.log_file.as_deref());
        crate::logging::detach();
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
    // Every request is answered; a release the kernel dropped with the mount is done now,
    // and with write-back the queue is uploaded before the process ends.
    fs.release_all();
    fs.drain_writeback();
    drop(status);
    fs.remote().shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("session ended with error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Serves `ftpfs status` on the mount's control socket (see [`crate::status::socket`]). A
/// socket that cannot be made costs the mount nothing but its status: a warning.
fn start_status(
    cfg: &Config,
    mountpoint: &Path,
    fs: &Arc<FtpFs<FtpRemote>>,
) -> Option<crate::status::socket::Server> {
    use crate::status;
    status::stats().mounted();
    if fs.writeback_stats().is_some() {
        let queue = Arc::clone(fs);
        status::set_queue(move || queue.writeback_stats().unwrap_or_default());
    }
    let fixed = status::Fixed::from_config(cfg, mountpoint.to_path_buf());
    let Some(path) = status::socket::path_for(mountpoint) else {
        log::warn!("no `ftpfs status` for this mount: its socket's path would be too long");
        return None;
    };
    // SAFETY: geteuid has no preconditions.
    let owner = unsafe { libc::geteuid() };
    let fs = Arc::clone(fs);
    match status::socket::Server::start(&path, owner, move || status::snapshot(&fixed, fs.remote()))
    {
        Ok(s) => {
            log::debug!("status socket {}", s.path().display());
            Some(s)
        }
        Err(e) => {
            log::warn!("no `ftpfs status` for this mount: {}: {e}", path.display());
            None
        }
    }
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
