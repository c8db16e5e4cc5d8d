//! ftpfs: an FTP server as a local filesystem, through FUSE.
//!
//! # Layout
//!
//! Data flows one way: kernel → [`fuse`] (type conversion only) → [`fs`] (all semantics, on
//! plain types) → [`cache`] / [`inode`] → [`remote::Remote`] → [`ftp`] (pool, listings,
//! streams) → the server. Errors travel back typed ([`error::Error`]) until [`fuse`] turns
//! them into errno with [`error::Error::errno`], the one place that decides.
//!
//! - [`cli`], [`config`]: what the user typed, and the validated configuration built from it.
//! - [`remote`]: the `Remote` trait, the seam tests use to inject faults ([`testing`]).
//! - [`ftp`]: the FTP implementation: `conn` (connect, login, capabilities), `pool`,
//!   `listing` (MLSD and LIST parsers), `mdtm` (exact times for LIST listings, pipelined),
//!   `reader` (REST+RETR streams), `reply` (replies read as RFC 959 says, `PWD`),
//!   `features` (what `FEAT` says or probes find; `HOST`).

pub mod cache;
pub mod cli;
pub mod config;
pub mod error;
pub mod fs;
pub mod ftp;
pub mod fuse;
pub mod inode;
pub mod logging;
pub mod remote;
pub mod spool;
pub mod stream;
pub mod testing;
