//! FTPS against a real TLS server: pure-ftpd with `-Y 2` (TLS required for logins) and a
//! certificate from a CA made here with openssl. The certificate names `localhost` only, so
//! connecting to `127.0.0.1` is the wrong host name.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// A CA, and a server certificate for DNS:localhost signed by it. Returns (ca, cert+key).
fn make_pki(dir: &Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
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

/// A server process, killed and reaped on drop.
struct Kill(std::process::Child);

impl Kill {
    /// Starts a server process (output discarded) and waits until it accepts on `port`.
    fn serve(cmd: &mut Command, port: u16) -> Kill {
        let k = Kill(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        assert!(wait_for(std::time::Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }));
        k
    }
}

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct TlsServer {
    _data: tempfile::TempDir,
    _pki: tempfile::TempDir,
    server: Server,
    ca: std::path::PathBuf,
    data_path: std::path::PathBuf,
}

fn tls_server() -> Option<TlsServer> {
    tls_server_with(&[])
}

/// A TLS server with more pure-ftpd options.
fn tls_server_with(extra: &[&str]) -> Option<TlsServer> {
    let pki = tempfile::tempdir().unwrap();
    let (ca, both) = make_pki(pki.path())?;
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "hello over TLS\n").unwrap();
    let certarg = both.to_string_lossy().to_string();
    // -Y 2: no login without TLS.
    let mut args = vec!["-Y", "2", "-2", &certarg];
    args.extend_from_slice(extra);
    let server = Server::pure_ftpd_with(data.path(), &args)?;
    Some(TlsServer {
        data_path: data.path().to_path_buf(),
        _data: data,
        _pki: pki,
        server,
        ca,
    })
}

/// `ftpfs mount` in the background; returns (exit success, stderr).
fn try_mount(url: &str, opts: &str, dir: &Path) -> (bool, String) {
    let out = ftpfs()
        .args(["mount", url])
        .arg(dir)
        .args(["-o", opts])
        .env("FTPFS_PASSWORD", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A mount that must fail: no success, `needle` in the message, nothing mounted.
fn assert_refused(url: &str, opts: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = try_mount(url, opts, dir.path());
    assert!(!ok, "mounted with {opts}");
    assert!(err.contains(needle), "{err}");
    assert!(!is_mounted(dir.path()));
}

#[test]
fn ftps_with_a_private_ca_reads_and_writes() {
    let Some(t) = tls_server() else {
        return;
    };
    let url = format!("ftp://{USER}@localhost:{}", t.server.port);
    let dir = tempfile::tempdir().unwrap();
    let cafile = format!("cafile={},tls=required", t.ca.display());
    let (ok, err) = try_mount(&url, &cafile, dir.path());
    assert!(ok, "{err}");
    let read = std::fs::read_to_string(dir.path().join("hello.txt"));
    std::fs::write(dir.path().join("up.txt"), "written over TLS\n").unwrap();
    let listed = std::fs::read_dir(dir.path()).map(|d| d.count());
    let _ = unmount(dir.path());
    assert_eq!(read.unwrap(), "hello over TLS\n");
    assert_eq!(listed.unwrap(), 2);
    assert_eq!(
        std::fs::read_to_string(t.data_path.join("up.txt")).unwrap(),
        "written over TLS\n"
    );
}

/// As `faults::an_upload_to_a_bandwidth_limited_server_is_waited_for_and_succeeds`, over
/// TLS: the wait for a slow server to take an upload out of the TCP buffers looks at the TCP
/// socket under the TLS stream, and TLS's close_notify must not cut it short.
#[test]
fn an_upload_over_tls_to_a_bandwidth_limited_server_is_waited_for_and_succeeds() {
    // 400 KB/s each way for users: 3 MiB take 8 s, the timeout is 2 s.
    let Some(t) = tls_server_with(&["-T", "400:400"]) else {
        return;
    };
    let url = format!("ftp://{USER}@localhost:{}", t.server.port);
    let cafile = format!("cafile={}", t.ca.display());
    let m = Mount::of_url(
        &url,
        &[&cafile, "tls=required,timeout=2,retries=1,deadline=30"],
    );
    let new = Rng(32).bytes(3 << 20);
    let mut f = std::fs::File::create(m.path().join("up.bin")).unwrap();
    std::io::Write::write_all(&mut f, &new).unwrap();
    assert_eq!(close(f), Ok(()), "close reports the upload's success");
    assert!(std::fs::read(t.data_path.join("up.bin")).unwrap() == new);
    let log = m.log_text();
    assert!(
        !log.contains("retrying") && !log.contains("failed"),
        "one attempt, no timeout"
    );
}

#[test]
fn an_unknown_ca_is_refused_with_a_clear_message_and_no_mount() {
    let Some(t) = tls_server() else {
        return;
    };
    let url = format!("ftp://{USER}@localhost:{}", t.server.port);
    assert_refused(&url, "tls=try", "certificate");
}

#[test]
fn a_certificate_for_another_host_name_is_refused() {
    let Some(t) = tls_server() else {
        return;
    };
    // The certificate says localhost; 127.0.0.1 is not in it.
    let url = format!("ftp://{USER}@127.0.0.1:{}", t.server.port);
    let cafile = format!("cafile={}", t.ca.display());
    assert_refused(&url, &cafile, "not valid for name");
}

#[test]
fn insecure_accepts_any_certificate_and_says_so() {
    let Some(t) = tls_server() else {
        return;
    };
    let url = format!("ftp://{USER}@127.0.0.1:{}", t.server.port);
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = try_mount(&url, "insecure", dir.path());
    assert!(ok, "{err}");
    let read = std::fs::read_to_string(dir.path().join("hello.txt"));
    let _ = unmount(dir.path());
    assert_eq!(read.unwrap(), "hello over TLS\n");
    assert!(err.contains("insecure"), "a loud warning: {err}");
}

#[test]
fn tls_required_refuses_a_server_without_tls_before_sending_the_password() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::PureFtpd, data.path()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = try_mount(&server.url(), "tls=required", dir.path());
    assert!(!ok);
    assert!(err.contains("AUTH TLS"), "{err}");
    assert!(!is_mounted(dir.path()));
}

/// pyftpdlib's TLS handler, changed to do TLS from the first byte (implicit FTPS): no
/// Debian FTP server offers implicit TLS, and this keeps the real server's FTP and TLS.
const IMPLICIT_SERVER: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_FTPHandler
from pyftpdlib.servers import FTPServer

port, root, cert, user, password = sys.argv[1:6]

class Implicit(TLS_FTPHandler):
    certfile = cert
    def handle(self):
        self.secure_connection(self.ssl_context)
    def handle_ssl_established(self):
        TLS_FTPHandler.handle(self)

auth = DummyAuthorizer()
auth.add_user(user, password, root, perm="elradfmwMT")
Implicit.authorizer = auth
FTPServer(("127.0.0.1", int(port)), Implicit).serve_forever(timeout=1)
"#;

#[test]
fn implicit_ftps_url_reads_and_writes() {
    let pki = tempfile::tempdir().unwrap();
    let Some((ca, both)) = make_pki(pki.path()) else {
        return;
    };
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import pyftpdlib.handlers as h; h.TLS_FTPHandler"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if require_servers() {
            panic!("pyftpdlib with TLS (python3-openssl) is required");
        }
        eprintln!("SKIP: pyftpdlib without TLS");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "implicit\n").unwrap();
    let script = pki.path().join("implicit.py");
    std::fs::write(&script, IMPLICIT_SERVER).unwrap();
    let port = free_port();
    let _server = Kill::serve(
        Command::new("/usr/bin/python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(data.path())
            .arg(&both)
            .args([USER, PASSWORD]),
        port,
    );
    let dir = tempfile::tempdir().unwrap();
    let url = format!("ftps://{USER}@localhost:{port}");
    let (ok, err) = try_mount(&url, &format!("cafile={}", ca.display()), dir.path());
    assert!(ok, "{err}");
    let read = std::fs::read_to_string(dir.path().join("hello.txt"));
    let wrote = std::fs::write(dir.path().join("new.txt"), "up\n");
    let _ = unmount(dir.path());
    assert_eq!(read.unwrap(), "implicit\n");
    wrote.unwrap();
    assert_eq!(
        std::fs::read_to_string(data.path().join("new.txt")).unwrap(),
        "up\n"
    );
}

/// vsftpd with `require_ssl_reuse=YES` refuses a data connection whose TLS session is not
/// the control connection's, the most reported FTPS failure of other clients. Anonymous
/// (vsftpd's local users need PAM files that an unpacked package does not install).
#[test]
fn vsftpd_requiring_tls_session_reuse_serves_listings_and_reads() {
    let vsftpd = ["/usr/sbin/vsftpd", "/opt/ftpfs-test/vsftpd/usr/sbin/vsftpd"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists());
    let user_ok = Command::new("id")
        .arg("ftpfsvs")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let (Some(vsftpd), true) = (vsftpd, user_ok) else {
        if require_servers() {
            panic!("vsftpd and user ftpfsvs are required (scripts/install-deps.sh)");
        }
        eprintln!("SKIP: no vsftpd");
        return;
    };
    let pki = tempfile::tempdir().unwrap();
    let Some((ca, both)) = make_pki(pki.path()) else {
        return;
    };
    let anon = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        anon.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o555),
    )
    .unwrap();
    let data = Rng(3).bytes(8 << 20);
    std::fs::write(anon.path().join("data.bin"), &data).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = pki.path().join("vsftpd.conf");
    std::fs::write(
        &conf,
        format!(
            "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             anonymous_enable=YES\nanon_root={}\nno_anon_password=YES\nlocal_enable=NO\n\
             write_enable=NO\nsecure_chroot_dir={}\nnopriv_user=ftpfsvs\n\
             ftp_username=ftpfsvs\nseccomp_sandbox=NO\nxferlog_enable=NO\n\
             ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\n\
             force_anon_data_ssl=YES\nrequire_ssl_reuse=YES\nrsa_cert_file={}\n",
            anon.path().display(),
            empty.path().display(),
            both.display()
        ),
    )
    .unwrap();
    let _server = Kill::serve(Command::new(&vsftpd).arg(&conf), port);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("ftp://localhost:{port}");
    let opts = format!("tls=required,cafile={}", ca.display());
    let (ok, err) = try_mount(&url, &opts, dir.path());
    assert!(ok, "{err}");
    let listed = std::fs::read_dir(dir.path()).map(|d| d.count());
    let read = std::fs::read(dir.path().join("data.bin"));
    // A read in the middle: REST plus a new data connection, resuming the session again.
    let mid = {
        use std::io::{Read, Seek, SeekFrom};
        std::fs::File::open(dir.path().join("data.bin")).and_then(|mut f| {
            f.seek(SeekFrom::Start(5 << 20))?;
            let mut b = vec![0u8; 4096];
            f.read_exact(&mut b)?;
            Ok(b)
        })
    };
    let _ = unmount(dir.path());
    assert_eq!(listed.unwrap(), 1);
    assert!(
        read.unwrap() == data,
        "the whole file over TLS data connections"
    );
    assert!(mid.unwrap() == data[5 << 20..(5 << 20) + 4096]);
}
