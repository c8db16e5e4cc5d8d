//! Keeping a password typed in the source URL out of `ps`.
//!
//! `ftpfs mount ftp://user:pw@host /mnt` puts the password in the process's arguments, which
//! every user of the machine can read in `/proc/<pid>/cmdline` for as long as the mount runs.
//! A program cannot change what it was started with, but it can overwrite the memory the
//! kernel reads cmdline from. The password is also masked in the log (see
//! [`crate::logging::set_secret`]).

/// A password written in the source URL (`ftp://user:pw@host`) is overwritten with `*` in
/// this process's own argument memory, so `/proc/<pid>/cmdline` (and `ps`) of the running
/// mount does not show it. The kernel reads cmdline from the range `arg_start..arg_end`
/// given in `/proc/self/stat`, which is this process's stack: writable by us.
pub fn hide_url_password() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may contain spaces) start at field 3.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // arg_start and arg_end are fields 48 and 49 (1-based), 46 and 47 after the comm.
    let (Some(start), Some(end)) = (
        fields.get(45).and_then(|f| f.parse::<usize>().ok()),
        fields.get(46).and_then(|f| f.parse::<usize>().ok()),
    ) else {
        return;
    };
    if start == 0 || end <= start || end - start > 1 << 20 {
        return;
    }
    // SAFETY: [start, end) is this process's argument area, mapped and writable for as long
    // as the process lives; nothing else holds references into it (Rust copied the args).
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
    for arg in area.split_mut(|&b| b == 0) {
        let Some(scheme) = arg.windows(3).position(|w| w == b"://") else {
            continue;
        };
        let after = scheme + 3;
        let authority = arg[after..]
            .iter()
            .position(|&b| b == b'/')
            .unwrap_or(arg.len() - after);
        let Some(at) = arg[after..after + authority]
            .iter()
            .rposition(|&b| b == b'@')
        else {
            continue;
        };
        let userinfo = &mut arg[after..after + at];
        if let Some(colon) = userinfo.iter().position(|&b| b == b':') {
            userinfo[colon + 1..].fill(b'*');
        }
    }
}
