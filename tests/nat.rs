//! A NAT box or firewall that forgets idle connections, for real: pure-ftpd runs in a
//! network namespace the test creates, behind connection tracking that forgets an
//! established TCP connection after 2 s of silence and drops the packets of a connection
//! it has forgotten (`nf_conntrack_tcp_loose=0`, `ct state invalid drop`), as NAT
//! gateways and stateful firewalls do after minutes. During a long upload the control
//! connection is silent, so the server's final reply would be dropped and an upload that
//! worked would fail. TCP keepalive on the control connection keeps it remembered.
//!
//! Needs `ip` and `nft` (Debian: iproute2, nftables); skipped without them unless
//! `FTPFS_REQUIRE_SERVERS=1`. Everything created is removed on drop.

mod common;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::process::{Command, Stdio};

use common::*;

/// A network namespace joined to ours by a veth pair, with a forgetful firewall inside.
struct Netns {
    name: String,
    /// The namespace's address, where the server listens.
    addr: String,
}

fn run(args: &[&str], input: Option<&str>) -> bool {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null());
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    if let Some(text) = input {
        let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
    }
    child.wait().is_ok_and(|s| s.success())
}

impl Netns {
    fn new() -> Option<Netns> {
        let have = |tool: &str| run(&["sh", "-c", &format!("command -v {tool}")], None);
        if !have("nft") || !have("ip") {
            assert!(!require_servers(), "nft and ip are required");
            eprintln!("SKIP: no nft or ip");
            return None;
        }
        let id = std::process::id() % 10000;
        let ns = Netns {
            name: format!("ftpfs-nat-{id}"),
            addr: format!("10.214.{}.2", id % 250),
        };
        let (outside, inside) = (format!("ftnh{id}"), format!("ftnn{id}"));
        let host_addr = format!("10.214.{}.1/30", id % 250);
        let inside_addr = format!("{}/30", ns.addr);
        let n = ns.name.as_str();
        let firewall = "table inet forgetful {
            chain in { type filter hook input priority 0; ct state invalid counter drop; }
            chain out { type filter hook output priority 0; ct state invalid counter drop; }
        }";
        let steps: Vec<(Vec<&str>, Option<&str>)> = vec![
            (vec!["ip", "netns", "add", n], None),
            (
                vec![
                    "ip", "link", "add", &outside, "type", "veth", "peer", "name", &inside,
                    "netns", n,
                ],
                None,
            ),
            (vec!["ip", "addr", "add", &host_addr, "dev", &outside], None),
            (vec!["ip", "link", "set", &outside, "up"], None),
            (
                vec![
                    "ip",
                    "netns",
                    "exec",
                    n,
                    "ip",
                    "addr",
                    "add",
                    &inside_addr,
                    "dev",
                    &inside,
                ],
                None,
            ),
            (
                vec!["ip", "netns", "exec", n, "ip", "link", "set", &inside, "up"],
                None,
            ),
            (
                vec!["ip", "netns", "exec", n, "ip", "link", "set", "lo", "up"],
                None,
            ),
            (
                vec!["ip", "netns", "exec", n, "nft", "-f", "-"],
                Some(firewall),
            ),
            (
                vec![
                    "ip",
                    "netns",
                    "exec",
                    n,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.netfilter.nf_conntrack_tcp_loose=0",
                    "net.netfilter.nf_conntrack_tcp_timeout_established=2",
                ],
                None,
            ),
        ];
        for (args, input) in steps {
            assert!(run(&args, input), "setting up the namespace: {args:?}");
        }
        Some(ns)
    }

    /// Packets the firewall dropped as belonging to a connection it had forgotten.
    fn dropped(&self) -> u64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split("counter packets ")
            .skip(1)
            .filter_map(|s| s.split(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes the veth pair with it.
        let _ = run(&["ip", "netns", "del", &self.name], None);
    }
}

/// Writes `data` as `name` through the mount, back half first, so it is sent in one STOR
/// at close rather than streamed while written; returns the result of close(2).
fn upload(m: &Mount, name: &str, data: &[u8]) -> Result<(), i32> {
    let f = std::fs::File::create(m.path().join(name)).unwrap();
    let half = data.len() / 2;
    f.write_all_at(&data[half..], half as u64).unwrap();
    f.write_all_at(&data[..half], 0).unwrap();
    close(f)
}

/// 6 MiB at the server's 2 MB/s take 3 s, longer than the firewall remembers a silent
/// connection. With keepalive probes every second the upload succeeds in one attempt;
/// without them, the same upload fails (the firewall dropped the server's reply), which
/// shows the firewall is really forgetting.
#[test]
fn a_firewall_that_forgets_idle_connections_does_not_break_a_long_upload() {
    let Some(ns) = Netns::new() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let Some(server) =
        Server::pure_ftpd_in_netns(data.path(), &ns.name, &ns.addr, &["-T", "2000:2000"])
    else {
        return;
    };
    let recovery = tempfile::tempdir().unwrap();
    let rec = format!("recovery_dir={}", recovery.path().display());
    let new = Rng(41).bytes(6 << 20);
    {
        let m = Mount::new(&server, &["timeout=3,retries=0,keepalive=1", &rec]);
        assert_eq!(upload(&m, "kept.bin", &new), Ok(()));
        assert!(std::fs::read(data.path().join("kept.bin")).unwrap() == new);
        assert!(!m.log_text().contains("timed out"));
    }
    let before = ns.dropped();
    {
        let m = Mount::new(&server, &["timeout=3,retries=0,keepalive=0", &rec]);
        assert_eq!(
            upload(&m, "lost.bin", &new),
            Err(libc::ETIMEDOUT),
            "without keepalive the firewall drops the server's reply"
        );
    }
    assert!(ns.dropped() > before, "the firewall dropped packets");
}
