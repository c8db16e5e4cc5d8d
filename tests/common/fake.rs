//! A scripted FTP server for faults a real server cannot be made to produce: no `EPSV`, no
//! `REST` (or only `REST 0`), no `FEAT`, multi-line greetings, hostile listing lines, `120`/`421`/garbage/endless
//! greetings, an endless `FEAT`, busy, `421` and `425` replies on cue, stalled or broken transfers, replies
//! that never come or never end, a server that hangs up on an idle connection, replies no
//! real server sends on cue (RFC 2228's `6xx`, undefined codes). It speaks
//! just enough FTP for ftpfs and records every command it receives. Loopback only; every
//! wait is bounded.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a session starts.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub enum Greeting {
    #[default]
    Normal,
    /// `120 ready in 1 minute`, a pause, then `220`.
    NotReadyFirst,
    /// `421 Too many connections` and hang up.
    TooMany,
    /// `220-` lines without end.
    Endless,
    /// Not FTP at all.
    Garbage,
    /// A multi-line `220` greeting with lines carrying other codes inside.
    StrayCodes,
}
#[derive(Clone, Default)]
pub struct FakeOpts {
    pub no_epsv: bool,
    pub no_rest: bool,
    /// `REST 0` is taken (the capability probe passes), any other offset refused with
    /// `501`, as proftpd does in ASCII mode and some servers do always.
    pub rest_zero_only: bool,
    pub no_feat: bool,
    pub mlsd: bool,
    pub greeting_lines: usize,
    /// Lines of every `LIST`/`MLSD` answer, sent verbatim (CRLF added).
    pub listing: Vec<String>,
    pub files: HashMap<String, Vec<u8>>,
    pub greeting: Greeting,
    /// `211-` feature lines without end.
    pub endless_feat: bool,
    /// The next this many `LIST`/`MLSD`/`STOR` commands are answered `450`/`451`.
    pub busy: Arc<AtomicUsize>,
    /// `RETR` opens the data connection and then sends nothing.
    pub stall_retr: bool,
    /// A listing whose argument contains this opens the data connection and then sends
    /// nothing for 20 s (a subtree the server is slow to list).
    pub stall_list: Option<&'static str>,
    /// With `stall_list`: the stalled listing lasts until this is set (120 s at most), and
    /// is then abandoned as after the 20 s.
    pub stall_until: Option<Arc<AtomicBool>>,
    /// The next this many `RETR`s send half the data, then the server "crashes": both
    /// connections are reset without a reply.
    pub retr_crashes: Arc<AtomicUsize>,
    /// Commands that get no reply at all.
    pub silent: Vec<&'static str>,
    /// Commands answered with the first line of a multi-line reply, and nothing after.
    pub unterminated: Vec<&'static str>,
    /// After each listing, the server says `421 Timeout` and closes the control connection,
    /// as servers do to idle connections.
    pub hang_up_after_list: bool,
    /// The next this many transfer commands (`LIST`, `MLSD`, `RETR`, `STOR`) are answered
    /// `421 Service not available` and the control connection is closed, as a server
    /// shutting down or kicking a session mid-way does.
    pub kick: Arc<AtomicUsize>,
    /// The next this many transfer commands are answered `425 Can't open data connection`.
    pub no_data: Arc<AtomicUsize>,
    /// The next this many transfer commands are refused as vsftpd refuses a data connection
    /// whose TLS session is not the control connection's (`require_ssl_reuse=YES`): `150`,
    /// the data connection accepted and closed, `522 SSL connection failed: session reuse
    /// required`, and the session ended.
    pub refuse_reuse: Arc<AtomicUsize>,
    /// Files received with `STOR`.
    pub stored: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    /// `MDTM` in `FEAT`, answered `213 2020010203040N` for a file named `fN`, `500` for a
    /// name starting with `bad`, `550` for others.
    pub mdtm: bool,
    /// Handles one command per read, dropping what else came with it, as naive servers
    /// do: pipelined commands after the first are lost. Only once the session is set up
    /// (after `TYPE` and what came with it), so that the loss shows where the test looks;
    /// a lost set-up after login is tests/pipelining.rs's (quirky `lose-pipelined`).
    pub no_pipelining: bool,
    /// How long each `MDTM` takes to answer.
    pub mdtm_delay: Duration,
    /// Commands answered with this reply, sent verbatim (CRLFs included): RFC 2228's
    /// protected `6xx` replies, codes no RFC defines.
    pub replies: Vec<(&'static str, &'static str)>,
    /// `MODE Z` in `FEAT` and taken, but a `STOR` keeps the bytes as they arrive and says
    /// `226`: a server that mangles compressed uploads while reporting success (proftpd bug
    /// #1896). `SIZE` tells the stored length.
    pub broken_mode_z: bool,
}

pub struct FakeServer {
    pub port: u16,
    pub commands: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl FakeServer {
    /// How the FTP remote reaches it, with short waits so that faults end quickly: 2 s per
    /// wait, 4 s per operation, 3 retries.
    pub fn endpoint(&self) -> ftpfs::ftp::conn::Endpoint {
        ftpfs::ftp::conn::Endpoint {
            host: "127.0.0.1".into(),
            port: self.port,
            user: "alice".into(),
            password: ftpfs::secret::Secret::new("pw"),
            timeout: Duration::from_secs(2),
            policy: ftpfs::ftp::retry::Policy {
                retries: 3,
                max_delay: Duration::from_millis(200),
                deadline: Duration::from_secs(4),
            },
            tls: ftpfs::ftp::tls::Tls::off(),
            limit_recheck: ftpfs::ftp::pool::DEFAULT_LIMIT_RECHECK,
            keepalive: ftpfs::ftp::conn::DEFAULT_KEEPALIVE,
            data: Default::default(),
            pasv_addr: Default::default(),
            listen: Default::default(),
            pipelining: true,
            dialogue: Default::default(),
        }
    }

    pub fn start(opts: FakeOpts) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s, o) = (commands.clone(), stop.clone(), Arc::new(opts));
        std::thread::spawn(move || {
            // Bounded: the server lives at most 5 minutes, or until dropped.
            let end = Instant::now() + Duration::from_secs(300);
            while !s.load(Ordering::SeqCst) && Instant::now() < end {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let (c, o) = (c.clone(), o.clone());
                        std::thread::spawn(move || {
                            let _ = session(sock, &o, &c);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeServer {
            port,
            commands,
            stop,
        }
    }

    pub fn received(&self, verb: &str) -> usize {
        self.commands
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.split(' ').next() == Some(verb))
            .count()
    }
}

fn session(sock: TcpStream, o: &FakeOpts, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = sock.try_clone()?;
    let mut rd = BufReader::new(sock);
    let until = Instant::now() + Duration::from_secs(60);
    match o.greeting {
        Greeting::Normal => {}
        Greeting::NotReadyFirst => {
            write!(out, "120 Service ready in 1 minutes\r\n")?;
            std::thread::sleep(Duration::from_millis(300));
        }
        Greeting::TooMany => {
            write!(out, "421 Too many connections (1) from this IP\r\n")?;
            return Ok(());
        }
        Greeting::Endless => {
            while Instant::now() < until {
                write!(out, "220-welcome, this never ends\r\n")?;
            }
            return Ok(());
        }
        Greeting::Garbage => {
            write!(out, "HELLO, this is not FTP\r\n")?;
        }
        Greeting::StrayCodes => {
            write!(
                out,
                "220-welcome\r\n999 what is this\r\n230 not yet\r\n220-still\r\n"
            )?;
        }
    }
    for i in 1..o.greeting_lines.max(1) {
        write!(out, "220-greeting line {i}\r\n")?;
    }
    write!(out, "220 fake ready\r\n")?;
    let mut pasv: Option<TcpListener> = None;
    let mut rest = 0usize;
    let (mut typed, mut lossy) = (false, false);
    let mut line = String::new();
    loop {
        line.clear();
        if rd.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_string();
        log.lock().unwrap().push(cmd.clone());
        if o.no_pipelining && lossy {
            let lost = rd.buffer().len();
            rd.consume(lost);
        }
        typed |= cmd.to_ascii_uppercase().starts_with("TYPE");
        lossy |= typed && rd.buffer().is_empty();
        let (verb, arg) = cmd.split_once(' ').unwrap_or((&cmd, ""));
        let upper = verb.to_ascii_uppercase();
        if o.silent.contains(&upper.as_str()) {
            continue;
        }
        if let Some((_, reply)) = o.replies.iter().find(|(c, _)| *c == upper) {
            out.write_all(reply.as_bytes())?;
            continue;
        }
        if o.unterminated.contains(&upper.as_str()) {
            write!(out, "250-this reply has no last line\r\n")?;
            continue;
        }
        let take = |n: &AtomicUsize| {
            n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        let busy = || take(&o.busy);
        if matches!(upper.as_str(), "LIST" | "MLSD" | "RETR" | "STOR") {
            if take(&o.kick) {
                write!(
                    out,
                    "421 Service not available, closing control connection\r\n"
                )?;
                let _ = out.shutdown(Shutdown::Both);
                return Ok(());
            }
            if take(&o.refuse_reuse) {
                if let Ok(data) = accept(&mut out, pasv.take()) {
                    let _ = data.shutdown(Shutdown::Both);
                }
                write!(out, "522 SSL connection failed: session reuse required\r\n")?;
                let _ = out.shutdown(Shutdown::Both);
                return Ok(());
            }
            if take(&o.no_data) {
                write!(out, "425 Can't open data connection\r\n")?;
                pasv = None;
                continue;
            }
        }
        match upper.as_str() {
            "USER" => write!(out, "331 password please\r\n")?,
            "PASS" if arg == "bad" => write!(out, "530 Login incorrect.\r\n")?,
            "PASS" => write!(out, "230 logged in\r\n")?,
            "FEAT" if o.no_feat => write!(out, "500 FEAT not understood\r\n")?,
            "FEAT" if o.endless_feat => {
                write!(out, "211-Features:\r\n")?;
                while Instant::now() < until {
                    write!(out, " XFEATURE\r\n")?;
                }
                return Ok(());
            }
            "FEAT" => {
                write!(out, "211-Features:\r\n UTF8\r\n")?;
                if o.mlsd {
                    write!(out, " MLST type*;size*;modify*;\r\n")?;
                }
                if o.mdtm {
                    write!(out, " MDTM\r\n")?;
                }
                if o.broken_mode_z {
                    write!(out, " MODE Z\r\n SIZE\r\n")?;
                }
                write!(out, "211 End\r\n")?;
            }
            "OPTS" | "TYPE" | "NOOP" => write!(out, "200 ok\r\n")?,
            "MODE" if o.broken_mode_z => write!(out, "200 mode set\r\n")?,
            "SIZE" if o.broken_mode_z => {
                let name = arg.trim_start_matches('/');
                match o.stored.lock().unwrap().get(name) {
                    Some(d) => write!(out, "213 {}\r\n", d.len())?,
                    None => write!(out, "550 {arg}: No such file\r\n")?,
                }
            }
            "MDTM" if o.mdtm => {
                std::thread::sleep(o.mdtm_delay);
                let name = arg.rsplit('/').next().unwrap_or("");
                match name.strip_prefix('f') {
                    _ if name.starts_with("bad") => write!(out, "500 bad argument\r\n")?,
                    Some(n) if n.parse::<u32>().is_ok_and(|n| n < 10) => {
                        write!(out, "213 2020010203040{n}\r\n")?
                    }
                    _ => write!(out, "550 No such file\r\n")?,
                }
            }
            "PWD" => write!(out, "257 \"/\" is the current directory\r\n")?,
            "CWD" => write!(out, "250 ok\r\n")?,
            "QUIT" => {
                write!(out, "221 bye\r\n")?;
                return Ok(());
            }
            "EPSV" if o.no_epsv => write!(out, "500 EPSV not understood\r\n")?,
            "EPSV" => {
                let l = TcpListener::bind("127.0.0.1:0")?;
                write!(
                    out,
                    "229 Entering Extended Passive Mode (|||{}|)\r\n",
                    l.local_addr()?.port()
                )?;
                pasv = Some(l);
            }
            "PASV" => {
                let l = TcpListener::bind("127.0.0.1:0")?;
                let p = l.local_addr()?.port();
                write!(
                    out,
                    "227 Entering Passive Mode (127,0,0,1,{},{})\r\n",
                    p >> 8,
                    p & 255
                )?;
                pasv = Some(l);
            }
            "REST" if o.no_rest => write!(out, "502 REST not implemented\r\n")?,
            "REST" if o.rest_zero_only && arg != "0" => {
                write!(out, "501 REST: Resuming transfers not allowed\r\n")?
            }
            "REST" => {
                rest = arg.parse().unwrap_or(0);
                write!(out, "350 Restarting at {rest}\r\n")?;
            }
            "RETR" => {
                let name = arg.trim_start_matches('/');
                let Some(data) = o.files.get(name) else {
                    write!(out, "550 No such file\r\n")?;
                    continue;
                };
                let from = std::mem::take(&mut rest).min(data.len());
                if o.stall_retr {
                    let conn = accept(&mut out, pasv.take())?;
                    std::thread::sleep(Duration::from_secs(20));
                    drop(conn);
                    return Ok(());
                }
                let crash = o
                    .retr_crashes
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if crash {
                    let mut conn = accept(&mut out, pasv.take())?;
                    let half = from + (data.len() - from) / 2;
                    let _ = conn.write_all(&data[from..half]);
                    let _ = conn.shutdown(Shutdown::Both);
                    let _ = out.shutdown(Shutdown::Both);
                    return Ok(());
                }
                send(&mut out, pasv.take(), &data[from..])?;
            }
            "LIST" | "MLSD" if busy() => write!(out, "450 Directory busy, try later\r\n")?,
            "LIST" | "MLSD" if o.stall_list.is_some_and(|s| arg.contains(s)) => {
                let conn = accept(&mut out, pasv.take())?;
                match &o.stall_until {
                    Some(released) => {
                        let until = Instant::now() + Duration::from_secs(120);
                        while !released.load(Ordering::SeqCst) && Instant::now() < until {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                    None => std::thread::sleep(Duration::from_secs(20)),
                }
                drop(conn);
                return Ok(());
            }
            "LIST" | "MLSD" => {
                let mut body = o.listing.join("\r\n");
                body.push_str("\r\n");
                send(&mut out, pasv.take(), body.as_bytes())?;
                if o.hang_up_after_list {
                    write!(out, "421 Timeout - closing control connection\r\n")?;
                    let _ = out.shutdown(Shutdown::Both);
                    return Ok(());
                }
            }
            "STOR" => {
                let name = arg.trim_start_matches('/').to_string();
                let mut conn = accept(&mut out, pasv.take())?;
                let mut got = Vec::new();
                conn.set_read_timeout(Some(Duration::from_secs(10)))?;
                conn.read_to_end(&mut got)?;
                if busy() {
                    write!(out, "451 Local error, try again\r\n")?;
                } else {
                    o.stored.lock().unwrap().insert(name, got);
                    write!(out, "226 Stored\r\n")?;
                }
            }
            _ => write!(out, "502 not implemented\r\n")?,
        }
    }
}

/// Says `150` and accepts the data connection.
fn accept(out: &mut TcpStream, pasv: Option<TcpListener>) -> std::io::Result<TcpStream> {
    let Some(l) = pasv else {
        write!(out, "425 Use PASV or EPSV first\r\n")?;
        return Err(std::io::Error::other("no PASV"));
    };
    write!(out, "150 Opening data connection\r\n")?;
    l.set_nonblocking(true)?;
    let end = Instant::now() + Duration::from_secs(10);
    let conn = loop {
        match l.accept() {
            Ok((c, _)) => break c,
            Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e),
        }
    };
    conn.set_nonblocking(false)?;
    Ok(conn)
}

fn send(out: &mut TcpStream, pasv: Option<TcpListener>, data: &[u8]) -> std::io::Result<()> {
    let mut conn = accept(out, pasv)?;
    match conn.write_all(data) {
        Ok(()) => {
            drop(conn);
            write!(out, "226 Transfer complete\r\n")
        }
        Err(_) => write!(out, "426 Connection closed; transfer aborted\r\n"),
    }
}
