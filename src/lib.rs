//! ftpfs: an FTP server as a local filesystem, through FUSE.
//!
//! # Layout
//!
//! Data flows one way: kernel → [`fuse`] (type conversion only) → [`fs`] (namespace,
//! attributes and reads, on plain types) → [`upload`] for everything written → [`cache`] /
//! [`inode`] → [`remote::Remote`] → [`ftp`] (pool, listings, streams) → the server. Errors
//! travel back typed ([`error::Error`]) until [`fuse`] turns them into errno with
//! [`error::Error::errno`], the one place that decides (it asks `error::reply` what a
//! server's reply text and code say).
//!
//! - [`cli`], [`config`]: what the user typed, and the validated configuration built from it
//!   (`config::options`: the `-o` options; `config::credentials`: where the password comes
//!   from);
//!   [`secret`]: the password type and its masking in logs (a leaf both `config` and `ftp`
//!   use).
//! - [`fs`]: lookups, listings, attributes (`fs::attr`), open handles (`fs::handles`), reads,
//!   mkdir, unlink, rmdir and rename (`fs::namespace`), and listings and small files fetched
//!   ahead of a walk (`fs::prefetch`).
//! - [`upload`]: the write protocol over a `Remote`, the cache and resolved paths, never
//!   seeing `FtpFs`: spools (`upload::spool`), uploads while a file is written
//!   (`upload::streaming`), atomic and move-aside replace (`upload::atomic`), new files,
//!   pending until their first upload, and their modes (`upload::create`), APPE or STOR,
//!   flush, fsync, release and recovery; write-back (`-o writeback`): the queue and its
//!   workers (`upload::queue`), what close, fsync and a worker's job do with it
//!   (`upload::writeback`), the durable journal (`upload::journal`) and its replay at
//!   mount (`upload::replay`), queued `mkdir`s inside directories the mount made
//!   (`upload::mkdir`), hooked into `fs` by `fs::writeback`.
//! - [`remote`]: the `Remote` trait, the seam tests use to inject faults (`testing`, an
//!   in-memory `Remote` behind the `testing` feature, which the crate's own tests turn on).
//! - [`ftp`]: the FTP implementation: `conn` (connect, login, what the first connection
//!   asks), `caps` (what the server can do, learned once per mount), `active` (passive or
//!   active data connections, decided once per mount; the active listener), `pool`,
//!   `prepare` (data connections opened ahead, by a thread of the pool),
//!   `listing` (MLSD and LIST parsers), `mdtm` (exact times for LIST listings, pipelined),
//!   `reader` (REST+RETR streams), `upload` (STOR/APPE streams and their end), `deflate`
//!   (MODE Z), `retry` (the one retry loop, for commands and reads), `spare` (listings and
//!   reads ahead on connections nobody waits for),
//!   `reply` (replies read as RFC 959 says, `PWD`), `features` (what `FEAT` says or probes
//!   find; `HOST`), `tls` (FTPS: modes, certificates and pinning, the TLS connector) and
//!   `tls::sessions` (the sessions a control connection's data connections resume, and the
//!   rule for their early `close_notify`).
//! - The process around it: `main.rs` parses, starts logging and dispatches; [`daemon`] is
//!   the mount process (background start, serving, signals, the end of a session);
//!   [`mount`] mounts and unmounts (`mount::mountinfo` reads the mount table); [`argv`]
//!   hides a URL's password from `ps`; [`logging`] writes the log; [`signals`] keeps the
//!   stop signals for the main thread.
//! - [`status`]: what the mount is doing, for `ftpfs status`: always-on counters fed by
//!   one-line hooks (pool, retry loop, listing cache, readers, uploads), the control socket
//!   that serves them (`status::socket`) and the command that prints them
//!   (`status::render`).

pub mod argv;
pub mod cache;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod error;
pub mod fs;
pub mod ftp;
pub mod fuse;
pub mod inode;
pub mod logging;
pub mod mount;
pub mod remote;
pub mod secret;
pub mod signals;
pub mod status;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod upload;
