//! `ftpfs` entry point: parse, set up logging, dispatch; exit codes.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage error. The mount process itself is
//! [`ftpfs::daemon`]; mounting and unmounting, [`ftpfs::mount`].

use std::process::ExitCode;

use clap::Parser;

use ftpfs::cli::{Cli, Command, MountArgs};
use ftpfs::config::Config;
use ftpfs::daemon::{background, fail, serve};
use ftpfs::mount::mountinfo::mount_at;
use ftpfs::mount::umount;

fn main() -> ExitCode {
    // Read buffers are a megabyte each, allocated on one fuser thread and often freed on
    // another. glibc's default raises its mmap threshold after the first such free and
    // serves them from per-thread arenas, which keep freed megabytes resident: reading a
    // 1 GiB file peaked at 28 to 39 MiB that way. A fixed threshold keeps large blocks in
    // their own mappings, returned to the system when freed; they are rare (buffers are
    // reused, see `remote::Buffers`).
    // SAFETY: called before any other thread exists; mallopt only sets an allocator tunable.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
    // Copied out before the argument memory is changed: std reads argv lazily from it.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    ftpfs::argv::hide_url_password();
    let Some(args) = ftpfs::cli::helper_args(argv) else {
        // mount -f: pretend.
        return ExitCode::SUCCESS;
    };
    // clap exits 2 on a usage error; every failure of ftpfs is 1 (the README says so).
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Mount(args) => mount(args),
        Command::Umount { mountpoint, lazy } => umount(&mountpoint, lazy),
        Command::Status {
            mountpoint,
            json,
            watch,
            interval,
        } => ftpfs::status::render::run(&ftpfs::status::render::Request {
            mountpoint,
            json,
            watch,
            interval,
        }),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "ftpfs", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

fn mount(args: MountArgs) -> ExitCode {
    // Logging starts before the options are validated, so that errors in them are logged.
    let early = |key: &str| {
        args.options
            .iter()
            .flat_map(|o| o.split(','))
            .find_map(|x| match x.split_once('=') {
                Some((k, v)) if k == key => Some(v.to_string()),
                None if x == key => Some(String::new()),
                _ => None,
            })
    };
    let log_file = args
        .log_file
        .clone()
        .or_else(|| early("log_file").map(Into::into));
    if let Err(e) = ftpfs::logging::init(log_file.as_deref(), early("debug").is_some()) {
        return fail(&e.to_string());
    }
    let cfg = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    ftpfs::logging::set_secret(cfg.endpoint.password.expose());
    match std::fs::metadata(&cfg.mountpoint) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return fail(&format!("{}: not a directory", cfg.mountpoint.display())),
        Err(e) => return fail(&format!("{}: {e}", cfg.mountpoint.display())),
    }
    // Mounting again on top would hide the first mount, whose process goes on serving
    // nobody, and `ftpfs umount` would take off only the top one.
    let abs = std::fs::canonicalize(&cfg.mountpoint).unwrap_or_else(|_| cfg.mountpoint.clone());
    if let Some((_, source)) = mount_at(&abs).filter(|(fstype, _)| fstype == "fuse.ftpfs") {
        return fail(&format!(
            "{}: already mounted ({source}); `ftpfs umount {}` first",
            cfg.mountpoint.display(),
            cfg.mountpoint.display()
        ));
    }
    if cfg.foreground {
        return serve(cfg, None);
    }
    background(|notify| serve(cfg, Some(notify)))
}
