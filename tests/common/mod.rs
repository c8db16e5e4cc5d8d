//! Test harness: real FTP servers on loopback and real FUSE mounts of them.
//!
//! Servers: libunftp in-process (always available to `cargo test`), and pure-ftpd,
//! pyftpdlib, proftpd (unpacked under [`PROFTPD`] by scripts/install-deps.sh) and vsftpd
//! (unpacked under [`VSFTPD`], plain or FTPS with `require_ssl_reuse=YES`) from Debian as
//! child processes. A test asking for a server that is not installed
//! is skipped with a message, unless `FTPFS_REQUIRE_SERVERS=1` (set by CI), where it fails.
//!
//! Everything a test starts is stopped by `Drop`, by PID, even when the test fails. Waits
//! poll a condition with a deadline; nothing sleeps for a fixed time hoping it is enough.

#![allow(dead_code)]

pub mod fake;
pub mod faulty;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "secret";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Unftp,
    PureFtpd,
    Pyftpdlib,
    Proftpd,
    /// vsftpd without TLS, to the local user [`VSFTPD_USER`] with writes allowed. No MLSD.
    Vsftpd,
    /// vsftpd with TLS required for logins and data and `require_ssl_reuse=YES`, its
    /// recommended setting, with a certificate for `localhost` signed by a CA made for this
    /// server ([`Server::ca`]); a [`Mount::new`] of it trusts that CA.
    VsftpdTls,
    /// pure-ftpd with TLS required for logins (`-Y 2`), its certificate made like
    /// [`ServerKind::VsftpdTls`]'s.
    PureFtpdTls,
    /// libunftp with TLS required on control and data connections, its certificate made
    /// like [`ServerKind::VsftpdTls`]'s.
    UnftpTls,
}

pub struct Server {
    pub kind: ServerKind,
    /// The address it listens on: 127.0.0.1, or one in a network namespace.
    pub host: String,
    pub port: u16,
    pub root: PathBuf,
    /// The user in [`Server::url`]; `None` for an anonymous login.
    pub user: Option<&'static str>,
    /// The host name in [`Server::url`]: `localhost` where the certificate names it.
    pub url_host: String,
    /// The CA that signed the server's certificate (FTPS servers).
    pub ca: Option<PathBuf>,
    /// Mount options every mount of this server needs (`tls=required,cafile=…`).
    mount_opts: Vec<String>,
    child: Option<Child>,
    /// Starts the server process again on the same port (pure-ftpd only).
    respawn: Option<Box<dyn Fn() -> Child + Send>>,
    _work: tempfile::TempDir,
}

/// close(2) of `f`, with its result: dropping a `File` throws the result of close away, and
/// close is where ftpfs reports a failed upload. `Err` holds the errno.
pub fn close(f: std::fs::File) -> Result<(), i32> {
    use std::os::fd::IntoRawFd;
    let fd = f.into_raw_fd();
    // SAFETY: closing the descriptor we own, once.
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port that is free now and that no other test of this process has been given.
///
/// The kernel may hand the same ephemeral port to two tests that ask one after the other
/// (the first listener is closed before its server binds). Then one server fails to bind,
/// and its test talks to the other test's server: a TLS test once met a plain pure-ftpd
/// that answered `AUTH TLS` with `500`. Test binaries run one at a time, so remembering the
/// ports handed out in this process is enough.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    // Bounded: the ephemeral range holds thousands of ports and a test binary uses dozens.
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no loopback port left that this test process has not used");
}

fn port_open(host: &str, port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::new(host.parse().unwrap(), port),
        Duration::from_millis(200),
    )
    .is_ok()
}

/// An FTP server greets with 220. Merely accepting a connection is not enough: another
/// test's passive listener may sit on the port our server failed to bind.
fn ftp_greets(host: &str, port: u16) -> bool {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect_timeout(
        &SocketAddr::new(host.parse().unwrap(), port),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"220")
}

pub fn require_servers() -> bool {
    std::env::var("FTPFS_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

fn installed(path: &str) -> bool {
    Path::new(path).exists()
}

#[derive(Debug)]
struct PasswordAuth;

#[async_trait::async_trait]
impl unftp_core::auth::Authenticator for PasswordAuth {
    async fn authenticate(
        &self,
        username: &str,
        creds: &unftp_core::auth::Credentials,
    ) -> Result<unftp_core::auth::Principal, unftp_core::auth::AuthenticationError> {
        if username != USER {
            return Err(unftp_core::auth::AuthenticationError::BadUser);
        }
        if creds.password.as_deref() != Some(PASSWORD) {
            return Err(unftp_core::auth::AuthenticationError::BadPassword);
        }
        Ok(unftp_core::auth::Principal {
            username: username.to_string(),
        })
    }
}

/// RFC 7151 virtual hosts of [`Server::quirky`]: `HOST name` logs in to `dir`.
pub type VirtualHosts<'a> = &'a [(&'a str, &'a Path)];

/// How a server is started, beyond its kind and root.
#[derive(Default, Clone)]
struct Start<'a> {
    /// pyftpdlib, vsftpd: anonymous (read-only) logins and no named user.
    anonymous: bool,
    /// pure-ftpd: extra flags; quirky pyftpdlib: extra arguments.
    extra: &'a [&'a str],
    /// libunftp: storage faults.
    faults: Option<Arc<faulty::Faults>>,
    /// pyftpdlib: run as tests/common/quirky_ftpd.py with these `--quirk` flags and
    /// `NAME=DIR` virtual hosts.
    quirky: Option<(&'a [&'a str], VirtualHosts<'a>)>,
    /// pure-ftpd: the network namespace to run in and the address to listen on there.
    netns: Option<(&'a str, &'a str)>,
    /// quirky pyftpdlib: listen on ::1 instead of 127.0.0.1.
    ipv6: bool,
}

impl Server {
    /// Starts a server of `kind` serving `root`. `None` when it is not installed here.
    pub fn start(kind: ServerKind, root: &Path) -> Option<Server> {
        Self::start_with(kind, root, Start::default())
    }

    /// pure-ftpd with extra flags, e.g. `-n 1000:1` for a 1 MB quota (a full disk).
    pub fn pure_ftpd_with(root: &Path, extra: &[&str]) -> Option<Server> {
        let start = Start {
            extra,
            ..Start::default()
        };
        Self::start_with(ServerKind::PureFtpd, root, start)
    }

    /// pyftpdlib allowing anonymous (read-only) logins and no named user.
    pub fn start_anonymous(root: &Path) -> Option<Server> {
        let start = Start {
            anonymous: true,
            ..Start::default()
        };
        Self::start_with(ServerKind::Pyftpdlib, root, start)
    }

    /// pyftpdlib with quirks (tests/common/quirky_ftpd.py: one `--quirk` flag each) and
    /// RFC 7151 virtual hosts (`HOST name` logs in to `dir` instead of `root`). Its
    /// [`Server::command_log`] has one `SESSION COMMAND ARGUMENT` line per command.
    pub fn quirky(root: &Path, quirks: &[&str], vhosts: VirtualHosts) -> Option<Server> {
        Self::quirky_with(root, quirks, vhosts, &[])
    }

    /// [`Server::quirky`] listening on `::1` (IPv6 loopback) instead of 127.0.0.1.
    pub fn quirky_ipv6(root: &Path, quirks: &[&str]) -> Option<Server> {
        let start = Start {
            quirky: Some((quirks, &[])),
            ipv6: true,
            ..Start::default()
        };
        Self::start_with(ServerKind::Pyftpdlib, root, start)
    }

    /// [`Server::quirky`] with more arguments for the script (`--tls CERT KEY`).
    pub fn quirky_with(
        root: &Path,
        quirks: &[&str],
        vhosts: VirtualHosts,
        extra: &[&str],
    ) -> Option<Server> {
        let start = Start {
            quirky: Some((quirks, vhosts)),
            extra,
            ..Start::default()
        };
        Self::start_with(ServerKind::Pyftpdlib, root, start)
    }

    /// vsftpd with TLS required and `require_ssl_reuse=YES`, to anonymous (read-only)
    /// logins as the unix user `ftpfsvs`, serving `root` (which must be world-readable).
    pub fn vsftpd_tls_anonymous(root: &Path) -> Option<Server> {
        let start = Start {
            anonymous: true,
            ..Start::default()
        };
        Self::start_with(ServerKind::VsftpdTls, root, start)
    }

    /// libunftp in-process over a storage that fails when the returned [`faulty::Faults`]
    /// say so.
    pub fn unftp_with_faults(root: &Path) -> (Server, Arc<faulty::Faults>) {
        let faults = Arc::new(faulty::Faults::default());
        let start = Start {
            faults: Some(faults.clone()),
            ..Start::default()
        };
        let server =
            Self::start_with(ServerKind::Unftp, root, start).expect("libunftp is always available");
        (server, faults)
    }

    /// pure-ftpd inside network namespace `netns`, listening on `addr` (an address of that
    /// namespace), with extra flags.
    pub fn pure_ftpd_in_netns(
        root: &Path,
        netns: &str,
        addr: &str,
        extra: &[&str],
    ) -> Option<Server> {
        let start = Start {
            extra,
            netns: Some((netns, addr)),
            ..Start::default()
        };
        Self::start_with(ServerKind::PureFtpd, root, start)
    }

    /// A free port can be taken between our asking and the server binding it (another
    /// test's passive listener), so a server that does not come up gets two more ports.
    fn start_with(kind: ServerKind, root: &Path, start: Start) -> Option<Server> {
        for attempt in 1..=3 {
            match Self::try_start(kind, root, start.clone()) {
                Ok(s) => return s,
                Err(e) if attempt < 3 => eprintln!("{kind:?}: {e}; retrying on another port"),
                Err(e) => panic!("{kind:?}: {e}"),
            }
        }
        unreachable!()
    }

    fn try_start(kind: ServerKind, root: &Path, start: Start) -> Result<Option<Server>, String> {
        let Start {
            anonymous,
            extra,
            faults,
            netns,
            quirky,
            ipv6,
        } = start;
        let host = match (netns, ipv6) {
            (Some((_, addr)), _) => addr,
            (None, true) => "::1",
            (None, false) => "127.0.0.1",
        }
        .to_string();
        let work = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut respawn = None;
        let mut ca = None;
        let child = match kind {
            ServerKind::Unftp => {
                start_unftp(root, port, faults.clone(), None);
                None
            }
            ServerKind::UnftpTls => {
                // Without openssl, make_pki has said so (or failed when required).
                let Some((cafile, _)) = make_pki(work.path()) else {
                    return Ok(None);
                };
                ca = Some(cafile);
                let tls = (
                    work.path().join("server.pem"),
                    work.path().join("server.key"),
                );
                start_unftp(root, port, faults.clone(), Some(tls));
                None
            }
            ServerKind::PureFtpd | ServerKind::PureFtpdTls => {
                if !installed("/usr/sbin/pure-ftpd") {
                    return Ok(skip(kind));
                }
                // A cheap MD5-crypt hash ("secret"): pure-pw's default argon2 costs seconds
                // of CPU per login on a 2-core machine.
                let passwd = work.path().join("passwd");
                std::fs::write(
                    &passwd,
                    format!(
                        "{USER}:$1$ftpfs0$TRVeXEx8mDlte8C9nnX4I1:65534:65534::{}/./::::::::::::\n",
                        root.display()
                    ),
                )
                .unwrap();
                let pdb = work.path().join("pdb");
                let st = Command::new("pure-pw")
                    .args(["mkdb"])
                    .arg(&pdb)
                    .arg("-f")
                    .arg(&passwd)
                    .status()
                    .expect("pure-pw runs");
                assert!(st.success(), "pure-pw mkdb failed");
                make_world_readable(root);
                let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
                if kind == ServerKind::PureFtpdTls {
                    // Without openssl, make_pki has said so (or failed when required).
                    let Some((cafile, both)) = make_pki(work.path()) else {
                        return Ok(None);
                    };
                    ca = Some(cafile);
                    // -Y 2: no login without TLS.
                    extra.extend(["-Y".into(), "2".into(), "-2".into()]);
                    extra.push(both.display().to_string());
                }
                // Its own process group: pure-ftpd forks a process per session, and a crash
                // test kills them all, as a real server crash would.
                let netns = netns.map(|(ns, _)| ns.to_string());
                let listen = format!("-S{host},{port}");
                let spawn = move || {
                    use std::os::unix::process::CommandExt;
                    // `ip netns exec` enters the namespace and execs the server: same PID.
                    let mut cmd = match &netns {
                        Some(ns) => {
                            let mut c = Command::new("ip");
                            c.args(["netns", "exec", ns, "/usr/sbin/pure-ftpd"]);
                            c
                        }
                        None => Command::new("/usr/sbin/pure-ftpd"),
                    };
                    cmd.arg(&listen)
                        .arg(format!("-lpuredb:{}", pdb.display()))
                        .args(["-E", "-H", "-A", "-D", "-4", "-c", "64"])
                        .args(if extra.iter().any(|a| a == "-C") {
                            vec![]
                        } else {
                            vec!["-C", "64"]
                        })
                        .args(&extra)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .process_group(0)
                        .spawn()
                        .expect("pure-ftpd starts")
                };
                let child = spawn();
                respawn = Some(Box::new(spawn) as Box<dyn Fn() -> Child + Send>);
                Some(child)
            }
            ServerKind::Pyftpdlib => {
                let ok = Command::new("/usr/bin/python3")
                    .args(["-c", "import pyftpdlib"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !ok {
                    return Ok(skip(kind));
                }
                let mut cmd = Command::new("/usr/bin/python3");
                if let Some((quirks, vhosts)) = quirky {
                    let script =
                        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/quirky_ftpd.py");
                    cmd.arg(script)
                        .args(["--port", &port.to_string(), "--user", USER, "--root"])
                        .arg(root)
                        .env("QUIRKY_FTPD_PASSWORD", PASSWORD)
                        .arg("--log")
                        .arg(work.path().join("commands.log"));
                    for q in quirks {
                        cmd.args(["--quirk", q]);
                    }
                    for (name, dir) in vhosts {
                        cmd.arg("--vhost").arg(format!("{name}={}", dir.display()));
                    }
                    cmd.args(["--interface", &host]);
                    cmd.args(extra);
                } else {
                    cmd.args(["-m", "pyftpdlib", "-i", "127.0.0.1", "-p"])
                        .arg(port.to_string())
                        .arg("-d")
                        .arg(root);
                    if !anonymous {
                        cmd.args(["-u", USER, "-P", PASSWORD, "-w"]);
                    }
                }
                Some(
                    cmd.stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("pyftpdlib starts"),
                )
            }
            ServerKind::Proftpd => {
                if !installed(&format!("{PROFTPD}/usr/sbin/proftpd")) {
                    return Ok(skip(kind));
                }
                Some(start_proftpd(root, port, work.path()))
            }
            ServerKind::Vsftpd | ServerKind::VsftpdTls => {
                if !vsftpd_installed(anonymous) {
                    return Ok(skip(kind));
                }
                let tls = if kind == ServerKind::VsftpdTls {
                    // Without openssl, make_pki has said so (or failed when required).
                    let Some((cafile, both)) = make_pki(work.path()) else {
                        return Ok(None);
                    };
                    ca = Some(cafile);
                    Some(both)
                } else {
                    None
                };
                Some(start_vsftpd(
                    root,
                    port,
                    work.path(),
                    tls.as_deref(),
                    anonymous,
                ))
            }
        };
        let vsftpd = matches!(kind, ServerKind::Vsftpd | ServerKind::VsftpdTls);
        let user = match (vsftpd, anonymous) {
            (_, true) => None,
            (true, false) => Some(VSFTPD_USER),
            (false, false) => Some(USER),
        };
        let mount_opts = ca
            .iter()
            .map(|c| format!("tls=required,cafile={}", c.display()))
            .collect();
        let server_host = host.clone();
        let mut server = Server {
            kind,
            host,
            port,
            root: root.to_path_buf(),
            user,
            url_host: if ca.is_some() {
                "localhost".into()
            } else if server_host.contains(':') {
                format!("[{server_host}]")
            } else {
                server_host
            },
            ca,
            mount_opts,
            child,
            respawn,
            _work: work,
        };
        let exited = |s: &mut Server| {
            s.child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some())
        };
        let up = wait_for(Duration::from_secs(10), || {
            port_open(&server.host, port) || exited(&mut server)
        });
        if !up || exited(&mut server) || !ftp_greets(&server.host, port) || exited(&mut server) {
            server.stop();
            return Err(format!("did not start listening on {port}"));
        }
        Ok(Some(server))
    }

    pub fn url(&self) -> String {
        let user = self.user.map(|u| format!("{u}@")).unwrap_or_default();
        format!("ftp://{user}{}:{}", self.url_host, self.port)
    }

    /// The commands the server received, one `COMMAND ARGUMENT CODE` line each (proftpd's
    /// ExtendedLog), `SESSION COMMAND ARGUMENT` ([`Server::quirky`]), vsftpd's protocol log
    /// (every command and reply); empty for the other servers.
    pub fn command_log(&self) -> String {
        std::fs::read_to_string(self._work.path().join("commands.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let group = matches!(
                self.kind,
                ServerKind::Proftpd | ServerKind::Vsftpd | ServerKind::VsftpdTls
            );
            if self.respawn.is_some() || group {
                // The group we created for it: the server and its sessions.
                // SAFETY: plain syscall on a process group id we own.
                unsafe { libc::killpg(c.id() as i32, libc::SIGKILL) };
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server with all its sessions, as a crash would, and starts it again on the
    /// same port after `down`. pure-ftpd only.
    pub fn crash_and_restart(&mut self, down: Duration) {
        self.crash();
        std::thread::sleep(down);
        self.restart();
    }

    /// Kills the server with all its sessions, as a crash would. pure-ftpd only.
    pub fn crash(&mut self) {
        assert!(self.respawn.is_some(), "only pure-ftpd can be restarted");
        self.stop();
    }

    /// Starts a crashed server again on the same port.
    pub fn restart(&mut self) {
        let spawn = self
            .respawn
            .as_ref()
            .expect("only pure-ftpd can be restarted");
        let (host, port) = (self.host.clone(), self.port);
        for _ in 0..50 {
            self.child = Some(spawn());
            if wait_for(Duration::from_secs(2), || port_open(&host, port)) {
                return;
            }
            // The port may still be held for a moment; try again.
            let mut c = self.child.take().unwrap();
            let _ = c.kill();
            let _ = c.wait();
        }
        panic!("pure-ftpd did not come back on port {port}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn skip(kind: ServerKind) -> Option<Server> {
    if require_servers() {
        panic!("{kind:?} is required (FTPFS_REQUIRE_SERVERS=1) but not installed");
    }
    eprintln!("SKIP: {kind:?} is not installed");
    None
}

/// Where scripts/install-deps.sh unpacks proftpd and the libraries it needs (it conflicts
/// with pure-ftpd in apt).
pub const PROFTPD: &str = "/opt/ftpfs-test/proftpd";

/// proftpd 1.3.8 in the foreground (`-n`) with a configuration of its own in `work`: one
/// user from an AuthUserFile (MD5-crypt hash of [`PASSWORD`], the invoking user's uid, so
/// the files it writes are the test's), chrooted to `root`, every file it keeps in `work`,
/// and an ExtendedLog of every command with its reply code ([`Server::command_log`]).
/// Its defaults are left as Debian ships them where they matter to ftpfs: `APPE` and `REST`
/// for uploads are refused (`AllowStoreRestart off`). mod_copy (`SITE CPFR/CPTO`) is
/// loaded, as Debian's packaged configuration does, and mod_deflate with `DeflateEngine on`
/// (`MODE Z`, which ftpfs uses for downloads only with `-o compress`, or once a link
/// measured slow: never on loopback).
fn start_proftpd(root: &Path, port: u16, work: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    // SAFETY: plain syscalls without arguments.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let passwd = work.join("passwd");
    std::fs::write(
        &passwd,
        format!(
            "{USER}:$1$ftpfs0$TRVeXEx8mDlte8C9nnX4I1:{uid}:{gid}::{}:/bin/sh\n",
            root.display()
        ),
    )
    .unwrap();
    // proftpd refuses an AuthUserFile that others may read.
    std::fs::set_permissions(&passwd, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let w = work.display();
    let config = format!(
        r#"ServerType standalone
ServerName "ftpfs test"
DefaultAddress 127.0.0.1
SocketBindTight on
Port {port}
UseIPv6 off
ModulePath {PROFTPD}/usr/lib/proftpd
LoadModule mod_copy.c
LoadModule mod_deflate.c
ScoreboardFile {w}/scoreboard
PidFile {w}/proftpd.pid
DelayTable none
WtmpLog off
UseReverseDNS off
UseFtpUsers off
<IfModule mod_ctrls.c>
  ControlsEngine off
</IfModule>
<IfModule mod_auth_pam.c>
  AuthPAM off
</IfModule>
SystemLog {w}/system.log
TransferLog none
AuthOrder mod_auth_file.c
AuthUserFile {passwd}
RequireValidShell off
RootLogin {root_login}
DefaultRoot ~
Umask 022
MaxInstances 200
LogFormat commands "%m %J %s"
ExtendedLog {w}/commands.log ALL commands
<IfModule mod_deflate.c>
  DeflateEngine on
</IfModule>
<Directory />
  AllowOverwrite on
</Directory>
"#,
        passwd = passwd.display(),
        root_login = if uid == 0 { "on" } else { "off" },
    );
    let conf = work.join("proftpd.conf");
    std::fs::write(&conf, config).unwrap();
    // Its own process group: proftpd forks a process per session, stopped with it.
    Command::new(format!("{PROFTPD}/usr/sbin/proftpd"))
        .args(["-n", "-q", "-c"])
        .arg(&conf)
        .env(
            "LD_LIBRARY_PATH",
            format!("{PROFTPD}/usr/lib/x86_64-linux-gnu"),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("stderr.log")).unwrap())
        .process_group(0)
        .spawn()
        .expect("proftpd starts")
}

/// Where scripts/install-deps.sh unpacks vsftpd (it conflicts with pure-ftpd in apt).
pub const VSFTPD: &str = "/opt/ftpfs-test/vsftpd";

/// The unix user vsftpd's tests log in as (password [`PASSWORD`]), made by
/// scripts/install-deps.sh with the PAM service `ftpfs-vsftpd`. Anonymous logins run as the
/// unix user `ftpfsvs`, which vsftpd also uses as its unprivileged helper.
pub const VSFTPD_USER: &str = "ftpfsvsu";

fn vsftpd_binary() -> PathBuf {
    ["/usr/sbin/vsftpd", &format!("{VSFTPD}/usr/sbin/vsftpd")]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_default()
}

pub fn uid_of(user: &str) -> Option<u32> {
    let out = Command::new("id").args(["-u", user]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// vsftpd and the unix users and PAM service its configuration names.
fn vsftpd_installed(anonymous: bool) -> bool {
    let users: &[&str] = if anonymous {
        &["ftpfsvs"]
    } else {
        &["ftpfsvs", VSFTPD_USER]
    };
    vsftpd_binary().exists()
        && users.iter().all(|u| uid_of(u).is_some())
        && (anonymous || Path::new("/etc/pam.d/ftpfs-vsftpd").exists())
}

/// vsftpd in the foreground (`background=NO`) with a configuration of its own in `work`,
/// serving `root`: to [`VSFTPD_USER`] with writes allowed (the tree is given to that user),
/// or read-only to anonymous. With `tls` (certificate and key in one file), TLS is
/// required for logins and data, with `require_ssl_reuse=YES`.
fn start_vsftpd(root: &Path, port: u16, work: &Path, tls: Option<&Path>, anonymous: bool) -> Child {
    use std::os::unix::process::CommandExt;
    let empty = work.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let users = if anonymous {
        format!(
            "anonymous_enable=YES\nanon_root={}\nno_anon_password=YES\nlocal_enable=NO\n\
             write_enable=NO\nftp_username=ftpfsvs\nnopriv_user=ftpfsvs\n",
            root.display()
        )
    } else {
        let st = Command::new("chown")
            .args(["-R", &format!("{VSFTPD_USER}:{VSFTPD_USER}")])
            .arg(root)
            .status()
            .expect("chown runs");
        assert!(st.success(), "chown of the vsftpd root");
        format!(
            "anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=022\n\
             local_root={}\npam_service_name=ftpfs-vsftpd\ncheck_shell=NO\n\
             userlist_enable=NO\nnopriv_user={VSFTPD_USER}\n",
            root.display()
        )
    };
    let tls = match tls {
        None => String::new(),
        Some(cert) => format!(
            "ssl_enable=YES\nrequire_ssl_reuse=YES\nrsa_cert_file={}\n\
             force_local_logins_ssl=YES\nforce_local_data_ssl=YES\nallow_anon_ssl=YES\n\
             force_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n",
            cert.display()
        ),
    };
    let conf = work.join("vsftpd.conf");
    std::fs::write(
        &conf,
        format!(
            "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             {users}{tls}secure_chroot_dir={}\nseccomp_sandbox=NO\nxferlog_enable=YES\n\
             xferlog_std_format=NO\nlog_ftp_protocol=YES\nvsftpd_log_file={}\n\
             max_per_ip=0\nmax_clients=0\n",
            empty.display(),
            work.join("commands.log").display()
        ),
    )
    .unwrap();
    // Its own process group: vsftpd forks processes per session, stopped with it.
    Command::new(vsftpd_binary())
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("vsftpd starts")
}

/// A CA, and a server certificate for DNS:localhost signed by it, made with openssl in
/// `dir`. Returns (ca, cert+key in one file); `None` (a skip, or a failure when the servers
/// are required) without openssl.
pub fn make_pki(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ok = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=ftpfs test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    if !ok {
        if require_servers() {
            panic!("openssl is required to make test certificates");
        }
        eprintln!("SKIP: no openssl");
        return None;
    }
    let both = dir.join("server-both.pem");
    let mut pem = std::fs::read(dir.join("server.pem")).unwrap();
    pem.extend(std::fs::read(dir.join("server.key")).unwrap());
    std::fs::write(&both, pem).unwrap();
    Some((dir.join("ca.pem"), both))
}

/// pure-ftpd serves as an unprivileged virtual user (65534), which must be able to read
/// and write the tree.
fn make_world_readable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755));
    let _ = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(root)
        .status();
}

/// libunftp in-process on `port`, over `root` (with storage `faults`), with FTPS required
/// when given `tls` (certificate file, key file).
fn start_unftp(
    root: &Path,
    port: u16,
    faults: Option<Arc<faulty::Faults>>,
    tls: Option<(PathBuf, PathBuf)>,
) {
    let root = root.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let addr = format!("127.0.0.1:{port}");
            let r = root.clone();
            match faults {
                None => {
                    let storage = move || unftp_sbe_fs::Filesystem::new(r.clone()).unwrap();
                    serve_unftp(Box::new(storage), &addr, tls, tx).await
                }
                Some(f) => {
                    let storage = move || faulty::FaultyFs::new(r.clone(), f.clone());
                    serve_unftp(Box::new(storage), &addr, tls, tx).await
                }
            }
        });
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("libunftp builds");
}

async fn serve_unftp<S>(
    storage: Box<dyn Fn() -> S + Send + Sync>,
    addr: &str,
    tls: Option<(PathBuf, PathBuf)>,
    built: std::sync::mpsc::Sender<()>,
) where
    S: unftp_core::storage::StorageBackend<unftp_core::auth::DefaultUser> + 'static,
{
    let mut builder = libunftp::ServerBuilder::with_authenticator(storage, Arc::new(PasswordAuth))
        .greeting("ftpfs test server")
        // Outside the kernel's ephemeral range (32768-60999), where free_port() picks
        // the other servers' control ports.
        .passive_ports(61000..=64999);
    if let Some((cert, key)) = tls {
        builder = builder.ftps(cert, key).ftps_required(true, true);
    }
    let server = builder.build().unwrap();
    let _ = built.send(());
    let _ = server.listen(addr).await;
}

/// A live mount of a server through the ftpfs binary, in the foreground so the test owns
/// the process. Unmounted and reaped on drop. Its spool and recovery directories are its
/// own, under `state`, unless the test names others: a test never writes into the real
/// `~/.cache`.
pub struct Mount {
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
    state: tempfile::TempDir,
    child: Option<Child>,
}

/// The ftpfs binary, with `HOME`, `XDG_CACHE_HOME` and `XDG_RUNTIME_DIR` pointing into the
/// build's scratch directory: whatever a command falls back to (a default spool or recovery
/// directory, `~/.netrc`, the `ftpfs status` sockets) is never the invoking user's. Tests
/// that mean another home set it again.
pub fn ftpfs() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ftpfs"));
    test_env(&mut cmd);
    cmd
}

/// The environment [`ftpfs`] gives the binary, for a command that runs it another way (a
/// mount helper link, `script`, `unshare`).
pub fn test_env(cmd: &mut Command) -> &mut Command {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("home");
    cmd.env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_RUNTIME_DIR", runtime_dir())
        // No `EPSV` before an upload's `226` unless a test asks (tests/early_passive.rs):
        // on a loaded machine a loopback reply can take the 4 ms that turn it on, and
        // tests that count a server's commands must not depend on the machine's load.
        .env("FTPFS_TEST_EARLY_PASSIVE", "0")
        // Data connections prepared ahead as across a network, unless a test asks
        // otherwise (tests/pipelining.rs): on loopback the measured round trip turns it off,
        // and a loaded machine's login can take the 1 ms that turns it on.
        .env("FTPFS_TEST_PREPARE", "1")
}

/// `ftpfs status --json` of the mount at `path` (through [`ftpfs`], so with the tests'
/// runtime directory, where the mounts' status sockets are).
pub fn status_json(path: &Path) -> serde_json::Value {
    let out = ftpfs()
        .args(["status", "--json"])
        .arg(path)
        .output()
        .expect("ftpfs status runs");
    assert!(
        out.status.success(),
        "status of {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json prints JSON")
}

/// `spool_dir=…,recovery_dir=…` under `dir`, for mounts made outside [`Mount`]: mount(8)
/// and its helpers run ftpfs with the caller's environment, whose defaults are the real
/// `~/.cache`, and mounts through [`ftpfs`] would share the scratch home's.
pub fn own_dirs(dir: &Path) -> String {
    format!(
        "spool_dir={},recovery_dir={}",
        dir.join("spool").display(),
        dir.join("recovered").display()
    )
}

/// [`own_dirs`] under a new directory of the build's scratch space, kept after the test:
/// for a daemon that may outlive the function that mounted it.
pub fn own_state() -> String {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("state");
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap().keep();
    own_dirs(&dir)
}

/// The `XDG_RUNTIME_DIR` of every ftpfs the tests run (see [`ftpfs`]).
pub fn runtime_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("run")
}

/// Whether `child` exits within `limit`.
pub fn exits_within(child: &mut std::process::Child, limit: Duration) -> bool {
    wait_for(limit, || child.try_wait().ok().flatten().is_some())
}

/// The file system type and source of the mount at `path`, from /proc/self/mountinfo.
pub fn mount_table_entry(path: &Path) -> Option<(String, String)> {
    let target = std::fs::canonicalize(path)
        .ok()?
        .to_string_lossy()
        .to_string();
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().rev().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if left.split(' ').nth(4) != Some(target.as_str()) {
            return None;
        }
        let mut r = right.split(' ');
        Some((r.next()?.to_string(), r.next()?.to_string()))
    })
}

pub fn is_mounted(path: &Path) -> bool {
    let target = path.to_string_lossy().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
}

impl Mount {
    /// A mount of `server` with the options it needs (its CA for FTPS) and `opts`.
    pub fn new(server: &Server, opts: &[&str]) -> Mount {
        Self::new_env(server, opts, &[])
    }

    /// [`Mount::new`] with `env` set for the ftpfs process only (never with
    /// `std::env::set_var`, which races with other test threads starting processes).
    pub fn new_env(server: &Server, opts: &[&str], env: &[(&str, &str)]) -> Mount {
        let mut all: Vec<&str> = server.mount_opts.iter().map(String::as_str).collect();
        all.extend_from_slice(opts);
        Self::of_url_env(&server.url(), &all, env)
    }

    /// A mount of any server (the scripted one, for instance), logging in as `alice`.
    pub fn of_url(url: &str, opts: &[&str]) -> Mount {
        Self::of_url_env(url, opts, &[])
    }

    /// [`Mount::of_url`] with `env` set for the ftpfs process.
    pub fn of_url_env(url: &str, opts: &[&str], env: &[(&str, &str)]) -> Mount {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().with_extension("log");
        let state = tempfile::tempdir().unwrap();
        let mut cmd = ftpfs();
        cmd.args(["mount", "-f"])
            .arg(url)
            .arg(dir.path())
            .arg("--log-file")
            .arg(&log)
            .env("FTPFS_PASSWORD", PASSWORD)
            .env(
                "RUST_LOG",
                std::env::var("FTPFS_TEST_LOG")
                    .unwrap_or_else(|_| "ftpfs=debug,suppaftp=trace".into()),
            )
            .stdin(Stdio::null());
        for (key, value) in env {
            cmd.env(key, value);
        }
        for (key, leaf) in [("spool_dir", "spool"), ("recovery_dir", "recovered")] {
            let named = opts
                .iter()
                .flat_map(|o| o.split(','))
                .any(|o| o.starts_with(&format!("{key}=")));
            if !named {
                cmd.arg("-o")
                    .arg(format!("{key}={}", state.path().join(leaf).display()));
            }
        }
        for o in opts {
            cmd.arg("-o").arg(o);
        }
        let child = cmd.spawn().expect("ftpfs starts");
        let mut m = Mount {
            dir,
            log,
            state,
            child: Some(child),
        };
        let path = m.path().to_path_buf();
        let up = wait_for(Duration::from_secs(20), || {
            is_mounted(&path)
                || m.child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some())
        });
        assert!(
            up && is_mounted(&path),
            "mount did not come up; log:\n{}",
            m.log_text()
        );
        m
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where this mount keeps data it could not upload (unless the test named a directory).
    pub fn recovery_dir(&self) -> PathBuf {
        self.state.path().join("recovered")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Takes the process, for tests that end it themselves.
    pub fn take_child(&mut self) -> Child {
        self.child.take().unwrap()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log_text();
            let keep = std::env::temp_dir().join(format!(
                "ftpfs-failed-{}.log",
                std::thread::current()
                    .name()
                    .unwrap_or("test")
                    .replace("::", "-")
            ));
            if std::fs::write(&keep, &log).is_ok() {
                eprintln!("whole ftpfs log kept in {}", keep.display());
            }
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!(
                "--- ftpfs log tail ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let _ = unmount(self.path());
        if let Some(mut c) = self.child.take() {
            let exited = wait_for(Duration::from_secs(10), || {
                c.try_wait().ok().flatten().is_some()
            });
            if !exited {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A deterministic byte generator (xorshift), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// The sample tree every server serves: awkward names, nesting, empty things, a big file.
pub fn sample_tree(root: &Path) {
    let mut rng = Rng(0x5eed);
    let dirs = [
        "docs",
        "docs/nested deeper",
        "ünïcødé dir",
        "-dashdir",
        "empty dir",
    ];
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let files: &[(&str, usize)] = &[
        ("hello.txt", 6),
        ("with space.txt", 100),
        ("-leading-dash", 10),
        ("ünïcødé.txt", 1000),
        (".hidden", 3),
        ("empty", 0),
        ("docs/readme.md", 5000),
        ("docs/nested deeper/deep.bin", 70_000),
        ("ünïcødé dir/ファイル.txt", 42),
        ("-dashdir/--x", 7),
        ("big.bin", 5 * 1024 * 1024 + 123),
    ];
    for (name, size) in files {
        std::fs::write(root.join(name), rng.bytes(*size)).unwrap();
    }
}

/// Every entry below `root`: relative path → (kind, size, sha256 of content).
pub fn snapshot(root: &Path) -> std::collections::BTreeMap<String, (char, u64, String)> {
    use sha2::{Digest, Sha256};
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            let md = std::fs::symlink_metadata(root.join(&r)).unwrap();
            let key = r.to_string_lossy().to_string();
            if md.is_dir() {
                out.insert(key, ('d', 0, String::new()));
                stack.push(r);
            } else if md.is_file() {
                let data = std::fs::read(root.join(&r)).unwrap();
                let hash = format!("{:x}", Sha256::digest(&data));
                out.insert(key, ('f', md.len(), hash));
            } else {
                out.insert(key, ('l', 0, String::new()));
            }
        }
    }
    out
}

/// Writes to the FUSE control file system's `abort` for the mount at `path`, mounting the
/// control file system first where the system has not.
pub fn abort_connection(path: &Path) {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let target = path.to_string_lossy();
    let dev = table
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(4) == Some(&&*target)).then(|| f[2].to_string())
        })
        .expect("mounted");
    let minor = dev.split_once(':').unwrap().1;
    let ctl = Path::new("/sys/fs/fuse/connections");
    if !ctl.join(minor).exists() {
        let st = Command::new("mount")
            .args(["-t", "fusectl", "fusectl"])
            .arg(ctl)
            .status()
            .unwrap();
        assert!(st.success(), "mount -t fusectl");
    }
    std::fs::write(ctl.join(minor).join("abort"), "1").unwrap();
}

/// A command run as user `nobody` (65534) through setpriv, without root's capabilities.
/// Copies the ftpfs binary to `to` (for a user who cannot reach the build directory) and
/// waits until it can be run.
///
/// While the copy is open for writing, another test thread that forks a child gives the
/// child that descriptor until it execs, and running the copy meanwhile fails with
/// `ETXTBSY` (`setpriv` exits 126: CI failed once so). Once a run of it has started, no
/// child can still hold it.
pub fn copy_ftpfs_to(to: &Path) {
    std::fs::copy(env!("CARGO_BIN_EXE_ftpfs"), to).unwrap();
    let runs = wait_for(Duration::from_secs(10), || {
        match Command::new(to).arg("--version").output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => false,
            r => r.is_ok(),
        }
    });
    assert!(runs, "the copy of ftpfs at {} does not run", to.display());
}

/// How the library reaches `host:port` as `user` with `tls`: ten-second replies, the
/// default retry policy, pipelining on, nothing else set. Tests that need another field
/// change it (`Endpoint { policy, ..endpoint(..) }`).
pub fn endpoint(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    tls: ftpfs::ftp::tls::Tls,
) -> ftpfs::ftp::conn::Endpoint {
    ftpfs::ftp::conn::Endpoint {
        host: host.into(),
        port,
        user: user.into(),
        password: ftpfs::secret::Secret::new(password),
        timeout: Duration::from_secs(10),
        policy: Default::default(),
        tls,
        limit_recheck: ftpfs::ftp::pool::DEFAULT_LIMIT_RECHECK,
        keepalive: ftpfs::ftp::conn::DEFAULT_KEEPALIVE,
        data: Default::default(),
        pasv_addr: Default::default(),
        listen: Default::default(),
        pipelining: true,
        dialogue: Default::default(),
    }
}

pub fn as_nobody() -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ]);
    cmd
}

/// Runs `cmd` to its end: its stdout, or its stderr as the error.
pub fn stdout_or_stderr(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// Unmounts `path` with `fusermount3 -u`, trying again for up to 5 s while it fails, then
/// detaches it lazily so that no test hangs on a mount that stayed. Err carries
/// fusermount3's last complaint when `-u` never succeeded. (Once in CI, `-u` failed right
/// after a read and the test waited for ever on its daemon; another test forking at that
/// moment holds our open descriptors until its exec, which is a guess, not a finding.)
pub fn unmount(path: &Path) -> Result<(), String> {
    let mut last = String::new();
    let end = Instant::now() + Duration::from_secs(5);
    while is_mounted(path) {
        if Instant::now() > end {
            eprintln!("fusermount3 -u {}: {last}; detaching it", path.display());
            let _ = Command::new("fusermount3").arg("-uz").arg(path).status();
            return Err(last);
        }
        match Command::new("fusermount3").arg("-u").arg(path).output() {
            Ok(o) if o.status.success() => break,
            Ok(o) => last = String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
