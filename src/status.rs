//! What a mount is doing, for `ftpfs status`: counters, transfers in flight, failures.
//!
//! A mount that is slow, stuck or failing gives its user nothing to look at: `ls` hangs or
//! `cp` crawls, and the log (if anyone reads it) says what went wrong only after the fact.
//! So the mount process keeps a running account of itself, and serves it on a control socket
//! ([`socket`]) that `ftpfs status` reads and prints ([`render`]).
//!
//! The account has to be cheap enough to be always on, since nobody turns on diagnostics
//! before the problem: every counter is a relaxed atomic, bumped by a one-line hook where the
//! thing happens (the pool, the retry loop, the listing cache, readers and uploads). One
//! process serves one mount, so the account is process-wide ([`stats`]) rather than threaded
//! through every constructor.
//!
//! Commands are counted from what suppaftp puts on the wire, not from what ftpfs asks of it:
//! one call of suppaftp's may send several commands (`login` is `USER` and `PASS`, a download
//! `EPSV`, `REST` and `RETR`). suppaftp logs each command line it sends at trace level
//! (`CC OUT: ...`), and the logger hands that record to [`observe_log`] before deciding
//! whether to print it, so the count holds whatever the log level. Only the verb is looked
//! at: `PASS`'s argument is never kept. The few commands ftpfs writes on the socket itself
//! (`FEAT` read tolerantly, pipelined `MDTM`) are counted where it writes them. A test
//! compares the counts with what a proxy in front of a real server sees.
//!
//! Logins are counted the same way (each `USER` is one), so that every place a connection
//! is opened counts, present and future; lost connections are counted where the pool
//! drops one (broken, timed out, or found closed by the server).
//!
//! The snapshot ([`Snapshot`]) is what the socket sends, as JSON; its fields are the stable
//! interface documented in the README, versioned by [`VERSION`].

pub mod render;
pub mod socket;

use std::collections::BTreeMap;
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The JSON format's version: raised when a field changes meaning or goes away (new fields
/// may appear without it).
pub const VERSION: u32 = 1;

/// The verbs counted one by one; anything else counts as `OTHER`.
pub const VERBS: [&str; 44] = [
    "ABOR", "ACCT", "ALLO", "APPE", "AUTH", "CCC", "CDUP", "CLNT", "CWD", "DELE", "EPRT", "EPSV",
    "FEAT", "HELP", "HOST", "LIST", "MDTM", "MFMT", "MKD", "MLSD", "MLST", "MODE", "NLST", "NOOP",
    "OPTS", "PASS", "PASV", "PBSZ", "PORT", "PROT", "PWD", "QUIT", "REIN", "REST", "RETR", "RMD",
    "RNFR", "RNTO", "SITE", "SIZE", "STAT", "STOR", "TYPE", "USER",
];

/// How many recovered files are remembered (the oldest are forgotten first; the log has
/// them all).
const MAX_FAILURES: usize = 100;

/// The process-wide account. See the module docs.
pub struct Stats {
    commands: [AtomicU64; VERBS.len() + 1],
    retries: AtomicU64,
    logins: AtomicU64,
    lost: AtomicU64,
    /// Connections lost and not yet replaced by a new login.
    unreplaced: AtomicU64,
    reconnects: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// The TLS version of the last full handshake: 0 none, 12 or 13.
    tls_version: AtomicU8,
    tls_full: AtomicU64,
    tls_data: AtomicU64,
    transfers: Mutex<Vec<Arc<Entry>>>,
    failures: Mutex<Vec<Failure>>,
    started: OnceLock<Instant>,
}

/// The account of this process.
pub fn stats() -> &'static Stats {
    static STATS: OnceLock<Stats> = OnceLock::new();
    STATS.get_or_init(Stats::new)
}

impl Stats {
    /// All zero: the process's own is [`stats`]; tests make their own.
    fn new() -> Stats {
        Stats {
            commands: std::array::from_fn(|_| AtomicU64::new(0)),
            retries: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            unreplaced: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            tls_version: AtomicU8::new(0),
            tls_full: AtomicU64::new(0),
            tls_data: AtomicU64::new(0),
            transfers: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            started: OnceLock::new(),
        }
    }

    /// One command with this verb went to the server.
    pub fn command(&self, verb: &str) {
        self.commands(verb, 1);
    }

    /// Command lines ftpfs wrote on a control connection itself rather than through
    /// suppaftp (`FEAT` read tolerantly, pipelined `MDTM`): each line's verb counts once.
    pub fn written(&self, out: &[u8]) {
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let verb = line
                .split(|&b| b == b' ' || b == b'\r')
                .next()
                .unwrap_or_default();
            self.command(&String::from_utf8_lossy(verb));
        }
    }

    /// `n` commands with this verb went to the server. Each `USER` is a login: counted on
    /// the wire, every way a connection is opened is counted, wherever it is made.
    pub fn commands(&self, verb: &str, n: u64) {
        let i = VERBS
            .iter()
            .position(|v| v.eq_ignore_ascii_case(verb))
            .unwrap_or(VERBS.len());
        self.commands[i].fetch_add(n, Relaxed);
        if VERBS.get(i) == Some(&"USER") {
            for _ in 0..n {
                self.login();
            }
        }
    }

    /// An operation is tried again.
    pub fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    /// A control connection logs in (sends `USER`); after a lost one, it is a reconnect.
    fn login(&self) {
        self.logins.fetch_add(1, Relaxed);
        let replaced = self
            .unreplaced
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        if replaced.is_ok() {
            self.reconnects.fetch_add(1, Relaxed);
        }
    }

    /// A control connection broke, timed out or was closed by the server.
    pub fn lost(&self) {
        self.lost.fetch_add(1, Relaxed);
        self.unreplaced.fetch_add(1, Relaxed);
    }

    /// A lookup in the listing cache: answered from it, or not.
    pub fn cache(&self, hit: bool) {
        if hit {
            self.cache_hits.fetch_add(1, Relaxed);
        } else {
            self.cache_misses.fetch_add(1, Relaxed);
        }
    }

    /// A TLS handshake completed in full with this version (12 or 13): the server's
    /// certificate was checked, as on a control connection or a data connection that did not
    /// resume its control connection's session.
    pub fn tls_handshake(&self, version: u8) {
        self.tls_version.store(version, Relaxed);
        self.tls_full.fetch_add(1, Relaxed);
    }

    /// A data connection starts its TLS handshake.
    pub fn tls_data_connection(&self) {
        self.tls_data.fetch_add(1, Relaxed);
    }

    /// Data that could not be uploaded was saved to `saved_to`; `path` is relative to the
    /// mount's root.
    pub fn recovered(&self, path: &str, saved_to: &std::path::Path) {
        let mut f = self.failures.lock();
        if f.len() >= MAX_FAILURES {
            f.remove(0);
        }
        f.push(Failure {
            // As transfers show it: from the mount's root, starting with `/`.
            path: format!("/{}", path.trim_start_matches('/')),
            saved_to: saved_to.to_path_buf(),
            time: unix_secs(SystemTime::now()),
        });
    }

    /// The mount is live from now (for the uptime).
    pub fn mounted(&self) {
        let _ = self.started.set(Instant::now());
    }

    /// Starts accounting for a transfer of `path` (the server's absolute path), which began
    /// at byte `from`; it stays listed until the returned handle is dropped.
    pub fn transfer(
        &self,
        path: &str,
        direction: Direction,
        size: Option<u64>,
        from: u64,
    ) -> Transfer {
        let entry = Arc::new(Entry {
            path: path.to_string(),
            direction,
            size,
            started: Instant::now(),
            at: AtomicU64::new(from),
            moved: AtomicU64::new(0),
            segments: AtomicU64::new(0),
        });
        self.transfers.lock().push(Arc::clone(&entry));
        Transfer(entry)
    }

    /// The counters as they are now.
    pub fn counters(&self) -> Counters {
        let mut commands = BTreeMap::new();
        for (i, c) in self.commands.iter().enumerate() {
            let n = c.load(Relaxed);
            if n > 0 {
                let verb = VERBS.get(i).copied().unwrap_or("OTHER");
                commands.insert(verb.to_string(), n);
            }
        }
        Counters {
            commands,
            retries: self.retries.load(Relaxed),
            logins: self.logins.load(Relaxed),
            lost: self.lost.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
            tls_data_connections: self.tls_data.load(Relaxed),
            tls_full_handshakes: self.tls_full.load(Relaxed),
        }
    }

    /// The transfers in flight, with paths relative to the mount's root `root` (the
    /// server's absolute path of the mounted directory, "" for "/").
    pub fn transfers(&self, root: &str) -> Vec<TransferStatus> {
        // Copied out under the lock; the figures are computed after.
        let entries: Vec<Arc<Entry>> = self.transfers.lock().clone();
        entries.iter().map(|e| e.status(root)).collect()
    }

    pub fn failures(&self) -> Vec<Failure> {
        self.failures.lock().clone()
    }

    pub fn tls_protocol(&self) -> Option<String> {
        match self.tls_version.load(Relaxed) {
            12 => Some("TLSv1.2".into()),
            13 => Some("TLSv1.3".into()),
            _ => None,
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.get().map_or(Duration::ZERO, Instant::elapsed)
    }
}

/// Looks at a log record before the logger filters it: suppaftp's record of a command it
/// sent is counted (see the module docs). Cheap for every other record: a level and a
/// target compared.
pub fn observe_log(record: &log::Record) {
    if record.level() != log::Level::Trace || !record.target().starts_with("suppaftp") {
        return;
    }
    if let Some(verb) = sent_verb(record.args()) {
        stats().command(&verb);
    }
}

/// The verb of suppaftp's `CC OUT: VERB ARGS` trace line; `None` for any other line. Only
/// the first bytes are formatted, so an argument (a password) is never copied whole.
fn sent_verb(args: &std::fmt::Arguments) -> Option<String> {
    const PREFIX: &str = "CC OUT: ";
    /// Keeps the first `PREFIX.len() + 16` bytes and then stops the formatting.
    struct Head(String);
    impl std::fmt::Write for Head {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = PREFIX.len() + 16 - self.0.len();
            let take = s
                .char_indices()
                .map(|(i, c)| i + c.len_utf8())
                .take_while(|&end| end <= room)
                .last()
                .unwrap_or(0);
            self.0.push_str(&s[..take]);
            if take < s.len() {
                Err(std::fmt::Error)
            } else {
                Ok(())
            }
        }
    }
    let mut head = Head(String::with_capacity(PREFIX.len() + 16));
    let _ = std::fmt::write(&mut head, *args);
    let rest = head.0.strip_prefix(PREFIX)?;
    let verb: String = rest.chars().take_while(|c| *c != ' ').collect();
    (!verb.is_empty() && verb.chars().all(|c| c.is_ascii_alphabetic()) && verb.len() <= 4)
        .then(|| verb.to_ascii_uppercase())
        .or_else(|| (!verb.is_empty()).then(|| "OTHER".to_string()))
}

/// Which way a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Download,
    Upload,
}

struct Entry {
    path: String,
    direction: Direction,
    size: Option<u64>,
    started: Instant,
    /// The byte of the file the transfer has reached.
    at: AtomicU64,
    /// Bytes moved so far (a seek moves `at` without moving bytes), for the rate.
    moved: AtomicU64,
    /// Connections a segmented download runs on (0: one stream).
    segments: AtomicU64,
}

impl Entry {
    fn status(&self, root: &str) -> TransferStatus {
        let at = self.at.load(Relaxed);
        let moved = self.moved.load(Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        // Below a tenth of a second the rate says nothing yet.
        let rate = (secs >= 0.1).then(|| moved as f64 / secs);
        let eta_secs = match (self.size, rate) {
            (Some(size), Some(r)) if r > 0.0 && size >= at => Some((size - at) as f64 / r),
            _ => None,
        };
        let rel = self
            .path
            .strip_prefix(root)
            .filter(|r| r.starts_with('/') || r.is_empty())
            .unwrap_or(&self.path);
        TransferStatus {
            path: if rel.is_empty() { "/" } else { rel }.to_string(),
            direction: self.direction,
            bytes: at,
            size: self.size,
            rate,
            eta_secs,
            elapsed_secs: secs,
            segments: self.segments.load(Relaxed),
        }
    }
}

/// A transfer being accounted for; it leaves the list when dropped.
pub struct Transfer(Arc<Entry>);

impl Transfer {
    /// `n` more bytes went through; the transfer has reached byte `at` of the file.
    pub fn moved(&self, n: u64, at: u64) {
        self.0.moved.fetch_add(n, Relaxed);
        self.0.at.store(at, Relaxed);
    }

    /// The download runs on `n` connections at once (segments), 0 for one stream.
    pub fn segments(&self, n: usize) {
        self.0.segments.store(n as u64, Relaxed);
    }

    /// The transfer goes on from byte `at` (a new stream after a seek or a resume).
    pub fn seek(&self, at: u64) {
        self.0.at.store(at, Relaxed);
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        stats()
            .transfers
            .lock()
            .retain(|e| !Arc::ptr_eq(e, &self.0));
    }
}

/// Seconds since the epoch.
fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What `ftpfs status --json` prints for one mount: the stable format.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// [`VERSION`].
    pub version: u32,
    pub pid: u32,
    pub mountpoint: PathBuf,
    /// The control socket that answered.
    pub socket: PathBuf,
    pub uptime_secs: u64,
    pub server: ServerStatus,
    pub connections: Connections,
    pub transfers: Vec<TransferStatus>,
    pub writeback: Writeback,
    /// Listing and reading ahead of walks (`-o prefetch`); all zero while off.
    #[serde(default)]
    pub prefetch: PrefetchStatus,
    /// Written data that could not be uploaded and was saved instead, oldest first.
    pub failures: Vec<Failure>,
    pub counters: Counters,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerStatus {
    /// `ftp://USER@HOST:PORT/PATH` (`ftps://` for implicit TLS); never a password.
    pub url: String,
    /// `off`, `explicit` (AUTH TLS) or `implicit`.
    pub tls: String,
    /// `TLSv1.2` or `TLSv1.3` once a handshake was made; `null` otherwise.
    pub tls_protocol: Option<String>,
    /// `passive`, `active`, or `unknown` before the first connection settled it.
    pub data: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Connections {
    /// Control connections that exist (idle, busy, or being opened).
    pub open: usize,
    pub busy: usize,
    pub idle: usize,
    /// Of the busy ones, those held for file transfers.
    pub transfers: usize,
    /// The most this mount opens (`-o connections=`).
    pub max: usize,
    /// The server's limit as learned from a refused login, while it holds.
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TransferStatus {
    /// Relative to the mount's root, starting with `/`.
    pub path: String,
    pub direction: Direction,
    /// The byte of the file reached.
    pub bytes: u64,
    /// The file's size when known.
    pub size: Option<u64>,
    /// Bytes per second since the transfer started (`null` in its first tenth of a second).
    pub rate: Option<f64>,
    /// Seconds left at that rate, when the size is known.
    pub eta_secs: Option<f64>,
    pub elapsed_secs: f64,
    /// Connections a segmented download is fetching ranges of the file on, ahead of the
    /// reader (see `ftp::reader::segments`); 0 for one stream.
    #[serde(default)]
    pub segments: u64,
}

/// What the write-back queue reports about itself (`-o writeback`).
pub use crate::upload::queue::QueueStats;

/// How the snapshot asks the write-back queue for its figures.
type QueueSource = Box<dyn Fn() -> QueueStats + Send + Sync>;

static QUEUE: OnceLock<QueueSource> = OnceLock::new();

/// The mount has a write-back queue, and `figures` tells its state: `ftpfs status` shows
/// it from then on. Once per process; a second call is ignored.
pub fn set_queue(figures: impl Fn() -> QueueStats + Send + Sync + 'static) {
    let _ = QUEUE.set(Box::new(figures));
}

type PrefetchSource = Box<dyn Fn() -> PrefetchStatus + Send + Sync>;

static PREFETCH: OnceLock<PrefetchSource> = OnceLock::new();

/// The mount lists and reads ahead, and `figures` tells its state. Once per process.
pub fn set_prefetch(figures: impl Fn() -> PrefetchStatus + Send + Sync + 'static) {
    let _ = PREFETCH.set(Box::new(figures));
}

/// The prefetch in a snapshot: what it holds in memory against its bound, and its work.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PrefetchStatus {
    pub enabled: bool,
    /// Bytes of files read ahead and not opened yet, and of reads ahead in flight (counted
    /// from when they start). A file opened from them belongs to its handle from then on.
    pub held_bytes: u64,
    /// The most `held_bytes` has been since the mount.
    pub held_bytes_most: u64,
    /// The bound `held_bytes` keeps to.
    pub held_bytes_bound: u64,
    pub files_ready: usize,
    pub files_reading: usize,
    /// Directories listed ahead (or being listed) that the kernel has not opened.
    pub listings_ahead: usize,
    pub jobs_queued: usize,
}

/// The write-back queue in a snapshot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Writeback {
    /// `false` while the mount has no write-back queue (the default: `close` uploads).
    pub enabled: bool,
    pub files: u64,
    pub bytes: u64,
    /// Age of the oldest queued upload.
    pub oldest_secs: Option<f64>,
    /// Uploads that failed for good, and where their data is.
    pub failed: Vec<Saved>,
    /// Uploads waiting for a server that cannot be reached, and where their data is.
    pub waiting: Vec<Saved>,
}

impl Writeback {
    /// The queue's figures as the snapshot shows them; `None`: no queue, "off".
    pub fn of(q: Option<QueueStats>) -> Writeback {
        let Some(q) = q else {
            return Writeback::default();
        };
        let saved = |v: Vec<(String, PathBuf)>| {
            v.into_iter()
                .map(|(path, saved_to)| Saved { path, saved_to })
                .collect()
        };
        Writeback {
            enabled: true,
            files: q.files as u64,
            bytes: q.bytes,
            oldest_secs: q.oldest.map(|d| d.as_secs_f64()),
            failed: saved(q.failed),
            waiting: saved(q.waiting),
        }
    }
}

/// A file whose data could not be uploaded, and where it was saved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Saved {
    pub path: String,
    pub saved_to: PathBuf,
}

/// Written data that could not be uploaded when nobody could be told any more (the last
/// release), and the recovery file it was saved to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    pub path: String,
    pub saved_to: PathBuf,
    /// When, in seconds since the epoch.
    pub time: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Commands sent to the server, by verb (`OTHER` for the rest); verbs never sent are
    /// left out.
    pub commands: BTreeMap<String, u64>,
    /// Attempts repeated after a transient failure.
    pub retries: u64,
    /// Logins (`USER` sent: control connections opened).
    pub logins: u64,
    /// Control connections lost (broken, timed out, closed by the server).
    pub lost: u64,
    /// Logins that replaced a lost connection.
    pub reconnects: u64,
    /// Lookups answered by the listing cache, and those that were not.
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Data connections that started a TLS handshake.
    #[serde(default)]
    pub tls_data_connections: u64,
    /// TLS handshakes made in full (certificate checked): one per control connection, plus
    /// the data connections that did not resume their control connection's session.
    #[serde(default)]
    pub tls_full_handshakes: u64,
}

/// What a snapshot is made of that does not change during the mount.
#[derive(Clone, Debug)]
pub struct Fixed {
    pub mountpoint: PathBuf,
    pub socket: PathBuf,
    pub url: String,
    pub tls: String,
    pub max_connections: usize,
}

impl Fixed {
    pub fn from_config(cfg: &crate::config::Config, mountpoint: PathBuf) -> Fixed {
        use crate::ftp::tls::TlsMode;
        let (tls, url) = match cfg.endpoint.tls.mode {
            TlsMode::Off => ("off", cfg.fsname.clone()),
            TlsMode::Try | TlsMode::Required => ("explicit", cfg.fsname.clone()),
            TlsMode::Implicit => ("implicit", cfg.fsname.replacen("ftp://", "ftps://", 1)),
        };
        Fixed {
            socket: socket::path_for(&mountpoint).unwrap_or_default(),
            mountpoint,
            url,
            tls: tls.to_string(),
            max_connections: cfg.connections,
        }
    }
}

/// The snapshot of this process now: `fixed`, the remote's figures and the account.
pub fn snapshot(fixed: &Fixed, remote: &crate::ftp::FtpRemote) -> Snapshot {
    let s = stats();
    let pool = remote.pool();
    // Every TLS connection's first handshake is a full one, which the verifier records: a
    // mount with connections and no handshake is `tls=try` against a server that refused.
    let counters = s.counters();
    let plain = fixed.tls == "off" || (counters.logins > 0 && s.tls_protocol().is_none());
    let data = match pool.info().caps() {
        Some(c) if c.active => "active",
        Some(_) => "passive",
        None => "unknown",
    };
    Snapshot {
        version: VERSION,
        pid: std::process::id(),
        mountpoint: fixed.mountpoint.clone(),
        socket: fixed.socket.clone(),
        uptime_secs: s.uptime().as_secs(),
        server: ServerStatus {
            url: fixed.url.clone(),
            tls: if plain {
                "off".into()
            } else {
                fixed.tls.clone()
            },
            tls_protocol: s.tls_protocol().filter(|_| !plain),
            data: data.into(),
        },
        connections: Connections {
            max: fixed.max_connections,
            ..pool.figures()
        },
        transfers: s.transfers(crate::remote::Remote::root(remote)),
        writeback: Writeback::of(QUEUE.get().map(|figures| figures())),
        prefetch: PREFETCH.get().map(|figures| figures()).unwrap_or_default(),
        failures: s.failures(),
        counters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verb_of(line: &str) -> Option<String> {
        sent_verb(&format_args!("CC OUT: {}", line))
    }

    #[test]
    fn the_verb_is_read_from_suppaftps_command_line_and_nothing_more() {
        assert_eq!(verb_of("RETR /a b.txt").as_deref(), Some("RETR"));
        assert_eq!(verb_of("pwd").as_deref(), Some("PWD"));
        assert_eq!(verb_of("PASS hunter2").as_deref(), Some("PASS"));
        assert_eq!(verb_of("XCUP").as_deref(), Some("XCUP"));
        assert_eq!(verb_of("SOMETHINGLONG x").as_deref(), Some("OTHER"));
        assert_eq!(sent_verb(&format_args!("CC IN: {:?}", b"226 ok")), None);
        assert_eq!(sent_verb(&format_args!("Signin in")), None);
    }

    #[test]
    fn pipelined_lines_count_one_command_each() {
        let s = stats();
        let before = s.counters().commands.get("MDTM").copied().unwrap_or(0);
        s.written(b"MDTM /a b\r\nMDTM /c\r\nMDTM /d\r\n");
        assert_eq!(s.counters().commands["MDTM"], before + 3);
    }

    #[test]
    fn a_verb_outside_the_list_counts_as_other() {
        let s = stats();
        let before = s.counters().commands.get("OTHER").copied().unwrap_or(0);
        s.command("XCUP");
        assert_eq!(s.counters().commands["OTHER"], before + 1);
    }

    #[test]
    fn a_login_after_a_lost_connection_is_a_reconnect() {
        let s = Stats::new();
        s.command("USER");
        s.command("USER");
        s.lost();
        s.command("user");
        s.command("USER");
        let c = s.counters();
        assert_eq!((c.logins, c.lost, c.reconnects), (4, 1, 1));
        assert_eq!(c.commands["USER"], 4);
    }

    #[test]
    fn a_transfer_is_listed_until_dropped_with_its_progress() {
        let t = stats().transfer("/root/dir/f.bin", Direction::Download, Some(1000), 0);
        t.moved(400, 400);
        let listed = stats().transfers("/root");
        let mine = listed.iter().find(|x| x.path == "/dir/f.bin").unwrap();
        assert_eq!((mine.bytes, mine.size), (400, Some(1000)));
        drop(t);
        assert!(!stats()
            .transfers("/root")
            .iter()
            .any(|x| x.path == "/dir/f.bin"));
    }

    #[test]
    fn the_write_back_queue_is_off_until_there_is_one() {
        let off = Writeback::of(None);
        assert!(!off.enabled && off.files == 0 && off.failed.is_empty());
        let on = Writeback::of(Some(QueueStats {
            files: 3,
            bytes: 300,
            oldest: Some(Duration::from_millis(1500)),
            failed: vec![("/a".into(), "/r/a".into())],
            waiting: vec![("/b".into(), "/s/b".into())],
            refused_dirs: Vec::new(),
        }));
        assert!(on.enabled);
        assert_eq!((on.files, on.bytes, on.oldest_secs), (3, 300, Some(1.5)));
        assert_eq!(on.failed[0].saved_to, Path::new("/r/a"));
        assert_eq!(on.waiting[0].path, "/b");
    }

    #[test]
    fn the_eta_follows_the_rate_and_the_size() {
        let e = Entry {
            path: "/f".into(),
            direction: Direction::Upload,
            size: Some(3000),
            started: Instant::now() - Duration::from_secs(2),
            at: AtomicU64::new(1000),
            moved: AtomicU64::new(1000),
            segments: AtomicU64::new(0),
        };
        let st = e.status("");
        let rate = st.rate.unwrap();
        assert!((450.0..=500.0).contains(&rate), "{rate}");
        let eta = st.eta_secs.unwrap();
        assert!((4.0..=4.5).contains(&eta), "{eta}");
    }
}
