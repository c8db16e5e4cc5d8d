"""pyftpdlib with the quirks of servers people actually run, one flag per quirk.

The real servers the tests start (pure-ftpd, vsftpd, proftpd, pyftpdlib, libunftp) all speak
unix `ls -l` listings and most offer MLSD; a Windows/IIS box, an EPLF server or an embedded
ftpd does not. This file is pyftpdlib made to behave like them, so a real mount can be tested
against each quirk. Every quirk is self-contained: a flag, and a function that applies it to the
handler and file-system classes, so quirks compose and new ones merge without conflicts.

Usage: QUIRKY_FTPD_PASSWORD=P quirky_ftpd.py --port PORT --root DIR --user U [quirk flags]
(the password comes from the environment, never from argv)

Quirks:
  --list=dos    LIST answers as IIS does: `01-02-21  10:30AM       <DIR>          name`
  --list=dos4   the same style with four-digit years (IIS's FourDigitYears), a 24-hour
                clock and sizes with thousands separators (`12-31-2020  23:59  1,234,567 name`),
                the variants a DOS-style parser must also take
  --list=eplf   LIST answers in Bernstein's EPLF: `+i8388621.29609,m824255902,/,\tdir`
  --list=unix-odd  LIST answers in the unix variants of embedded and unusual servers: a
                `total` line and a line of chatter first, then entries in turn with a numeric
                owner and no group column and an ACL `+` (`Mar 03  2019`), with a SELinux `.`
                (`Mar 03  2019`), and with GNU long-iso dates (`2019-03-03 00:00`)
  --no-mlsd     no MLST/MLSD (so no MLST line in FEAT), as with vsftpd and older servers
  --no-mdtm     no MDTM, so the listing's own times are all a client has
  --quirk=NAME[,NAME...]  quirks of the command dialogue, applied to the handler in order:
                active-only, intruder, never-connects, passive-unreachable, plain (see
                HANDLER_QUIRKS)
  --commands=FILE  append every command received to FILE as `COMMAND ARGUMENT` (PASS
                arguments left out), so a test can count commands instead of timing
"""

import argparse
import os
import stat
import sys
import time

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.filesystems import AbstractedFS
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


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


# --- quirks of the command dialogue: --quirk=NAME (each a function of the handler class)


def active_only(base):
    """No passive mode: EPSV and PASV answered `500 Command "..." not understood.`, as by a
    server with passive mode disabled; PORT and EPRT work."""

    class ActiveOnly(base):
        proto_cmds = {k: v for k, v in base.proto_cmds.items() if k not in ("PASV", "EPSV")}

    return ActiveOnly


def intruder(base):
    """A third party that races the server to an active-mode listener: on PORT, before the
    server connects, a connection from 127.0.0.2 reaches the announced address and sends
    bytes that must never be taken for a file's (or a listing's)."""
    import socket

    class Intruder(base):
        def ftp_PORT(self, line):
            try:
                nums = [int(x) for x in line.split(",")]
                addr = (".".join(map(str, nums[:4])), nums[4] * 256 + nums[5])
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.settimeout(5)
                s.connect(addr)
                s.sendall(b"INTRUDER BYTES\r\n")
                s.close()
            except (OSError, ValueError, IndexError):
                pass
            return super().ftp_PORT(line)

    return Intruder


def never_connects(base):
    """Active mode with a server that says yes and never connects back: PORT answered 200,
    transfers answered 150, and then nothing."""

    class NeverConnects(base):
        def ftp_PORT(self, line):
            self.respond("200 Active data connection established.")

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


def plain(base):
    """No quirk: stock pyftpdlib (with the command log of --commands)."""
    return base


HANDLER_QUIRKS = {
    "active-only": active_only,
    "intruder": intruder,
    "never-connects": never_connects,
    "passive-unreachable": passive_unreachable,
    "plain": plain,
}


def with_command_log(base, path):
    class Logged(base):
        def pre_process_command(self, line, cmd, arg):
            with open(path, "a") as f:
                f.write("%s %s\n" % (cmd, "" if cmd == "PASS" else arg))
            return super().pre_process_command(line, cmd, arg)

    return Logged


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--list", choices=["unix", "dos", "dos4", "eplf", "unix-odd"], default="unix")
    p.add_argument("--no-mlsd", action="store_true")
    p.add_argument("--no-mdtm", action="store_true")
    p.add_argument("--quirk", action="append", default=[])
    p.add_argument("--commands")
    args = p.parse_args()

    class Handler(FTPHandler):
        pass

    for name in (n for q in args.quirk for n in q.split(",") if n):
        if name not in HANDLER_QUIRKS:
            p.error("unknown quirk %r; known: %s" % (name, ", ".join(sorted(HANDLER_QUIRKS))))
        Handler = HANDLER_QUIRKS[name](Handler)

    fs_class = AbstractedFS
    if args.list in ("dos", "dos4"):
        fs_class = quirk_list_dos(fs_class, args.list == "dos4")
    elif args.list == "eplf":
        fs_class = quirk_list_eplf(fs_class)
    elif args.list == "unix-odd":
        fs_class = quirk_list_unix_odd(fs_class)
    Handler.abstracted_fs = fs_class
    if args.no_mlsd:
        quirk_without(Handler, {"MLST", "MLSD"})
    if args.no_mdtm:
        quirk_without(Handler, {"MDTM"})

    authorizer = DummyAuthorizer()
    authorizer.add_user(args.user, os.environ["QUIRKY_FTPD_PASSWORD"], args.root, perm="elradfmwMT")
    if args.commands:
        Handler = with_command_log(Handler, args.commands)
    Handler.authorizer = authorizer
    Handler.use_gmt_times = True
    server = FTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
