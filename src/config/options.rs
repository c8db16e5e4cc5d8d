//! The `-o` mount options, read into [`MountOpts`].
//!
//! One comma-separated string mixes three audiences: options for ftpfs (checked here, with
//! a range or a list of values and a clear message for anything else), options meant for
//! the kernel (`nodev`, `noatime`..., passed on), and options for mount(8), fstab and
//! systemd (`_netdev`, `noauto`, `x-systemd.*`..., accepted and ignored). An unknown option
//! is an error rather than a silent no-op. Defaults and the checks that need more than one
//! option are applied when [`Config`](super::Config) is built.

use std::path::PathBuf;

/// What `-o` options set; the rest of [`Config`](super::Config) comes from flags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MountOpts {
    pub read_only: bool,
    pub allow_other: bool,
    pub allow_root: bool,
    pub default_permissions: bool,
    pub dir_cache_ttl: Option<u64>,
    pub connections: Option<usize>,
    pub timeout: Option<u64>,
    pub retries: Option<u32>,
    pub retry_delay: Option<u64>,
    pub deadline: Option<u64>,
    pub connections_recheck: Option<u64>,
    pub keepalive: Option<u64>,
    pub tls: Option<crate::ftp::tls::TlsMode>,
    pub cafile: Option<PathBuf>,
    /// `fingerprint=sha256:HEX`, as often as given: certificates trusted as they are.
    pub fingerprints: Vec<[u8; 32]>,
    pub insecure: bool,
    pub credentials: Option<PathBuf>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub umask: Option<u32>,
    pub listing: Option<crate::ftp::ListingMode>,
    pub data: Option<crate::ftp::active::DataMode>,
    pub pasv_addr: Option<crate::ftp::active::PasvAddr>,
    /// `active_addr=IP`: the address active mode announces.
    pub active_addr: Option<std::net::IpAddr>,
    /// `active_ports=LOW:HIGH`: the ports active mode listens on.
    pub active_ports: Option<(u16, u16)>,
    /// `pipelining=on|off`.
    pub pipelining: Option<bool>,
    pub exact_times: Option<bool>,
    pub compress: Option<crate::ftp::deflate::Compress>,
    pub strict_times: bool,
    pub prefetch: Option<bool>,
    /// `host=NAME`: the virtual host to name with `HOST` (RFC 7151).
    pub vhost: Option<String>,
    /// `allo`: `ALLO size` before each `STOR`.
    pub allo: bool,
    pub spool_dir: Option<PathBuf>,
    pub recovery_dir: Option<PathBuf>,
    pub upload: Option<crate::fs::UploadMode>,
    pub writeback: bool,
    pub writeback_max: Option<u64>,
    pub log_file: Option<PathBuf>,
    pub kernel: Vec<String>,
}

/// A size: bytes, or with a `K`, `M` or `G` suffix (powers of 1024).
fn parse_size(v: &str) -> Option<u64> {
    let (digits, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => v.split_at(i),
        None => (v, ""),
    };
    let shift = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// Parses a comma-separated `-o` string into `opts`.
pub fn parse_mount_options(s: &str, opts: &mut MountOpts) -> Result<(), String> {
    for opt in s.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        let need = || value.ok_or_else(|| format!("option {key} needs a value"));
        let num = |_: Option<&str>| -> Result<u64, String> {
            need()?
                .parse::<u64>()
                .map_err(|_| format!("option {key}: {:?} is not a number", value.unwrap_or("")))
        };
        // A number within `lo..=hi`; `unit` ends the message ("" or " seconds").
        let ranged = |lo: u64, hi: u64, unit: &str| -> Result<u64, String> {
            let n = num(value)?;
            if (lo..=hi).contains(&n) {
                Ok(n)
            } else {
                Err(format!("{key} must be between {lo} and {hi}{unit}"))
            }
        };
        match key {
            "ro" => opts.read_only = true,
            "rw" => opts.read_only = false,
            "allow_other" => opts.allow_other = true,
            "allow_root" => opts.allow_root = true,
            "default_permissions" => opts.default_permissions = true,
            "dir_cache_ttl" => opts.dir_cache_ttl = Some(num(value)?),
            "connections" => opts.connections = Some(ranged(1, 64, "")? as usize),
            "timeout" => opts.timeout = Some(ranged(1, 3600, " seconds")?),
            "retries" => opts.retries = Some(ranged(0, 100, "")? as u32),
            "retry_delay" => opts.retry_delay = Some(ranged(1, 300, " seconds")?),
            "deadline" => opts.deadline = Some(ranged(1, 3600, " seconds")?),
            "connections_recheck" => opts.connections_recheck = Some(ranged(1, 86400, " seconds")?),
            // 0 turns it off.
            "keepalive" => opts.keepalive = Some(ranged(0, 32767, " seconds")?),
            "tls" => {
                use crate::ftp::tls::TlsMode;
                opts.tls = Some(match need()? {
                    "off" => TlsMode::Off,
                    "try" => TlsMode::Try,
                    "required" => TlsMode::Required,
                    "implicit" => TlsMode::Implicit,
                    v => {
                        return Err(format!(
                            "tls must be off, try, required or implicit, not {v:?}"
                        ))
                    }
                })
            }
            "cafile" => opts.cafile = Some(PathBuf::from(need()?)),
            "fingerprint" => opts
                .fingerprints
                .push(crate::ftp::tls::parse_fingerprint(need()?)?),
            "insecure" => opts.insecure = true,
            "uid" => opts.uid = Some(num(value)? as u32),
            "gid" => opts.gid = Some(num(value)? as u32),
            "umask" => {
                opts.umask = Some(
                    u32::from_str_radix(need()?, 8)
                        .ok()
                        .filter(|m| *m <= 0o777)
                        .ok_or("umask must be octal, at most 777")?,
                )
            }
            // Read before validation, to start logging first (see main.rs).
            "debug" => {}
            "spool_dir" => opts.spool_dir = Some(PathBuf::from(need()?)),
            "recovery_dir" => opts.recovery_dir = Some(PathBuf::from(need()?)),
            "log_file" => opts.log_file = Some(PathBuf::from(need()?)),
            "upload" => {
                opts.upload = Some(match need()? {
                    "atomic" => crate::fs::UploadMode::Atomic,
                    "inplace" => crate::fs::UploadMode::InPlace,
                    v => return Err(format!("upload must be atomic or inplace, not {v:?}")),
                })
            }
            "listing" => {
                opts.listing = Some(match need()? {
                    "auto" => crate::ftp::ListingMode::Auto,
                    "list" => crate::ftp::ListingMode::List,
                    v => return Err(format!("listing must be auto or list, not {v:?}")),
                })
            }
            "data" => opts.data = Some(crate::ftp::active::DataMode::parse(need()?)?),
            "pasv_addr" => opts.pasv_addr = Some(crate::ftp::active::PasvAddr::parse(need()?)?),
            "active_addr" => {
                let v = need()?;
                // An IPv6 literal may come bracketed, as in URLs.
                let bare = v.trim_start_matches('[').trim_end_matches(']');
                let ip: std::net::IpAddr = bare
                    .parse()
                    .map_err(|_| format!("active_addr must be an IP address, not {v:?}"))?;
                if ip.is_unspecified() || ip.is_multicast() {
                    return Err(format!("active_addr must be a unicast address, not {v:?}"));
                }
                opts.active_addr = Some(ip);
            }
            "pipelining" => {
                opts.pipelining = Some(match need()? {
                    "on" => true,
                    "off" => false,
                    v => return Err(format!("pipelining must be on or off, not {v:?}")),
                })
            }
            "active_ports" => {
                opts.active_ports = Some(crate::ftp::active::Listen::parse_ports(need()?)?)
            }
            "exact_times" => {
                opts.exact_times = Some(match need()? {
                    "on" => true,
                    "off" => false,
                    v => return Err(format!("exact_times must be on or off, not {v:?}")),
                })
            }
            "compress" => {
                use crate::ftp::deflate::Compress;
                opts.compress = Some(match need()? {
                    "on" => Compress::On,
                    "off" => Compress::Off,
                    "auto" => Compress::Auto,
                    v => return Err(format!("compress must be on, off or auto, not {v:?}")),
                })
            }
            "strict_times" => opts.strict_times = true,
            "prefetch" => {
                opts.prefetch = Some(match need()? {
                    "on" => true,
                    "off" => false,
                    v => return Err(format!("prefetch must be on or off, not {v:?}")),
                })
            }
            "host" => {
                let h = need()?;
                // One word on the command line: no spaces, no line ends, not empty.
                if h.is_empty() || h.len() > 253 || h.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    return Err(format!("host must be a host name, not {h:?}"));
                }
                opts.vhost = Some(h.to_string());
            }
            "allo" => opts.allo = true,
            "writeback" => opts.writeback = true,
            "writeback_max" => {
                let v = need()?;
                opts.writeback_max = Some(parse_size(v).filter(|n| *n > 0).ok_or(format!(
                    "writeback_max must be a size such as 512M, not {v:?}"
                ))?)
            }
            "nodev" | "nosuid" | "noexec" | "noatime" | "dev" | "suid" | "exec" | "atime"
            | "sync" | "async" | "dirsync" => opts.kernel.push(key.to_string()),
            // For mount(8), fstab and systemd, not for us.
            "_netdev" | "noauto" | "auto" | "nofail" | "user" | "users" | "nouser" | "defaults"
            | "owner" | "group" | "comment" | "relatime" | "norelatime" | "strictatime"
            | "lazytime" | "nolazytime" | "silent" | "loud" => {}
            "credentials" => opts.credentials = Some(PathBuf::from(need()?)),
            k if k.starts_with("x-") || k.starts_with("comment=") => {}
            _ => return Err(format!("unknown mount option {opt:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writeback_sizes_take_units_and_refuse_nonsense() {
        let mut o = MountOpts::default();
        parse_mount_options("writeback,writeback_max=512M", &mut o).unwrap();
        assert!(o.writeback);
        assert_eq!(o.writeback_max, Some(512 << 20));
        for (v, n) in [
            ("4096", 4096),
            ("64k", 64 << 10),
            ("2GiB", 2 << 30),
            ("1MB", 1 << 20),
        ] {
            assert_eq!(parse_size(v), Some(n), "{v}");
        }
        for bad in [
            "writeback_max=0",
            "writeback_max=12X",
            "writeback_max",
            "writeback_max=M",
        ] {
            assert!(parse_mount_options(bad, &mut o).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_options_parse_and_system_ones_are_ignored() {
        let mut o = MountOpts::default();
        parse_mount_options(
            "ro,allow_other,dir_cache_ttl=5,connections=2,connections_recheck=10,keepalive=0,umask=027,_netdev,noauto,x-systemd.automount,nodev",
            &mut o,
        )
        .unwrap();
        assert!(o.read_only && o.allow_other);
        assert_eq!(
            (
                o.dir_cache_ttl,
                o.connections,
                o.connections_recheck,
                o.umask
            ),
            (Some(5), Some(2), Some(10), Some(0o27))
        );
        assert_eq!(o.keepalive, Some(0), "0 turns keepalive off");
        assert_eq!(o.kernel, vec!["nodev".to_string()]);
        for bad in [
            "bogus",
            "connections=0",
            "connections_recheck=0",
            "keepalive=40000",
            "retries=101",
            "dir_cache_ttl=x",
            "umask=999",
            "timeout",
        ] {
            assert!(
                parse_mount_options(bad, &mut MountOpts::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn data_connection_options_parse_and_bad_values_are_refused() {
        use crate::ftp::active::{DataMode, PasvAddr};
        let mut o = MountOpts::default();
        assert_eq!((o.data, o.pasv_addr), (None, None));
        parse_mount_options("data=active,pasv_addr=trust", &mut o).unwrap();
        assert_eq!(
            (o.data, o.pasv_addr),
            (Some(DataMode::Active), Some(PasvAddr::Trust))
        );
        parse_mount_options("data=passive,pasv_addr=fix", &mut o).unwrap();
        assert_eq!(
            (o.data, o.pasv_addr),
            (Some(DataMode::Passive), Some(PasvAddr::Fix))
        );
        for bad in ["data", "data=port", "pasv_addr=keep", "pasv_addr"] {
            assert!(parse_mount_options(bad, &mut o).is_err(), "{bad}");
        }
        parse_mount_options("active_addr=203.0.113.9,active_ports=40000:40099", &mut o).unwrap();
        assert_eq!(o.active_addr, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(o.active_ports, Some((40000, 40099)));
        parse_mount_options("active_addr=[2001:db8::1],active_ports=5000-5000", &mut o).unwrap();
        assert_eq!(o.active_addr, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(o.active_ports, Some((5000, 5000)));
        for bad in [
            "active_addr=nat.example.org",
            "active_addr=0.0.0.0",
            "active_addr=224.0.0.1",
            "active_ports=40000",
            "active_ports=0:10",
            "active_ports=50000:40000",
            "active_ports=40000:70000",
        ] {
            assert!(parse_mount_options(bad, &mut o).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_options_parse() {
        let mut o = MountOpts::default();
        assert_eq!((o.exact_times, o.strict_times), (None, false));
        parse_mount_options("exact_times=off,strict_times", &mut o).unwrap();
        assert_eq!((o.exact_times, o.strict_times), (Some(false), true));
        parse_mount_options("prefetch=off", &mut o).unwrap();
        assert_eq!(o.prefetch, Some(false));
        assert!(parse_mount_options("prefetch=maybe", &mut o).is_err());
        parse_mount_options("exact_times=on", &mut o).unwrap();
        assert_eq!(o.exact_times, Some(true));
        parse_mount_options("host=site-b.example,allo", &mut o).unwrap();
        assert_eq!((o.vhost.as_deref(), o.allo), (Some("site-b.example"), true));
        for bad in ["host=", "host=a b", "host=a\r\nUSER x"] {
            assert!(parse_mount_options(bad, &mut o).is_err(), "{bad}");
        }
        parse_mount_options("compress=on", &mut o).unwrap();
        assert_eq!(o.compress, Some(crate::ftp::deflate::Compress::On));
        parse_mount_options("compress=off", &mut o).unwrap();
        assert_eq!(o.compress, Some(crate::ftp::deflate::Compress::Off));
        assert!(parse_mount_options("compress=yes", &mut o).is_err());
        assert!(parse_mount_options("compress", &mut o).is_err());
        for bad in ["exact_times", "exact_times=yes"] {
            assert!(parse_mount_options(bad, &mut MountOpts::default()).is_err());
        }
    }

    #[test]
    fn fingerprint_options_accumulate_and_a_malformed_one_is_refused() {
        let hex = "85488da48bb0dc580e59538949a6e69e4773a31ccd9f90a2f0afef6d06779c55";
        let mut o = MountOpts::default();
        parse_mount_options(
            &format!(
                "fingerprint=sha256:{hex},fingerprint={}",
                hex.to_uppercase()
            ),
            &mut o,
        )
        .unwrap();
        assert_eq!(o.fingerprints.len(), 2);
        assert_eq!(o.fingerprints[0], o.fingerprints[1]);
        assert_eq!(o.fingerprints[0][0], 0x85);
        assert!(parse_mount_options("fingerprint", &mut MountOpts::default()).is_err());
        for bad in ["fingerprint=sha256:85:48", "fingerprint=sha1:ab"] {
            let e = parse_mount_options(bad, &mut MountOpts::default()).unwrap_err();
            assert!(e.contains("sha256"), "{bad}: {e}");
        }
    }
}
