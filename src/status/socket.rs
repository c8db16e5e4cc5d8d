//! The control socket: one per mount, readable only by the mounting user.
//!
//! What a mount reports names files and where unsent data was saved, so only the user who
//! mounted it may ask: the socket lives in a directory only that user can enter
//! (`$XDG_RUNTIME_DIR/ftpfs/`, else `/run/user/UID/ftpfs/`, `/run/ftpfs/` for root, or
//! `$TMPDIR/ftpfs-UID/`), checked to be that user's and mode `0700` before use; the socket
//! itself is `0600`; and the server checks each client's uid (`SO_PEERCRED`) as well,
//! since a directory's mode is easy to get wrong.
//!
//! The socket is named after a hash of the mountpoint's canonical path, so `ftpfs status
//! MOUNTPOINT` finds it without asking the mount (a `stat` of a hung mount would hang the
//! command meant to diagnose it). A socket left by a process that died is replaced; the
//! socket is removed at the end of the session, only if it is still the one this process
//! made.
//!
//! The protocol is one request line (`status`) and one reply: the [`Snapshot`] as JSON on
//! one line, or `{"error": "..."}`. The server is one thread that never blocks FUSE work:
//! it reads at most [`MAX_REQUEST`] bytes, each client gets [`CLIENT_DEADLINE`] in all, and
//! the snapshot is copied out of the locks that guard it before anything is written.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Snapshot;

/// The longest request line read.
pub const MAX_REQUEST: usize = 256;
/// How long one client may take, request and reply.
pub const CLIENT_DEADLINE: Duration = Duration::from_secs(2);
/// How often the server thread looks whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(200);

/// The directory where a mount started now puts its control socket (not created here).
pub fn dir() -> PathBuf {
    dirs().swap_remove(0)
}

/// Every directory a mount of this user may have put its socket in, the one a mount
/// started now would use first. The environment differs between where mounts start and
/// where `ftpfs status` runs: root's fstab mounts run without `XDG_RUNTIME_DIR`, root's
/// login shell has one; so the command looks in all of them.
fn dirs() -> Vec<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let mut v = Vec::new();
    // An empty or relative value is to be ignored (XDG base directory specification), and
    // so is another user's (`su` keeps the caller's): the sockets of root's mounts in it
    // would make it unusable for the user's own.
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .filter(|p| std::fs::metadata(p).map_or(true, |m| m.uid() == uid))
    {
        v.push(x.join("ftpfs"));
    }
    if uid == 0 {
        v.push(PathBuf::from("/run/ftpfs"));
    }
    let user_run = PathBuf::from(format!("/run/user/{uid}"));
    if user_run.is_dir() {
        v.push(user_run.join("ftpfs"));
    }
    v.push(std::env::temp_dir().join(format!("ftpfs-{uid}")));
    v.dedup();
    v
}

/// The socket directories that exist and are this user's alone: the only ones
/// `ftpfs status` asks (a socket anyone else could have put there proves nothing).
pub fn dirs_in_use() -> Vec<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    dirs()
        .into_iter()
        .filter(|d| {
            std::fs::symlink_metadata(d)
                .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0)
        })
        .collect()
}

/// The control socket of the mount at `mountpoint` (absolute, free of symlinks) in `dir`.
/// `None` when the path would be too long for a socket address.
pub fn path_in(dir: &Path, mountpoint: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let digest = ring::digest::digest(&ring::digest::SHA256, mountpoint.as_os_str().as_bytes());
    let name: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!("{name}.sock"));
    // sun_path holds 108 bytes with the terminating NUL.
    (path.as_os_str().len() < 108).then_some(path)
}

/// The control socket a mount at `mountpoint` started now uses (see [`path_in`]).
pub fn path_for(mountpoint: &Path) -> Option<PathBuf> {
    path_in(&dir(), mountpoint)
}

/// Creates [`dir`] if needed, and checks that it is this user's and nobody else's.
fn ensure_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let m = std::fs::symlink_metadata(dir)?;
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if !m.is_dir() || m.uid() != uid {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} is not a directory of this user's", dir.display()),
        ));
    }
    if m.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The running server; stopped (and its socket removed) by [`Server::stop`] or on drop.
pub struct Server {
    path: PathBuf,
    /// The socket file's device and inode, to remove it only if it is still ours.
    id: (u64, u64),
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `path` (replacing a stale socket) and serves `snapshot()` to clients whose uid
    /// is `owner`.
    pub fn start(
        path: &Path,
        owner: u32,
        snapshot: impl Fn() -> Snapshot + Send + 'static,
    ) -> std::io::Result<Server> {
        let parent = path.parent().unwrap_or(Path::new("/"));
        ensure_dir(parent)?;
        let listener = match UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                match UnixStream::connect(path) {
                    // Someone serves it: a mount at this path that was detached (lazy
                    // unmount) and is still finishing. This mount is the one there now.
                    Ok(_) => log::warn!(
                        "{}: another ftpfs process still answers on it; taking it over",
                        path.display()
                    ),
                    Err(_) => log::debug!("{}: replacing a stale socket", path.display()),
                }
                std::fs::remove_file(path)?;
                UnixListener::bind(path)?
            }
            Err(e) => return Err(e),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        let m = std::fs::symlink_metadata(path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("ftpfs-status".into())
            .spawn(move || serve(listener, owner, &stopping, &snapshot))?;
        Ok(Server {
            path: path.to_path_buf(),
            id: (m.dev(), m.ino()),
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops serving and removes the socket.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}

fn serve(listener: UnixListener, owner: u32, stop: &AtomicBool, snapshot: &dyn Fn() -> Snapshot) {
    while !stop.load(Ordering::Relaxed) {
        let mut fds = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut fds, 1, STOP_POLL.as_millis() as libc::c_int) };
        if n <= 0 {
            continue;
        }
        match listener.accept() {
            Ok((client, _)) => {
                if let Err(e) = answer(client, owner, snapshot) {
                    log::debug!("status client: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                log::warn!("status socket: {e}");
                // Not a busy loop on a persistent error (EMFILE).
                std::thread::sleep(STOP_POLL);
            }
        }
    }
}

/// The uid of the process at the other end of `s`.
pub fn peer_uid(s: &UnixStream) -> std::io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a ucred of the size given.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

fn answer(
    mut client: UnixStream,
    owner: u32,
    snapshot: &dyn Fn() -> Snapshot,
) -> std::io::Result<()> {
    let until = Instant::now() + CLIENT_DEADLINE;
    client.set_nonblocking(false)?;
    client.set_write_timeout(Some(CLIENT_DEADLINE))?;
    let uid = peer_uid(&client)?;
    let mut line = Vec::new();
    let mut buf = [0u8; 64];
    while !line.contains(&b'\n') {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || line.len() > MAX_REQUEST {
            return reply_error(&mut client, "request too long or too slow");
        }
        client.set_read_timeout(Some(left))?;
        match client.read(&mut buf)? {
            0 => break,
            n => line.extend_from_slice(&buf[..n]),
        }
    }
    // Refused only once its request is read: closing a socket with unread data resets it,
    // and the client would see that instead of the reason.
    if uid != owner {
        log::warn!("status socket: refused a client of uid {uid} (the mount is uid {owner}'s)");
        return reply_error(&mut client, "permission denied: not the mounting user");
    }
    let request = String::from_utf8_lossy(&line);
    match request.trim() {
        "status" => {
            let mut json = serde_json::to_vec(&snapshot()).map_err(std::io::Error::other)?;
            json.push(b'\n');
            client.write_all(&json)
        }
        other => reply_error(
            &mut client,
            &format!(
                "unknown request {:?}",
                other.chars().take(40).collect::<String>()
            ),
        ),
    }
}

fn reply_error(client: &mut UnixStream, msg: &str) -> std::io::Result<()> {
    let mut json =
        serde_json::to_vec(&serde_json::json!({ "error": msg })).map_err(std::io::Error::other)?;
    json.push(b'\n');
    client.write_all(&json)
}

/// Why a query got no snapshot.
#[derive(Debug)]
pub enum QueryError {
    /// No socket, or nobody listening on it: no live mount process behind it.
    Gone,
    /// Not allowed (the directory or socket is another user's, or the server refused).
    Denied(String),
    /// Nothing within the deadline.
    NoAnswer(Duration),
    /// Anything else (a reply that cannot be read).
    Other(String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Gone => write!(f, "no ftpfs process answers"),
            QueryError::Denied(m) => write!(f, "{m}"),
            QueryError::NoAnswer(d) => write!(f, "no answer within {} s", d.as_secs()),
            QueryError::Other(m) => write!(f, "{m}"),
        }
    }
}

/// Asks the server on `path` for its snapshot, within `deadline` (connecting included: the
/// query runs on a thread of its own, so a stuck connect cannot hold the caller).
pub fn query(path: &Path, deadline: Duration) -> Result<Snapshot, QueryError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(query_now(&p, deadline));
    });
    rx.recv_timeout(deadline)
        .unwrap_or(Err(QueryError::NoAnswer(deadline)))
}

fn query_now(path: &Path, deadline: Duration) -> Result<Snapshot, QueryError> {
    use std::io::ErrorKind;
    let io = |e: std::io::Error| match e.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => QueryError::Gone,
        ErrorKind::PermissionDenied => QueryError::Denied(format!(
            "{}: permission denied (the mount is another user's)",
            path.display()
        )),
        ErrorKind::WouldBlock | ErrorKind::TimedOut => QueryError::NoAnswer(deadline),
        _ => QueryError::Other(format!("{}: {e}", path.display())),
    };
    let mut s = UnixStream::connect(path).map_err(io)?;
    s.set_read_timeout(Some(deadline)).map_err(io)?;
    s.set_write_timeout(Some(deadline)).map_err(io)?;
    s.write_all(b"status\n").map_err(io)?;
    let mut reply = Vec::new();
    // Bounded: a snapshot is small (transfers and failures are few), 16 MiB is far beyond.
    s.take(16 << 20).read_to_end(&mut reply).map_err(io)?;
    if reply.is_empty() {
        // Closed without a word: the process is ending.
        return Err(QueryError::Gone);
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&reply) {
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return Err(if e.starts_with("permission denied") {
                QueryError::Denied(e.to_string())
            } else {
                QueryError::Other(e.to_string())
            });
        }
    }
    serde_json::from_slice(&reply)
        .map_err(|e| QueryError::Other(format!("{}: unreadable reply: {e}", path.display())))
}

/// The sockets in this user's socket directories.
pub fn all() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = dirs_in_use()
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        })
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Connections, Counters, ServerStatus, Writeback};

    fn sample(mountpoint: &str) -> Snapshot {
        Snapshot {
            version: crate::status::VERSION,
            pid: 1,
            mountpoint: mountpoint.into(),
            socket: PathBuf::new(),
            uptime_secs: 0,
            server: ServerStatus {
                url: "ftp://u@h:21/".into(),
                tls: "off".into(),
                tls_protocol: None,
                data: "passive".into(),
            },
            connections: Connections::default(),
            transfers: Vec::new(),
            writeback: Writeback::default(),
            prefetch: Default::default(),
            failures: Vec::new(),
            counters: Counters::default(),
        }
    }

    fn me() -> u32 {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() }
    }

    #[test]
    fn the_owner_gets_the_snapshot_and_the_socket_goes_with_the_server() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run").join("a.sock");
        let server = Server::start(&path, me(), || sample("/mnt/a")).unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let snap = query(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(snap.mountpoint, Path::new("/mnt/a"));
        server.stop();
        assert!(!path.exists());
        assert!(matches!(
            query(&path, Duration::from_secs(5)),
            Err(QueryError::Gone)
        ));
    }

    #[test]
    fn a_client_of_another_uid_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run").join("b.sock");
        // The server belongs to some other user: this process is a stranger to it.
        let _server = Server::start(&path, me().wrapping_add(4242), || sample("/mnt/b")).unwrap();
        match query(&path, Duration::from_secs(5)) {
            Err(QueryError::Denied(m)) => assert!(m.contains("permission denied"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stale_socket_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run").join("c.sock");
        std::fs::create_dir(tmp.path().join("run")).unwrap();
        // A socket file nobody listens on, as a killed process leaves it.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let _server = Server::start(&path, me(), || sample("/mnt/c")).unwrap();
        assert_eq!(
            query(&path, Duration::from_secs(5)).unwrap().mountpoint,
            Path::new("/mnt/c")
        );
    }

    #[test]
    fn a_silent_client_does_not_hold_the_server() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("run").join("d.sock");
        let _server = Server::start(&path, me(), || sample("/mnt/d")).unwrap();
        // Connects and says nothing: the server gives up on it after its deadline.
        let silent = UnixStream::connect(&path).unwrap();
        let start = Instant::now();
        let snap = query(&path, CLIENT_DEADLINE * 3).unwrap();
        assert_eq!(snap.mountpoint, Path::new("/mnt/d"));
        assert!(
            start.elapsed() < CLIENT_DEADLINE * 2,
            "{:?}",
            start.elapsed()
        );
        drop(silent);
    }

    #[test]
    fn a_socket_directory_of_lax_mode_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("lax");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_dir(&d).unwrap();
        assert_eq!(std::fs::metadata(&d).unwrap().mode() & 0o777, 0o700);
    }
}
