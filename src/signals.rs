//! The stop signals (SIGINT, SIGTERM, SIGHUP) belong to the mount process's main thread.
//!
//! A process-directed signal goes to any thread that does not block it, and its default
//! action ends the whole process. The main thread waits for them with `sigtimedwait` once
//! the mount is up, so that one unmounts cleanly; threads started before that (the
//! connection pool's watchdog, name lookups, data connections prepared ahead) are started
//! with them blocked ([`spawn_blocked`]), or a `SIGTERM` landing on one kills the process
//! and leaves the mount behind. Threads started after the main thread blocked them inherit
//! the mask. A leaf: `daemon` and `ftp` both use it.

/// SIGINT, SIGTERM and SIGHUP.
pub fn stop_set() -> libc::sigset_t {
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

/// Blocks the stop signals in the calling thread.
pub fn block_here() {
    let set = stop_set();
    // SAFETY: the set was initialised by stop_set; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Starts a thread with the stop signals blocked from its first instruction: the new
/// thread inherits the mask the calling thread has while spawning it, so they are blocked
/// around the spawn and the caller's mask restored after. (A thread that blocks them
/// itself leaves a window at its start in which a `SIGTERM` ends the process.)
pub fn spawn_blocked<F>(
    builder: std::thread::Builder,
    f: F,
) -> std::io::Result<std::thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    let set = stop_set();
    // SAFETY: both sets are plain data; the old one is written by pthread_sigmask.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    let spawned = builder.spawn(f);
    // SAFETY: `old` was filled in by the call above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    spawned
}
