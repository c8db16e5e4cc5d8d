//! System integration: `mount -t fuse.ftpfs`, `mount -T <fstab>`, the `mount.ftpfs` link, a
//! credentials file for fstab, `umount`, the password kept out of `/proc/<pid>/cmdline`, and
//! shell completions.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// mount(8) runs helpers from /sbin (`mount.ftpfs`) and mount.fuse3 runs `ftpfs` from a
/// fixed PATH (`/usr/local/bin`, ...), not the caller's. While the test runs, both are
/// links to this build, as `scripts/install.sh` would make them, removed after. An ftpfs
/// installed there already is left alone and the test skipped (an environment matter, not
/// a missing server).
struct Installed(Vec<PathBuf>);

impl Installed {
    fn link() -> Option<Installed> {
        let ours = Path::new(env!("CARGO_BIN_EXE_ftpfs"));
        let mut made = Installed(Vec::new());
        for target in ["/usr/local/bin/ftpfs", "/usr/sbin/mount.ftpfs"] {
            let target = Path::new(target);
            if target.symlink_metadata().is_ok() {
                eprintln!(
                    "SKIP: {} exists (an installation); not testing mount(8)",
                    target.display()
                );
                return None;
            }
            std::fs::create_dir_all(target.parent().unwrap()).ok()?;
            std::os::unix::fs::symlink(ours, target).ok()?;
            made.0.push(target.to_path_buf());
        }
        Some(made)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn credentials_file(dir: &Path, mode: u32) -> PathBuf {
    let f = dir.join("creds");
    std::fs::write(&f, format!("username={USER}\npassword={PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    f
}

/// Runs a mount command (no stdin) and asserts it succeeded, showing its stderr if not.
fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn have_mount_fuse3() -> bool {
    let ok = ["/sbin/mount.fuse3", "/usr/sbin/mount.fuse3"]
        .iter()
        .any(|p| Path::new(p).exists());
    if !ok {
        if require_servers() {
            panic!("mount.fuse3 (package fuse3) is required");
        }
        eprintln!("SKIP: no mount.fuse3");
    }
    ok
}

/// Unmounts with umount(8), then waits for the mount to go.
///
/// "target is busy" is asked again for a while: another test thread that forks a child
/// while this one has a file of the mount open gives the child that descriptor until it
/// execs (CI once failed here under load). Any other failure fails at once, with
/// umount's own words.
fn umount(dir: &Path) {
    let mut last = String::new();
    let done = wait_for(Duration::from_secs(10), || {
        let out = Command::new("umount").arg(dir).output().unwrap();
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success() || last.contains("busy"),
            "umount {}: {last}",
            dir.display()
        );
        out.status.success()
    });
    assert!(done, "umount {}: {last}", dir.display());
    assert!(wait_for(Duration::from_secs(10), || !is_mounted(dir)));
}

/// Reads the server's hello.txt through the mount at `dir`, then unmounts it.
fn read_hello_and_umount(dir: &Path) -> String {
    let read = std::fs::read_to_string(dir.join("hello.txt"));
    umount(dir);
    read.unwrap()
}

/// A server with hello.txt, a mode-600 credentials file for it, and an empty mountpoint.
struct Setup {
    data: tempfile::TempDir,
    server: Server,
    secrets: tempfile::TempDir,
    creds: PathBuf,
    dir: tempfile::TempDir,
}

fn setup_with_credentials() -> Option<Setup> {
    let (data, server) = server_with_file()?;
    let secrets = tempfile::tempdir().unwrap();
    let creds = credentials_file(secrets.path(), 0o600);
    Some(Setup {
        data,
        server,
        secrets,
        creds,
        dir: tempfile::tempdir().unwrap(),
    })
}

fn server_with_file() -> Option<(tempfile::TempDir, Server)> {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "hello\n").unwrap();
    let server = Server::start(ServerKind::PureFtpd, data.path())?;
    Some((data, server))
}

/// All mount(8) paths in one test: they share the temporary installation.
#[test]
fn mount_t_fuse_ftpfs_mount_t_ftpfs_and_an_fstab_line_all_mount() {
    if !have_mount_fuse3() {
        return;
    }
    let Some(_installed) = Installed::link() else {
        return;
    };
    mount_t_fuse_ftpfs_with_a_credentials_file_reads_writes_and_umounts();
    an_fstab_line_mounts_with_mount_capital_t();
    mount_t_ftpfs_uses_the_mount_ftpfs_helper();
}

fn mount_t_ftpfs_uses_the_mount_ftpfs_helper() {
    let Some(Setup {
        data: _data,
        server,
        secrets,
        creds,
        dir,
    }) = setup_with_credentials()
    else {
        return;
    };
    run_ok(
        Command::new("mount")
            .args(["-t", "ftpfs"])
            .arg(format!("127.0.0.1:{}:/", server.port))
            .arg(dir.path())
            .arg("-o")
            .arg(format!(
                "ro,credentials={},{}",
                creds.display(),
                own_dirs(secrets.path())
            )),
        "mount -t ftpfs",
    );
    let read = std::fs::read_to_string(dir.path().join("hello.txt"));
    let write = std::fs::write(dir.path().join("x"), "no");
    umount(dir.path());
    assert_eq!(read.unwrap(), "hello\n");
    assert_eq!(write.unwrap_err().raw_os_error(), Some(libc::EROFS));
}

fn mount_t_fuse_ftpfs_with_a_credentials_file_reads_writes_and_umounts() {
    let Some(Setup {
        data,
        server,
        secrets,
        creds,
        dir,
    }) = setup_with_credentials()
    else {
        return;
    };
    run_ok(
        Command::new("mount")
            .args(["-t", "fuse.ftpfs"])
            .arg(format!("ftp://127.0.0.1:{}/", server.port))
            .arg(dir.path())
            .arg("-o")
            .arg(format!(
                "credentials={},_netdev,nofail,x-systemd.automount,{}",
                creds.display(),
                own_dirs(secrets.path())
            )),
        "mount",
    );
    let read = std::fs::read_to_string(dir.path().join("hello.txt"));
    let wrote = std::fs::write(dir.path().join("new.txt"), "via mount -t\n");
    umount(dir.path());
    assert_eq!(read.unwrap(), "hello\n");
    wrote.unwrap();
    assert_eq!(
        std::fs::read_to_string(data.path().join("new.txt")).unwrap(),
        "via mount -t\n"
    );
}

fn an_fstab_line_mounts_with_mount_capital_t() {
    let Some(Setup {
        data: _data,
        server,
        secrets,
        creds,
        dir,
    }) = setup_with_credentials()
    else {
        return;
    };
    let fstab = secrets.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# a test fstab\n127.0.0.1:{}:/ {} fuse.ftpfs _netdev,noauto,x-systemd.automount,credentials={},{} 0 0\n",
            server.port,
            dir.path().display(),
            creds.display(),
            own_dirs(secrets.path())
        ),
    )
    .unwrap();
    run_ok(
        Command::new("mount").arg("-T").arg(&fstab).arg(dir.path()),
        "mount -T",
    );
    assert_eq!(read_hello_and_umount(dir.path()), "hello\n");
}

#[test]
fn the_mount_ftpfs_link_takes_mount_helper_arguments() {
    let Some(Setup {
        data: _data,
        server,
        secrets,
        creds,
        dir: _dir,
    }) = setup_with_credentials()
    else {
        return;
    };
    let link = secrets.path().join("mount.ftpfs");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ftpfs"), &link).unwrap();
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        test_env(&mut Command::new(&link))
            .arg(format!("ftp://127.0.0.1:{}", server.port))
            .arg(dir.path())
            .args(["-s", "-n", "-o"])
            .arg(format!(
                "rw,relatime,credentials={},{}",
                creds.display(),
                own_dirs(secrets.path())
            )),
        "mount helper",
    );
    assert_eq!(read_hello_and_umount(dir.path()), "hello\n");
}

#[test]
fn a_credentials_file_others_can_read_is_refused() {
    let Some((_data, server)) = server_with_file() else {
        return;
    };
    let secrets = tempfile::tempdir().unwrap();
    let creds = credentials_file(secrets.path(), 0o644);
    let dir = tempfile::tempdir().unwrap();
    let out = ftpfs()
        .arg("mount")
        .arg(format!("ftp://127.0.0.1:{}", server.port))
        .arg(dir.path())
        .arg("-o")
        .arg(format!("credentials={}", creds.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!is_mounted(dir.path()));
}

/// `ftpfs mount` in the background (detached, as from fstab) with debug logging, the
/// options `extra` (each with its leading comma) and `syslog` as its syslog socket.
fn mount_detached_with_debug(port: u16, mnt: &Path, creds: &Path, extra: &str, syslog: &Path) {
    run_ok(
        ftpfs()
            .arg("mount")
            .arg(format!("ftp://127.0.0.1:{port}"))
            .arg(mnt)
            .arg("-o")
            .arg(format!(
                "credentials={},debug{extra},{}",
                creds.display(),
                own_state()
            ))
            .env("FTPFS_SYSLOG_SOCKET", syslog),
        "mount",
    );
}

/// A detached mount (as from fstab) has no terminal: without a log file its log goes to
/// syslog, as daemon-facility messages; with `-o log_file=` to that file. The password is in
/// neither.
#[test]
fn a_detached_mount_logs_to_syslog_or_to_the_log_file_option() {
    let Some(Setup {
        data: _data,
        server,
        secrets,
        creds,
        dir: _dir,
    }) = setup_with_credentials()
    else {
        return;
    };
    let sock_path = secrets.path().join("log.sock");
    let syslog = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // Read as a syslog daemon does: all the time, on a thread of its own (the socket's
    // queue holds 10 messages on Linux by default).
    let reader = syslog.try_clone().unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drain = {
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            // Bounded: the test stops it, and 10 minutes is far past any test's end.
            for _ in 0..2000 {
                if let Ok(n) = reader.recv(&mut buf) {
                    let m = String::from_utf8_lossy(&buf[..n]).to_string();
                    received.lock().unwrap().push(m);
                } else if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    // Mounts in the background, reads through the mount and unmounts.
    let mount_read_umount = |extra: &str| {
        mount_detached_with_debug(server.port, dir.path(), &creds, extra, &sock_path);
        assert_eq!(read_hello_and_umount(dir.path()), "hello\n");
    };
    mount_read_umount("");
    let has = |prefix: &str, text: &str| {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|m| m.starts_with(prefix) && m.contains(text))
    };
    assert!(
        has("<31>ftpfs[", "listed /"),
        "debug lines as daemon.debug: {:?}",
        received.lock().unwrap()
    );
    assert!(
        wait_for(Duration::from_secs(5), || has(
            "<30>ftpfs[",
            "was unmounted"
        )),
        "the unmount as daemon.info: {:?}",
        received.lock().unwrap()
    );
    assert!(received
        .lock()
        .unwrap()
        .iter()
        .all(|m| !m.contains(PASSWORD)));

    let log = secrets.path().join("ftpfs.log");
    mount_read_umount(&format!(",log_file={}", log.display()));
    assert!(wait_for(Duration::from_secs(5), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("was unmounted"))
    }));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("mounted ftp://{USER}@127.0.0.1")),
        "{text}"
    );
    assert!(!text.contains(PASSWORD));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drain.join().unwrap();
    // The first daemon may still say goodbye after its unmount; the second says nothing here.
    let pids: std::collections::BTreeSet<String> = received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|m| Some(m.split_once("ftpfs[")?.1.split_once(']')?.0.to_string()))
        .collect();
    assert_eq!(
        pids.len(),
        1,
        "with a log file nothing goes to syslog: {:?}",
        received.lock().unwrap()
    );
}

/// A syslog that stops reading (its socket's queue full) must not stop the file system:
/// the daemon's log lines are dropped, not waited on. Here nothing ever reads the socket,
/// and the mount's debug log is far more than the queue holds.
#[test]
fn a_syslog_that_does_not_read_never_stops_the_mount() {
    let Some(Setup {
        data: _data,
        server,
        secrets,
        creds,
        dir: _dir,
    }) = setup_with_credentials()
    else {
        return;
    };
    let sock_path = secrets.path().join("log.sock");
    let syslog = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    mount_detached_with_debug(server.port, dir.path(), &creds, "", &sock_path);
    // Reads, listings and writes on a thread, so that a hang fails the test instead of
    // holding it: each logs several debug lines.
    let path = dir.path().to_path_buf();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for i in 0..20 {
            let _ = std::fs::read_to_string(path.join("hello.txt"));
            let _ = std::fs::read_dir(&path).map(|d| d.count());
            let _ = std::fs::write(path.join(format!("f{i}")), "x");
        }
        let _ = done_tx.send(());
    });
    let finished = done_rx.recv_timeout(Duration::from_secs(120)).is_ok();
    if !finished {
        // Let the stuck requests fail, so the unmount below can end the daemon.
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(dir.path())
            .status();
    }
    assert!(finished, "file operations hung behind a full syslog");
    assert_eq!(read_hello_and_umount(dir.path()), "hello\n");
    let mut buf = vec![0u8; 64 * 1024];
    syslog.set_nonblocking(true).unwrap();
    assert!(syslog.recv(&mut buf).is_ok(), "the first lines were taken");
}

#[test]
fn a_password_in_the_url_is_not_in_the_daemons_command_line() {
    let Some((_data, server)) = server_with_file() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = ftpfs()
        .args(["mount", "-f", "-o", &own_state()])
        .arg(format!("ftp://{USER}:{PASSWORD}@127.0.0.1:{}", server.port))
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_for(Duration::from_secs(20), || is_mounted(dir.path()));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
    let read = std::fs::read_to_string(dir.path().join("hello.txt"));
    let unmounted = unmount(dir.path());
    let exited = exits_within(&mut child, Duration::from_secs(10));
    if !exited {
        let _ = child.kill();
    }
    let _ = child.wait();
    assert!(up);
    assert_eq!(unmounted, Ok(()));
    assert!(exited, "the daemon ends with its mount");
    assert_eq!(read.unwrap(), "hello\n", "the password still logged in");
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(!cmdline.contains(PASSWORD), "{cmdline}");
    assert!(cmdline.contains(&format!("{USER}:******@")), "{cmdline}");
}

#[test]
fn completions_are_generated_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let out = ftpfs().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("umount") && text.contains("password-file"),
            "{shell}"
        );
    }
}

#[test]
fn mount_help_documents_every_option_family() {
    let out = ftpfs().args(["mount", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "tls=",
        "cafile=",
        "insecure",
        "credentials=",
        "deadline=",
        "retries=",
        "allow_other",
        "uid=",
        "umask=",
        "ro",
        "_netdev",
        "--password-file",
        "fingerprint=",
        "data=",
        "pasv_addr=",
        "exact_times=",
        "strict_times",
        "prefetch=",
        "host=",
        "allo",
        "keepalive=",
        "connections_recheck=",
        "listing=",
        "upload=",
        "spool_dir=",
        "recovery_dir=",
        "writeback",
        "writeback_max=",
        "log_file=",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

/// `cat` as user nobody (65534), through setpriv.
fn cat_as_nobody(path: &Path) -> Result<String, String> {
    stdout_or_stderr(as_nobody().arg("cat").arg(path))
}

/// Nothing unsafe by default: other users cannot enter a mount without `allow_other`; with
/// it and `default_permissions` the kernel enforces the mode that `uid=`, `gid=` and
/// `umask=` describe.
#[test]
fn allow_other_default_permissions_uid_gid_and_umask_do_what_they_say() {
    let Some((data, server)) = server_with_file() else {
        return;
    };
    let _ = data;
    let private = Mount::new(&server, &[]);
    let file = private.path().join("hello.txt");
    let e = cat_as_nobody(&file).unwrap_err();
    assert!(e.contains("Permission denied"), "{e}");
    drop(private);

    let shared = Mount::new(
        &server,
        &["allow_other,default_permissions,uid=1234,gid=2345,umask=077"],
    );
    let file = shared.path().join("hello.txt");
    let md = std::fs::metadata(&file).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((md.uid(), md.gid(), md.mode() & 0o077), (1234, 2345, 0));
    let e = cat_as_nobody(&file).unwrap_err();
    assert!(
        e.contains("Permission denied"),
        "mode 0600 keeps nobody out: {e}"
    );
    drop(shared);

    let open = Mount::new(&server, &["allow_other,default_permissions,umask=022"]);
    assert_eq!(
        cat_as_nobody(&open.path().join("hello.txt")).unwrap(),
        "hello\n"
    );
}

#[test]
fn install_script_puts_binary_mount_helper_and_completions_in_place() {
    let dest = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("DESTDIR", dest.path())
        .env("FTPFS_BIN", env!("CARGO_BIN_EXE_ftpfs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = dest.path();
    let bin = d.join("usr/local/bin/ftpfs");
    assert!(bin.metadata().unwrap().permissions().mode() & 0o111 != 0);
    assert_eq!(
        std::fs::read_link(d.join("usr/sbin/mount.ftpfs")).unwrap(),
        Path::new("/usr/local/bin/ftpfs")
    );
    for f in [
        "usr/share/bash-completion/completions/ftpfs",
        "usr/share/zsh/vendor-completions/_ftpfs",
        "usr/share/fish/vendor_completions.d/ftpfs.fish",
    ] {
        assert!(d.join(f).metadata().unwrap().len() > 100, "{f}");
    }
    let out = Command::new("bash")
        .arg(&script)
        .arg("uninstall")
        .env("DESTDIR", d)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!bin.exists());
}

/// With no other password source and a terminal, ftpfs asks. `script` gives it a pty.
#[test]
fn the_password_is_asked_for_on_a_terminal() {
    let Some((_data, server)) = server_with_file() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{} mount ftp://{USER}@127.0.0.1:{} {} -o {}",
        env!("CARGO_BIN_EXE_ftpfs"),
        server.port,
        dir.path().display(),
        own_dirs(state.path())
    );
    let mut child = test_env(&mut Command::new("script"))
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .env_remove("FTPFS_PASSWORD")
        .env("NETRC", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let _ = writeln!(stdin, "{PASSWORD}");
    }
    let out = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    let read = std::fs::read_to_string(dir.path().join("hello.txt"));
    let _ = unmount(dir.path());
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.to_lowercase().contains("password"),
        "a prompt: {shown}"
    );
    assert!(!shown.contains(PASSWORD), "typed without echo: {shown}");
    assert_eq!(read.unwrap(), "hello\n");
}

/// The two password sources meant for scripts, through real mounts: a `~/.netrc` entry for
/// the host (`$NETRC` here), which also supplies the user name, and `--password-file`.
/// Neither puts the password on a command line.
#[test]
fn a_netrc_entry_or_a_password_file_logs_in_with_no_password_on_the_command_line() {
    let Some((_data, server)) = server_with_file() else {
        return;
    };
    let secrets = tempfile::tempdir().unwrap();
    let netrc = secrets.path().join("netrc");
    std::fs::write(
        &netrc,
        format!(
            "machine other.example login bob password nope\n\
             machine 127.0.0.1 login {USER} password {PASSWORD}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pwfile = secrets.path().join("pw");
    std::fs::write(&pwfile, format!("{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    // No user in the source: the netrc entry names it.
    run_ok(
        ftpfs()
            .args(["mount", "-o", &own_state()])
            .arg(format!("ftp://127.0.0.1:{}/", server.port))
            .arg(dir.path())
            .env_remove("FTPFS_PASSWORD")
            .env("NETRC", &netrc),
        "mount with a netrc entry",
    );
    assert_eq!(read_hello_and_umount(dir.path()), "hello\n");

    run_ok(
        ftpfs()
            .args(["mount", "-o", &own_state(), "--password-file"])
            .arg(&pwfile)
            .arg(server.url())
            .arg(dir.path())
            .env_remove("FTPFS_PASSWORD")
            .env("NETRC", "/nonexistent"),
        "mount with --password-file",
    );
    assert_eq!(read_hello_and_umount(dir.path()), "hello\n");
}
