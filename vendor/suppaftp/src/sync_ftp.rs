//! # Sync
//!
//! This module contains the definition for all Sync implementation of suppaftp

mod control;
mod data_stream;
mod tls;
mod transfer_stream;

use std::io::{BufRead, BufReader, Cursor, Read, copy};
#[cfg(not(feature = "secure"))]
use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
// export
pub use control::ControlSocket;
use control::{ControlChannel, SharedControl};
pub use data_stream::DataStream;
#[cfg(feature = "secure")]
pub use tls::TlsConnector;
#[cfg(feature = "native-tls")]
pub use tls::{NativeTlsConnector, NativeTlsStream};
pub use tls::{EarlyClose, NoTlsStream, TlsStream};
#[cfg(any(feature = "rustls-aws-lc-rs", feature = "rustls-ring"))]
pub use tls::{RustlsConnector, RustlsStream};
pub use transfer_stream::TransferStream;

use super::Status;
use super::regex::{EPSV_PORT_RE, MDTM_RE, PASV_PORT_RE, SIZE_RE};
use super::types::{ActivePeerCheck, FileType, FtpError, FtpResult, Mode, Response};
use crate::command::Command;
#[cfg(feature = "secure")]
use crate::command::ProtectionLevel;
use crate::encoding::{Encoding, Utf8Encoding, WelcomeMessage};
use crate::types::Features;

/// A function that creates a new stream for the data connection in passive mode.
///
/// It takes a [`SocketAddr`] and returns a [`TcpStream`].
pub type PassiveStreamBuilder = dyn Fn(SocketAddr) -> FtpResult<TcpStream> + Send + Sync;

/// ftpfs patch: how long a prepared passive data connection is used at most; servers
/// close an unused passive listener after a while (pure-ftpd, vsftpd: a minute or more).
pub const PREPARED_MAX_AGE: Duration = Duration::from_secs(20);

/// ftpfs patch: a function that binds the listener of an active-mode data connection.
///
/// It takes the control connection's local address and returns the listener and what to
/// announce in `PORT`/`EPRT` (another address for a client behind NAT, a port from a range).
pub type ActiveListenerBuilder = dyn Fn(SocketAddr) -> FtpResult<ActiveListener> + Send + Sync;

/// ftpfs patch: what an [`ActiveListenerBuilder`] returns.
pub struct ActiveListener {
    /// Where the server's data connection is accepted.
    pub listener: TcpListener,
    /// The address sent to the server.
    pub announce: SocketAddr,
    /// Send `EPRT` for an IPv4 address too (IPv6 always uses `EPRT`).
    pub extended: bool,
}

/// Stream to interface with the FTP server. This interface is only for the command stream.
///
/// The control connection is shared with the [`TransferStream`]s handed out by the data
/// commands, so that each transfer can close its data connection and read the completion reply
/// on its own; see [`TransferStream`] for details.
pub struct ImplFtpStream<T>
where
    T: TlsStream,
{
    /// Control connection, locked for the duration of each command.
    control: SharedControl<T>,
    mode: Mode,
    nat_workaround: bool,
    /// Which addresses an active-mode data connection is accepted from.
    active_peer_check: ActivePeerCheck,
    welcome_msg: Option<WelcomeMessage>,
    active_timeout: Duration,
    /// Whether the transfer type is ASCII (the default), in which case
    /// [`ImplFtpStream::put_file`] and [`ImplFtpStream::append_file`] send CRLF line endings.
    ascii_transfer: bool,
    passive_stream_builder: Box<PassiveStreamBuilder>,
    active_listener_builder: Option<Box<ActiveListenerBuilder>>,
    /// ftpfs patch: `REST` is sent with the transfer command, and an upload's bytes on a
    /// plain passive connection without waiting for its `150`.
    pipelining: bool,
    #[cfg(not(feature = "secure"))]
    marker: PhantomData<T>,
    #[cfg(feature = "secure")]
    tls_ctx: Option<Box<dyn TlsConnector<Stream = T> + Send + Sync + 'static>>,
    #[cfg(feature = "secure")]
    domain: Option<String>,
}

impl<T> ImplFtpStream<T>
where
    T: TlsStream,
{
    /// Try to connect to the remote server
    pub fn connect<A: ToSocketAddrs>(addr: A) -> FtpResult<Self> {
        debug!("Connecting to server");
        TcpStream::connect(addr)
            .map_err(FtpError::ConnectionError)
            .and_then(|stream| Self::connect_with_stream(stream))
    }

    /// Try to connect to the remote server but with the specified timeout
    pub fn connect_timeout(addr: std::net::SocketAddr, timeout: Duration) -> FtpResult<Self> {
        debug!("Connecting to server {addr}");
        TcpStream::connect_timeout(&addr, timeout)
            .map_err(FtpError::ConnectionError)
            .and_then(|stream| Self::connect_with_stream(stream))
    }

    /// Connect using provided configured tcp stream
    pub fn connect_with_stream(stream: TcpStream) -> FtpResult<Self> {
        debug!("Established connection with server");
        let mut ftp_stream = Self {
            control: ControlChannel::shared(DataStream::Tcp(stream), Arc::new(Utf8Encoding)),
            mode: Mode::Passive,
            nat_workaround: false,
            active_peer_check: ActivePeerCheck::default(),
            welcome_msg: None,
            active_timeout: Duration::from_secs(60),
            ascii_transfer: true,
            passive_stream_builder: Self::default_passive_stream_builder(),
            active_listener_builder: None,
            pipelining: false,
            #[cfg(feature = "secure")]
            tls_ctx: None,
            #[cfg(feature = "secure")]
            domain: None,
            #[cfg(not(feature = "secure"))]
            marker: PhantomData {},
        };
        debug!("Reading server response...");
        let ready = ftp_stream.control().read_response(Status::Ready);
        match ready {
            Ok(response) => {
                let welcome_msg = WelcomeMessage::new(&response.body, &Utf8Encoding);
                debug!("Server READY; response: {:?}", welcome_msg.as_str());
                ftp_stream.welcome_msg = Some(welcome_msg);
                Ok(ftp_stream)
            }
            Err(err) => Err(err),
        }
    }

    /// ftpfs patch: pipelining on or off (off by default). On: `REST` is written together
    /// with the transfer command and both replies read after (a refused `REST` ends the
    /// transfer the command started, unread, and is the error).
    pub fn set_pipelining(&mut self, on: bool) {
        self.pipelining = on;
    }

    /// ftpfs patch: the next upload (`STOR`/`APPE`), when pipelining is on and its data
    /// connection is plain and passive, returns its stream without waiting for the `150`,
    /// so its bytes go out with the command; the `150` (or the refusal, which is then the
    /// error of [`TransferStream::finish`]) is read when it is finished. One shot.
    pub fn set_early_upload(&self) {
        self.control().early_upload = true;
    }

    /// ftpfs patch: opens the next passive data connection now (`EPSV` or `PASV`, then the
    /// stream builder), so that the next transfer costs only its command. Nothing in active
    /// mode, or when one is open already.
    pub fn prepare_data_connection(&self) -> FtpResult<()> {
        let mut cc = control::lock(&self.control);
        if std::mem::take(&mut cc.passive_pending) {
            return self.passive_answer(&mut cc);
        }
        if cc.prepared.is_some() || cc.data_connection_open {
            return Ok(());
        }
        let address = match self.mode {
            Mode::Active => return Ok(()),
            Mode::ExtendedPassive => self.epsv(&mut cc)?,
            Mode::Passive => self.pasv(&mut cc)?,
        };
        let stream = (self.passive_stream_builder)(address)?;
        cc.prepared = Some((stream, Instant::now()));
        Ok(())
    }

    /// ftpfs patch: keeps `stream`, a passive data connection the caller opened to the
    /// address of the last `EPSV`/`PASV` on this connection, as the prepared one, for the
    /// next transfer to use (as [`Self::prepare_data_connection`] would have opened it).
    /// Ignored (the stream closed) when one is prepared already or a transfer is open.
    pub fn adopt_prepared_data_connection(&self, stream: TcpStream) {
        let mut cc = self.control();
        if cc.prepared.is_none() && !cc.data_connection_open {
            cc.prepared = Some((stream, Instant::now()));
        }
    }

    /// ftpfs patch: when the prepared data connection was opened, if there is one. Never
    /// reads from the server (a pending passive reply is not read here).
    pub fn prepared_data_connection(&self) -> Option<Instant> {
        control::lock(&self.control)
            .prepared
            .as_ref()
            .map(|(_, at)| *at)
    }

    /// ftpfs patch: whether a passive command written by [`Self::finish_with_passive`]
    /// still waits for its reply to be read (by [`Self::prepare_data_connection`], or
    /// before the next command).
    pub fn passive_pending(&self) -> bool {
        control::lock(&self.control).passive_pending
    }

    /// ftpfs patch: ends an upload as [`TransferStream::finish`] does, but writes the next
    /// passive command (`EPSV` or `PASV`) as soon as the data connection is closed, before
    /// the transfer's reply is read: the next data connection's address then comes with the
    /// reply instead of a round trip after it. `Ok` is the transfer's `226`/`250`; the
    /// passive reply is then left unread, for [`Self::prepare_data_connection`] (or the
    /// next command, which reads it first and keeps the data connection as the prepared
    /// one). An `Err` leaves the control connection out of step (the passive command's
    /// reply may come, or may have been what was read): do not use it again. In active
    /// mode, a plain [`TransferStream::finish`].
    ///
    /// The server may still be reading the upload when the command arrives. One that
    /// refuses it then (`450`, `500`-`503`: proftpd, pure-ftpd) is in step: the transfer's
    /// reply follows, and nothing is pending. One that does anything else with it
    /// (pyftpdlib closes the upload's data connection for the new one, with no reply of its
    /// own for the upload) gives an `Err`.
    ///
    /// `pause`: how long after the close the command is written, so that it reaches the
    /// server after the end of the upload on a network that keeps the order of packets.
    pub fn finish_with_passive(
        &self,
        mut stream: TransferStream<T>,
        pause: Duration,
    ) -> FtpResult<()> {
        let command = match self.mode {
            Mode::Active => return stream.finish(),
            Mode::ExtendedPassive => Command::Epsv,
            Mode::Passive => Command::Pasv,
        };
        // Closed already: its verdict is not this call's to give.
        let Some(drain) = stream.close_data() else {
            return Err(FtpError::ConnectionError(std::io::Error::other(
                "the transfer's data connection was closed before its end",
            )));
        };
        std::thread::sleep(pause);
        let mut cc = control::lock(&self.control);
        let written = cc.perform(command);
        // Read until the server's end after the command is written: the server's end, and
        // the transfer's reply, are one round trip away from it as from the close.
        drop(cc);
        if let Some(socket) = drain {
            transfer_stream::read_until_eof(&socket);
        }
        let mut cc = control::lock(&self.control);
        written?;
        cc.data_connection_open = false;
        if std::mem::take(&mut cc.preliminary_pending) {
            cc.read_response_in(&[Status::AboutToSend, Status::AlreadyOpen])?;
        }
        match cc.read_response_in(control::TRANSFER_COMPLETE) {
            Ok(_) => {
                cc.passive_pending = true;
                Ok(())
            }
            // After the `150`, a transfer ends with 226, 250, 425, 426, 451, 551 or 552
            // (RFC 959 5.4): a 450 or a 500 to 503 answers the passive command, refused as
            // the server was still in the transfer (proftpd: `450 EPSV: data transfer in
            // progress`, pure-ftpd: `500`), not done. The transfer's own reply comes next
            // (and if it was the transfer's after all, the next is the passive command's,
            // never a 226).
            Err(FtpError::UnexpectedResponse(refused))
                if matches!(
                    refused.status,
                    Status::RequestFileActionIgnored
                        | Status::BadCommand
                        | Status::BadArguments
                        | Status::NotImplemented
                        | Status::BadSequence
                ) =>
            {
                debug!(
                    "the passive command written early was refused during the transfer ({})",
                    refused.as_string().unwrap_or_default().trim_end()
                );
                cc.read_response_in(control::TRANSFER_COMPLETE).map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    /// ftpfs patch: reads the reply of the passive command [`Self::finish_with_passive`]
    /// wrote and opens its data connection, kept as the prepared one. A refusal leaves the
    /// connection in step and unprepared (and is the error), as does a failed connect
    /// (not an error: the next transfer asks again).
    fn passive_answer(&self, cc: &mut ControlChannel<T>) -> FtpResult<()> {
        let address = match self.mode {
            Mode::ExtendedPassive => self.epsv_reply(cc)?,
            _ => self.pasv_reply(cc)?,
        };
        // The reply is read: in step whatever comes of the connection.
        let stream = match (self.passive_stream_builder)(address) {
            Ok(stream) => stream,
            Err(e) => {
                debug!("the passive data connection after a transfer failed ({e})");
                return Ok(());
            }
        };
        if cc.prepared.is_none() && !cc.data_connection_open {
            cc.prepared = Some((stream, Instant::now()));
        }
        Ok(())
    }

    /// ftpfs patch: closes the prepared data connection, if any.
    pub fn drop_prepared_data_connection(&self) {
        self.control().prepared = None;
    }

    /// ftpfs patch: set a custom [`ActiveListenerBuilder`] for active mode.
    pub fn active_listener_builder<F>(mut self, builder: F) -> Self
    where
        F: Fn(SocketAddr) -> FtpResult<ActiveListener> + Send + Sync + 'static,
    {
        self.active_listener_builder = Some(Box::new(builder));
        self
    }

    /// Enable active mode for data channel
    pub fn active_mode(mut self, accept_timeout: Duration) -> Self {
        self.mode = Mode::Active;
        self.active_timeout = accept_timeout;
        self
    }

    /// Set a custom [`PassiveStreamBuilder`] for passive mode.
    ///
    /// The stream builder is a function that takes a `SocketAddr` and returns a `TcpStream` and it's used
    /// to create the [`TcpStream`] for the data connection in passive mode.
    pub fn passive_stream_builder<F>(mut self, stream_builder: F) -> Self
    where
        F: Fn(SocketAddr) -> FtpResult<TcpStream> + Send + Sync + 'static,
    {
        self.passive_stream_builder = Box::new(stream_builder);
        self
    }

    /// Set the data channel transfer mode
    pub fn set_mode(&mut self, mode: Mode) {
        debug!("Changed mode to {:?}", mode);
        self.mode = mode;
    }

    /// Set NAT workaround for passive mode
    pub fn set_passive_nat_workaround(&mut self, nat_workaround: bool) {
        self.nat_workaround = nat_workaround;
    }

    /// Set which addresses an active-mode data connection is accepted from.
    ///
    /// The default, [`ActivePeerCheck::ControlPeer`], accepts only the server on the control
    /// connection; see [`ActivePeerCheck`] for the other choices.
    pub fn set_active_peer_check(&mut self, check: ActivePeerCheck) {
        self.active_peer_check = check;
    }

    /// Set the [`Encoding`] of file names and commands.
    ///
    /// The encoding is applied to every command sent, to the lines of `LIST`, `NLST` and `MLSD`
    /// listings, to the replies of `MLST` and `PWD`, and to the welcome message, which is decoded
    /// again with the new encoding. The default is [`Utf8Encoding`].
    pub fn set_encoding(&mut self, encoding: impl Encoding + 'static) {
        let encoding: Arc<dyn Encoding> = Arc::new(encoding);
        if let Some(welcome_msg) = self.welcome_msg.as_mut() {
            welcome_msg.redecode(encoding.as_ref());
        }
        self.control().encoding = encoding;
    }

    /// Switch to explicit secure mode if possible (FTPS), using a provided SSL configuration.
    /// Returns [`FtpError::DataConnectionAlreadyOpen`] before sending `AUTH` if a transfer is alive.
    /// This method does nothing if the connect is already secured.
    ///
    /// ## Example
    ///
    /// ```rust,ignore
    /// use suppaftp::{NativeTlsFtpStream, NativeTlsConnector};
    /// use suppaftp::native_tls::{TlsConnector, TlsStream};
    /// use std::path::Path;
    ///
    /// // Create a TlsConnector
    /// // NOTE: For custom options see <https://docs.rs/native-tls/0.2.6/native_tls/struct.TlsConnectorBuilder.html>
    /// let mut ctx = NativeTlsConnector::from(TlsConnector::new().unwrap());
    /// let mut ftp_stream = NativeTlsFtpStream::connect("127.0.0.1:21").unwrap();
    /// let mut ftp_stream = ftp_stream.into_secure(ctx, "localhost").unwrap();
    /// ```
    #[cfg(feature = "secure")]
    #[cfg_attr(docsrs, doc(cfg(feature = "secure")))]
    pub fn into_secure(
        self,
        tls_connector: impl TlsConnector<Stream = T> + Send + Sync + 'static,
        domain: &str,
    ) -> FtpResult<Self> {
        // Reject a live transfer before asking the server to change the control protocol.
        if Arc::strong_count(&self.control) != 1 {
            return Err(FtpError::DataConnectionAlreadyOpen);
        }
        {
            let mut cc = self.control();
            // Ask the server to start securing data.
            debug!("Initializing TLS auth");
            cc.perform(Command::Auth)?;
            cc.read_response(Status::AuthOk)?;
        }
        self.secure_after_auth(tls_connector, domain)
    }

    /// ftpfs patch: [`ImplFtpStream::into_secure`] after the caller itself sent `AUTH TLS`
    /// and read its `234`: the TLS handshake, `PBSZ 0` and `PROT P`. A server refusing
    /// `AUTH TLS` then leaves the connection usable in plain, where `into_secure` consumes
    /// it.
    #[cfg(feature = "secure")]
    #[cfg_attr(docsrs, doc(cfg(feature = "secure")))]
    pub fn secure_after_auth(
        self,
        tls_connector: impl TlsConnector<Stream = T> + Send + Sync + 'static,
        domain: &str,
    ) -> FtpResult<Self> {
        if Arc::strong_count(&self.control) != 1 {
            return Err(FtpError::DataConnectionAlreadyOpen);
        }
        debug!("TLS OK; initializing ssl stream");
        let plain = control::into_exclusive(self.control)?;
        let encoding = Arc::clone(&plain.encoding);
        let plain = plain.reader.into_inner().into_tcp_stream()?;
        let stream = tls_connector
            .connect(domain, plain)
            .map_err(|e| FtpError::SecureError(format!("{e}")))?;
        debug!("TLS Steam OK");
        let secured_ftp_tream = Self {
            control: ControlChannel::shared(DataStream::Ssl(Box::new(stream)), encoding),
            mode: self.mode,
            nat_workaround: self.nat_workaround,
            active_peer_check: self.active_peer_check,
            passive_stream_builder: self.passive_stream_builder,
            active_listener_builder: self.active_listener_builder,
            pipelining: self.pipelining,
            tls_ctx: Some(Box::new(tls_connector)),
            domain: Some(String::from(domain)),
            welcome_msg: self.welcome_msg,
            active_timeout: self.active_timeout,
            ascii_transfer: self.ascii_transfer,
        };
        {
            let mut cc = secured_ftp_tream.control();
            // Set protection buffer size
            cc.perform(Command::Pbsz(0))?;
            cc.read_response(Status::CommandOk)?;
            // Change the level of data protectio to Private
            cc.perform(Command::Prot(ProtectionLevel::Private))?;
            cc.read_response(Status::CommandOk)?;
        }
        Ok(secured_ftp_tream)
    }

    /// Connect to remote ftps server using IMPLICIT secure connection.
    ///
    /// > Warning: mind that implicit ftps should be considered deprecated, if you can use explicit mode with [`ImplFtpStream::into_secure`]
    ///
    ///
    /// ## Example
    ///
    /// ```rust,ignore
    /// use suppaftp::FtpStream;
    /// use suppaftp::native_tls::{TlsConnector, TlsStream};
    /// use std::path::Path;
    ///
    /// //Create a TlsConnector
    /// //NOTE: For custom options see <https://docs.rs/native-tls/0.2.6/native_tls/struct.TlsConnectorBuilder.html>
    /// let mut ctx = TlsConnector::new().unwrap();
    /// let mut ftp_stream = FtpStream::connect_secure_implicit("127.0.0.1:990", ctx, "localhost").unwrap();
    /// ```
    #[cfg(all(feature = "secure", feature = "deprecated"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "secure", feature = "deprecated"))))]
    pub fn connect_secure_implicit<A: ToSocketAddrs>(
        addr: A,
        tls_connector: impl TlsConnector<Stream = T> + Send + Sync + 'static,
        domain: &str,
    ) -> FtpResult<Self> {
        debug!("Connecting to server (secure)");
        let stream = TcpStream::connect(addr).map_err(FtpError::ConnectionError)?;
        debug!("Established connection with server");
        debug!("TLS OK; initializing ssl stream");
        let stream = tls_connector
            .connect(domain, stream)
            .map_err(|e| FtpError::SecureError(format!("{e}")))?;
        debug!("TLS Steam OK");
        let mut stream = Self {
            control: ControlChannel::shared(
                DataStream::Ssl(Box::new(stream)),
                Arc::new(Utf8Encoding),
            ),
            mode: Mode::Passive,
            nat_workaround: false,
            active_peer_check: ActivePeerCheck::default(),
            tls_ctx: Some(Box::new(tls_connector)),
            passive_stream_builder: Self::default_passive_stream_builder(),
            active_listener_builder: None,
            pipelining: false,
            domain: Some(String::from(domain)),
            welcome_msg: None,
            active_timeout: Duration::from_secs(60),
            ascii_transfer: true,
        };
        debug!("Reading server response...");
        let response = stream.control().read_response(Status::Ready)?;
        let welcome_msg = WelcomeMessage::new(&response.body, &Utf8Encoding);
        debug!("Server READY; response: {:?}", welcome_msg.as_str());
        stream.welcome_msg = Some(welcome_msg);

        Ok(stream)
    }

    /// Returns the welcome message the server sent when the connection was opened.
    ///
    /// The message is decoded with the current [`Encoding`] (lossy UTF-8 by default) and decoded
    /// again by [`ImplFtpStream::set_encoding`]. Trailing whitespace is trimmed.
    pub fn get_welcome_msg(&self) -> Option<&str> {
        self.welcome_msg.as_ref().map(WelcomeMessage::as_str)
    }

    /// Returns a locked view of the underlying control [`TcpStream`].
    ///
    /// The returned [`ControlSocket`] dereferences to the socket and keeps the control connection
    /// locked while alive, so drop it before finishing a [`TransferStream`].
    ///
    /// # Examples
    ///
    /// ```rust,no_run
    /// use std::time::Duration;
    ///
    /// use suppaftp::FtpStream;
    ///
    /// let stream = FtpStream::connect("127.0.0.1:21").expect("Couldn't connect to the server...");
    /// stream
    ///     .get_ref()
    ///     .set_read_timeout(Some(Duration::from_secs(10)))
    ///     .expect("set_read_timeout call failed");
    /// ```
    pub fn get_ref(&self) -> ControlSocket<'_, T> {
        ControlSocket::lock(&self.control)
    }

    /// ftpfs patch: runs `f` on the control connection's buffered stream, locked, plain or
    /// TLS, for commands whose replies the caller reads itself (several commands sent at
    /// once, replies read as RFC 959 words them). Writes go through
    /// [`BufReader::get_mut`]; what `f` leaves in the buffer is the next reply's.
    pub fn with_control_stream<R>(&self, f: impl FnOnce(&mut BufReader<DataStream<T>>) -> R) -> R {
        let mut cc = self.control();
        f(&mut cc.reader)
    }

    /// Log in to the FTP server.
    pub fn login<S: AsRef<str>>(&mut self, user: S, password: S) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("Signin in with user '{}'", user.as_ref());
        cc.perform(Command::User(user.as_ref().to_string()))?;
        cc.read_response_in(&[Status::LoggedIn, Status::NeedPassword])
            .and_then(|Response { status, body: _ }| {
                if status == Status::NeedPassword {
                    debug!("Password is required");
                    cc.perform(Command::Pass(password.as_ref().to_string()))?;
                    cc.read_response(Status::LoggedIn)?;
                }
                debug!("Login OK");
                Ok(())
            })
    }

    /// Perform clear command channel (CCC).
    /// Once the command is performed, the command channel will be encrypted no more.
    /// The data stream will still be secure.
    /// Returns [`FtpError::DataConnectionAlreadyOpen`] before sending `CCC` if a transfer is alive.
    #[cfg(feature = "secure")]
    #[cfg_attr(docsrs, doc(cfg(feature = "secure")))]
    pub fn clear_command_channel(mut self) -> FtpResult<Self> {
        // Reject a live transfer before asking the server to change the control protocol.
        if Arc::strong_count(&self.control) != 1 {
            return Err(FtpError::DataConnectionAlreadyOpen);
        }
        {
            let mut cc = self.control();
            // Ask the server to stop securing data
            debug!("performing clear command channel");
            cc.perform(Command::ClearCommandChannel)?;
            cc.read_response(Status::CommandOk)?;
        }
        trace!("CCC OK");
        let plain = control::into_exclusive(self.control)?;
        let encoding = Arc::clone(&plain.encoding);
        let plain = plain.reader.into_inner().into_tcp_stream()?;
        self.control = ControlChannel::shared(DataStream::Tcp(plain), encoding);
        Ok(self)
    }

    /// Change the current directory to the path specified.
    pub fn cwd<S: AsRef<str>>(&mut self, path: S) -> FtpResult<()> {
        let mut cc = self.control();
        // ftpfs patch: some servers (libunftp) fix a data connection's directory when they
        // accept it, so one prepared before a CWD would list the old directory.
        cc.prepared = None;
        debug!("Changing working directory to {}", path.as_ref());
        cc.perform(Command::Cwd(path.as_ref().to_string()))?;
        cc.read_response_in(&[Status::CommandOk, Status::RequestedFileActionOk])
            .map(|_| ())
    }

    /// Move the current directory to the parent directory.
    pub fn cdup(&mut self) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("Going to parent directory");
        cc.perform(Command::Cdup)?;
        cc.read_response_in(&[Status::CommandOk, Status::RequestedFileActionOk])
            .map(|_| ())
    }

    /// Gets the current directory
    pub fn pwd(&mut self) -> FtpResult<String> {
        let mut cc = self.control();
        debug!("Getting working directory");
        cc.perform(Command::Pwd)?;
        let response = cc.read_response(Status::PathCreated)?;
        let body = cc
            .encoding
            .decode(&crate::command::unescape_telnet_iac(&response.body));
        match (body.find('"'), body.rfind('"')) {
            (Some(begin), Some(end)) if begin < end => Ok(body[begin + 1..end].to_string()),
            _ => Err(FtpError::UnexpectedResponse(response)),
        }
    }

    /// This does nothing. This is usually just used to keep the connection open.
    pub fn noop(&mut self) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("Pinging server");
        cc.perform(Command::Noop)?;
        cc.read_response(Status::CommandOk).map(|_| ())
    }

    /// The EPRT command allows for the specification of an extended address
    /// for the data connection. The extended address MUST consist of the
    /// network protocol as well as the network and transport addresses
    pub fn eprt(&mut self, address: SocketAddr) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("EPRT with address {address}");
        cc.perform(Command::Eprt(address))?;
        cc.read_response(Status::CommandOk).map(|_| ())
    }

    /// This creates a new directory on the server.
    pub fn mkdir<S: AsRef<str>>(&mut self, pathname: S) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("Creating directory at {}", pathname.as_ref());
        cc.perform(Command::Mkd(pathname.as_ref().to_string()))?;
        // Some non-compliant servers (e.g. bftpd) reply with 200 instead of 257.
        cc.read_response_in(&[Status::PathCreated, Status::CommandOk])
            .map(|_| ())
    }

    /// Sets the type of file to be transferred. That is the implementation
    /// of `TYPE` command.
    ///
    /// After [`FileType::Ascii`] is accepted, [`ImplFtpStream::put_file`] and
    /// [`ImplFtpStream::append_file`] convert line endings to CRLF; any other accepted type turns
    /// the conversion off. A refused type leaves it as it was.
    pub fn transfer_type(&mut self, file_type: FileType) -> FtpResult<()> {
        let ascii = matches!(file_type, FileType::Ascii(_));
        {
            let mut cc = self.control();
            debug!("Setting transfer type {}", file_type);
            cc.perform(Command::Type(file_type))?;
            cc.read_response(Status::CommandOk)?;
        }
        self.ascii_transfer = ascii;
        Ok(())
    }

    /// Quits the current FTP session.
    pub fn quit(&mut self) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("Quitting stream");
        cc.perform(Command::Quit)?;
        cc.read_response(Status::Closing).map(|_| ())
    }

    /// Renames the file from_name to to_name
    pub fn rename<S: AsRef<str>>(&mut self, from_name: S, to_name: S) -> FtpResult<()> {
        let mut cc = self.control();
        debug!(
            "Renaming '{}' to '{}'",
            from_name.as_ref(),
            to_name.as_ref()
        );
        cc.perform(Command::RenameFrom(from_name.as_ref().to_string()))?;
        cc.read_response(Status::RequestFilePending).and_then(|_| {
            cc.perform(Command::RenameTo(to_name.as_ref().to_string()))?;
            // Some non-compliant servers (e.g. bftpd) reply with 200 instead of 250.
            cc.read_response_in(&[Status::RequestedFileActionOk, Status::CommandOk])
                .map(|_| ())
        })
    }

    /// The implementation of `RETR` command where `filename` is the name of the file
    /// to download from FTP and `reader` is the function which operates with the
    /// data stream opened.
    ///
    /// The data connection is finished once `reader` returns, whether it succeeded or not, so the
    /// control connection can be reused after successful cleanup.
    ///
    /// ```rust,ignore
    /// use suppaftp::{FtpStream, FtpError};
    /// use std::io::Cursor;
    /// let mut conn = FtpStream::connect("127.0.0.1:10021").unwrap();
    /// conn.login("test", "test").and_then(|_| {
    ///     let mut reader = Cursor::new("hello, world!".as_bytes());
    ///     conn.put_file("retr.txt", &mut reader)
    /// }).unwrap();
    /// assert!(conn.retr("retr.txt", |stream| {
    ///     let mut buf = Vec::new();
    ///     stream.read_to_end(&mut buf).map(|_|
    ///         assert_eq!(buf, "hello, world!".as_bytes())
    ///     ).map_err(|e| FtpError::ConnectionError(e))
    /// }).is_ok());
    /// assert!(conn.rm("retr.txt").is_ok());
    /// ```
    pub fn retr<F, D>(&mut self, file_name: &str, mut reader: F) -> FtpResult<D>
    where
        F: FnMut(&mut dyn Read) -> FtpResult<D>,
    {
        let mut stream = self.retr_as_stream(file_name)?;
        let result = reader(&mut stream);
        // Always finish, but report the reader's error first: it is the root cause.
        let finished = stream.finish();
        let value = result?;
        finished?;
        Ok(value)
    }

    /// Simple way to retr a file from the server. This stores the file in a buffer in memory.
    ///
    /// ```rust,ignore
    /// # use suppaftp::{FtpStream, FtpError};
    /// # use std::io::Cursor;
    /// # let mut conn = FtpStream::connect("127.0.0.1:10021").unwrap();
    /// # conn.login("test", "test").and_then(|_| {
    /// #     let mut reader = Cursor::new("hello, world!".as_bytes());
    /// #     conn.put_file("simple_retr.txt", &mut reader)
    /// # }).unwrap();
    /// let cursor = conn.retr_as_buffer("simple_retr.txt").unwrap();
    /// // do something with bytes
    /// assert_eq!(cursor.into_inner(), "hello, world!".as_bytes());
    /// # assert!(conn.rm("simple_retr.txt").is_ok());
    /// ```
    pub fn retr_as_buffer(&mut self, file_name: &str) -> FtpResult<Cursor<Vec<u8>>> {
        self.retr(file_name, |reader| {
            let mut buffer = Vec::new();
            reader
                .read_to_end(&mut buffer)
                .map(|_| buffer)
                .map_err(FtpError::ConnectionError)
        })
        .map(Cursor::new)
    }

    /// Retrieves the file `file_name` from the server as a readable [`TransferStream`].
    ///
    /// Read the payload from the returned stream, then call [`TransferStream::finish`] to close
    /// the data connection and read the server's completion reply. Until then any other data
    /// command fails with [`FtpError::DataConnectionAlreadyOpen`].
    ///
    /// # Examples
    ///
    /// ```rust,no_run
    /// use std::io::Read;
    ///
    /// use suppaftp::FtpStream;
    ///
    /// let mut ftp = FtpStream::connect("127.0.0.1:21").unwrap();
    /// ftp.login("test", "test").unwrap();
    /// let mut download = ftp.retr_as_stream("hello.txt").unwrap();
    /// let mut buf = Vec::new();
    /// download.read_to_end(&mut buf).unwrap();
    /// download.finish().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Returns [`FtpError::DataConnectionAlreadyOpen`] if a transfer is still in progress, and
    /// [`FtpError::UnexpectedResponse`] if the server refuses the `RETR` command or the offset set by
    /// [`Self::resume_transfer`].
    pub fn retr_as_stream<S: AsRef<str>>(&mut self, file_name: S) -> FtpResult<TransferStream<T>> {
        debug!("Retrieving '{}'", file_name.as_ref());
        let (_, stream) = self.open_transfer(
            Command::Retr(file_name.as_ref().to_string()),
            &[Status::AboutToSend, Status::AlreadyOpen],
        )?;
        Ok(stream)
    }

    /// Removes the remote pathname from the server.
    pub fn rmdir<S: AsRef<str>>(&mut self, pathname: S) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("Removing directory {}", pathname.as_ref());
        cc.perform(Command::Rmd(pathname.as_ref().to_string()))?;
        // Some non-compliant servers (e.g. bftpd) reply with 200 instead of 250.
        cc.read_response_in(&[Status::RequestedFileActionOk, Status::CommandOk])
            .map(|_| ())
    }

    /// Remove the remote file from the server.
    pub fn rm<S: AsRef<str>>(&mut self, filename: S) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("Removing file {}", filename.as_ref());
        cc.perform(Command::Dele(filename.as_ref().to_string()))?;
        // Some non-compliant servers (e.g. bftpd) reply with 200 instead of 250.
        cc.read_response_in(&[Status::RequestedFileActionOk, Status::CommandOk])
            .map(|_| ())
    }

    /// This stores a file on the server.
    /// r argument must be any struct which implemenents the [`Read`] trait.
    ///
    /// In the default ASCII transfer type, every LF not preceded by CR is sent as CRLF, as
    /// RFC 959 requires. Selecting another type with [`ImplFtpStream::transfer_type`] sends the
    /// bytes unchanged; selecting [`FileType::Ascii`] enables conversion again.
    ///
    /// Returns the number of bytes sent, including any CR added by the conversion.
    pub fn put_file<S: AsRef<str>, R: Read>(&mut self, filename: S, r: &mut R) -> FtpResult<u64> {
        let ascii = self.ascii_transfer;
        // Get stream
        let mut data_stream = self.put_with_stream(filename.as_ref())?;
        let bytes = if ascii {
            crate::ascii::copy_crlf(r, &mut data_stream)
        } else {
            copy(r, &mut data_stream)
        }
        .map_err(FtpError::ConnectionError)?;
        data_stream.finish()?;
        Ok(bytes)
    }

    /// Sends `STOR` and returns a writable [`TransferStream`] for the file `filename`.
    ///
    /// Write the payload to the returned stream, then call [`TransferStream::finish`] to close
    /// the data connection and read the server's completion reply. Until then any other data
    /// command fails with [`FtpError::DataConnectionAlreadyOpen`].
    ///
    /// The bytes written are sent unchanged, even in the ASCII transfer type; use
    /// [`ImplFtpStream::put_file`] to have line endings converted.
    ///
    /// # Examples
    ///
    /// ```rust,no_run
    /// use std::io::Write;
    ///
    /// use suppaftp::FtpStream;
    ///
    /// let mut ftp = FtpStream::connect("127.0.0.1:21").unwrap();
    /// ftp.login("test", "test").unwrap();
    /// let mut upload = ftp.put_with_stream("hello.txt").unwrap();
    /// upload.write_all(b"hello, world!").unwrap();
    /// upload.finish().unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Returns [`FtpError::DataConnectionAlreadyOpen`] if a transfer is still in progress, and
    /// [`FtpError::UnexpectedResponse`] if the server refuses the `STOR` command or the offset set by
    /// [`Self::resume_transfer`].
    pub fn put_with_stream<S: AsRef<str>>(&mut self, filename: S) -> FtpResult<TransferStream<T>> {
        debug!("Put file {}", filename.as_ref());
        let (_, stream) = self.open_transfer(
            Command::Store(filename.as_ref().to_string()),
            &[Status::AlreadyOpen, Status::AboutToSend],
        )?;
        Ok(stream)
    }

    /// Sends `APPE` and returns a writable [`TransferStream`] appending to the file `filename`.
    ///
    /// Behaves like [`ImplFtpStream::put_with_stream`], except that the data is appended.
    ///
    /// # Errors
    ///
    /// Returns [`FtpError::DataConnectionAlreadyOpen`] if a transfer is still in progress, and
    /// [`FtpError::UnexpectedResponse`] if the server refuses the `APPE` command or the offset set by
    /// [`Self::resume_transfer`].
    pub fn append_with_stream<S: AsRef<str>>(
        &mut self,
        filename: S,
    ) -> FtpResult<TransferStream<T>> {
        debug!("Appending to file {}", filename.as_ref());
        let (_, stream) = self.open_transfer(
            Command::Appe(filename.as_ref().to_string()),
            &[Status::AlreadyOpen, Status::AboutToSend],
        )?;
        Ok(stream)
    }

    /// Append data from reader to file at `filename`
    ///
    /// Line endings are converted like in [`ImplFtpStream::put_file`].
    pub fn append_file<R: Read>(&mut self, filename: &str, r: &mut R) -> FtpResult<u64> {
        let ascii = self.ascii_transfer;
        // Get stream
        let mut data_stream = self.append_with_stream(filename)?;
        let bytes = if ascii {
            crate::ascii::copy_crlf(r, &mut data_stream)
        } else {
            copy(r, &mut data_stream)
        }
        .map_err(FtpError::ConnectionError)?;
        data_stream.finish()?;
        Ok(bytes)
    }

    /// Aborts the transfer running on `transfer` with the `ABOR` command.
    ///
    /// The data connection is closed and the server's abort replies (`426` followed by `226`,
    /// or a single `226`) are consumed, so the control connection is ready for the next command.
    /// `transfer` must have been obtained from this client.
    ///
    /// # Errors
    ///
    /// Returns [`FtpError::UnexpectedResponse`] if the server does not acknowledge the abort.
    pub fn abort(&mut self, transfer: TransferStream<T>) -> FtpResult<()> {
        debug!("Aborting active file transfer");
        // Detach the socket first: the stream must not finalize itself while the lock is held.
        let data_stream = transfer.detach();
        let mut cc = self.control();
        cc.perform(Command::Abor)?;
        // Drop stream NOTE: must be done first, otherwise server won't return any response
        drop(data_stream);
        // mark data channel as closed
        cc.data_connection_open = false;
        trace!("dropped stream");
        let response =
            cc.read_response_in(&[Status::ClosingDataConnection, Status::TransferAborted])?;
        // If server sent 426 (TransferAborted), expect a follow-up 226
        if response.status == Status::TransferAborted {
            cc.read_response(Status::ClosingDataConnection)?;
        }
        debug!("Transfer aborted");
        Ok(())
    }

    /// Sets the offset the next transfer resumes from: the amount of bytes to skip at the beginning of the file.
    ///
    /// `REST` is not sent here but by the next data command, right before `RETR`, `STOR`, `APPE` or the command of
    /// [`Self::custom_data_command`], once the data connection has been negotiated with `PASV`/`EPSV`/`PORT`/`EPRT`.
    /// RFC 3659 §5.3 requires `REST` to immediately precede the transfer command, and some servers (FileZilla Server)
    /// silently drop the offset when another command comes in between.
    ///
    /// The offset applies to the next data command only, which consumes it whether it succeeds or fails. A listing
    /// (`LIST`, `NLST`, `MLSD`) discards it without sending `REST`. Passing an offset of 0 cancels a pending offset.
    ///
    /// # Errors
    ///
    /// Never fails; a server refusing the offset is reported by the next transfer command with
    /// [`FtpError::UnexpectedResponse`].
    pub fn resume_transfer(&mut self, offset: usize) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("Resuming the next transfer at offset {offset}");
        cc.restart = (offset > 0).then_some(offset);
        Ok(())
    }

    /// Execute `LIST` command which returns the detailed file listing in human readable format.
    /// If `pathname` is omited then the list of files in the current directory will be
    /// returned otherwise it will the list of files on `pathname`.
    ///
    /// ### Parse result
    ///
    /// You can parse the output of this command with
    ///
    /// ```rust
    ///
    /// use std::str::FromStr;
    /// use suppaftp::list::File;
    ///
    /// let file: File = File::from_str("-rw-rw-r-- 1 0  1  8192 Nov 5 2018 omar.txt")
    ///
    ///     .unwrap();
    /// ```
    pub fn list(&mut self, pathname: Option<&str>) -> FtpResult<Vec<String>> {
        debug!(
            "Reading {} directory content",
            pathname.unwrap_or("working")
        );

        self.stream_lines(
            Command::List(pathname.map(|x| x.to_string())),
            Status::AboutToSend,
        )
    }

    /// Execute `NLST` command which returns the list of file names only.
    /// If `pathname` is omited then the list of files in the current directory will be
    /// returned otherwise it will the list of files on `pathname`.
    pub fn nlst(&mut self, pathname: Option<&str>) -> FtpResult<Vec<String>> {
        debug!(
            "Getting file names for {} directory",
            pathname.unwrap_or("working")
        );

        self.stream_lines(
            Command::Nlst(pathname.map(|x| x.to_string())),
            Status::AboutToSend,
        )
    }

    /// Execute `MLSD` command which returns the machine-processable listing of a directory.
    /// If `pathname` is omited then the list of files in the current directory will be
    pub fn mlsd(&mut self, pathname: Option<&str>) -> FtpResult<Vec<String>> {
        debug!(
            "Reading {} directory content",
            pathname.unwrap_or("working")
        );

        self.stream_lines(
            Command::Mlsd(pathname.map(|x| x.to_string())),
            Status::AboutToSend,
        )
    }

    /// Execute `MLST` command which returns the machine-processable listing of a file.
    /// If `pathname` is omited then the list of files in the current directory will be
    pub fn mlst(&mut self, pathname: Option<&str>) -> FtpResult<String> {
        let mut cc = self.control();
        debug!("Reading {} path information", pathname.unwrap_or("working"));

        cc.perform(Command::Mlst(pathname.map(|x| x.to_string())))?;
        let response = cc.read_response_in(&[Status::RequestedFileActionOk])?;
        // read body at line 1
        let response_str = cc
            .encoding
            .decode(&crate::command::unescape_telnet_iac(&response.body));
        match response_str.lines().nth(1) {
            Some("") => Err(FtpError::BadResponse),
            Some(line) => Ok(line.trim().to_string()),
            None => Err(FtpError::BadResponse),
        }
    }

    /// Retrieves the modification time of the file at `pathname` if it exists.
    pub fn mdtm<S: AsRef<str>>(&mut self, pathname: S) -> FtpResult<NaiveDateTime> {
        let mut cc = self.control();
        debug!("Getting modification time for {}", pathname.as_ref());
        cc.perform(Command::Mdtm(pathname.as_ref().to_string()))?;
        let response: Response = cc.read_response(Status::File)?;
        let body = response.as_string().map_err(|_| FtpError::BadResponse)?;

        match MDTM_RE.captures(&body) {
            Some(caps) => {
                let (year, month, day) = (
                    caps[1].parse::<i32>().map_err(|_| FtpError::BadResponse)?,
                    caps[2].parse::<u32>().map_err(|_| FtpError::BadResponse)?,
                    caps[3].parse::<u32>().map_err(|_| FtpError::BadResponse)?,
                );
                let (hour, minute, second) = (
                    caps[4].parse::<u32>().map_err(|_| FtpError::BadResponse)?,
                    caps[5].parse::<u32>().map_err(|_| FtpError::BadResponse)?,
                    caps[6].parse::<u32>().map_err(|_| FtpError::BadResponse)?,
                );

                let date = match NaiveDate::from_ymd_opt(year, month, day) {
                    Some(d) => d,
                    None => return Err(FtpError::BadResponse),
                };

                let time = match NaiveTime::from_hms_opt(hour, minute, second) {
                    Some(t) => t,
                    None => return Err(FtpError::BadResponse),
                };

                Ok(NaiveDateTime::new(date, time))
            }
            None => Err(FtpError::BadResponse),
        }
    }

    /// Retrieves the size of the file in bytes at `pathname` if it exists.
    pub fn size<S: AsRef<str>>(&mut self, pathname: S) -> FtpResult<usize> {
        let mut cc = self.control();
        debug!("Getting file size for {}", pathname.as_ref());
        cc.perform(Command::Size(pathname.as_ref().to_string()))?;
        let response: Response = cc.read_response(Status::File)?;
        let body = response.as_string().map_err(|_| FtpError::BadResponse)?;

        match SIZE_RE.captures(&body) {
            Some(caps) => caps[1].parse().map_err(|_| FtpError::BadResponse),
            None => Err(FtpError::BadResponse),
        }
    }

    /// Retrieves the features supported by the server, through the FEAT command.
    pub fn feat(&mut self) -> FtpResult<Features> {
        let mut cc = self.control();
        debug!("Getting server supported features");
        // Send FEAT command
        cc.perform(Command::Feat)?;

        // Read the response
        let response = cc.read_response(Status::System)?;

        let first_line = String::from_utf8_lossy(&response.body);
        let mut feat_lines = vec![first_line.to_string()];
        let mut reply_len = response.body.len();
        loop {
            let mut line = Vec::new();
            let line_sz = cc.read_line(&mut line, reply_len)?;
            reply_len += line_sz;
            if line_sz == 0 {
                // EOF reached
                break;
            }
            let line = String::from_utf8_lossy(&line);
            trace!("FEAT IN: {:?}", line);
            feat_lines.push(line.to_string());
            if crate::command::feat::is_last_line(&line) {
                break;
            }
        }

        crate::command::feat::parse_features(&feat_lines)
    }

    /// Set option `option` with an optional value
    pub fn opts(&mut self, option: impl ToString, value: Option<impl ToString>) -> FtpResult<()> {
        let mut cc = self.control();
        debug!("Getting server supported features");
        cc.perform(Command::Opts(
            option.to_string(),
            value.map(|x| x.to_string()),
        ))?;
        cc.read_response(Status::CommandOk)?;

        Ok(())
    }

    /// Execute a command on the server and return the response
    pub fn site(&mut self, command: impl ToString) -> FtpResult<Response> {
        let mut cc = self.control();
        debug!("Sending SITE command: {}", command.to_string());
        cc.perform(Command::Site(command.to_string()))?;
        cc.read_response(Status::CommandOk)
    }

    /// Perform custom command.
    ///
    /// The command is sent as a single control-channel line, so it must not
    /// contain CR or LF: embedding a line break would let a second command be
    /// smuggled to the server.
    ///
    /// # Errors
    ///
    /// Returns [`FtpError::ConnectionError`] with [`std::io::ErrorKind::InvalidInput`]
    /// if `command` contains CR or LF.
    pub fn custom_command(
        &mut self,
        command: impl ToString,
        expected_code: &[Status],
    ) -> FtpResult<Response> {
        let mut cc = self.control();
        let command = command.to_string();
        debug!("Sending custom command: {}", command);
        cc.perform(Command::Custom(command))?;
        cc.read_response_in(expected_code)
    }

    /// Perform a custom command using the data connection.
    ///
    /// It returns both the [`Response`] and a [`TransferStream`], which implements both
    /// [`std::io::Write`] and [`Read`] and so it can be written or read to interact with the data
    /// channel.
    ///
    /// If you want you can easily parse lines from the stream using [`Self::get_lines_from_stream`].
    ///
    /// Once done, call [`TransferStream::finish`] to close the data connection and read the
    /// server's completion reply.
    ///
    /// # Errors
    ///
    /// Returns [`FtpError::DataConnectionAlreadyOpen`] if a transfer is still in progress, and
    /// [`FtpError::UnexpectedResponse`] if the server's reply is not in `expected_code` or the server
    /// refuses the offset set by [`Self::resume_transfer`].
    pub fn custom_data_command(
        &mut self,
        command: impl ToString,
        expected_code: &[Status],
    ) -> FtpResult<(Response, TransferStream<T>)> {
        let command = command.to_string();
        debug!("Sending custom data command: {}", command);
        self.open_transfer(Command::Custom(command), expected_code)
    }

    /// Read a data stream line by line, decoding each line as lossy UTF-8.
    pub fn get_lines_from_stream<R>(data_stream: &mut R) -> FtpResult<Vec<String>>
    where
        R: BufRead,
    {
        Self::decode_lines_from_stream(data_stream, &Utf8Encoding)
    }

    /// Reads `data_stream` line by line, decoding each non-empty line with `encoding`.
    fn decode_lines_from_stream<R>(
        data_stream: &mut R,
        encoding: &dyn Encoding,
    ) -> FtpResult<Vec<String>>
    where
        R: BufRead,
    {
        let mut lines: Vec<String> = Vec::new();

        loop {
            let mut line_buf = vec![];
            match data_stream.read_until(b'\n', &mut line_buf) {
                Ok(0) => break,
                Ok(_) => {
                    let bytes = line_buf.strip_suffix(b"\n").unwrap_or(&line_buf);
                    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                    if bytes.is_empty() {
                        continue;
                    }
                    let line = encoding.decode(bytes);
                    trace!("STREAM IN: {:?}", line);
                    lines.push(line);
                }
                Err(err) => {
                    error!("failed to get lines from stream: {err}");
                    return Err(FtpError::BadResponse);
                }
            }
        }
        trace!("Lines from stream {:?}", lines);

        Ok(lines)
    }

    /// Locks the control connection for the duration of one command.
    fn control(&self) -> MutexGuard<'_, ControlChannel<T>> {
        let mut cc = control::lock(&self.control);
        // ftpfs patch: a passive reply left unread by `finish_with_passive` comes before
        // the reply of anything sent now. Its data connection is kept for the next
        // transfer; a connection that cannot read it is closed, so that the command fails
        // as a lost connection instead of reading the wrong reply.
        if std::mem::take(&mut cc.passive_pending) {
            match self.passive_answer(&mut cc) {
                Ok(()) | Err(FtpError::UnexpectedResponse(_)) => {}
                Err(e) => {
                    debug!("the pending passive reply could not be read ({e}); closing");
                    let _ = cc.socket().shutdown(std::net::Shutdown::Both);
                }
            }
        }
        cc
    }

    /// Opens the data connection for `cmd` and wraps it into a self-finalizing [`TransferStream`].
    fn open_transfer(
        &self,
        cmd: Command,
        expected_code: &[Status],
    ) -> FtpResult<(Response, TransferStream<T>)> {
        let mut cc = self.control();
        let (response, data_stream) =
            self.data_command_with_response(&mut cc, cmd, expected_code)?;
        Ok((
            response,
            TransferStream::new(data_stream, Arc::clone(&self.control)),
        ))
    }

    /// Opens the data channel after the transfer command's preliminary response is accepted.
    ///
    /// Passive mode connects the raw TCP socket before sending the command. Active mode sends the
    /// command and validates its reply before accepting a data socket. Rejections drop the pending
    /// socket or listener without starting TLS or marking the data connection open.
    ///
    /// The offset set by `resume_transfer` is consumed here, even on failure, and sent as `REST`
    /// right before a file transfer command.
    fn data_command_with_response(
        &self,
        cc: &mut ControlChannel<T>,
        cmd: Command,
        expected_code: &[Status],
    ) -> FtpResult<(Response, DataStream<T>)> {
        // A pending offset belongs to this data command only, so no failure can leave it armed.
        let restart = cc.restart.take();
        // Reject overlapping transfers before negotiating or opening another data socket.
        cc.guard_multiple_data_connections()?;

        // The early upload of `set_early_upload` is for this command only, whatever path.
        let early = std::mem::take(&mut cc.early_upload);
        let (response, data_stream) = match self.mode {
            Mode::Active => {
                let listener = self.active(cc)?;
                Self::send_restart(cc, restart, &cmd)?;
                cc.perform(cmd)?;
                let response = cc.read_response_in(expected_code)?;

                // Anyone reaching the listener may connect first; only allowed peers are taken.
                let control_peer = cc
                    .socket()
                    .peer_addr()
                    .map_err(FtpError::ConnectionError)?
                    .ip();
                let start = Instant::now();
                let stream = loop {
                    match listener.accept() {
                        Ok((stream, addr))
                            if self.active_peer_check.allows(addr.ip(), control_peer) =>
                        {
                            // The listener is non-blocking so this loop can time out, and macOS
                            // and Windows hand that mode down to the accepted socket. The
                            // transfer (and any TLS handshake) must block until data moves.
                            stream
                                .set_nonblocking(false)
                                .map_err(FtpError::ConnectionError)?;
                            break stream;
                        }
                        Ok((_, addr)) => warn!("Ignoring data connection from unexpected {addr}"),
                        Err(ref error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                            if start.elapsed() > self.active_timeout {
                                return Err(FtpError::ConnectionError(
                                    std::io::ErrorKind::WouldBlock.into(),
                                ));
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        Err(error) => return Err(FtpError::ConnectionError(error)),
                    }
                };
                (response, self.secure_data_stream(stream)?)
            }
            Mode::ExtendedPassive | Mode::Passive => {
                let prepared = Self::take_prepared(cc);
                cc.early_upload = early;
                match prepared {
                    Some(stream) if self.pipelining => {
                        self.pipelined_command(cc, restart, cmd, expected_code, Some(stream))?
                    }
                    // ftpfs patch: the passive command goes together with the transfer
                    // command (and its `REST`), once this connection's server has
                    // answered one: one round trip where there were two.
                    None if self.pipelining && cc.passive_answered => {
                        self.pipelined_command(cc, restart, cmd, expected_code, None)?
                    }
                    prepared => {
                        let stream = match prepared {
                            Some(stream) => stream,
                            None => {
                                let address = if self.mode == Mode::ExtendedPassive {
                                    self.epsv(cc)?
                                } else {
                                    self.pasv(cc)?
                                };
                                (self.passive_stream_builder)(address)?
                            }
                        };
                        if !self.pipelining {
                            cc.early_upload = false;
                            Self::send_restart(cc, restart, &cmd)?;
                            cc.perform(cmd)?;
                            let response = cc.read_response_in(expected_code)?;
                            (response, self.secure_data_stream(stream)?)
                        } else {
                            self.pipelined_command(cc, restart, cmd, expected_code, Some(stream))?
                        }
                    }
                }
            }
        };

        cc.data_connection_open = true;
        Ok((response, data_stream))
    }

    /// The data connection as the transfer uses it: TLS (made by the connector) when the
    /// control connection is, plain otherwise.
    fn secure_data_stream(&self, stream: TcpStream) -> FtpResult<DataStream<T>> {
        #[cfg(not(feature = "secure"))]
        return Ok(DataStream::Tcp(stream));

        #[cfg(feature = "secure")]
        match (self.tls_ctx.as_ref(), self.domain.as_ref()) {
            (Some(tls_ctx), Some(domain)) => Ok(DataStream::Ssl(Box::new(
                tls_ctx
                    .connect(domain, stream)
                    .map_err(|error| FtpError::SecureError(format!("{error}")))?,
            ))),
            (Some(_), None) => Err(FtpError::SecureError(
                "TLS context is set but no domain is available for the secure connection"
                    .to_string(),
            )),
            (None, _) => Ok(DataStream::Tcp(stream)),
        }
    }

    /// ftpfs patch: closes a data connection the server refused to use, without the TLS
    /// goodbye a TLS stream sends when dropped (its handshake may have begun only on our
    /// side, and flushing it would wait for a server that does not answer).
    fn discard_data_stream(stream: DataStream<T>) {
        #[cfg(feature = "secure")]
        if let DataStream::Ssl(tls) = stream {
            drop(tls.tcp_stream());
            return;
        }
        drop(stream);
    }

    /// ftpfs patch: a prepared data connection still worth using: not older than
    /// [`PREPARED_MAX_AGE`], and not closed by the server (a non-blocking peek that finds
    /// neither an end nor an error nor unasked bytes).
    fn take_prepared(cc: &mut ControlChannel<T>) -> Option<TcpStream> {
        let (stream, at) = cc.prepared.take()?;
        if at.elapsed() > PREPARED_MAX_AGE {
            debug!("prepared data connection too old; opening another");
            return None;
        }
        let mut probe = [0u8; 1];
        let alive = stream.set_nonblocking(true).is_ok()
            && matches!(stream.peek(&mut probe), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
            && stream.set_nonblocking(false).is_ok();
        if !alive {
            debug!("prepared data connection closed by the server; opening another");
            return None;
        }
        debug!("using the prepared data connection");
        Some(stream)
    }

    /// ftpfs patch: the transfer command with pipelining: `REST` (if any) and the command
    /// written at once, their replies read after. A plain upload does not wait for its
    /// `150` (read by [`ControlChannel::complete_transfer`]). A TLS data connection's
    /// stream is made right after the command is written, before the replies, when the
    /// connector asks for it ([`TlsConnector::connect_before_reply`]), after them otherwise.
    /// Without a data connection (`stream` `None`), `EPSV` (or `PASV`) goes first in the
    /// same write, and the data connection is made from its reply while the server takes
    /// the command. Its refusal leaves replies unread, so it is a connection error: the
    /// connection is not reused.
    fn pipelined_command(
        &self,
        cc: &mut ControlChannel<T>,
        restart: Option<usize>,
        cmd: Command,
        expected_code: &[Status],
        stream: Option<TcpStream>,
    ) -> FtpResult<(Response, DataStream<T>)> {
        let transfers_file = matches!(
            cmd,
            Command::Retr(_) | Command::Store(_) | Command::Appe(_) | Command::Custom(_)
        );
        let upload = matches!(cmd, Command::Store(_) | Command::Appe(_));
        let restart = restart.filter(|_| transfers_file);
        #[cfg(feature = "secure")]
        let (plain, before_reply) = match &self.tls_ctx {
            Some(tls) => (false, tls.connect_before_reply()),
            None => (true, false),
        };
        #[cfg(not(feature = "secure"))]
        let (plain, before_reply) = (true, false);
        let mut commands = Vec::with_capacity(3);
        if stream.is_none() {
            commands.push(match self.mode {
                Mode::ExtendedPassive => Command::Epsv,
                _ => Command::Pasv,
            });
        }
        commands.extend(restart.map(Command::Rest));
        commands.push(cmd);
        cc.perform_all(commands)?;
        let stream = match stream {
            Some(stream) => stream,
            None => {
                debug!("passive command pipelined with the transfer command");
                let address = match self.mode {
                    Mode::ExtendedPassive => self.epsv_reply(cc),
                    _ => self.pasv_reply(cc),
                }
                .map_err(|e| {
                    FtpError::ConnectionError(std::io::Error::other(format!(
                        "passive mode refused with the transfer command sent: {e}"
                    )))
                })?;
                (self.passive_stream_builder)(address)?
            }
        };
        // Made now, or once the reply says the server takes the data connection.
        let stream = if before_reply {
            self.secure_data_stream(stream)?
        } else {
            DataStream::Tcp(stream)
        };
        if let Some(offset) = restart {
            if let Err(refused) = cc.read_response(Status::RequestFilePending) {
                debug!("REST {offset} refused; ending what the transfer command started");
                // The command went too: a transfer it started is from byte 0, not ours.
                let in_step = match cc.read_response_in(&[Status::AboutToSend, Status::AlreadyOpen])
                {
                    Ok(_) => {
                        Self::discard_data_stream(stream);
                        // Its end: `226`, `426`, or pure-ftpd's lone second `150`. Any
                        // reply read keeps the channel in step; none (a timeout) does not.
                        matches!(
                            cc.read_response_in(&[
                                Status::ClosingDataConnection,
                                Status::RequestedFileActionOk,
                                Status::TransferAborted,
                            ]),
                            Ok(_) | Err(FtpError::UnexpectedResponse(_))
                        )
                    }
                    // The command's own refusal (`550`) was read: in step.
                    Err(FtpError::UnexpectedResponse(_)) => {
                        Self::discard_data_stream(stream);
                        true
                    }
                    Err(_) => {
                        Self::discard_data_stream(stream);
                        false
                    }
                };
                if !in_step {
                    // Which reply comes next is unknown: a command sent now could be answered
                    // by a reply meant for this transfer. The connection is closed, so that
                    // its next use fails as a lost connection and a new one is made.
                    debug!(
                        "the control connection is out of step after a refused REST; closing it"
                    );
                    let _ = cc.socket().shutdown(std::net::Shutdown::Both);
                }
                return Err(refused);
            }
        }
        // Over TLS the upload's first write waits for the server's handshake, which comes
        // right after its `150`: reading the `150` first costs nothing there.
        if std::mem::take(&mut cc.early_upload) && upload && plain && restart.is_none() {
            cc.preliminary_pending = true;
            return Ok((Response::new(Status::AboutToSend, Vec::new()), stream));
        }
        let response = match cc.read_response_in(expected_code) {
            Ok(response) => response,
            Err(refused) => {
                Self::discard_data_stream(stream);
                return Err(refused);
            }
        };
        match stream {
            DataStream::Tcp(tcp) if !plain => Ok((response, self.secure_data_stream(tcp)?)),
            stream => Ok((response, stream)),
        }
    }

    /// Sends `restart` as `REST` if `cmd` transfers a file.
    ///
    /// `REST` must immediately precede the transfer command (RFC 3659 §5.3), so this runs after
    /// PASV/EPSV/PORT/EPRT. A custom data command counts as a transfer, while listings drop the offset.
    fn send_restart(
        cc: &mut ControlChannel<T>,
        restart: Option<usize>,
        cmd: &Command,
    ) -> FtpResult<()> {
        let Some(offset) = restart else {
            return Ok(());
        };
        if !matches!(
            cmd,
            Command::Retr(_) | Command::Store(_) | Command::Appe(_) | Command::Custom(_)
        ) {
            debug!("Dropping restart offset {offset}: the command does not transfer a file");
            return Ok(());
        }
        debug!("Requesting to resume transfer at offset {offset}");
        cc.perform(Command::Rest(offset))?;
        cc.read_response(Status::RequestFilePending)?;
        Ok(())
    }

    /// Create a new tcp listener and send a PORT command for it
    fn active(&self, cc: &mut ControlChannel<T>) -> FtpResult<TcpListener> {
        debug!("Starting local tcp listener...");
        let mut local = cc
            .socket()
            .local_addr()
            .map_err(FtpError::ConnectionError)?;
        local.set_port(0);
        let (conn, addr, extended) = match &self.active_listener_builder {
            Some(build) => {
                let built = build(local)?;
                (built.listener, built.announce, built.extended)
            }
            None => {
                let conn = TcpListener::bind(local).map_err(FtpError::ConnectionError)?;
                let addr = conn.local_addr().map_err(FtpError::ConnectionError)?;
                (conn, addr, false)
            }
        };
        conn.set_nonblocking(true)
            .map_err(FtpError::ConnectionError)?;
        debug!("Active mode, listening on {addr}");
        let ip = addr.ip();

        match ip {
            std::net::IpAddr::V4(_) if !extended => {
                let msb = addr.port() / 256;
                let lsb = addr.port() % 256;
                let ip_port = format!("{},{},{}", ip.to_string().replace('.', ","), msb, lsb);
                debug!("Running PORT command");
                cc.perform(Command::Port(ip_port))?;
            }
            _ => {
                debug!("Running EPRT command");
                cc.perform(Command::Eprt(SocketAddr::new(ip, addr.port())))?;
            }
        }
        cc.read_response(Status::CommandOk)?;

        Ok(conn)
    }

    /// Runs the EPSV to enter Extended passive mode.
    fn epsv(&self, cc: &mut ControlChannel<T>) -> FtpResult<SocketAddr> {
        debug!("EPSV command");
        cc.perform(Command::Epsv)?;
        self.epsv_reply(cc)
    }

    /// The address in the reply to `EPSV`.
    fn epsv_reply(&self, cc: &mut ControlChannel<T>) -> FtpResult<SocketAddr> {
        // PASV response format : 229 Entering Extended Passive Mode (|||PORT|)
        let response: Response = cc.read_response(Status::ExtendedPassiveMode)?;
        let response_str = response.as_string().map_err(|_| FtpError::BadResponse)?;
        let caps = EPSV_PORT_RE
            .captures(&response_str)
            .ok_or_else(|| FtpError::UnexpectedResponse(response.clone()))?;
        let new_port = caps[1].parse::<u16>().map_err(|_| FtpError::BadResponse)?;
        trace!("Got port number from EPSV: {}", new_port);
        let mut remote = cc.socket().peer_addr().map_err(FtpError::ConnectionError)?;
        remote.set_port(new_port);
        trace!("Remote address for extended passive mode is {}", remote);
        cc.passive_answered = true;
        Ok(remote)
    }

    /// Runs the PASV command  to enter passive mode.
    fn pasv(&self, cc: &mut ControlChannel<T>) -> FtpResult<SocketAddr> {
        debug!("PASV command");
        cc.perform(Command::Pasv)?;
        self.pasv_reply(cc)
    }

    /// The address in the reply to `PASV`.
    fn pasv_reply(&self, cc: &mut ControlChannel<T>) -> FtpResult<SocketAddr> {
        // PASV response format : 227 Entering Passive Mode (h1,h2,h3,h4,p1,p2).
        let response = cc.read_response(Status::PassiveMode)?;
        let addr = Self::parse_passive_address_from_response(response)?;
        trace!("Passive address: {addr}",);
        cc.passive_answered = true;
        if self.nat_workaround {
            let mut remote = cc.socket().peer_addr().map_err(FtpError::ConnectionError)?;
            remote.set_port(addr.port());
            trace!("Replacing site local address {} with {}", addr, remote);
            Ok(remote)
        } else {
            Ok(addr)
        }
    }

    /// Parse passive address from response
    pub(crate) fn parse_passive_address_from_response(response: Response) -> FtpResult<SocketAddr> {
        let response_str = response.as_string().map_err(|_| FtpError::BadResponse)?;
        trace!("PASV response: {response_str}",);
        let caps = PASV_PORT_RE
            .captures(&response_str)
            .ok_or_else(|| FtpError::UnexpectedResponse(response.clone()))?;
        // The regex only guarantees the groups are digits; a malicious or buggy
        // server may still send an octet that overflows a `u8`, so parsing is fallible.
        let parse_octet = |index: usize| -> FtpResult<u8> {
            caps[index]
                .parse::<u8>()
                .map_err(|_| FtpError::UnexpectedResponse(response.clone()))
        };
        let (oct1, oct2, oct3, oct4) = (
            parse_octet(1)?,
            parse_octet(2)?,
            parse_octet(3)?,
            parse_octet(4)?,
        );
        let (msb, lsb) = (parse_octet(5)?, parse_octet(6)?);
        let ip = Ipv4Addr::new(oct1, oct2, oct3, oct4);
        let port = (u16::from(msb) << 8) | u16::from(lsb);
        let addr = SocketAddr::new(ip.into(), port);

        Ok(addr)
    }

    /// Execute a command which returns list of strings in a separate stream
    fn stream_lines(&self, cmd: Command, open_code: Status) -> FtpResult<Vec<String>> {
        let encoding = Arc::clone(&self.control().encoding);
        let (_, stream) = self.open_transfer(cmd, &[open_code, Status::AlreadyOpen])?;
        let mut data_stream = BufReader::new(stream);
        let lines = Self::decode_lines_from_stream(&mut data_stream, encoding.as_ref());
        data_stream.into_inner().finish()?;
        lines
    }

    /// Default stream builder
    fn default_passive_stream_builder() -> Box<PassiveStreamBuilder> {
        Box::new(|addr| TcpStream::connect(addr).map_err(FtpError::ConnectionError))
    }
}

#[cfg(test)]
mod test {

    #[cfg(any(
        feature = "native-tls",
        feature = "rustls-aws-lc-rs",
        feature = "rustls-ring"
    ))]
    use std::collections::HashMap;
    use std::io::Write;
    use std::net::IpAddr;
    use std::str::FromStr;
    use std::sync::Arc;

    #[cfg(feature = "secure")]
    use pretty_assertions::assert_eq;
    use rand::distr::Alphanumeric;
    use rand::{RngExt, rng};

    use super::*;
    use crate::FtpStream;
    use crate::active_mode_fixture::{
        CONTROL_ADDRESSES, bind_control, serve_active_nlst_on, serve_port_command,
    };
    use crate::test_container::SyncPureFtpRunner;
    #[cfg(any(
        feature = "native-tls",
        feature = "rustls-aws-lc-rs",
        feature = "rustls-ring"
    ))]
    use crate::test_container::SyncTlsFtpRunner;
    use crate::types::FormatControl;

    #[cfg(feature = "native-tls")]
    type TestTlsFtpStream = crate::NativeTlsFtpStream;
    #[cfg(all(not(feature = "native-tls"), feature = "rustls-ring"))]
    type TestTlsFtpStream = crate::RustlsFtpStream;
    #[cfg(all(
        not(feature = "native-tls"),
        not(feature = "rustls-ring"),
        feature = "rustls-aws-lc-rs"
    ))]
    type TestTlsFtpStream = crate::RustlsFtpStream;

    #[cfg(feature = "secure")]
    #[derive(Debug)]
    struct ProbeConnector(Arc<std::sync::atomic::AtomicUsize>);

    #[cfg(feature = "secure")]
    impl TlsConnector for ProbeConnector {
        type Stream = NoTlsStream;

        fn connect(&self, _domain: &str, _stream: TcpStream) -> FtpResult<Self::Stream> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(FtpError::SecureError("probe".into()))
        }
    }

    #[cfg(feature = "secure")]
    #[test]
    fn should_validate_data_reply_before_tls_or_active_accept() {
        use crate::test_data_command::ScriptedDataServer;

        for mode in [Mode::Passive, Mode::ExtendedPassive, Mode::Active] {
            for status in [
                Status::BadCommand,
                Status::FileUnavailable,
                Status::AlreadyOpen,
                Status::AboutToSend,
            ] {
                let server = ScriptedDataServer::start(mode, status);
                let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let control = std::net::TcpStream::connect(server.address()).unwrap();
                control
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                control
                    .set_write_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut ftp = FtpStream::connect_with_stream(control).unwrap();
                ftp = ftp.active_mode(Duration::from_secs(1));
                ftp.set_mode(mode);
                ftp.tls_ctx = Some(Box::new(ProbeConnector(Arc::clone(&calls))));
                ftp.domain = Some("localhost".into());
                let result = ftp
                    .custom_data_command("RETR probe", &[Status::AlreadyOpen, Status::AboutToSend]);
                let accepted = matches!(status, Status::AlreadyOpen | Status::AboutToSend);
                if accepted {
                    assert!(matches!(result, Err(FtpError::SecureError(ref text))
                        if text == "Secure error: probe"));
                } else {
                    assert!(
                        matches!(result, Err(FtpError::UnexpectedResponse(ref response))
                        if response.status == status)
                    );
                }
                assert_eq!(
                    calls.load(std::sync::atomic::Ordering::SeqCst),
                    usize::from(accepted)
                );
                ftp.noop().unwrap();
                drop(ftp);
                server.finish();
            }
        }
    }

    #[test]
    fn active_mode_listens_on_the_control_connection_address() {
        for (address, announced) in CONTROL_ADDRESSES {
            let Some(control) = bind_control(address) else {
                continue;
            };
            let control_ip = control.local_addr().unwrap().ip();
            let (address, server) = serve_port_command(control);
            let ftp = FtpStream::connect(address).unwrap();
            let listener = {
                let mut cc = ftp.control();
                ftp.active(&mut cc).unwrap()
            };
            assert_eq!(listener.local_addr().unwrap().ip(), control_ip);
            let command = server.join().unwrap();
            assert!(command.starts_with(announced), "{command}");
        }
    }

    #[test]
    fn active_mode_transfers_data_on_the_control_connection_address() {
        for (address, _) in CONTROL_ADDRESSES {
            let Some(control) = bind_control(address) else {
                continue;
            };
            let mut ftp = FtpStream::connect(serve_active_nlst_on(control))
                .unwrap()
                .active_mode(Duration::from_secs(1));
            assert_eq!(
                ftp.nlst(None).unwrap(),
                vec!["listed".to_string()],
                "{address}"
            );
        }
    }

    #[test]
    fn connect() {
        crate::log_init();
        with_test_ftp_stream(|_stream| {});
    }

    #[cfg(any(
        feature = "native-tls",
        feature = "rustls-aws-lc-rs",
        feature = "rustls-ring"
    ))]
    #[test]
    fn should_return_ftps_rejections_and_recover() {
        for mode in [Mode::Passive, Mode::ExtendedPassive] {
            let (mut ftp, _container) = setup_tls_stream();
            ftp.set_mode(mode);
            ftp.transfer_type(FileType::Binary).unwrap();
            for _ in 0..2 {
                let cases = [
                    (ftp.mlsd(None).map(|_| ()), Status::BadCommand),
                    (
                        ftp.retr_as_stream("missing-188.txt").map(|_| ()),
                        Status::FileUnavailable,
                    ),
                    (
                        ftp.custom_data_command(
                            "STOR /readonly/denied.txt",
                            &[Status::AboutToSend, Status::AlreadyOpen],
                        )
                        .map(|_| ()),
                        Status::BadFilename,
                    ),
                ];
                for (result, expected) in cases {
                    match result {
                        Err(FtpError::UnexpectedResponse(reply)) => {
                            assert_eq!(reply.status, expected);
                        }
                        other => panic!("expected {expected:?}, got {other:?}"),
                    }
                }
                ftp.noop().unwrap();
            }
            let payload = b"issue 188 TLS recovery\n";
            let mut input = std::io::Cursor::new(payload);
            assert_eq!(
                ftp.put_file("recovered-188.txt", &mut input).unwrap(),
                payload.len() as u64
            );
            let mut download = ftp.retr_as_stream("recovered-188.txt").unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut download, &mut bytes).unwrap();
            download.finish().unwrap();
            assert_eq!(bytes, payload);
            ftp.rm("recovered-188.txt").unwrap();
            ftp.quit().unwrap();
        }
    }

    #[test]
    fn test_should_parse_passive_address_from_response() {
        let response = vec![
            50, 50, 55, 32, 69, 110, 116, 101, 114, 105, 110, 103, 32, 80, 97, 115, 115, 105, 118,
            101, 32, 77, 111, 100, 101, 32, 40, 49, 50, 55, 44, 48, 44, 48, 44, 49, 44, 49, 49, 55,
            44, 53, 54, 41, 13, 10,
        ];
        let response = Response::new(Status::PassiveMode, response);

        let address = FtpStream::parse_passive_address_from_response(response)
            .expect("Failed to parse passive address");
        assert_eq!(
            address.ip(),
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            "IP address is not correct"
        );
        assert_eq!(address.port(), 30008, "Port is not correct");

        let response = vec![
            50, 50, 55, 32, 69, 110, 116, 101, 114, 105, 110, 103, 32, 80, 97, 115, 115, 105, 118,
            101, 32, 77, 111, 100, 101, 32, 40, 53, 56, 44, 50, 52, 55, 44, 57, 50, 44, 49, 50, 50,
            44, 49, 52, 54, 44, 50, 51, 57, 41, 46, 13, 10,
        ];
        let response = Response::new(Status::PassiveMode, response);

        let address = FtpStream::parse_passive_address_from_response(response)
            .expect("Failed to parse passive address");
        assert_eq!(
            address.ip(),
            IpAddr::V4(Ipv4Addr::new(58, 247, 92, 122)),
            "IP address is not correct"
        );
        assert_eq!(address.port(), 37615, "Port is not correct");
    }

    #[test]
    fn should_change_mode() {
        with_test_ftp_stream(|stream| {
            assert_eq!(stream.mode, Mode::Passive);
            stream.set_mode(Mode::Active);
            assert_eq!(stream.mode, Mode::Active);
        })
    }

    #[test]
    fn should_connect_with_timeout() {
        crate::log_init();
        let container = SyncPureFtpRunner::start();
        let port = container.get_ftp_port();
        let url = format!("127.0.0.1:{port}");
        let addr: SocketAddr = url.parse().expect("invalid hostname");

        let mut stream = FtpStream::connect_timeout(addr, Duration::from_secs(15)).unwrap();
        assert!(stream.login("test", "test").is_ok());
        assert!(
            stream
                .get_welcome_msg()
                .unwrap()
                .contains("220 Welcome Alpine ftp server")
        );
    }

    #[test]
    fn welcome_message() {
        crate::log_init();
        with_test_ftp_stream(|stream| {
            assert!(
                stream
                    .get_welcome_msg()
                    .unwrap()
                    .contains("220 Welcome Alpine ftp server")
            );
        });
    }

    #[test]
    fn should_set_passive_nat_workaround() {
        with_test_ftp_stream(|stream| {
            stream.set_passive_nat_workaround(true);
            assert!(stream.nat_workaround);
        });
    }

    #[test]
    fn get_ref() {
        use std::time::Duration;
        with_test_ftp_stream(|stream| {
            assert!(
                stream
                    .get_ref()
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .is_ok()
            );
        });
    }

    #[test]
    fn change_wrkdir() {
        with_test_ftp_stream(|stream| {
            let wrkdir: String = stream.pwd().unwrap();
            assert!(stream.cwd("/").is_ok());
            assert_eq!(stream.pwd().unwrap().as_str(), "/");
            assert!(stream.cwd(wrkdir.as_str()).is_ok());
        })
    }

    #[test]
    fn cd_up() {
        with_test_ftp_stream(|stream| {
            let wrkdir: String = stream.pwd().unwrap();
            assert!(stream.cdup().is_ok());
            assert_eq!(stream.pwd().unwrap().as_str(), "/home/test");
            assert!(stream.cwd(wrkdir.as_str()).is_ok());
        })
    }

    #[test]
    fn noop() {
        with_test_ftp_stream(|stream| {
            assert!(stream.noop().is_ok());
        })
    }

    #[test]
    fn make_and_remove_dir() {
        with_test_ftp_stream(|stream| {
            // Make directory
            assert!(stream.mkdir("omar").is_ok());
            // It shouldn't allow me to re-create the directory; should return error code 550
            match stream.mkdir("omar").err().unwrap() {
                FtpError::UnexpectedResponse(Response { status, body: _ }) => {
                    assert_eq!(status, Status::FileUnavailable)
                }
                err => panic!("Expected UnexpectedResponse, got {}", err),
            }
            // Remove directory
            assert!(stream.rmdir("omar").is_ok());
        })
    }

    #[test]
    fn set_transfer_type() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            assert!(
                stream
                    .transfer_type(FileType::Ascii(FormatControl::Default))
                    .is_ok()
            );
        })
    }

    #[test]
    fn test_should_list_files_with_non_utf8_names() {
        with_test_ftp_stream(|stream| {
            let files = stream
                .nlst(Some("/home/test/invalid-utf8/"))
                .expect("Failed to list files");
            assert_eq!(files.len(), 1);

            // list file and parse
            let files = stream
                .list(Some("/home/test/invalid-utf8/"))
                .expect("Failed to list files");
            assert_eq!(files.len(), 1);
            // parse
            crate::list::File::from_str(files[0].as_str()).expect("Failed to parse file");
        });
    }

    #[test]
    fn should_transfer_file() {
        with_test_ftp_stream(|stream| {
            // Set transfer type to Binary
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            // Write file
            let file_data = "test data\n";
            let mut reader = Cursor::new(file_data.as_bytes());
            assert!(stream.put_file("test.txt", &mut reader).is_ok());
            // Read file
            assert_eq!(
                stream
                    .retr_as_buffer("test.txt")
                    .map(|bytes| bytes.into_inner())
                    .unwrap(),
                file_data.as_bytes()
            );
            // Get size
            assert_eq!(stream.size("test.txt").unwrap(), 10);
            // Size of non-existing file
            assert!(stream.size("omarone.txt").is_err());
            // List directory
            assert_eq!(stream.list(None).unwrap().len(), 1);
            // list names
            assert_eq!(stream.nlst(None).unwrap().as_slice(), &["test.txt"]);
            // modification time
            assert!(stream.mdtm("test.txt").is_ok());
            // Remove file
            assert!(stream.rm("test.txt").is_ok());
            assert!(stream.mdtm("test.txt").is_err());
            // Write file, rename and get
            let file_data = "test data\n";
            let mut reader = Cursor::new(file_data.as_bytes());
            assert!(stream.put_file("test.txt", &mut reader).is_ok());
            // Append file
            let mut reader = Cursor::new(file_data.as_bytes());
            assert!(stream.append_file("test.txt", &mut reader).is_ok());
            // Read file
            let mut reader = stream.retr_as_stream("test.txt").unwrap();
            let mut buffer = Vec::new();
            assert!(reader.read_to_end(&mut buffer).is_ok());
            // Finalize
            assert!(reader.finish().is_ok());
            // Verify file matches
            assert_eq!(buffer.as_slice(), "test data\ntest data\n".as_bytes());
            // Rename
            assert!(stream.rename("test.txt", "toast.txt").is_ok());
            assert!(stream.rm("toast.txt").is_ok());
            // List directory again
            assert_eq!(stream.list(None).unwrap().len(), 0);
        })
    }

    #[test]
    fn should_make_subsequent_retr_call_to_non_existing_files() {
        with_test_ftp_stream(|stream| {
            // First call to non-existing file should return error
            let e = stream.retr_as_stream("non-existing.txt").unwrap_err();
            let e2 = stream.retr_as_stream("non-existing.txt").unwrap_err();
            // Both errors should be the same and not be affected by each other
            assert_eq!(e.to_string(), e2.to_string());
        })
    }

    #[test]
    fn should_reset_data_connection_after_failed_data_command() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());

            // A failed data command must leave the data connection free, otherwise the next data
            // command would wrongly fail with `DataConnectionAlreadyOpen` instead of the real error.
            for _ in 0..3 {
                assert!(stream.retr_as_stream("non-existing.txt").is_err());
                assert!(
                    stream
                        .custom_data_command("RETR non-existing.txt", &[Status::AboutToSend])
                        .is_err()
                );
            }

            // After the failures every kind of data command must still be usable.
            let mut reader = Cursor::new("test data\n".as_bytes());
            assert!(stream.put_file("test.txt", &mut reader).is_ok());
            let mut reader = Cursor::new("test data\n".as_bytes());
            assert!(stream.append_file("test.txt", &mut reader).is_ok());
            assert!(stream.retr_as_buffer("test.txt").is_ok());
            assert!(stream.list(None).is_ok());
            assert!(stream.nlst(None).is_ok());

            assert!(stream.rm("test.txt").is_ok());
        })
    }

    #[test]
    fn should_get_feat_and_set_opts() {
        with_test_ftp_stream(|stream| {
            let features = stream.feat().expect("Failed to get features");
            assert!(features.contains_key("UTF8"));
            assert!(stream.opts("UTF8", Some("ON")).is_ok());
        })
    }

    #[test]
    fn should_resume_transfer() {
        crate::log_init();
        let container = Arc::new(SyncPureFtpRunner::start());
        let port = container.get_ftp_port();

        let url = format!("localhost:{port}");

        // init stream with mapper
        let mut stream: FtpStream = setup_stream(&url, &container);

        // Set transfer type to Binary
        assert!(stream.transfer_type(FileType::Binary).is_ok());
        // get dir
        let wrkdir = stream.pwd().unwrap();
        // put as stream
        let mut transfer_stream = stream.put_with_stream("test.bin").unwrap();
        assert_eq!(
            transfer_stream
                .write(&[0x00, 0x01, 0x02, 0x03, 0x04])
                .unwrap(),
            5
        );
        // Drop stream on purpose to simulate a failed connection
        drop(stream);
        drop(transfer_stream);
        // Re-connect to server
        let mut stream = setup_stream(&url, &container);
        // Go back to previous dir
        assert!(stream.cwd(wrkdir).is_ok());
        // Set transfer type to Binary
        assert!(stream.transfer_type(FileType::Binary).is_ok());
        // Resume transfer
        assert!(stream.resume_transfer(5).is_ok());
        // Reopen stream
        let mut transfer_stream = stream.put_with_stream("test.bin").unwrap();
        assert_eq!(
            transfer_stream
                .write(&[0x05, 0x06, 0x07, 0x08, 0x09, 0x0a])
                .unwrap(),
            6
        );
        // Finalize
        assert!(transfer_stream.finish().is_ok());
        // Get size
        //assert_eq!(stream.size("test.bin").unwrap(), 11);
        // Remove file
        assert!(stream.rm("test.bin").is_ok());

        finalize_stream(stream);
    }

    #[test]
    fn should_transfer_with_extended_passive_mode() {
        with_test_ftp_stream(|stream| {
            // Set transfer type to Binary
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            stream.set_mode(Mode::ExtendedPassive);
            // Write file
            let file_data = "test data\n";
            let mut reader = Cursor::new(file_data.as_bytes());
            assert!(stream.put_file("test.txt", &mut reader).is_ok());
            // Remove file
            assert!(stream.rm("test.txt").is_ok());
        })
    }

    #[test]
    fn test_should_perform_custom_command() {
        with_test_ftp_stream(|stream| {
            let command = "PWD";
            assert!(
                stream
                    .custom_command(command, &[Status::PathCreated])
                    .is_ok()
            );
        });
    }

    #[test]
    fn test_should_perform_custom_data_command() {
        with_test_ftp_stream(|stream| {
            let command = "LIST";
            let (response, data_stream) = stream
                .custom_data_command(command, &[Status::AboutToSend])
                .expect("Failed to perform custom data command");
            assert_eq!(response.status, Status::AboutToSend);
            let mut reader = BufReader::new(data_stream);
            FtpStream::get_lines_from_stream(&mut reader).expect("Failed to get lines from stream");
            // finalize
            assert!(reader.into_inner().finish().is_ok());
        });
    }

    #[test]
    fn test_abort_transfer() {
        crate::log_init();
        let container = Arc::new(SyncPureFtpRunner::start());
        let port = container.get_ftp_port();
        let url = format!("localhost:{port}");

        let mut stream: FtpStream = setup_stream(&url, &container);

        assert!(stream.transfer_type(FileType::Binary).is_ok());
        // Write a file first
        let file_data = "test data for abort\n";
        let mut reader = Cursor::new(file_data.as_bytes());
        assert!(stream.put_file("abort_test.txt", &mut reader).is_ok());
        // Open a retr stream
        let data_stream = stream.retr_as_stream("abort_test.txt").unwrap();
        // Abort the transfer - this is the method under test
        assert!(stream.abort(data_stream).is_ok());
        // NOTE: after abort, the server may leave extra responses in the buffer,
        // so we drop the stream without quit. The container cleanup handles the rest.
        drop(stream);
    }

    #[test]
    fn test_retr_with_callback() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            let file_data = "hello callback";
            let mut reader = Cursor::new(file_data.as_bytes());
            assert!(stream.put_file("callback.txt", &mut reader).is_ok());

            let result = stream
                .retr("callback.txt", |reader| {
                    let mut buf = Vec::new();
                    reader
                        .read_to_end(&mut buf)
                        .map_err(FtpError::ConnectionError)?;
                    Ok(buf)
                })
                .unwrap();
            assert_eq!(result, file_data.as_bytes());

            assert!(stream.rm("callback.txt").is_ok());
        })
    }

    #[test]
    fn test_append_with_stream() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            // Create file
            let mut reader = Cursor::new("part1".as_bytes());
            assert!(stream.put_file("append_stream.txt", &mut reader).is_ok());
            // Append via stream
            let mut data_stream = stream.append_with_stream("append_stream.txt").unwrap();
            data_stream.write_all(b"part2").unwrap();
            data_stream.finish().unwrap();
            // Verify content
            let content = stream
                .retr_as_buffer("append_stream.txt")
                .unwrap()
                .into_inner();
            assert_eq!(content, b"part1part2");
            assert!(stream.rm("append_stream.txt").is_ok());
        })
    }

    #[test]
    fn test_active_mode_builder() {
        crate::log_init();
        let stream = FtpStream::connect("test.rebex.net:21").unwrap();
        let stream = stream.active_mode(Duration::from_secs(30));
        assert_eq!(stream.mode, Mode::Active);
        assert_eq!(stream.active_timeout, Duration::from_secs(30));
    }

    #[test]
    fn test_passive_stream_builder() {
        crate::log_init();
        let stream = FtpStream::connect("test.rebex.net:21").unwrap();
        let stream = stream.passive_stream_builder(|addr| {
            TcpStream::connect(addr).map_err(FtpError::ConnectionError)
        });
        // Verify the builder was set (mode should still be passive)
        assert_eq!(stream.mode, Mode::Passive);
    }

    #[test]
    fn test_parse_passive_address_bad_response() {
        // Non-UTF8 body
        let response = Response::new(Status::PassiveMode, vec![0xff, 0xfe]);
        assert!(FtpStream::parse_passive_address_from_response(response).is_err());

        // No matching pattern
        let response = Response::new(
            Status::PassiveMode,
            "227 No passive mode info here".as_bytes().to_vec(),
        );
        assert!(FtpStream::parse_passive_address_from_response(response).is_err());

        // Octet out of range for a u8 must error instead of panicking
        let response = Response::new(
            Status::PassiveMode,
            "227 Entering Passive Mode (213,229,112,999,216,4)"
                .as_bytes()
                .to_vec(),
        );
        assert!(FtpStream::parse_passive_address_from_response(response).is_err());
    }

    #[test]
    fn test_should_prevent_multiple_data_connections() {
        with_test_ftp_stream(|stream| {
            let command = "LIST";

            let (_, data_stream) = stream
                .custom_data_command(command, &[Status::AboutToSend])
                .expect("Failed to perform custom data command");
            let reader = BufReader::new(data_stream);
            // Try to open another data connection without closing the previous one
            match stream.custom_data_command(command, &[Status::AboutToSend]) {
                Err(FtpError::DataConnectionAlreadyOpen) => {}
                _ => panic!("Expected DataConnectionAlreadyOpen error"),
            }

            // try with all other data commands
            match stream.retr_as_stream("somefile.txt") {
                Err(FtpError::DataConnectionAlreadyOpen) => {}
                _ => panic!("Expected DataConnectionAlreadyOpen error"),
            }

            match stream.put_with_stream("somefile.txt") {
                Err(FtpError::DataConnectionAlreadyOpen) => {}
                _ => panic!("Expected DataConnectionAlreadyOpen error"),
            }

            match stream.append_with_stream("somefile.txt") {
                Err(FtpError::DataConnectionAlreadyOpen) => {}
                _ => panic!("Expected DataConnectionAlreadyOpen error"),
            }

            assert!(reader.into_inner().finish().is_ok());
        });
    }

    #[test]
    fn test_should_free_data_connection_after_close() {
        with_test_ftp_stream(|stream| {
            let command = "LIST";

            let (response, data_stream) = stream
                .custom_data_command(command, &[Status::AboutToSend])
                .expect("Failed to perform custom data command");
            assert_eq!(response.status, Status::AboutToSend);
            let mut reader = BufReader::new(data_stream);
            FtpStream::get_lines_from_stream(&mut reader).expect("Failed to get lines from stream");
            // finalize
            assert!(reader.into_inner().finish().is_ok());

            // Now it should be possible to open another data connection
            let (response, data_stream) = stream
                .custom_data_command(command, &[Status::AboutToSend])
                .expect("Failed to perform custom data command");
            assert_eq!(response.status, Status::AboutToSend);
            let mut reader = BufReader::new(data_stream);
            FtpStream::get_lines_from_stream(&mut reader).expect("Failed to get lines from stream");
            // finalize
            assert!(reader.into_inner().finish().is_ok());
        });
    }

    #[test]
    fn test_site_command() {
        with_test_ftp_stream(|stream| {
            // SITE HELP is commonly supported
            let result = stream.site("HELP");
            // Some servers may not support SITE; just verify it doesn't panic
            // and returns either Ok or an expected error
            match result {
                Ok(response) => {
                    assert_eq!(response.status, Status::CommandOk);
                }
                Err(FtpError::UnexpectedResponse(_)) => {
                    // Server doesn't support SITE, that's ok
                }
                Err(err) => panic!("Unexpected error: {}", err),
            }
        })
    }

    #[test]
    fn test_eprt_command() {
        with_test_ftp_stream(|stream| {
            let addr: SocketAddr = "127.0.0.1:12345".parse().unwrap();
            // EPRT might succeed or fail depending on server config, but should not panic
            let _ = stream.eprt(addr);
        })
    }

    #[test]
    fn test_transfer_type_variants() {
        with_test_ftp_stream(|stream| {
            assert!(
                stream
                    .transfer_type(FileType::Ascii(FormatControl::NonPrint))
                    .is_ok()
            );
            assert!(stream.transfer_type(FileType::Image).is_ok());
            // Local type might not be supported, but should not panic
            let _ = stream.transfer_type(FileType::Local(8));
        })
    }

    #[test]
    fn test_cwd_error() {
        with_test_ftp_stream(|stream| match stream.cwd("/nonexistent/directory/path") {
            Err(FtpError::UnexpectedResponse(response)) => {
                assert_eq!(response.status, Status::FileUnavailable);
            }
            _ => panic!("Expected UnexpectedResponse for nonexistent directory"),
        })
    }

    #[test]
    fn test_rm_nonexistent_file() {
        with_test_ftp_stream(|stream| match stream.rm("nonexistent_file.txt") {
            Err(FtpError::UnexpectedResponse(_)) => {}
            _ => panic!("Expected error when removing nonexistent file"),
        })
    }

    #[test]
    fn test_rmdir_nonexistent() {
        with_test_ftp_stream(|stream| match stream.rmdir("nonexistent_dir") {
            Err(FtpError::UnexpectedResponse(_)) => {}
            _ => panic!("Expected error when removing nonexistent directory"),
        })
    }

    #[test]
    fn test_rename_nonexistent() {
        with_test_ftp_stream(
            |stream| match stream.rename("nonexistent.txt", "new_name.txt") {
                Err(FtpError::UnexpectedResponse(_)) => {}
                _ => panic!("Expected error when renaming nonexistent file"),
            },
        )
    }

    #[test]
    fn test_retr_nonexistent_file() {
        with_test_ftp_stream(
            |stream| match stream.retr_as_buffer("nonexistent_file.txt") {
                Err(FtpError::UnexpectedResponse(_)) => {}
                _ => panic!("Expected error when retrieving nonexistent file"),
            },
        )
    }

    #[test]
    fn test_list_nonexistent_path() {
        with_test_ftp_stream(|stream| {
            // Listing a nonexistent path - behavior varies per server
            let _ = stream.list(Some("/nonexistent/path"));
        })
    }

    #[test]
    fn test_nlst_with_path() {
        with_test_ftp_stream(|stream| {
            // Put a file first
            let mut reader = Cursor::new("data".as_bytes());
            assert!(stream.put_file("nlst_test.txt", &mut reader).is_ok());

            let files = stream.nlst(None).unwrap();
            assert!(files.contains(&"nlst_test.txt".to_string()));

            assert!(stream.rm("nlst_test.txt").is_ok());
        })
    }

    #[test]
    fn test_list_with_explicit_current_dir() {
        with_test_ftp_stream(|stream| {
            let mut reader = Cursor::new("data".as_bytes());
            assert!(stream.put_file("list_test.txt", &mut reader).is_ok());

            let files = stream.list(Some(".")).unwrap();
            assert!(!files.is_empty());

            assert!(stream.rm("list_test.txt").is_ok());
        })
    }

    #[test]
    fn should_upload_via_stream_and_finish() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            let mut upload = stream.put_with_stream("upload.bin").unwrap();
            upload.write_all(b"0123456789").unwrap();
            upload
                .finish()
                .expect("finish should read the transfer reply");
            // The control connection is in sync: the next commands work.
            assert_eq!(stream.size("upload.bin").unwrap(), 10);
            assert_eq!(stream.nlst(None).unwrap().as_slice(), &["upload.bin"]);
            assert!(stream.rm("upload.bin").is_ok());
        })
    }

    #[test]
    fn should_download_via_stream_and_finish() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            let mut reader = Cursor::new("download me".as_bytes());
            assert!(stream.put_file("download.txt", &mut reader).is_ok());
            let mut download = stream.retr_as_stream("download.txt").unwrap();
            let mut buffer = Vec::new();
            download.read_to_end(&mut buffer).unwrap();
            download
                .finish()
                .expect("finish should read the transfer reply");
            assert_eq!(buffer, b"download me");
            // The control connection is in sync: the next commands work.
            assert!(stream.pwd().is_ok());
            assert_eq!(stream.size("download.txt").unwrap(), 11);
            assert!(stream.rm("download.txt").is_ok());
        })
    }

    #[test]
    fn should_finalize_dropped_stream() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            let mut upload = stream.put_with_stream("dropped.bin").unwrap();
            upload.write_all(b"dropped").unwrap();
            // Drop without finish(): the stream reads the reply on its own.
            drop(upload);
            assert_eq!(stream.size("dropped.bin").unwrap(), 7);
            let content = stream.retr_as_buffer("dropped.bin").unwrap().into_inner();
            assert_eq!(content, b"dropped");
            assert!(stream.rm("dropped.bin").is_ok());
        })
    }

    #[test]
    fn should_read_a_single_reply_on_finish_then_drop() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            // A short read timeout makes a second (spurious) reply read fail slowly and visibly.
            let timeout = Duration::from_millis(500);
            stream.get_ref().set_read_timeout(Some(timeout)).unwrap();
            let mut upload = stream.put_with_stream("single.bin").unwrap();
            upload.write_all(b"single").unwrap();
            let started = Instant::now();
            upload
                .finish()
                .expect("finish should read exactly one reply");
            assert!(
                started.elapsed() < timeout,
                "finish() took {:?}: a second reply read blocked until the timeout",
                started.elapsed()
            );
            // The control connection is in sync: the next commands work.
            assert!(stream.noop().is_ok());
            assert_eq!(stream.size("single.bin").unwrap(), 6);
            stream.get_ref().set_read_timeout(None).unwrap();
            assert!(stream.rm("single.bin").is_ok());
        })
    }

    #[test]
    fn should_reject_data_commands_while_a_transfer_stream_is_alive() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            let mut upload = stream.put_with_stream("alive.bin").unwrap();
            upload.write_all(b"alive").unwrap();
            assert!(matches!(
                stream.list(None),
                Err(FtpError::DataConnectionAlreadyOpen)
            ));
            assert!(matches!(
                stream.retr_as_stream("alive.bin"),
                Err(FtpError::DataConnectionAlreadyOpen)
            ));
            assert!(matches!(
                stream.put_with_stream("other.bin"),
                Err(FtpError::DataConnectionAlreadyOpen)
            ));
            upload.finish().unwrap();
            // Once finished, data commands work again.
            assert_eq!(stream.nlst(None).unwrap().as_slice(), &["alive.bin"]);
            assert!(stream.rm("alive.bin").is_ok());
        })
    }

    #[test]
    fn should_finish_transfer_stream_on_another_thread() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            let upload = stream.put_with_stream("threaded.bin").unwrap();
            let handle = std::thread::spawn(move || {
                let mut upload = upload;
                upload.write_all(b"from another thread").unwrap();
                upload.finish()
            });
            handle
                .join()
                .expect("uploader thread panicked")
                .expect("finish should succeed on another thread");
            assert_eq!(stream.size("threaded.bin").unwrap(), 19);
            assert!(stream.rm("threaded.bin").is_ok());
        })
    }

    #[test]
    fn should_finalize_transfer_when_retr_callback_fails() {
        with_test_ftp_stream(|stream| {
            assert!(stream.transfer_type(FileType::Binary).is_ok());
            let mut reader = Cursor::new("callback".as_bytes());
            assert!(stream.put_file("callback_err.txt", &mut reader).is_ok());
            let result: FtpResult<()> =
                stream.retr("callback_err.txt", |_| Err(FtpError::BadResponse));
            assert!(matches!(result, Err(FtpError::BadResponse)));
            // The failed callback must not leave the data connection flagged as open.
            assert_eq!(stream.size("callback_err.txt").unwrap(), 8);
            assert!(stream.list(None).is_ok());
            assert!(stream.rm("callback_err.txt").is_ok());
        })
    }

    // -- test utils

    #[cfg(any(
        feature = "native-tls",
        feature = "rustls-aws-lc-rs",
        feature = "rustls-ring"
    ))]
    fn setup_tls_stream() -> (TestTlsFtpStream, SyncTlsFtpRunner) {
        crate::log_init();
        let container = SyncTlsFtpRunner::start();
        let port = container.get_ftp_port();
        let ftp = TestTlsFtpStream::connect(format!("localhost:{port}")).unwrap();
        ftp.get_ref()
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        ftp.get_ref()
            .set_write_timeout(Some(Duration::from_secs(3)))
            .unwrap();

        #[cfg(feature = "native-tls")]
        let mut ftp = {
            let certificate = crate::native_tls::Certificate::from_pem(include_bytes!(
                "test_container/fixtures/ca-cert.pem"
            ))
            .unwrap();
            let connector = crate::native_tls::TlsConnector::builder()
                .add_root_certificate(certificate)
                .build()
                .unwrap();
            ftp.into_secure(crate::NativeTlsConnector::from(connector), "localhost")
                .unwrap()
        };

        #[cfg(all(not(feature = "native-tls"), feature = "rustls-ring"))]
        let mut ftp = {
            let mut roots = crate::rustls::RootCertStore::empty();
            roots
                .add(crate::rustls::pki_types::CertificateDer::from(
                    include_bytes!("test_container/fixtures/ca-cert.der").to_vec(),
                ))
                .unwrap();
            let provider = Arc::new(crate::rustls::crypto::ring::default_provider());
            let config = crate::rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            ftp.into_secure(crate::RustlsConnector::from(Arc::new(config)), "localhost")
                .unwrap()
        };

        #[cfg(all(
            not(feature = "native-tls"),
            not(feature = "rustls-ring"),
            feature = "rustls-aws-lc-rs"
        ))]
        let mut ftp = {
            let mut roots = crate::rustls::RootCertStore::empty();
            roots
                .add(crate::rustls::pki_types::CertificateDer::from(
                    include_bytes!("test_container/fixtures/ca-cert.der").to_vec(),
                ))
                .unwrap();
            let provider = Arc::new(crate::rustls::crypto::aws_lc_rs::default_provider());
            let config = crate::rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            ftp.into_secure(crate::RustlsConnector::from(Arc::new(config)), "localhost")
                .unwrap()
        };

        assert!(ftp.login("test", "test").is_ok());
        let mapped_ports = (30_000..=30_009)
            .map(|port| (port, container.get_mapped_port(port)))
            .collect::<HashMap<_, _>>();
        let ftp = ftp.passive_stream_builder(move |mut addr| {
            addr.set_port(mapped_ports[&addr.port()]);
            addr.set_ip(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
            let stream = TcpStream::connect(addr).map_err(FtpError::ConnectionError)?;
            stream
                .set_read_timeout(Some(Duration::from_secs(3)))
                .map_err(FtpError::ConnectionError)?;
            stream
                .set_write_timeout(Some(Duration::from_secs(3)))
                .map_err(FtpError::ConnectionError)?;
            Ok(stream)
        });

        (ftp, container)
    }

    fn with_test_ftp_stream<F>(f: F)
    where
        F: FnOnce(&mut FtpStream),
    {
        crate::log_init();
        let container = Arc::new(SyncPureFtpRunner::start());
        let port = container.get_ftp_port();

        // init stream with mapper
        let mut stream: FtpStream = setup_stream(&format!("localhost:{port}"), &container);

        f(&mut stream);
        finalize_stream(stream);

        drop(container);
    }

    fn setup_stream(url: &str, container: &Arc<SyncPureFtpRunner>) -> FtpStream {
        let mut ftp_stream = FtpStream::connect(url).unwrap();
        assert!(ftp_stream.login("test", "test").is_ok());
        // Create wrkdir
        let tempdir: String = generate_tempdir();
        assert!(ftp_stream.mkdir(tempdir.as_str()).is_ok());
        // Change directory
        assert!(ftp_stream.cwd(tempdir.as_str()).is_ok());

        let container_t = container.clone();

        ftp_stream.passive_stream_builder(move |addr| {
            let mut addr = addr;
            let port = addr.port();
            let mapped = container_t.get_mapped_port(port);

            addr.set_port(mapped);

            info!("mapped port {port} to {mapped} for PASV");

            // open stream to this address instead
            TcpStream::connect(addr).map_err(FtpError::ConnectionError)
        })
    }

    fn finalize_stream(mut stream: FtpStream) {
        assert!(stream.quit().is_ok());
    }

    fn generate_tempdir() -> String {
        let mut rng = rng();
        let name: String = std::iter::repeat(())
            .map(|()| rng.sample(Alphanumeric))
            .map(char::from)
            .take(5)
            .collect();
        format!("temp_{}", name)
    }

    // M-MOCKABLE-SYSCALLS: use a local server for deterministic control-response tests.
    fn connect_with_control_response(
        expected_command: &'static str,
        response: &'static [u8],
    ) -> (FtpStream, std::thread::JoinHandle<()>) {
        use std::io::{BufRead as _, BufReader as IoBufReader, Write as _};

        let listener = TcpListener::bind("127.0.0.1:0").expect("failed to bind");
        let port = listener.local_addr().expect("missing local address").port();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("no incoming connection");
            let mut writer = stream.try_clone().expect("failed to clone stream");
            let mut reader = IoBufReader::new(stream);

            writer.write_all(b"220 Welcome\r\n").unwrap();

            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, format!("{expected_command}\r\n"));
            writer.write_all(response).unwrap();
        });

        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("failed to connect");
        let stream = FtpStream::connect_with_stream(tcp).expect("failed handshake");
        (stream, handle)
    }

    /// Test if the stream is Send
    fn is_send<T: Send>(_send: T) {}

    fn is_sync<T: Sync>(_sync: T) {}

    #[test]
    #[ignore = "just needs to compile"]
    fn test_ftp_stream_should_be_send() {
        crate::log_init();

        let ftp_stream = FtpStream::connect("test.rebex.net:21")
            .unwrap()
            .passive_stream_builder(|addr| {
                println!("Connecting to {}", addr);
                TcpStream::connect(addr).map_err(FtpError::ConnectionError)
            });

        is_send::<FtpStream>(ftp_stream);
    }

    #[test]
    #[ignore = "just needs to compile"]
    fn test_ftp_stream_should_be_sync() {
        crate::log_init();
        let ftp_stream = FtpStream::connect("test.rebex.net:21")
            .unwrap()
            .passive_stream_builder(|addr| {
                println!("Connecting to {}", addr);
                TcpStream::connect(addr).map_err(FtpError::ConnectionError)
            });

        is_sync::<FtpStream>(ftp_stream);
    }

    #[test]
    fn should_accept_mismatched_multiline_terminal_code() {
        let response = b"553-\r\n\
553- Directory excluded (precheck).\r\n\
150 Opening BINARY mode data connection.\r\n";
        let (mut stream, handle) = connect_with_control_response("STOR upload.bin", response);

        let response = stream
            .custom_command("STOR upload.bin", &[Status::AboutToSend])
            .expect("mismatched terminal code should be accepted");

        assert_eq!(response.status, Status::AboutToSend);
        handle.join().expect("server thread panicked");
    }

    #[test]
    fn should_preserve_feat_multiline_handling() {
        let response = b"211-Features:\r\n UTF8\r\n211 END\r\n";
        let (mut stream, handle) = connect_with_control_response("FEAT", response);

        let features = stream.feat().expect("FEAT response should be parsed");

        assert!(features.contains_key("UTF8"));
        handle.join().expect("server thread panicked");
    }

    #[test]
    fn should_accept_200_for_file_operations() {
        use std::io::{BufRead, BufReader as IoBufReader, Write};
        use std::net::TcpListener;
        use std::thread;

        crate::log_init();

        let listener = TcpListener::bind("127.0.0.1:0").expect("failed to bind");
        let port = listener.local_addr().unwrap().port();

        // Fake FTP server that replies with 200 instead of the spec-mandated
        // 250/257 to file operations, mimicking non-compliant servers such as bftpd.
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("no incoming connection");
            let mut writer = stream.try_clone().expect("failed to clone stream");
            let mut reader = IoBufReader::new(stream);

            writer.write_all(b"220 Welcome\r\n").unwrap();

            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 {
                let reply: &[u8] = match line.split_whitespace().next() {
                    // RNFR must be acknowledged with 350 before RNTO is sent.
                    Some("RNFR") => b"350 ready for destination name\r\n",
                    Some("QUIT") => b"221 goodbye\r\n",
                    // Everything else is answered with the non-compliant 200.
                    _ => b"200 ok\r\n",
                };
                writer.write_all(reply).unwrap();
                if line.starts_with("QUIT") {
                    break;
                }
                line.clear();
            }
        });

        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("failed to connect");
        let mut stream = FtpStream::connect_with_stream(tcp).expect("failed handshake");

        assert!(stream.mkdir("dir").is_ok());
        assert!(stream.rename("a", "b").is_ok());
        assert!(stream.rmdir("dir").is_ok());
        assert!(stream.rm("file").is_ok());

        assert!(stream.quit().is_ok());
        handle.join().expect("server thread panicked");
    }

    #[test]
    fn should_reject_command_with_crlf_injection() {
        use std::io::{BufRead, BufReader as IoBufReader, Write};
        use std::thread;

        crate::log_init();

        let listener = TcpListener::bind("127.0.0.1:0").expect("failed to bind");
        let port = listener.local_addr().unwrap().port();

        // Fake FTP server that records every control-channel line it receives.
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("no incoming connection");
            let mut writer = stream.try_clone().expect("failed to clone stream");
            let mut reader = IoBufReader::new(stream);

            writer.write_all(b"220 Welcome\r\n").unwrap();

            let mut seen = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 0 {
                let is_quit = line.starts_with("QUIT");
                seen.push(line.trim_end_matches(['\r', '\n']).to_string());
                let reply: &[u8] = if is_quit {
                    b"221 goodbye\r\n"
                } else {
                    b"200 ok\r\n"
                };
                writer.write_all(reply).unwrap();
                if is_quit {
                    break;
                }
                line.clear();
            }
            seen
        });

        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("failed to connect");
        let mut stream = FtpStream::connect_with_stream(tcp).expect("failed handshake");

        let err = stream
            .cwd("dir\r\nDELE secret.txt")
            .expect_err("command with CRLF must be rejected");
        assert!(
            matches!(err, FtpError::ConnectionError(ref e) if e.kind() == std::io::ErrorKind::InvalidInput),
            "unexpected error: {err:?}"
        );
        assert!(stream.cwd("dir\nDELE secret.txt").is_err());
        assert!(stream.login("anon\r\nDELE secret.txt", "pw").is_err());
        assert!(
            stream
                .custom_command("NOOP\r\nDELE secret.txt", &[Status::CommandOk])
                .is_err()
        );

        assert!(stream.quit().is_ok());
        let seen = handle.join().expect("server thread panicked");
        assert_eq!(seen, vec!["QUIT".to_string()]);
    }
}

#[cfg(test)]
mod active_peer_tests {
    use std::time::Duration;

    use crate::active_mode_fixture::serve_active_nlst;
    use crate::{ActivePeerCheck, FtpStream};

    #[test]
    fn should_accept_data_connections_only_from_allowed_peers() {
        // The fixture always connects back from 127.0.0.1, which is also the control peer.
        let localhost = "127.0.0.1".parse().unwrap();
        let elsewhere = "192.0.2.1".parse().unwrap();
        for (check, accepted) in [
            (ActivePeerCheck::ControlPeer, true),
            (ActivePeerCheck::Any, true),
            (ActivePeerCheck::Allow(vec![elsewhere, localhost]), true),
            (ActivePeerCheck::Allow(vec![elsewhere]), false),
        ] {
            let address = serve_active_nlst();
            let mut ftp = FtpStream::connect(address)
                .unwrap()
                .active_mode(Duration::from_secs(1));
            ftp.set_active_peer_check(check.clone());
            let listing = ftp.nlst(None);
            assert_eq!(listing.is_ok(), accepted, "{check:?}: {listing:?}");
        }
    }
}

#[cfg(test)]
mod encoding_tests {
    use pretty_assertions::assert_eq;

    use crate::encoding::test_encodings::{DropsLineEnd, Latin1, Smuggler};
    use crate::encoding_fixture::{LATIN1_NAME, serve_latin1, serve_latin1_with_name};
    use crate::{FtpError, FtpStream};

    #[cfg(feature = "secure")]
    #[test]
    fn should_preserve_encoding_across_tls_transitions() {
        use crate::encoding_fixture::PassthroughConnector;

        let (address, server) = serve_latin1();
        let mut ftp = crate::ImplFtpStream::<std::net::TcpStream>::connect(address).unwrap();
        ftp.set_encoding(Latin1);
        let mut ftp = ftp.into_secure(PassthroughConnector, "localhost").unwrap();
        assert_eq!(ftp.get_welcome_msg(), Some("220 café.txt ready"));
        ftp.set_encoding(crate::Utf8Encoding);
        assert_eq!(ftp.get_welcome_msg(), Some("220 caf\u{FFFD}.txt ready"));
        ftp.set_encoding(Latin1);
        assert_eq!(ftp.get_welcome_msg(), Some("220 café.txt ready"));
        assert_eq!(ftp.pwd().unwrap(), "/café");
        assert_eq!(ftp.nlst(None).unwrap(), vec!["café.txt".to_string()]);
        ftp.rm("café.txt").unwrap();
        let mut ftp = ftp.clear_command_channel().unwrap();
        ftp.set_encoding(crate::Utf8Encoding);
        assert_eq!(ftp.get_welcome_msg(), Some("220 caf\u{FFFD}.txt ready"));
        ftp.set_encoding(Latin1);
        assert_eq!(ftp.get_welcome_msg(), Some("220 café.txt ready"));
        assert_eq!(ftp.pwd().unwrap(), "/café");
        assert_eq!(ftp.nlst(None).unwrap(), vec!["café.txt".to_string()]);
        ftp.rm("café.txt").unwrap();
        ftp.quit().unwrap();
        let received = server.join().unwrap();
        assert_eq!(
            received
                .iter()
                .filter(|line| line.as_slice() == b"DELE caf\xE9.txt\r\n")
                .count(),
            2
        );
        assert!(
            received.iter().any(|line| line == b"AUTH TLS\r\n"),
            "{received:?}"
        );
        assert!(
            received.iter().any(|line| line == b"CCC\r\n"),
            "{received:?}"
        );
    }

    #[test]
    fn should_round_trip_telnet_escaped_names() {
        for (name, path, filename, listing, command) in [
            (
                b"\xFF.txt".as_slice(),
                "/ÿ",
                "ÿ.txt",
                "type=file; ÿ.txt",
                b"CWD /\xFF\xFF\r\n".as_slice(),
            ),
            (
                b"\xFF\xFF.txt".as_slice(),
                "/ÿÿ",
                "ÿÿ.txt",
                "type=file; ÿÿ.txt",
                b"CWD /\xFF\xFF\xFF\xFF\r\n".as_slice(),
            ),
        ] {
            let (address, server) = serve_latin1_with_name(name);
            let mut ftp = FtpStream::connect(address).unwrap();
            let lossy_banner = format!(
                "220 {filename} ready",
                filename = filename.replace('ÿ', "\u{FFFD}")
            );
            assert_eq!(ftp.get_welcome_msg(), Some(lossy_banner.as_str()));
            ftp.set_encoding(Latin1);
            let banner = format!("220 {filename} ready");
            assert_eq!(ftp.get_welcome_msg(), Some(banner.as_str()));
            ftp.set_encoding(crate::Utf8Encoding);
            assert_eq!(ftp.get_welcome_msg(), Some(lossy_banner.as_str()));
            ftp.set_encoding(Latin1);
            assert_eq!(ftp.get_welcome_msg(), Some(banner.as_str()));
            let pwd = ftp.pwd().unwrap();
            assert_eq!(pwd, path);
            assert_eq!(ftp.mlst(None).unwrap(), listing);
            assert_eq!(ftp.nlst(None).unwrap(), vec![filename.to_string()]);
            ftp.cwd(&pwd).unwrap();
            ftp.quit().unwrap();
            let received = server.join().unwrap();
            assert!(received.iter().any(|line| line == command), "{received:?}");
        }
    }

    #[test]
    fn should_decode_listings_with_custom_encoding() {
        let (address, server) = serve_latin1();
        let mut ftp = FtpStream::connect(address).unwrap();
        ftp.set_encoding(Latin1);
        assert_eq!(ftp.list(None).unwrap(), vec!["café.txt".to_string()]);
        assert_eq!(ftp.nlst(None).unwrap(), vec!["café.txt".to_string()]);
        assert_eq!(ftp.mlsd(None).unwrap(), vec!["café.txt".to_string()]);
        ftp.quit().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn should_decode_mlst_and_pwd_with_custom_encoding() {
        let (address, server) = serve_latin1();
        let mut ftp = FtpStream::connect(address).unwrap();
        ftp.set_encoding(Latin1);
        assert_eq!(ftp.mlst(None).unwrap(), "type=file; café.txt");
        assert_eq!(ftp.pwd().unwrap(), "/café");
        ftp.quit().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn should_decode_pwd_lossily_by_default() {
        let (address, server) = serve_latin1();
        let mut ftp = FtpStream::connect(address).unwrap();
        assert_eq!(ftp.pwd().unwrap(), "/caf\u{FFFD}");
        ftp.quit().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn should_decode_welcome_lossily_by_default() {
        let (address, server) = serve_latin1();
        let mut ftp = FtpStream::connect(address).unwrap();
        assert_eq!(ftp.get_welcome_msg(), Some("220 caf\u{FFFD}.txt ready"));
        ftp.quit().unwrap();
        server.join().unwrap();
    }

    #[test]
    fn should_encode_commands_with_custom_encoding() {
        let (address, server) = serve_latin1();
        let mut ftp = FtpStream::connect(address).unwrap();
        ftp.set_encoding(Latin1);
        ftp.rm("café.txt").unwrap();
        ftp.quit().unwrap();
        let received = server.join().unwrap();
        let expected = [b"DELE ".as_slice(), LATIN1_NAME, b"\r\n"].concat();
        assert!(received.contains(&expected), "{received:?}");
    }

    #[test]
    fn should_escape_telnet_iac_in_custom_encoded_commands() {
        let (address, server) = serve_latin1();
        let mut ftp = FtpStream::connect(address).unwrap();
        ftp.set_encoding(Latin1);
        ftp.rm("ÿ.txt").unwrap();
        ftp.rm("ÿÿ.txt").unwrap();
        ftp.quit().unwrap();
        let received = server.join().unwrap();
        assert!(
            received.contains(&b"DELE \xFF\xFF.txt\r\n".to_vec()),
            "{received:?}"
        );
        assert!(
            received.contains(&b"DELE \xFF\xFF\xFF\xFF.txt\r\n".to_vec()),
            "{received:?}"
        );
    }

    #[test]
    fn should_fail_command_when_name_cannot_be_encoded() {
        let (address, server) = serve_latin1();
        let mut ftp = FtpStream::connect(address).unwrap();
        ftp.set_encoding(Latin1);
        let err = ftp.rm("€.txt").unwrap_err();
        assert!(
            matches!(&err, FtpError::ConnectionError(io) if io.kind() == std::io::ErrorKind::InvalidInput),
            "{err:?}"
        );
        ftp.quit().unwrap();
        let received = server.join().unwrap();
        assert!(
            !received.iter().any(|line| line.starts_with(b"DELE")),
            "{received:?}"
        );
    }

    #[test]
    fn should_reject_encoded_command_that_is_not_one_line() {
        for smuggle in [true, false] {
            let (address, server) = serve_latin1();
            let mut ftp = FtpStream::connect(address).unwrap();
            if smuggle {
                ftp.set_encoding(Smuggler);
            } else {
                ftp.set_encoding(DropsLineEnd);
            }
            let err = ftp.rm("a.txt").unwrap_err();
            assert!(
                matches!(&err, FtpError::ConnectionError(io) if io.kind() == std::io::ErrorKind::InvalidInput),
                "{err:?}"
            );
            drop(ftp);
            assert_eq!(server.join().unwrap(), Vec::<Vec<u8>>::new());
        }
    }
}

#[cfg(test)]
mod ascii_tests {
    use std::io::{Cursor, Read as _, Write as _};

    use pretty_assertions::assert_eq;

    use crate::FtpStream;
    use crate::types::{FileType, FormatControl};
    use crate::upload_fixture::serve_uploads;

    const ASCII: FileType = FileType::Ascii(FormatControl::Default);

    #[test]
    fn should_convert_line_endings_on_ascii_upload() {
        let (address, server) = serve_uploads();
        let mut ftp = FtpStream::connect(address).unwrap();
        ftp.transfer_type(ASCII).unwrap();
        let mut text = Cursor::new(b"one\ntwo\r\nthree\rfour\n".as_slice());
        assert_eq!(ftp.put_file("a.txt", &mut text).unwrap(), 22);
        // The CR ends the first read and the LF starts the second: still one CRLF.
        let mut split = Cursor::new(b"five\r".as_slice()).chain(Cursor::new(b"\nsix\n".as_slice()));
        assert_eq!(ftp.append_file("a.txt", &mut split).unwrap(), 11);
        let mut raw = ftp.put_with_stream("raw.txt").unwrap();
        raw.write_all(b"raw\n").unwrap();
        raw.finish().unwrap();
        ftp.quit().unwrap();
        assert_eq!(
            server.join().unwrap(),
            vec![
                b"one\r\ntwo\r\nthree\rfour\r\n".to_vec(),
                b"five\r\nsix\r\n".to_vec(),
                b"raw\n".to_vec(),
            ]
        );
    }

    #[test]
    fn should_convert_default_ascii_uploads_and_preserve_binary_bytes() {
        let (address, server) = serve_uploads();
        let mut ftp = FtpStream::connect(address).unwrap();
        assert_eq!(
            ftp.put_file("a.txt", &mut Cursor::new(b"a\n".as_slice()))
                .unwrap(),
            3
        );
        ftp.transfer_type(ASCII).unwrap();
        ftp.transfer_type(FileType::Binary).unwrap();
        assert_eq!(
            ftp.put_file("b.bin", &mut Cursor::new(b"b\n".as_slice()))
                .unwrap(),
            2
        );
        ftp.quit().unwrap();
        assert_eq!(
            server.join().unwrap(),
            vec![b"a\r\n".to_vec(), b"b\n".to_vec()]
        );
    }

    #[test]
    fn should_keep_ascii_conversion_when_type_is_refused() {
        let (address, server) = serve_uploads();
        let mut ftp = FtpStream::connect(address).unwrap();
        ftp.transfer_type(ASCII).unwrap();
        assert!(
            ftp.transfer_type(FileType::Ebcdic(FormatControl::Default))
                .is_err()
        );
        ftp.put_file("c.txt", &mut Cursor::new(b"c\n".as_slice()))
            .unwrap();
        ftp.quit().unwrap();
        assert_eq!(server.join().unwrap(), vec![b"c\r\n".to_vec()]);
    }

    #[cfg(feature = "secure")]
    #[test]
    fn should_preserve_transfer_type_across_tls_transitions() {
        use crate::encoding_fixture::PassthroughConnector;

        for (file_type, expected) in [
            (ASCII, b"a\r\n".as_slice()),
            (FileType::Binary, b"a\n".as_slice()),
        ] {
            let (address, server) = serve_uploads();
            let mut ftp = crate::ImplFtpStream::<std::net::TcpStream>::connect(address).unwrap();
            ftp.transfer_type(file_type).unwrap();
            let mut ftp = ftp.into_secure(PassthroughConnector, "localhost").unwrap();
            assert_eq!(
                ftp.put_file("a.txt", &mut Cursor::new(b"a\n".as_slice()))
                    .unwrap(),
                expected.len() as u64
            );
            let mut ftp = ftp.clear_command_channel().unwrap();
            assert_eq!(
                ftp.put_file("b.txt", &mut Cursor::new(b"a\n".as_slice()))
                    .unwrap(),
                expected.len() as u64
            );
            ftp.transfer_type(FileType::Binary).unwrap();
            ftp.transfer_type(ASCII).unwrap();
            assert_eq!(
                ftp.append_file("b.txt", &mut Cursor::new(b"a\n".as_slice()))
                    .unwrap(),
                3
            );
            ftp.quit().unwrap();
            assert_eq!(
                server.join().unwrap(),
                vec![expected.to_vec(), expected.to_vec(), b"a\r\n".to_vec()]
            );
        }
    }
}

#[cfg(test)]
mod restart_tests {
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    use pretty_assertions::assert_eq;

    use super::{NoTlsStream, TransferStream};
    use crate::restart_fixture::{CONTENT, MISSING, serve_strict_restart};
    use crate::{FtpError, FtpResult, FtpStream as Ftp, Mode, Status};

    type Stream = TransferStream<NoTlsStream>;

    /// Reads a data stream to its end and finalizes it.
    fn read_all(mut stream: Stream) -> FtpResult<Vec<u8>> {
        let mut content = Vec::new();
        stream
            .read_to_end(&mut content)
            .map_err(FtpError::ConnectionError)?;
        stream.finish()?;
        Ok(content)
    }

    /// Downloads `name` with `retr_as_stream`.
    fn download(ftp: &mut Ftp, name: &str) -> FtpResult<Vec<u8>> {
        read_all(ftp.retr_as_stream(name)?)
    }

    /// Returns the status of an [`FtpError::UnexpectedResponse`], panicking on any other result.
    fn rejected_status<V>(result: FtpResult<V>) -> Status {
        match result {
            Err(FtpError::UnexpectedResponse(response)) => response.status,
            Err(err) => panic!("expected a rejection, got {err:?}"),
            Ok(_) => panic!("expected a rejection, got a success"),
        }
    }

    #[test]
    fn should_send_rest_right_before_the_transfer_command() {
        for mode in [Mode::Passive, Mode::ExtendedPassive, Mode::Active] {
            let (address, server) = serve_strict_restart();
            let mut ftp = Ftp::connect(address)
                .unwrap()
                .active_mode(Duration::from_secs(5));
            ftp.set_mode(mode);

            ftp.resume_transfer(6).unwrap();
            assert_eq!(
                download(&mut ftp, "file").unwrap(),
                &CONTENT[6..],
                "{mode:?}"
            );
            ftp.resume_transfer(4).unwrap();
            let mut upload = ftp.put_with_stream("file").unwrap();
            upload.write_all(&CONTENT[4..]).unwrap();
            upload.finish().unwrap();
            ftp.quit().unwrap();

            let session = server.join().unwrap();
            assert_eq!(session.stored, CONTENT, "{mode:?}");
            let rest_and_next: Vec<_> = session
                .lines
                .windows(2)
                .filter(|pair| pair[0].starts_with("REST "))
                .map(|pair| (pair[0].as_str(), pair[1].as_str()))
                .collect();
            assert_eq!(
                rest_and_next,
                [("REST 6", "RETR file"), ("REST 4", "STOR file")],
                "{mode:?}"
            );
        }
    }

    #[test]
    fn should_consume_the_offset_with_the_next_data_command() {
        let (address, server) = serve_strict_restart();
        let mut ftp = Ftp::connect(address).unwrap();

        // An offset of 0 cancels the pending one.
        ftp.resume_transfer(6).unwrap();
        ftp.resume_transfer(0).unwrap();
        assert_eq!(download(&mut ftp, "cancelled").unwrap(), CONTENT);
        // Control commands leave the offset pending.
        ftp.resume_transfer(6).unwrap();
        ftp.noop().unwrap();
        assert_eq!(download(&mut ftp, "kept").unwrap(), &CONTENT[6..]);
        // A listing discards the offset without sending REST.
        ftp.resume_transfer(6).unwrap();
        assert_eq!(ftp.nlst(None).unwrap(), ["file"]);
        assert_eq!(download(&mut ftp, "after-listing").unwrap(), CONTENT);
        // A refused transfer consumes the offset.
        ftp.resume_transfer(6).unwrap();
        assert_eq!(
            rejected_status(download(&mut ftp, MISSING)),
            Status::FileUnavailable
        );
        assert_eq!(download(&mut ftp, "after-missing").unwrap(), CONTENT);
        // A refused offset is reported by the transfer command, which is not sent.
        ftp.resume_transfer(100).unwrap();
        assert_eq!(
            rejected_status(download(&mut ftp, "too-far")),
            Status::BadArguments
        );
        assert_eq!(download(&mut ftp, "after-refused-offset").unwrap(), CONTENT);
        // A failure before REST consumes the offset as well.
        let open = ftp.retr_as_stream("open").unwrap();
        ftp.resume_transfer(6).unwrap();
        assert!(matches!(
            download(&mut ftp, "overlapping"),
            Err(FtpError::DataConnectionAlreadyOpen)
        ));
        assert_eq!(read_all(open).unwrap(), CONTENT);
        assert_eq!(download(&mut ftp, "after-overlap").unwrap(), CONTENT);
        // A custom data command is resumed like RETR.
        ftp.resume_transfer(6).unwrap();
        let (_, custom) = ftp
            .custom_data_command("RETR custom", &[Status::AboutToSend])
            .unwrap();
        assert_eq!(read_all(custom).unwrap(), &CONTENT[6..]);
        ftp.quit().unwrap();

        assert_eq!(
            server.join().unwrap().transfer_lines(),
            [
                "RETR cancelled",
                "REST 6",
                "RETR kept",
                "NLST",
                "RETR after-listing",
                "REST 6",
                "RETR missing",
                "RETR after-missing",
                "REST 100",
                "RETR after-refused-offset",
                "RETR open",
                "RETR after-overlap",
                "REST 6",
                "RETR custom",
            ]
        );
    }
}

#[cfg(test)]
mod slow_data_tests {
    use std::io::{BufRead, BufReader, Cursor, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::thread::{self, JoinHandle};
    use std::time::Duration;

    use crate::FtpStream;

    /// Delay before the fake server uses the data connection.
    ///
    /// The client is already blocked on the data connection by then.
    const DELAY: Duration = Duration::from_millis(500);

    /// Starts a one-connection fake FTP server for active mode transfers.
    ///
    /// It answers `PORT`, connects back for `NLST`, `RETR` and `STOR`, and touches the data
    /// connection only after [`DELAY`]. `NLST` and `RETR` send `payload`. The handle yields every
    /// byte received by `STOR`.
    fn serve_slow_active(payload: Vec<u8>) -> (SocketAddr, JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(socket);
            reader.get_mut().write_all(b"220 ready\r\n").unwrap();
            let mut data_port = 0;
            let mut stored = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(args) = line.strip_prefix("PORT ") {
                    let numbers: Vec<u16> = args
                        .trim_end()
                        .split(',')
                        .map(|n| n.parse().unwrap())
                        .collect();
                    data_port = numbers[4] * 256 + numbers[5];
                    reader.get_mut().write_all(b"200 ok\r\n").unwrap();
                } else if line.starts_with("NLST") || line.starts_with("RETR") {
                    let mut data = TcpStream::connect(("127.0.0.1", data_port)).unwrap();
                    reader
                        .get_mut()
                        .write_all(b"150 here it comes\r\n")
                        .unwrap();
                    thread::sleep(DELAY);
                    data.write_all(&payload).unwrap();
                    drop(data);
                    reader.get_mut().write_all(b"226 done\r\n").unwrap();
                } else if line.starts_with("STOR") {
                    let mut data = TcpStream::connect(("127.0.0.1", data_port)).unwrap();
                    reader.get_mut().write_all(b"150 send it\r\n").unwrap();
                    thread::sleep(DELAY);
                    data.read_to_end(&mut stored).unwrap();
                    reader.get_mut().write_all(b"226 stored\r\n").unwrap();
                } else {
                    reader.get_mut().write_all(b"502 not here\r\n").unwrap();
                }
                line.clear();
            }
            stored
        });
        (address, server)
    }

    #[test]
    fn should_wait_for_slow_data_in_active_mode() {
        let (address, _server) = serve_slow_active(b"first\r\nsecond\r\nthird\r\n".to_vec());
        let mut ftp = FtpStream::connect(address)
            .unwrap()
            .active_mode(Duration::from_secs(1));
        assert_eq!(
            ftp.nlst(None).unwrap(),
            vec![
                "first".to_string(),
                "second".to_string(),
                "third".to_string()
            ]
        );
    }

    #[test]
    fn should_download_whole_file_from_slow_server_in_active_mode() {
        // Several MiB, so the client needs many reads and may wait between them.
        let payload: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let (address, _server) = serve_slow_active(payload.clone());
        let mut ftp = FtpStream::connect(address)
            .unwrap()
            .active_mode(Duration::from_secs(1));
        let downloaded = ftp.retr_as_buffer("big.bin").unwrap().into_inner();
        assert_eq!(downloaded.len(), payload.len());
        assert!(
            downloaded == payload,
            "downloaded bytes differ from the file"
        );
    }

    #[test]
    fn should_upload_large_file_to_slow_server_in_active_mode() {
        // Larger than any loopback socket buffer, so the client must wait for the server.
        let payload = vec![b'x'; 32 * 1024 * 1024];
        let (address, server) = serve_slow_active(Vec::new());
        let mut ftp = FtpStream::connect(address)
            .unwrap()
            .active_mode(Duration::from_secs(1));
        let sent = ftp
            .put_file("big.bin", &mut Cursor::new(payload.clone()))
            .unwrap();
        assert_eq!(sent, payload.len() as u64);
        drop(ftp);
        let stored = server.join().unwrap();
        assert_eq!(stored.len(), payload.len());
        assert!(stored == payload, "stored bytes differ from the upload");
    }
}
