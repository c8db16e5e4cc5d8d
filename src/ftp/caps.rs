//! What a server can do, learned once per mount and shared by all its connections.
//!
//! Asking costs round trips, so the first connection asks (`FEAT`, then probes; see
//! [`super::conn`]) and keeps the answers in [`Caps`]; every later connection reads them.
//! What cannot be probed without changing a file (`APPE`, setting a directory's time) is
//! learned from the first refusal instead and kept beside them ([`Capability`],
//! [`ServerInfo::learn`]). The locks here are held only to read or record, never across a
//! command.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::{Error, Op};

/// What a server supports, learned on the first connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    pub mlsd: bool,
    pub utf8: bool,
    pub epsv: bool,
    pub rest: bool,
    /// `MDTM` is in `FEAT` (exact times on servers without `MLSD`).
    pub mdtm: bool,
    /// Data connections are active (`PORT`/`EPRT`), as chosen by [`super::active::choose`].
    pub active: bool,
    /// `MODE Z` is in `FEAT` (deflate on data connections, see [`super::deflate`]).
    pub mode_z: bool,
    /// Which of [`MLST_FACTS`] (bit i for fact i) the server offers, when `OPTS MLST` must
    /// ask for them; 0 when it needs not be sent.
    pub mlst_opts: u8,
    /// `HOST` is in `FEAT`: every connection names the virtual host before `USER`.
    pub host: bool,
    /// Active mode announces IPv4 listeners with `EPRT`: the server lists it and accepted
    /// it (see [`super::active::probe_eprt`]).
    pub eprt: bool,
    /// The first login's `USER` was answered `331`: later logins write `PASS` (and the
    /// set-up commands) with `USER`, without waiting for it (see [`super::session`]).
    pub asks_password: bool,
}

/// The `MLSD` facts ftpfs wants, in the order `OPTS MLST` names them.
pub const MLST_FACTS: [&str; 7] = [
    "type",
    "size",
    "modify",
    "unix.mode",
    "perm",
    "unix.owner",
    "unix.group",
];

/// Reads the `FEAT` line of `MLST` (`type*;size*;modify*;unix.mode;…`): which of
/// [`MLST_FACTS`] are offered, as a bit set, or 0 when every one offered is already sent
/// (marked `*`) and `OPTS MLST` would change nothing.
pub fn mlst_opts_from_feat(line: &str) -> u8 {
    let mut offered = 0u8;
    let mut missing = false;
    for fact in line.split(';').map(str::trim).filter(|f| !f.is_empty()) {
        let (name, on) = match fact.strip_suffix('*') {
            Some(n) => (n, true),
            None => (fact, false),
        };
        if let Some(i) = MLST_FACTS.iter().position(|f| f.eq_ignore_ascii_case(name)) {
            offered |= 1 << i;
            missing |= !on;
        }
    }
    if missing {
        offered
    } else {
        0
    }
}

/// The `OPTS MLST` command for a set of offered facts.
pub fn mlst_opts_command(facts: u8) -> String {
    let mut cmd = String::from("OPTS MLST ");
    for (i, f) in MLST_FACTS.iter().enumerate() {
        if facts & (1 << i) != 0 {
            cmd.push_str(f);
            cmd.push(';');
        }
    }
    cmd
}

/// Below this round trip (µs), an early `EPSV` saves too little to be worth its pause.
///
/// For the tests, whose servers are on loopback: `FTPFS_TEST_EARLY_PASSIVE=1` in the
/// environment makes it 0 (always), `=0` makes it never. The test harness sets `0` for
/// every mount that does not ask for it: on a loaded machine a loopback upload's reply can
/// take 4 ms, and a test counting a server's commands must not depend on that.
static EARLY_PASSIVE_MIN_RTT_US: std::sync::LazyLock<u64> =
    std::sync::LazyLock::new(|| min_rtt_us("FTPFS_TEST_EARLY_PASSIVE", 4_000));

/// A least round trip (µs) that turns a feature on, or the tests' switch `var`: `1` makes
/// it 0 (always on), `0` `u64::MAX` (never).
fn min_rtt_us(var: &str, default: u64) -> u64 {
    match std::env::var_os(var) {
        Some(v) if v == "1" => 0,
        Some(v) if v == "0" => u64::MAX,
        _ => default,
    }
}

/// Below this round trip (µs) on the control connection, data connections are not prepared
/// ahead (see [`super::prepare`]): the round trip a preparation saves is then smaller than
/// what it costs, an `EPSV` and a connection the server sets up while the transfer before
/// is still being served. On loopback, where the server shares the machine's cores, random
/// 4 KiB reads took 0.9 ms with preparation and 0.4 ms without.
///
/// For the tests, whose servers are on loopback: `FTPFS_TEST_PREPARE=1` in the environment
/// makes it 0 (always prepare, as across a network), `=0` never. The test harness sets `1`
/// for every mount that does not ask otherwise: what a test counts must not depend on how
/// fast the machine answered a login.
static PREPARE_MIN_RTT_US: std::sync::LazyLock<u64> =
    std::sync::LazyLock::new(|| min_rtt_us("FTPFS_TEST_PREPARE", 1_000));

/// The longest pause before an early `EPSV`.
const EARLY_PASSIVE_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Something a server may refuse as a rule rather than for one file, learned from its
/// first refusal (see [`ServerInfo::learn`]).
///
/// Probing these at connect time would cost round trips every mount pays, and some cannot
/// be probed without changing a file: proftpd takes `REST 0` but refuses `APPE`; vsftpd
/// and pyftpdlib set a file's time but not a directory's. So they are learned when an
/// operation first needs them, and remembered for the mount: the next operation takes the
/// other path (STOR of the whole file, reading from the start) or gets the same refusal
/// without asking, with one info line per capability instead of retries and warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `APPE`.
    Append,
    /// `REST n` before `RETR`.
    Rest,
    /// `SITE CHMOD` on a file (`dir: false`) or a directory.
    Chmod { dir: bool },
    /// Setting a time (`MFMT`, or vsftpd's `MDTM time path`) on a file or a directory.
    SetTime { dir: bool },
    /// Server-side copy, `SITE CPFR` then `SITE CPTO` (proftpd's mod_copy; rarely in `FEAT`).
    Copy,
}

impl Capability {
    /// For the log line; `both`: for files and directories alike.
    fn describe(self, both: bool) -> &'static str {
        match (self, both) {
            (Capability::Append, _) => "appending (APPE); appends upload the whole file",
            (Capability::Rest, _) => "restarting transfers (REST); reads start at the beginning",
            (Capability::Chmod { .. }, true) => "changing modes (SITE CHMOD)",
            (Capability::Chmod { dir: false }, false) => "changing a file's mode (SITE CHMOD)",
            (Capability::Chmod { dir: true }, false) => "changing a directory's mode (SITE CHMOD)",
            (Capability::SetTime { .. }, true) => "setting times",
            (Capability::SetTime { dir: false }, false) => "setting a file's time",
            (Capability::SetTime { dir: true }, false) => "setting a directory's time",
            (Capability::Copy, _) => "server-side copies (SITE CPFR/CPTO); copies go through ftpfs",
        }
    }
}

/// The reply with which a server refused a [`Capability`], given again to every later
/// operation that needs it: the same errno, without the round trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub op: Op,
    pub code: u32,
    pub text: String,
}

impl Refusal {
    pub fn error(&self) -> Error {
        Error::Reply {
            op: self.op,
            code: self.code,
            text: self.text.clone(),
        }
    }
}

#[derive(Default)]
struct Learned {
    refused: std::collections::HashMap<Capability, Refusal>,
    worked: std::collections::HashSet<Capability>,
}

/// Capabilities shared by all connections to one server.
#[derive(Default)]
pub struct ServerInfo {
    pub(super) caps: Mutex<Option<Caps>>,
    /// What the server turned out to refuse, or to do, during this mount. The lock is held
    /// only to read or record, never across a command.
    learned: Mutex<Learned>,
    /// `tls=try` and the server refused `AUTH TLS`: later connections do not ask again.
    pub(super) tls_refused: AtomicBool,
    /// The clear-text password warning was logged.
    pub(super) warned_clear: AtomicBool,
    /// `-o compress=` and what decides it (see [`super::deflate`]).
    pub deflate: super::deflate::Deflate,
    /// Commands are not pipelined and nothing is prepared ahead: `-o pipelining=off`, or a
    /// server that lost pipelined commands (see [`ServerInfo::no_pipelining`]).
    no_pipelining: AtomicBool,
    /// The next `EPSV` is not written before an upload's reply: the server answered one
    /// such upload with something else than its `226` (see [`super::upload`]).
    no_early_passive: AtomicBool,
    /// How long a small upload's reply took after its data connection closed, in µs (a
    /// round trip, as the application sees it: 0 until measured); smoothed.
    upload_reply_us: AtomicU64,
    /// The shortest round trip seen on a control connection (a login's set-up commands and
    /// their replies), in µs; 0 until measured. The least is the link's: load only adds.
    control_rtt_us: AtomicU64,
    /// Early `EPSV`s refused during the transfer, and taken.
    early_refused: AtomicU32,
    early_taken: AtomicU32,
}

impl ServerInfo {
    /// For a mount with `-o pipelining=` `on` or off.
    pub fn new(pipelining: bool) -> ServerInfo {
        ServerInfo {
            no_pipelining: AtomicBool::new(!pipelining),
            ..ServerInfo::default()
        }
    }

    pub fn caps(&self) -> Option<Caps> {
        *self.caps.lock()
    }

    /// Whether commands may be written back to back, and data connections opened ahead.
    pub fn pipelining(&self) -> bool {
        !self.no_pipelining.load(Ordering::Relaxed)
    }

    /// The server lost or refused pipelined commands (`why`): one command at a time from
    /// now on, for every connection, said once.
    pub fn no_pipelining(&self, why: &str, server: &str) {
        if !self.no_pipelining.swap(true, Ordering::Relaxed) {
            log::info!("{server}: {why}; one command at a time from now on");
        }
    }

    /// Whether data connections are opened ahead, and connections logged in ahead for them
    /// (see [`super::prepare`]): with pipelining, unless the link is measured to be so fast
    /// ([`PREPARE_MIN_RTT_US`]) that the round trip saved costs more than it gains.
    pub fn prepare_ahead(&self) -> bool {
        self.prepare_ahead_from(*PREPARE_MIN_RTT_US)
    }

    fn prepare_ahead_from(&self, min_rtt_us: u64) -> bool {
        let rtt = self.control_rtt_us.load(Ordering::Relaxed);
        // `u64::MAX`: never (`FTPFS_TEST_PREPARE=0`), measured or not.
        self.pipelining() && min_rtt_us != u64::MAX && (rtt == 0 || rtt >= min_rtt_us)
    }

    /// One round trip on a control connection took `took` (commands that make the server
    /// work, such as `PASS`, are not measured).
    pub fn control_replied(&self, took: std::time::Duration) {
        let now = (took.as_micros().min(u64::MAX as u128) as u64).max(1);
        let old = self
            .control_rtt_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                (old == 0 || now < old).then_some(now)
            });
        let min = *PREPARE_MIN_RTT_US;
        if matches!(old, Ok(o) if (o == 0 || o >= min) && now < min) && self.pipelining() {
            log::debug!("a control round trip took {now} µs: no data connections opened ahead");
        }
    }

    /// Whether an upload's next `EPSV` may be written before its reply (with pipelining).
    pub fn early_passive(&self) -> bool {
        self.pipelining() && !self.no_early_passive.load(Ordering::Relaxed)
    }

    /// How long after an upload's close its next `EPSV` is written, when it is worth it:
    /// the round trip it saves must be measured ([`ServerInfo::upload_replied`]) and long
    /// enough. The pause (a tenth of it, at most [`EARLY_PASSIVE_PAUSE`]) lets the server
    /// read the upload's end before the `EPSV` comes, on a network that keeps the order:
    /// servers that read their control connection during a transfer refuse it otherwise.
    pub fn early_passive_pause(&self) -> Option<std::time::Duration> {
        let rtt = self.upload_reply_us.load(Ordering::Relaxed);
        (rtt >= *EARLY_PASSIVE_MIN_RTT_US && rtt > 0)
            .then(|| std::time::Duration::from_micros(rtt / 10).min(EARLY_PASSIVE_PAUSE))
    }

    /// A small upload's reply came `took` after its data connection closed (the pause of
    /// an early `EPSV` taken off).
    pub fn upload_replied(&self, took: std::time::Duration) {
        let now = took.as_micros().min(u64::MAX as u128) as u64;
        let old = self.upload_reply_us.load(Ordering::Relaxed);
        let new = if old == 0 { now } else { (old * 3 + now) / 4 };
        self.upload_reply_us.store(new, Ordering::Relaxed);
    }

    /// An early `EPSV` was taken (`true`) or refused during the transfer. Mostly refused
    /// (the pause too short for the server), and it is not written early again.
    pub fn early_passive_outcome(&self, taken: bool, server: &str) {
        if taken {
            self.early_taken.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let refused = self.early_refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused >= 8 && refused > 2 * self.early_taken.load(Ordering::Relaxed) {
            self.no_early_passive(
                &format!("the server refused {refused} EPSVs written before an upload's reply"),
                server,
            );
        }
    }

    /// An upload with the next `EPSV` written early was not answered `226` (`why`): the
    /// `EPSV` waits for the reply from now on, said once.
    pub fn no_early_passive(&self, why: &str, server: &str) {
        if !self.no_early_passive.swap(true, Ordering::Relaxed) {
            log::info!(
                "{server}: {why}; the next data connection is asked for after an upload's reply from now on"
            );
        }
    }

    /// How the server refused `cap`, if it did.
    pub fn refusal(&self, cap: Capability) -> Option<Refusal> {
        self.learned.lock().refused.get(&cap).cloned()
    }

    /// Records that `cap` worked once (on any connection).
    pub fn worked(&self, cap: Capability) {
        self.learned.lock().worked.insert(cap);
    }

    pub fn has_worked(&self, cap: Capability) -> bool {
        self.learned.lock().worked.contains(&cap)
    }

    /// Remembers that the server refuses `caps` (one capability, or the same one for files
    /// and directories), as it just did with `e`, a reply; says so once, in one info line.
    pub fn learn(&self, caps: &[Capability], e: &Error, server: &str) {
        let (Error::Reply { op, code, text }, Some(&first)) = (e, caps.first()) else {
            return;
        };
        let refusal = Refusal {
            op: *op,
            code: *code,
            text: text.clone(),
        };
        let mut new = false;
        {
            let mut learned = self.learned.lock();
            for &cap in caps {
                new |= learned.refused.insert(cap, refusal.clone()).is_none();
            }
        }
        if new {
            log::info!(
                "{server} refuses {} ({code} {text}); not asking again during this mount",
                first.describe(caps.len() > 1)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_connections_are_prepared_unless_the_least_round_trip_is_under_1_ms() {
        use std::time::Duration;
        let info = ServerInfo::new(true);
        assert!(
            info.prepare_ahead_from(1_000),
            "nothing measured: as across a network"
        );
        info.control_replied(Duration::from_millis(50));
        assert!(info.prepare_ahead_from(1_000));
        info.control_replied(Duration::from_micros(120));
        assert!(!info.prepare_ahead_from(1_000), "loopback");
        info.control_replied(Duration::from_millis(30));
        assert!(
            !info.prepare_ahead_from(1_000),
            "a slow reply under load is not the link"
        );
        info.control_replied(Duration::from_micros(900));
        assert!(!info.prepare_ahead_from(1_000));
        assert!(info.prepare_ahead_from(0), "FTPFS_TEST_PREPARE=1");
        let fresh = ServerInfo::new(true);
        assert!(
            !fresh.prepare_ahead_from(u64::MAX),
            "=0: never, before any measure too"
        );
        let off = ServerInfo::new(false);
        assert!(
            !off.prepare_ahead_from(0),
            "-o pipelining=off prepares nothing"
        );
    }

    #[test]
    fn early_epsv_waits_for_a_measured_round_trip_of_4_ms_and_pauses_a_tenth_of_it() {
        use std::time::Duration;
        let info = ServerInfo::new(true);
        assert_eq!(info.early_passive_pause(), None, "nothing measured yet");
        info.upload_replied(Duration::from_millis(1));
        assert_eq!(info.early_passive_pause(), None, "a LAN gains nothing");
        let info = ServerInfo::new(true);
        info.upload_replied(Duration::from_millis(20));
        assert_eq!(info.early_passive_pause(), Some(Duration::from_millis(2)));
        let info = ServerInfo::new(true);
        info.upload_replied(Duration::from_millis(200));
        assert_eq!(info.early_passive_pause(), Some(Duration::from_millis(5)));
        assert!(info.early_passive());
        assert!(!ServerInfo::new(false).early_passive(), "-o pipelining=off");
    }

    #[test]
    fn early_epsv_stops_when_mostly_refused_or_at_once_when_lost() {
        let info = ServerInfo::new(true);
        for _ in 0..10 {
            info.early_passive_outcome(true, "s");
        }
        for _ in 0..15 {
            info.early_passive_outcome(false, "s");
        }
        assert!(
            info.early_passive(),
            "refused 15 times, taken 10: still worth it"
        );
        for _ in 0..6 {
            info.early_passive_outcome(false, "s");
        }
        assert!(!info.early_passive(), "refused 21 times, taken 10");
        let info = ServerInfo::new(true);
        info.no_early_passive("an upload failed", "s");
        assert!(!info.early_passive());
    }

    #[test]
    fn opts_mlst_asks_for_offered_facts_only_when_some_are_off() {
        // pyftpdlib: unix.mode offered, not sent by default.
        let f = mlst_opts_from_feat("type*;perm*;size*;modify*;unique*;unix.mode;unix.uid;");
        assert_eq!(
            mlst_opts_command(f),
            "OPTS MLST type;size;modify;unix.mode;perm;"
        );
        // pure-ftpd sends everything it offers already.
        assert_eq!(
            mlst_opts_from_feat("modify*;perm*;size*;type*;unique*;UNIX.mode*;"),
            0
        );
        assert_eq!(mlst_opts_from_feat(""), 0);
    }
}
