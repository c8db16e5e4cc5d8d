//! What servers do with an `EPSV` written right after an upload's data connection is
//! closed, before its `226` (issue 16), and what ftpfs makes of it.
//!
//! ftpfs writes the next `EPSV` early so that an upload costs one round trip less. The
//! server may still be reading the upload when the `EPSV` arrives, and most read the
//! control connection during a transfer: pure-ftpd answers any command but `ABOR` with
//! `500` there and proftpd `450` (the `EPSV` is refused, the upload goes on); pyftpdlib
//! closes the data connection for the new passive one (the upload ends short, with no
//! reply of its own); libunftp answers the `EPSV` before the upload. vsftpd reads it after.
//!
//! The raw protocol first, without ftpfs, 200 uploads per server: a `226` read where ftpfs
//! reads the verdict always means the whole file is there. The tally of what each server
//! answered is printed (`--nocapture`; `PROBE_TEXT=1` prints every reply,
//! `PROBE_PAUSE_MS=N` waits N ms between the close and the `EPSV`, as ftpfs does). Then uploads
//! through mounts of each server, and of one that takes the early `EPSV` for an abort.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;

/// One control connection, read as RFC 959 says (a multi-line reply ends at its code and a
/// space).
struct Control {
    reader: BufReader<TcpStream>,
}

impl Control {
    fn connect(server: &Server) -> Control {
        let s = TcpStream::connect((server.host.as_str(), server.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Control {
            reader: BufReader::new(s),
        };
        assert_eq!(c.reply().0, 220);
        let user = server.user.unwrap_or("anonymous");
        c.send(&format!("USER {user}"));
        if c.reply().0 == 331 {
            c.send(&format!("PASS {PASSWORD}"));
            assert_eq!(c.reply().0, 230);
        }
        c.send("TYPE I");
        assert_eq!(c.reply().0, 200);
        c
    }

    fn send(&mut self, line: &str) {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
    }

    /// The next reply's code and text; code 0 when none comes within the read timeout.
    fn reply(&mut self) -> (u32, String) {
        let mut text = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return (0, text),
                Ok(_) => {}
            }
            text.push_str(&line);
            let b = line.as_bytes();
            let first = text.as_bytes();
            if b.len() >= 4 && b[3] == b' ' && b[..3] == first[..3] {
                return (line[..3].parse().unwrap_or(0), text);
            }
        }
    }

    /// The data connection of a `229` reply.
    fn open_data(&self, text: &str) -> TcpStream {
        let port: u16 = text
            .split("|||")
            .nth(1)
            .and_then(|t| t.split('|').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {text:?}"));
        let host: std::net::IpAddr = self.reader.get_ref().peer_addr().unwrap().ip();
        TcpStream::connect(SocketAddr::new(host, port)).unwrap()
    }
}

/// 200 `STOR`s, each written with its bytes at once (as ftpfs's early upload does), its
/// data connection closed, and the next `EPSV` written at once. Returns the tally of reply
/// sequences; panics if a `226` read first ever comes with a file that is not whole.
fn probe(kind: ServerKind) -> Option<BTreeMap<String, u32>> {
    let root = tempfile::tempdir().unwrap();
    let server = Server::start(kind, root.path())?;
    let mut c = Control::connect(&server);
    c.send("EPSV");
    let (code, text) = c.reply();
    assert_eq!(code, 229, "{text}");
    let mut data = Some(c.open_data(&text));
    let mut tally = BTreeMap::new();
    for i in 0..200u32 {
        let data_conn = match data.take() {
            Some(d) => d,
            None => {
                c.send("EPSV");
                let (code, text) = c.reply();
                assert_eq!(code, 229, "{text}");
                c.open_data(&text)
            }
        };
        // Small files mostly, as `cp -r` of a source tree; some bigger, which the server
        // is more likely to be still reading when the `EPSV` arrives.
        let size = [4096usize, 4096, 65536, 200_000][i as usize % 4];
        let body: Vec<u8> = (0..size)
            .map(|j| ((j as u32 * 7 + i) % 251) as u8)
            .collect();
        let name = format!("f{i}.bin");
        c.send(&format!("STOR {name}"));
        let mut d = data_conn;
        d.write_all(&body).unwrap();
        drop(d);
        if let Some(ms) = std::env::var("PROBE_PAUSE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
        }
        c.send("EPSV");
        // Read as ftpfs reads it: the `150`; then the verdict, unless a 500 to 503
        // refused the `EPSV` (then the verdict is the next reply and nothing follows);
        // then the `229`.
        let mut seq = Vec::new();
        let next = |c: &mut Control, seq: &mut Vec<u32>| {
            let (code, text) = c.reply();
            if std::env::var("PROBE_TEXT").is_ok() {
                eprintln!("{kind:?} {i}: {}", text.trim_end());
            }
            seq.push(code);
            (code, text)
        };
        let (mut code, _) = next(&mut c, &mut seq);
        if code == 150 || code == 125 {
            code = next(&mut c, &mut seq).0;
        }
        let refused = (500..=503).contains(&code);
        if refused {
            code = next(&mut c, &mut seq).0;
        }
        let whole = code == 226 || code == 250;
        if whole {
            let stored = std::fs::read(root.path().join(&name)).unwrap_or_default();
            assert!(
                stored == body,
                "{kind:?}: upload {i} answered {seq:?} but {} of {size} bytes were stored",
                stored.len()
            );
        }
        let mut passive = None;
        if whole && !refused {
            let (code, text) = next(&mut c, &mut seq);
            if code == 229 {
                passive = Some(text);
            }
        }
        let seq: Vec<String> = seq.iter().map(u32::to_string).collect();
        *tally.entry(seq.join(" ")).or_insert(0) += 1;
        if !whole || (!refused && passive.is_none()) {
            // Out of step: a new control connection.
            c = Control::connect(&server);
            continue;
        }
        data = passive.map(|t| c.open_data(&t));
    }
    eprintln!("{kind:?} after an early EPSV: {tally:?}");
    Some(tally)
}

/// vsftpd leaves the early `EPSV` unread until the upload's end: a `226` always comes
/// first, then the `229`, and the file is whole.
#[test]
fn early_epsv_after_an_upload_is_answered_after_its_226() {
    for kind in [ServerKind::Vsftpd] {
        let Some(tally) = probe(kind) else {
            assert!(!require_servers(), "{kind:?} is not installed");
            continue;
        };
        assert_eq!(tally.get("150 226 229"), Some(&200), "{kind:?}: {tally:?}");
    }
}

/// The servers that read the control connection during an upload (proftpd answers `450`
/// there, pure-ftpd `500`, pyftpdlib ends the upload short, libunftp answers the `EPSV`
/// before the upload): whatever they answer,
/// a `226` read where ftpfs reads the verdict means the whole file is there (checked in
/// [`probe`]), so ftpfs can take it, or repeat the upload on anything else.
#[test]
fn early_epsv_never_gets_a_226_for_a_short_upload() {
    for kind in [
        ServerKind::PureFtpd,
        ServerKind::Proftpd,
        ServerKind::Pyftpdlib,
        ServerKind::Unftp,
    ] {
        if probe(kind).is_none() {
            assert!(!require_servers(), "{kind:?} is not installed");
        }
    }
}

/// A mount of `server` that writes the early `EPSV` on loopback too (it waits for a
/// round trip of 4 ms otherwise).
fn mount(server: &Server) -> Mount {
    Mount::new_env(server, &[], &[("FTPFS_TEST_EARLY_PASSIVE", "1")])
}

/// `n` small files written through a mount, each checked on the server after its
/// `close`, which must succeed.
fn write_files(server: &Server, m: &Mount, n: u32) {
    let dir = m.path().join("d");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let body: Vec<u8> = (0..4096u32).map(|j| ((j * 31 + i) % 256) as u8).collect();
        let mut f = std::fs::File::create(dir.join(format!("f{i}"))).unwrap();
        f.write_all(&body).unwrap();
        assert_eq!(close(f), Ok(()), "close of f{i}; log:\n{}", m.log_text());
        let stored = std::fs::read(server.root.join("d").join(format!("f{i}"))).unwrap();
        assert!(stored == body, "f{i} on the server: {} bytes", stored.len());
    }
}

const EARLY: &str = "answered, with the next data connection asked for already";
const TURNED_OFF: &str = "asked for after an upload's reply from now on";
const REFUSED: &str = "the EPSV written early was refused during it";

/// vsftpd (plain, and FTPS with `require_ssl_reuse`) leaves the early `EPSV` unread until
/// the upload's end: every upload through a mount after the first (which measures the
/// round trip) is answered `226` with it, byte-exact, and its data connection serves a
/// later transfer.
#[test]
fn uploads_with_an_early_epsv_are_byte_exact_on_servers_that_take_it() {
    for kind in [ServerKind::Vsftpd, ServerKind::VsftpdTls] {
        let root = tempfile::tempdir().unwrap();
        let Some(server) = Server::start(kind, root.path()) else {
            assert!(!require_servers(), "{kind:?} is not installed");
            continue;
        };
        let m = mount(&server);
        write_files(&server, &m, 12);
        let log = m.log_text();
        assert!(!log.contains(TURNED_OFF), "{kind:?}:\n{log}");
        assert_eq!(log.matches(EARLY).count(), 11, "{kind:?}:\n{log}");
        assert!(
            log.matches("using the prepared data connection").count() >= 11,
            "{kind:?}: the uploads after the first on a connection use the data connection \
             asked for early:\n{log}"
        );
    }
}

/// pure-ftpd and proftpd (refuse an `EPSV` that comes during the upload, with `500` and
/// `450`, then answer the upload), pyftpdlib (ends the upload short for it, without a
/// reply) and libunftp (answers it before the upload): every `close` still tells the
/// truth and the files are byte-exact, whichever way each race goes (on loopback the
/// pause before the `EPSV` is microseconds).
#[test]
fn uploads_with_an_early_epsv_are_byte_exact_on_servers_that_read_during_a_transfer() {
    for kind in [
        ServerKind::PureFtpd,
        ServerKind::PureFtpdTls,
        ServerKind::Proftpd,
        ServerKind::Pyftpdlib,
        ServerKind::Unftp,
        ServerKind::UnftpTls,
    ] {
        let root = tempfile::tempdir().unwrap();
        let Some(server) = Server::start(kind, root.path()) else {
            assert!(!require_servers(), "{kind:?} is not installed");
            continue;
        };
        let m = mount(&server);
        write_files(&server, &m, 12);
        // The early `EPSV` was written: taken, refused during the upload, or lost and
        // then turned off (whichever way the race went); never simply not tried.
        let log = m.log_text();
        let tried = log.matches(EARLY).count()
            + log.matches(REFUSED).count()
            + log.matches(TURNED_OFF).count();
        assert!(tried >= 1, "{kind:?}: no EPSV was written early:\n{log}");
    }
}

/// A server that takes the early `EPSV` for an abort (`426`, the file emptied): the upload
/// is sent again, whole, and `close` succeeds; the `EPSV` waits for the reply from then
/// on, so only one upload is spoilt.
#[test]
fn an_upload_aborted_by_the_early_epsv_is_sent_again_and_close_succeeds() {
    let root = tempfile::tempdir().unwrap();
    let Some(server) = Server::quirky(root.path(), &["upload-aborted-by-command"], &[]) else {
        return;
    };
    let m = mount(&server);
    write_files(&server, &m, 3);
    let log = m.log_text();
    assert_eq!(log.matches(TURNED_OFF).count(), 1, "{log}");
    let commands = server.command_log();
    // Aborted by it (`426`), or, on a loaded machine where the `EPSV` came before the
    // server read the upload's end, ended short by stock pyftpdlib without a reply: both
    // are an upload spoilt by the early `EPSV`, sent again, and the last one.
    assert!(
        commands.matches("ABORTED-BY EPSV").count() <= 1,
        "{commands}"
    );
    // f0 measures the round trip; f1 has the early EPSV, is aborted and sent again.
    assert_eq!(commands.matches("STOR /d/f0").count(), 1, "{commands}");
    assert_eq!(commands.matches("STOR /d/f1").count(), 2, "{commands}");
    assert_eq!(commands.matches("STOR /d/f2").count(), 1, "{commands}");
}
