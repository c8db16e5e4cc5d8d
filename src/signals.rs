//! The stop signals (SIGINT, SIGTERM, SIGHUP) belong to the mount process's main thread.
//!
//! A process-directed signal goes to any thread that does not block it, and its default
//! action ends the whole process. The main thread waits for them with `sigtimedwait` once
//! the mount is up, so that one unmounts cleanly; threads started before that (the
//! connection pool's watchdog, name lookups) must block them themselves, or a `SIGTERM`
//! landing on one kills the process and leaves the mount behind. Threads started after the
//! main thread blocked them inherit the mask. A leaf: `daemon` and `ftp` both use it.

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
