#!/usr/bin/python3
"""pyftpdlib with the quirks of servers people actually run, one flag per quirk.

The real servers the tests start (pure-ftpd, vsftpd, proftpd, pyftpdlib, libunftp) all speak
unix `ls -l` listings, offer passive mode and answer RFC 959 by the book; a Windows/IIS box,
an EPLF server, an embedded ftpd, a firewalled or virtual-hosted server does not. This is
pyftpdlib (a real, complete server) with each of those behaviours switched on by a flag, so
the tests mount a real server and only the quirk is scripted. Every quirk is self-contained,
so quirks compose and new ones merge without conflicts:

- listing formats, a file-system class each (`--list=`);
- commands taken away (`--no-mlsd`, `--no-mdtm`);
- the dialogue: `--quirk NAME` for a QuirkyHandler method's behaviour (DIALOGUE_QUIRKS), or
  for a function that wraps the handler class (HANDLER_QUIRKS).

Usage: QUIRKY_FTPD_PASSWORD=P quirky_ftpd.py --port N --root DIR --user U
           [--list=unix|dos|dos4|eplf|unix-odd] [--no-mlsd] [--no-mdtm]
           [--quirk NAME[,NAME]]... [--vhost NAME=DIR]... [--log FILE] [--tls CERT KEY]
(the password comes from the environment, never from argv)

  --list=dos    LIST answers as IIS does: `01-02-21  10:30AM       <DIR>          name`
  --list=dos4   the same style with four-digit years (IIS's FourDigitYears), a 24-hour
                clock and sizes with thousands separators (`12-31-2020  23:59  1,234,567 name`)
  --list=eplf   LIST answers in Bernstein's EPLF: `+i8388621.29609,m824255902,/,\tdir`
  --list=unix-odd  a `total` line and a line of chatter first, then entries in turn with a
                numeric owner and no group column and an ACL `+`, with a SELinux `.`, and with
                GNU long-iso dates (`2019-03-03 00:00`)
  --no-mlsd     no MLST/MLSD (so no MLST line in FEAT), as with vsftpd and older servers
  --no-mdtm     no MDTM, so the listing's own times are all a client has
  --vhost NAME=DIR  RFC 7151 virtual hosts: `HOST NAME` before USER logs in to DIR
  --log FILE    appends every command received (PASS masked), one per line, with the
                session's number: "3 STOR /f". Tests count commands and check their order.
  --tls CERT KEY  offers AUTH TLS (explicit FTPS) with that certificate, the quirks unchanged.
"""

import argparse
import errno
import itertools
import os
import stat
import sys
import time

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler, ThrottledDTPHandler
from pyftpdlib.servers import FTPServer


# --- listing formats: --list=


def _entries(fs, basedir, listing):
    """(name, lstat) of each entry that can still be stat'ed, as pyftpdlib's own LIST does."""
    for name in listing:
        try:
            yield name, fs.lstat(os.path.join(basedir, name))
        except OSError:
            continue


# --- quirk: --list=dos / --list=dos4 (Windows IIS "MS-DOS" directory listing style)


def _dos_line(name, st, four_digit):
    t = time.gmtime(st.st_mtime)
    if four_digit:
        stamp = time.strftime("%m-%d-%Y  %H:%M", t)
    else:
        stamp = time.strftime("%m-%d-%y  %I:%M%p", t)
    if stat.S_ISDIR(st.st_mode):
        return "%s       <DIR>          %s" % (stamp, name)
    size = "{:,}".format(st.st_size) if four_digit else str(st.st_size)
    return "%s %20s %s" % (stamp, size, name)


def quirk_list_dos(fs_class, four_digit):
    class DosFS(fs_class):
        def format_list(self, basedir, listing, ignore_err=True):
            for name, st in _entries(self, basedir, listing):
                yield (_dos_line(name, st, four_digit) + "\r\n").encode("utf8")

    return DosFS


# --- quirk: --list=eplf (http://cr.yp.to/ftp/list/eplf.html)


def _eplf_line(name, st):
    facts = ["i%d.%d" % (st.st_dev, st.st_ino), "m%d" % int(st.st_mtime)]
    if stat.S_ISDIR(st.st_mode):
        facts.append("/")
    elif stat.S_ISREG(st.st_mode):
        facts += ["r", "s%d" % st.st_size]
    facts.append("up%03o" % stat.S_IMODE(st.st_mode))
    return "+%s,\t%s" % (",".join(facts), name)


def quirk_list_eplf(fs_class):
    class EplfFS(fs_class):
        def format_list(self, basedir, listing, ignore_err=True):
            for name, st in _entries(self, basedir, listing):
                yield (_eplf_line(name, st) + "\r\n").encode("utf8")

    return EplfFS


# --- quirk: --list=unix-odd


def _unix_odd_line(i, name, st):
    mode = stat.filemode(st.st_mode)
    size = st.st_size
    t = time.gmtime(st.st_mtime)
    if i % 3 == 0:
        return "%s+ 1 %d %8d %s %s" % (mode, st.st_uid, size, time.strftime("%b %d  %Y", t), name)
    if i % 3 == 1:
        date = time.strftime("%b %d  %Y", t)
        return "%s. 1 %-8d %-8d %8d %s %s" % (mode, st.st_uid, st.st_gid, size, date, name)
    date = time.strftime("%Y-%m-%d %H:%M", t)
    return "%s 1 owner    group    %8d %s %s" % (mode, size, date, name)


def quirk_list_unix_odd(fs_class):
    class UnixOddFS(fs_class):
        def format_list(self, basedir, listing, ignore_err=True):
            entries = list(_entries(self, basedir, listing))
            yield ("total %d\r\n" % len(entries)).encode("utf8")
            yield b"Listing of this directory follows:\r\n"
            for i, (name, st) in enumerate(entries):
                yield (_unix_odd_line(i, name, st) + "\r\n").encode("utf8")

    return UnixOddFS


# --- quirks that remove a command: --no-mlsd, --no-mdtm


def quirk_without(handler_class, commands):
    handler_class.proto_cmds = {
        k: v for k, v in handler_class.proto_cmds.items() if k not in commands
    }


# --- quirks of the dialogue: --quirk=NAME, handled in QuirkyHandler

DIALOGUE_QUIRKS = {
    "feat-malformed": "FEAT carries a line with a reply code inside the 211- block, "
    "and MLST unindented",
    "feat-500": "FEAT is answered 500",
    "feat-needs-login": "FEAT before login is answered 530",
    "pwd-unquoted": "PWD is answered 257 /dir without quotes",
    "syst-500": "SYST is answered 500",
    "type-250": "TYPE is answered 250 instead of 200",
    "allo-required": "STOR is refused with 503 unless an ALLO came since the last STOR "
    "(ALLO answered 200)",
    "mark-pipelined": "(no quirk) the command log marks a command the next one arrived "
    "with, ' <+>' after its argument",
    "lose-pipelined": "commands that arrived with an earlier one are lost (a server that "
    "reads one command per packet)",
}

_sessions = itertools.count(1)


class QuirkyHandler(FTPHandler):
    proto_cmds = FTPHandler.proto_cmds.copy()
    # RFC 7151; only listed in FEAT when virtual hosts are configured (--vhost).
    proto_cmds["HOST"] = dict(
        perm=None, auth=False, arg=True, help="Syntax: HOST <SP> host-name."
    )

    quirks = set()
    vhosts = {}
    log_path = None
    _session = 0
    _vhost_home = None
    _allocated = False

    def on_connect(self):
        self._session = next(_sessions)
        self._vhost_home = None
        self._allocated = False

    def record(self, line):
        if self.log_path:
            if line.upper().startswith("PASS "):
                line = "PASS ******"
            if "mark-pipelined" in self.quirks and getattr(self, "ac_in_buffer", b""):
                # The next command had arrived with this one: written back to back.
                line += " <+>"
            with open(self.log_path, "a") as f:
                f.write("%d %s\n" % (self._session, line))

    def pre_process_command(self, line, cmd, arg):
        self.record(line)
        if "lose-pipelined" in self.quirks and getattr(self, "ac_in_buffer", b""):
            self.ac_in_buffer = b""
        if cmd == "ALLO" and "allo-required" in self.quirks:
            return self.quirk_allo_required(arg)
        return super().pre_process_command(line, cmd, arg)

    # --- FEAT -----------------------------------------------------------------------------

    def ftp_FEAT(self, line):
        if "feat-needs-login" in self.quirks and not self.authenticated:
            return self.respond("530 Log in with USER and PASS first.")
        if "feat-500" in self.quirks:
            return self.respond('500 Command "FEAT" not understood.')
        if "feat-malformed" in self.quirks:
            return self.quirk_feat_malformed()
        if not self.vhosts:
            return super().ftp_FEAT(line)
        # pyftpdlib's own reply, with HOST added before its last line.
        sent = []
        push, respond = self.push, self.respond
        self.push = lambda s: sent.append(s)
        self.respond = lambda s, **kw: sent.append(s)
        try:
            super().ftp_FEAT(line)
        finally:
            self.push, self.respond = push, respond
        self.push("".join(sent[:-1]) + " HOST\r\n")
        self.respond(sent[-1])

    def quirk_feat_malformed(self):
        facts = "".join(
            f + ("*;" if f in self._current_facts else ";") for f in self._available_facts
        )
        self.push(
            "211-Features supported:\r\n"
            " EPSV\r\n"
            " MDTM\r\n"
            "999 what is this\r\n"
            "MLST %s\r\n"
            " REST STREAM\r\n"
            " SIZE\r\n"
            "211-still inside\r\n"
            " UTF8\r\n" % facts
        )
        self.respond("211 End FEAT.")

    # --- PWD, SYST, TYPE ------------------------------------------------------------------

    def ftp_PWD(self, line):
        if "pwd-unquoted" in self.quirks:
            return self.respond("257 %s is the current directory." % self.fs.cwd)
        return super().ftp_PWD(line)

    def ftp_SYST(self, line):
        if "syst-500" in self.quirks:
            return self.respond('500 Command "SYST" not understood.')
        return super().ftp_SYST(line)

    def ftp_TYPE(self, line):
        if "type-250" in self.quirks and line.upper().replace(" ", "") in ("I", "L8", "A"):
            self._current_type = "a" if line.upper() == "A" else "i"
            return self.respond("250 Type set.")
        return super().ftp_TYPE(line)

    # --- ALLO -----------------------------------------------------------------------------

    def quirk_allo_required(self, arg):
        if not self.authenticated:
            return self.respond("530 Log in with USER and PASS first.")
        if not arg.strip().isdigit():
            return self.respond("501 ALLO needs a size.")
        self._allocated = True
        self.respond("200 %s bytes allocated." % arg.strip())

    def ftp_STOR(self, file, mode="w"):
        if "allo-required" in self.quirks and not self._allocated:
            return self.respond("503 ALLO required before STOR.")
        self._allocated = False
        return super().ftp_STOR(file, mode)

    # --- HOST (RFC 7151) ------------------------------------------------------------------

    def ftp_HOST(self, line):
        if self.authenticated or self.username:
            return self.respond("503 HOST must come before USER.")
        name = line.strip().lower()
        if name not in self.vhosts:
            return self.respond("504 Unknown virtual host %s." % name)
        self._vhost_home = self.vhosts[name]
        self.respond("220 Host %s ready." % name)

    def handle_auth_success(self, home, password, msg_login):
        if self._vhost_home is not None:
            home = self._vhost_home
        return super().handle_auth_success(home, password, msg_login)


# --- quirks that wrap the handler class: --quirk=NAME


def active_only(base):
    """No passive mode: EPSV and PASV answered `500 Command "..." not understood.`, as by a
    server with passive mode disabled; PORT and EPRT work."""

    class ActiveOnly(base):
        proto_cmds = {k: v for k, v in base.proto_cmds.items() if k not in ("PASV", "EPSV")}

    return ActiveOnly


def announced(verb, line):
    """The (address, port) of a PORT or an IPv4 EPRT argument, or None."""
    try:
        if verb == "PORT":
            nums = [int(x) for x in line.split(",")]
            return ".".join(map(str, nums[:4])), nums[4] * 256 + nums[5]
        _, ip, port = line.split(line[0])[1:-1]
        return ip, int(port)
    except (ValueError, IndexError):
        return None


def intruder(base):
    """A third party that races the server to an active-mode listener: on PORT or EPRT,
    before the server connects, a connection from 127.0.0.2 reaches the announced address
    and sends bytes that must never be taken for a file's (or a listing's)."""
    import socket

    def intrude(addr):
        try:
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            s.connect(addr)
            s.sendall(b"INTRUDER BYTES\r\n")
            s.close()
        except (OSError, TypeError):
            pass

    class Intruder(base):
        def ftp_PORT(self, line):
            intrude(announced("PORT", line))
            return super().ftp_PORT(line)

        def ftp_EPRT(self, line):
            intrude(announced("EPRT", line))
            return super().ftp_EPRT(line)

    return Intruder


def never_connects(base):
    """Active mode with a server that says yes and never connects back: PORT and EPRT
    answered 200, transfers answered 150, and then nothing."""

    class NeverConnects(base):
        def ftp_PORT(self, line):
            self.respond("200 Active data connection established.")

        ftp_EPRT = ftp_PORT

        def _silent(self, *args):
            self.respond("150 File status okay. About to open data connection.")

        ftp_LIST = ftp_NLST = ftp_MLSD = ftp_RETR = _silent

    return NeverConnects


def passive_unreachable(base):
    """Passive mode behind a firewall that lets only the control port through: EPSV and PASV
    are answered, with a port where nothing listens (connections are refused), as when the
    firewall rejects them."""
    import socket

    def closed_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return port

    class PassiveUnreachable(base):
        def ftp_EPSV(self, line):
            self.respond("229 Entering extended passive mode (|||%d|)." % closed_port())

        def ftp_PASV(self, line):
            port = closed_port()
            self.respond(
                "227 Entering passive mode (127,0,0,1,%d,%d)." % (port // 256, port % 256)
            )

    return PassiveUnreachable


def eprt_refused(base):
    """EPRT listed in FEAT but refused (`500`), as by servers that list what they parse and
    then turn it down; PORT works."""

    class EprtRefused(base):
        def ftp_EPRT(self, line):
            self.respond('500 Command "EPRT" not understood.')

    return EprtRefused


def permit_foreign(base):
    """PORT and EPRT may name any address, not only the control connection's peer (what a
    server sees from a client behind NAT that announces its public address)."""

    class PermitForeign(base):
        permit_foreign_addresses = True

    return PermitForeign


THROTTLE = 4 << 20
CUT_AFTER = 1 << 20


def throttled(base):
    """Each data connection sends at most 4 MiB/s, as a hosting server limits each session
    (pure-ftpd -T, proftpd TransferRate): one connection cannot fill the link."""

    class ThrottledDTP(ThrottledDTPHandler):
        write_limit = THROTTLE

        def _throttle_bandwidth(self, len_chunk, max_speed):
            # Paced, where pyftpdlib's own sends a second's worth at once and then sleeps:
            # the bytes sent never run more than 50 ms ahead of the rate.
            now = time.monotonic()
            if not getattr(self, "_paced_from", None):
                self._paced_from, self._paced = now, 0
            self._paced += len_chunk
            ahead = self._paced_from + self._paced / max_speed - now
            if ahead > 0.05:

                def unsleep():
                    self.add_channel(
                        events=self.ioloop.READ if self.receive else self.ioloop.WRITE
                    )

                self.del_channel()
                self._cancel_throttler()
                self._throttler = self.ioloop.call_later(
                    ahead, unsleep, _errback=self.handle_error
                )

    class Throttled(base):
        dtp_handler = ThrottledDTP

    return Throttled


class _CutFile:
    """A file that fails to read after `limit` bytes: the transfer is aborted with 426."""

    def __init__(self, f, limit):
        self._f, self._left = f, limit

    def read(self, n=-1):
        if self._left <= 0:
            raise OSError(errno.EIO, "cut by the test server")
        data = self._f.read(self._left if n < 0 else min(n, self._left))
        self._left -= len(data)
        return data

    def fileno(self):
        # No sendfile(), which would read past the cut.
        raise OSError(errno.EBADF, "not a real file")

    def __getattr__(self, name):
        return getattr(self._f, name)


def cut_retr_once(base):
    """The first RETR after a REST to a non-zero offset is cut after 1 MiB (426, data
    connection closed), once per server; the command log gets a `CUT OFFSET` line."""

    class CutRetrOnce(base):
        _cut_done = [False]

        def ftp_RETR(self, file):
            rest = self._restart_position
            if rest > 0 and not self._cut_done[0]:
                self._cut_done[0] = True
                self.record("CUT %d" % rest)
                opener = self.fs.open
                self.fs.open = lambda path, mode: _CutFile(opener(path, mode), CUT_AFTER)
                try:
                    return super().ftp_RETR(file)
                finally:
                    self.fs.open = opener
            return super().ftp_RETR(file)

    return CutRetrOnce


def upload_aborted_by_command(base):
    """An upload's end waits (up to 1 s) for a command on the control connection, and one
    that comes aborts the upload: the file is emptied, the upload answered `426`, then the
    command answered. A server that takes a command written before an upload's reply for
    an abort; stock pyftpdlib closes the upload for a new EPSV with no reply at all, when
    the EPSV comes before it read the end (a race)."""
    from pyftpdlib.log import logger

    dtp = base.dtp_handler

    class EndWaits(dtp):
        _held = None

        def handle_close(self):
            if not self.receive or self._closed or self._held is not None:
                return dtp.handle_close(self)
            # No more reads meanwhile: the socket says EOF for ever.
            self.del_channel()
            self.cmd_channel.held_upload = self
            self._held = self.ioloop.call_later(1.0, self.release, _errback=self.handle_error)

        def release(self):
            if self.cmd_channel.held_upload is self:
                self.cmd_channel.held_upload = None
            if not self._closed:
                dtp.handle_close(self)

        def abort_for(self, line):
            self._held.cancel()
            self.cmd_channel.held_upload = None
            self.cmd_channel.record("ABORTED-BY %s" % line)
            self.file_obj.seek(0)
            self.file_obj.truncate()
            self.transfer_finished = False
            self._resp = ("426 Upload aborted by a command sent during it.", logger.info)
            self.close()

    class UploadAbortedByCommand(base):
        dtp_handler = EndWaits
        held_upload = None

        def pre_process_command(self, line, cmd, arg):
            if self.held_upload is not None:
                self.held_upload.abort_for(line)
            return super().pre_process_command(line, cmd, arg)

    return UploadAbortedByCommand


def download_ends_at_close_notify(base):
    """Over TLS, a download (`RETR`) looks for the client's `close_notify` before each chunk
    it sends, and one that came ends the download there: the rest is dropped and the
    transfer answered `226` (the command log gets `ENDED-AT-CLOSE-NOTIFY BYTES`). TLS 1.3
    lets a client say goodbye while the server is still sending; a server that takes that
    for the end of the transfer delivers a short file with a success reply. A listing reads
    the goodbye the same way and is sent whole (a cut listing that ends on a line could not
    be told from a shorter one); stock pyftpdlib instead closes a data connection with the
    goodbye unread, and the kernel resets it."""
    from OpenSSL import SSL
    from pyftpdlib.log import logger

    dtp = base.dtp_handler

    class EndsAtCloseNotify(dtp):
        def send(self, data):
            if self.receive or not isinstance(self.socket, SSL.Connection):
                return dtp.send(self, data)
            try:
                self.socket.recv(1)
            except SSL.ZeroReturnError:
                if self.cmd != "RETR":
                    return dtp.send(self, data)
                if not self._closed:
                    self.cmd_channel.record(
                        "ENDED-AT-CLOSE-NOTIFY %d" % self.get_transmitted_bytes())
                    self.producer_fifo.clear()
                    self.transfer_finished = True
                    self._resp = ("226 Transfer complete.", logger.debug)
                    self.close()
                return 0
            except (SSL.WantReadError, SSL.WantWriteError):
                pass
            return dtp.send(self, data)

    class EndsDownloadsAtCloseNotify(base):
        dtp_handler = EndsAtCloseNotify

    return EndsDownloadsAtCloseNotify


def plain(base):
    """No quirk: stock pyftpdlib (with the command log of --commands)."""
    return base


HANDLER_QUIRKS = {
    "active-only": active_only,
    "cut-retr-once": cut_retr_once,
    "download-ends-at-close-notify": download_ends_at_close_notify,
    "throttled": throttled,
    "eprt-refused": eprt_refused,
    "permit-foreign": permit_foreign,
    "intruder": intruder,
    "never-connects": never_connects,
    "passive-unreachable": passive_unreachable,
    "plain": plain,
    "upload-aborted-by-command": upload_aborted_by_command,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--interface", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--list", choices=["unix", "dos", "dos4", "eplf", "unix-odd"], default="unix")
    p.add_argument("--no-mlsd", action="store_true")
    p.add_argument("--no-mdtm", action="store_true")
    p.add_argument("--quirk", action="append", default=[])
    p.add_argument("--vhost", action="append", default=[], metavar="NAME=DIR")
    p.add_argument("--log")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = p.parse_args()
    quirks = [n for q in a.quirk for n in q.split(",") if n]
    for name in quirks:
        if name not in DIALOGUE_QUIRKS and name not in HANDLER_QUIRKS:
            known = sorted(list(DIALOGUE_QUIRKS) + list(HANDLER_QUIRKS))
            p.error("unknown quirk %r; known: %s" % (name, ", ".join(known)))

    handler = QuirkyHandler
    if a.tls:
        class QuirkyTLS(QuirkyHandler, TLS_FTPHandler):
            proto_cmds = dict(TLS_FTPHandler.proto_cmds, HOST=QuirkyHandler.proto_cmds["HOST"])

        QuirkyTLS.certfile, QuirkyTLS.keyfile = a.tls
        handler = QuirkyTLS
    for name in quirks:
        if name in HANDLER_QUIRKS:
            handler = HANDLER_QUIRKS[name](handler)

    class Handler(handler):
        pass

    fs_class = AbstractedFS
    if a.list in ("dos", "dos4"):
        fs_class = quirk_list_dos(fs_class, a.list == "dos4")
    elif a.list == "eplf":
        fs_class = quirk_list_eplf(fs_class)
    elif a.list == "unix-odd":
        fs_class = quirk_list_unix_odd(fs_class)
    Handler.abstracted_fs = fs_class
    if a.no_mlsd:
        quirk_without(Handler, {"MLST", "MLSD"})
    if a.no_mdtm:
        quirk_without(Handler, {"MDTM"})
    if not a.vhost:
        quirk_without(Handler, {"HOST"})

    auth = DummyAuthorizer()
    password = os.environ["QUIRKY_FTPD_PASSWORD"]
    auth.add_user(a.user, password, os.path.realpath(a.root), perm="elradfmwMT")
    Handler.authorizer = auth
    Handler.use_gmt_times = True
    Handler.quirks = set(quirks)
    Handler.vhosts = {
        n.lower(): os.path.realpath(d) for n, d in (v.split("=", 1) for v in a.vhost)
    }
    Handler.log_path = a.log
    server = FTPServer((a.interface, a.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
