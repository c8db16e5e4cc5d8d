//! FTPS against a real TLS server: pure-ftpd with `-Y 2` (TLS required for logins) and a
//! certificate from a CA made here with openssl. The certificate names `localhost` only, so
//! connecting to `127.0.0.1` is the wrong host name.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

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
        .args(["-o", opts, "-o", &own_state()])
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

/// Asserts that the server's directory holds exactly `want` (relative path → bytes; the
/// directories are those of the paths).
fn assert_server_holds(root: &Path, want: &std::collections::BTreeMap<String, Vec<u8>>) {
    let mut found = std::collections::BTreeMap::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
                found.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let names =
        |m: &std::collections::BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&found), names(want), "the server's files");
    for (name, bytes) in want {
        let got = &found[name];
        let text = |b: &[u8]| match std::str::from_utf8(b) {
            Ok(t) if b.len() < 4096 => format!("{t:?}"),
            _ => format!("{} bytes", b.len()),
        };
        assert!(
            got == bytes,
            "{name} differs on the server: {} instead of {}",
            text(got),
            text(bytes)
        );
    }
}

/// Issue 13: vsftpd with `require_ssl_reuse=YES` refused every second or third data
/// connection once the first TLS 1.3 tickets were used up (uploads never read the new
/// ones): `cp` failed at close, new files were left empty, appends went missing. A real
/// local user now writes through the mount: 200 uploads and overwrites, appends, files in
/// new directories, reads and listings in between; every byte is checked on the server, and
/// no data connection is refused.
#[test]
fn vsftpd_with_session_reuse_required_takes_200_uploads_appends_and_reads_without_a_refusal() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::VsftpdTls, data.path()) else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let m = Mount::new(&server, &["connections=2"]);
    let root = m.path();
    let started = std::time::Instant::now();
    let mut want = std::collections::BTreeMap::new();
    let mut rng = Rng(13);
    for i in 0..200u64 {
        // 50 names: the first 50 uploads create, the rest overwrite.
        let name = format!("f{}.bin", i % 50);
        let len = 1 + rng.below(64 * 1024) as usize;
        let bytes = rng.bytes(len);
        // With cp(1), as the issue did: it reports a failed close.
        let source = scratch.path().join("source");
        std::fs::write(&source, &bytes).unwrap();
        let cp = Command::new("cp")
            .arg(&source)
            .arg(root.join(&name))
            .output();
        let cp = cp.unwrap();
        assert!(
            cp.status.success(),
            "cp {i} to {name}: {}",
            String::from_utf8_lossy(&cp.stderr)
        );
        want.insert(name.clone(), bytes);
        if i % 10 == 9 {
            // A read and a listing between the writes: data connections of both kinds.
            let back = std::fs::read(root.join(&name)).unwrap();
            assert!(back == want[&name], "read back {name} after upload {i}");
            let listed = std::fs::read_dir(root).unwrap().count();
            assert_eq!(listed, want.keys().filter(|k| !k.contains('/')).count());
        }
    }
    // Appends: every line must arrive (before: 5-7 of 11).
    let log_path = root.join("append.log");
    std::fs::write(&log_path, "line 0\n").unwrap();
    let mut lines = b"line 0\n".to_vec();
    for n in 1..=30 {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&log_path)
            .unwrap();
        let line = format!("line {n}\n");
        std::io::Write::write_all(&mut f, line.as_bytes()).unwrap();
        assert_eq!(close(f), Ok(()), "append {n} reports its upload");
        lines.extend_from_slice(line.as_bytes());
    }
    want.insert("append.log".into(), lines);
    // Files in new directories.
    for d in 0..10 {
        let dir = root.join(format!("d{d}/sub"));
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = rng.bytes(1000 + d * 10);
        std::fs::write(dir.join("new.txt"), &bytes).unwrap();
        want.insert(format!("d{d}/sub/new.txt"), bytes);
    }
    let took = started.elapsed();
    let log = m.log_text();
    drop(m);
    assert_server_holds(data.path(), &want);
    assert!(
        !log.contains("session reuse") && !log.contains("WARN") && !log.contains("ERROR"),
        "no data connection refused, nothing retried:\n{}",
        log.lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("vsftpd FTPS workload: {} ms", took.as_millis());
}

/// The pool: several control connections, each with its own session, and data connections
/// of each resuming only their own, while four writers and readers work at once.
#[test]
fn vsftpd_with_session_reuse_required_serves_parallel_writers_and_readers() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::VsftpdTls, data.path()) else {
        return;
    };
    let m = Mount::new(&server, &["connections=4"]);
    let root = m.path().to_path_buf();
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(100 + w);
                let mut mine = Vec::new();
                for i in 0..25 {
                    let name = format!("w{w}-{}.bin", i % 10);
                    let len = 1 + rng.below(200 * 1024) as usize;
                    let bytes = rng.bytes(len);
                    std::fs::write(root.join(&name), &bytes)
                        .unwrap_or_else(|e| panic!("writer {w}, upload {i}: {e}"));
                    let back = std::fs::read(root.join(&name)).unwrap();
                    assert!(back == bytes, "writer {w} reads back {name}");
                    mine.retain(|(n, _): &(String, Vec<u8>)| *n != name);
                    mine.push((name, bytes));
                }
                mine
            })
        })
        .collect();
    let mut want = std::collections::BTreeMap::new();
    for w in workers {
        want.extend(w.join().unwrap());
    }
    let log = m.log_text();
    drop(m);
    assert_server_holds(data.path(), &want);
    assert!(!log.contains("session reuse"), "no data connection refused");
}

/// vsftpd with `require_ssl_reuse=YES` refuses a data connection whose TLS session is not
/// the control connection's, the most reported FTPS failure of other clients. Anonymous and
/// read-only: a big file read whole and from its middle.
#[test]
fn vsftpd_requiring_tls_session_reuse_serves_listings_and_reads() {
    let anon = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        anon.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o555),
    )
    .unwrap();
    let data = Rng(3).bytes(8 << 20);
    std::fs::write(anon.path().join("data.bin"), &data).unwrap();
    let Some(server) = Server::vsftpd_tls_anonymous(anon.path()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = server.url();
    let opts = format!(
        "tls=required,cafile={}",
        server.ca.as_ref().unwrap().display()
    );
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

/// A self-signed certificate made the usual way (`openssl req -x509`, which is `CA:TRUE`)
/// for `localhost`, and a pure-ftpd that requires TLS with it. Returns the server, the
/// certificate's path and its SHA-256 fingerprint as openssl prints it.
fn self_signed_server() -> Option<(Server, tempfile::TempDir, tempfile::TempDir, String)> {
    let pki = tempfile::tempdir().unwrap();
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .current_dir(pki.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        if require_servers() {
            panic!("openssl is required to make test certificates");
        }
        eprintln!("SKIP: no openssl");
        return None;
    }
    let out = Command::new("openssl")
        .args([
            "x509",
            "-in",
            "cert.pem",
            "-noout",
            "-fingerprint",
            "-sha256",
        ])
        .current_dir(pki.path())
        .output()
        .unwrap();
    let fp = String::from_utf8_lossy(&out.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(fp.len(), 95, "openssl's fingerprint: {fp}");
    let both = pki.path().join("both.pem");
    let mut pem = std::fs::read(pki.path().join("cert.pem")).unwrap();
    pem.extend(std::fs::read(pki.path().join("key.pem")).unwrap());
    std::fs::write(&both, pem).unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "self-signed\n").unwrap();
    let certarg = both.to_string_lossy().to_string();
    let server = Server::pure_ftpd_with(data.path(), &["-Y", "2", "-2", &certarg])?;
    Some((server, pki, data, fp))
}

/// Issue 13: a self-signed certificate from `openssl req -x509` could not be trusted at all
/// (`CaUsedAsEndEntity`), whatever `cafile` said. Listed in `cafile`, or given by its
/// fingerprint (any case, with or without colons), it is trusted as it is.
#[test]
fn a_self_signed_ca_true_certificate_is_trusted_through_cafile_or_its_fingerprint() {
    let Some((server, pki, _data, fp)) = self_signed_server() else {
        return;
    };
    let url = format!("ftp://{USER}@localhost:{}", server.port);
    let cafile = format!(
        "tls=required,cafile={}",
        pki.path().join("cert.pem").display()
    );
    let bare = fp.replace(':', "").to_lowercase();
    for opts in [
        cafile,
        format!("tls=required,fingerprint=sha256:{fp}"),
        format!("tls=required,fingerprint=SHA256:{bare}"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (ok, err) = try_mount(&url, &opts, dir.path());
        assert!(ok, "{opts}: {err}");
        let read = std::fs::read_to_string(dir.path().join("hello.txt"));
        let _ = unmount(dir.path());
        assert_eq!(read.unwrap(), "self-signed\n", "{opts}");
        assert!(!err.contains("ERROR"), "{opts}: {err}");
    }
}

/// A certificate that does not verify: the mount fails with one line that says why, shows
/// the certificate's fingerprint in the form `-o fingerprint=` takes, and nothing else (no
/// error lines from the TLS library). A wrong pin does not let it in either.
#[test]
fn an_untrusted_certificate_is_refused_in_one_line_that_shows_its_fingerprint() {
    let Some((server, _pki, _data, fp)) = self_signed_server() else {
        return;
    };
    let url = format!("ftp://{USER}@localhost:{}", server.port);
    let mut wrong = fp.clone();
    wrong.replace_range(0..2, if fp.starts_with("00") { "11" } else { "00" });
    for opts in [
        "tls=required".to_string(),
        format!("tls=required,fingerprint=sha256:{wrong}"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (ok, err) = try_mount(&url, &opts, dir.path());
        assert!(!ok, "{opts}: mounted");
        assert!(!is_mounted(dir.path()));
        assert_eq!(err.trim().lines().count(), 1, "{opts}: one line: {err}");
        assert!(err.contains("not trusted"), "{err}");
        assert!(
            err.contains(&format!("-o fingerprint=sha256:{fp}")),
            "{err}"
        );
    }
}

/// Renewal, with a scripted server (no real one can be made to forget a session on cue): a
/// data connection refused for its TLS session ends that control connection (as vsftpd
/// does), and the upload, the listing and the download are each made again on a new one.
#[test]
fn a_data_connection_refused_for_its_tls_session_is_repeated_on_a_new_connection() {
    use common::fake::{FakeOpts, FakeServer};
    use ftpfs::remote::{Remote, RemoteReader};
    use std::sync::atomic::Ordering;
    let mut opts = FakeOpts::default();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    opts.files.insert("f".into(), data.clone());
    opts.listing = vec![format!("-rw-r--r-- 1 a b {} Jan  1  2020 f", data.len())];
    let refuse = opts.refuse_reuse.clone();
    let stored = opts.stored.clone();
    let s = FakeServer::start(opts);
    let endpoint = ftpfs::ftp::conn::Endpoint {
        host: "127.0.0.1".into(),
        port: s.port,
        user: "alice".into(),
        password: ftpfs::config::Secret::new("pw"),
        timeout: std::time::Duration::from_secs(2),
        policy: ftpfs::ftp::retry::Policy {
            retries: 3,
            max_delay: std::time::Duration::from_millis(200),
            deadline: std::time::Duration::from_secs(4),
        },
        tls: ftpfs::ftp::tls::Tls::off(),
        limit_recheck: ftpfs::ftp::pool::DEFAULT_LIMIT_RECHECK,
        keepalive: ftpfs::ftp::conn::DEFAULT_KEEPALIVE,
        data: Default::default(),
        pasv_addr: Default::default(),
        listen: Default::default(),
        pipelining: true,
        dialogue: Default::default(),
    };
    let r = ftpfs::ftp::FtpRemote::connect(endpoint, 2, "", ftpfs::ftp::ListingMode::Auto).unwrap();
    let logins = || s.received("USER");
    let before = logins();

    refuse.store(1, Ordering::SeqCst);
    r.store("up.bin", &data).unwrap();
    assert_eq!(s.received("STOR"), 2, "refused once, then stored");
    assert!(stored.lock().unwrap()["up.bin"] == data);

    refuse.store(1, Ordering::SeqCst);
    assert_eq!(r.list("").unwrap()[0].name, "f");

    refuse.store(1, Ordering::SeqCst);
    let rd = r.open_reader("f", 0).unwrap();
    let mut got = Vec::new();
    while got.len() < data.len() {
        let chunk = rd.read_at(got.len() as u64, 64 * 1024).unwrap().to_vec();
        if chunk.is_empty() {
            break;
        }
        got.extend_from_slice(&chunk);
    }
    assert!(got == data, "the download, whole, after the refusal");
    assert!(
        logins() >= before + 3,
        "each refusal ended its connection and a new one logged in"
    );
}

/// Issue 14: active mode over FTPS, on vsftpd with `require_ssl_reuse=YES`: ftpfs is the
/// TLS client on each connection the server opens to it, and resumes the control
/// connection's session there as on a passive one, or vsftpd refuses the transfer. Uploads,
/// overwrites, appends, a read at an offset, listings, rename and mkdir, every byte checked
/// on the server, nothing refused or retried.
#[test]
fn vsftpd_ftps_in_active_mode_resumes_the_session_on_every_data_connection() {
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::VsftpdTls, data.path()) else {
        return;
    };
    let mut rng = Rng(14);
    let big = rng.bytes(300_000);
    std::fs::write(data.path().join("offset.bin"), &big).unwrap();
    let m = Mount::new(&server, &["data=active", "connections=2"]);
    let root = m.path();
    let mut want = std::collections::BTreeMap::new();
    want.insert("offset.bin".to_string(), big.clone());
    for i in 0..30u64 {
        let name = format!("f{}.bin", i % 10);
        let len = 1 + rng.below(200 * 1024) as usize;
        let bytes = rng.bytes(len);
        std::fs::write(root.join(&name), &bytes).unwrap();
        want.insert(name.clone(), bytes);
        if i % 5 == 4 {
            assert!(std::fs::read(root.join(&name)).unwrap() == want[&name]);
            assert_eq!(std::fs::read_dir(root).unwrap().count(), want.len());
        }
    }
    // A read at an offset of a file never read through the mount before: REST.
    let mut part = vec![0u8; 1000];
    std::os::unix::fs::FileExt::read_exact_at(
        &std::fs::File::open(root.join("offset.bin")).unwrap(),
        &mut part,
        250_000,
    )
    .unwrap();
    assert!(part[..] == big[250_000..251_000], "bytes at 250000");
    std::fs::create_dir(root.join("made")).unwrap();
    let append = root.join("made/append.log");
    let mut lines = Vec::new();
    for n in 0..5 {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&append)
            .unwrap();
        let line = format!("line {n}\n");
        std::io::Write::write_all(&mut f, line.as_bytes()).unwrap();
        assert_eq!(close(f), Ok(()), "append {n}");
        lines.extend_from_slice(line.as_bytes());
    }
    std::fs::rename(append, root.join("made/renamed.log")).unwrap();
    want.insert("made/renamed.log".into(), lines);
    let log = m.log_text();
    drop(m);
    assert_server_holds(data.path(), &want);
    assert!(
        log.contains("Active mode, listening on 127.0.0.1:"),
        "active mode"
    );
    assert!(
        log.contains("resume transfer at offset") && !log.contains("offset 0\n"),
        "a REST at an offset"
    );
    assert!(
        !log.contains("session reuse") && !log.contains("WARN") && !log.contains("ERROR"),
        "no data connection refused, nothing retried:\n{}",
        log.lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Issue 13 follow-up: appends whose data connection vsftpd refuses for its TLS session
/// (`require_ssl_reuse=YES`) are repeated on a new control connection and arrive exactly
/// once each, in order: the refused `APPE` (vsftpd answers `150`, then `522` once the data
/// connection's handshake is done) writes nothing, and one that creates its file leaves
/// it for the repeated `APPE` to fill, once.
/// The refusals are forced: the tickets of upload data connections are left unread, so each
/// control connection's supply runs out after its first appends.
#[test]
fn vsftpd_appends_refused_for_their_tls_session_arrive_once_each_in_order() {
    use ftpfs::remote::Remote;
    let data = tempfile::tempdir().unwrap();
    let Some(server) = Server::start(ServerKind::VsftpdTls, data.path()) else {
        return;
    };
    let tls = ftpfs::ftp::tls::Tls::new(
        ftpfs::ftp::tls::TlsMode::Required,
        server.ca.as_deref(),
        &[],
        false,
    )
    .unwrap()
    .leaving_upload_tickets_unread();
    let endpoint = ftpfs::ftp::conn::Endpoint {
        host: "localhost".into(),
        port: server.port,
        user: server.user.unwrap().into(),
        password: ftpfs::secret::Secret::new(PASSWORD),
        timeout: std::time::Duration::from_secs(10),
        policy: ftpfs::ftp::retry::Policy {
            retries: 3,
            max_delay: std::time::Duration::from_millis(200),
            deadline: std::time::Duration::from_secs(20),
        },
        tls,
        limit_recheck: ftpfs::ftp::pool::DEFAULT_LIMIT_RECHECK,
        keepalive: ftpfs::ftp::conn::DEFAULT_KEEPALIVE,
        data: Default::default(),
        pasv_addr: Default::default(),
        listen: Default::default(),
        pipelining: true,
        dialogue: Default::default(),
    };
    let r = ftpfs::ftp::FtpRemote::connect(endpoint, 1, "", ftpfs::ftp::ListingMode::Auto).unwrap();
    let on_server = data.path().join("append.log");
    r.store("append.log", &b"line 0\n".to_vec()).unwrap();
    let mut want = b"line 0\n".to_vec();
    for n in 1..=40 {
        let line = format!("line {n}\n").into_bytes();
        r.append("append.log", &line)
            .unwrap_or_else(|e| panic!("append {n}: {e}"));
        want.extend_from_slice(&line);
        assert!(
            std::fs::read(&on_server).unwrap() == want,
            "after append {n}: {:?}",
            String::from_utf8_lossy(&std::fs::read(&on_server).unwrap())
        );
        if n % 10 == 0 {
            // A listing between the appends (a data connection that reads its tickets)
            // shows the size the appends made.
            let listed = r.list("").unwrap();
            let entry = listed.iter().find(|e| e.name == "append.log").unwrap();
            assert_eq!(entry.size, want.len() as u64, "listed after append {n}");
        }
    }
    // An append that creates its file, on a connection whose supply is spent.
    for n in 0..3 {
        let name = format!("new{n}.log");
        r.append(&name, &b"first\n".to_vec()).unwrap();
        assert_eq!(std::fs::read(data.path().join(&name)).unwrap(), b"first\n");
    }
    r.shutdown();
    // vsftpd's log: each refusal answers an APPE, and that APPE was made once more.
    let log: Vec<String> = server.command_log().lines().map(str::to_string).collect();
    let appends = log.iter().filter(|l| l.contains("\"APPE ")).count();
    let refused = log
        .iter()
        .filter(|l| l.contains("\"522 SSL connection failed: session reuse required"))
        .count();
    assert!(
        refused >= 10,
        "refusals forced: {refused}\n{}",
        log.join("\n")
    );
    assert_eq!(
        appends,
        43 + refused,
        "each refused APPE made once more, no other"
    );
    let creating = log
        .iter()
        .filter(|l| l.contains("\"APPE ") && l.contains("/new"))
        .count();
    assert!(
        creating > 3,
        "one of the APPEs that create their file was refused too: {creating} for 3 files"
    );
    eprintln!("{appends} APPE, {refused} refused for their TLS session");
}

/// Segmented reads over FTPS (issue 15): pure-ftpd limiting each session (`-T`, as hosting
/// servers do) and requiring TLS; each segment's data connection resumes its control
/// connection's TLS session, and the file arrives whole from several connections.
#[test]
fn a_big_file_of_a_server_limiting_each_session_is_read_in_segments_over_tls() {
    // About 4 MB/s per session for downloads.
    let Some(t) = tls_server_with(&["-T", "4000:4000"]) else {
        return;
    };
    let want = Rng(34).bytes(32 << 20);
    std::fs::write(t.data_path.join("big.bin"), &want).unwrap();
    let url = format!("ftp://{USER}@localhost:{}", t.server.port);
    let cafile = format!("cafile={}", t.ca.display());
    let m = Mount::of_url(&url, &[&cafile, "tls=required"]);
    let got = std::fs::read(m.path().join("big.bin")).unwrap();
    assert!(got == want, "the file arrives whole");
    // Logged when the file is released, just after close returns.
    let logged = wait_for(Duration::from_secs(10), || {
        m.log_text().contains("in segments: ")
    });
    let log = m.log_text();
    assert!(logged, "{log}");
    let line = log.lines().find(|l| l.contains("in segments: ")).unwrap();
    let most: u64 = line
        .split(" connections")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(most >= 2, "{line}");
    let rests = log.lines().filter(|l| l.contains("CC OUT: REST ")).count();
    assert!(rests >= 2, "ranges asked for with REST: {rests}");
}
