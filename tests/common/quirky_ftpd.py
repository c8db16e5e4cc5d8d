#!/usr/bin/python3
"""pyftpdlib with the quirks of servers people actually run, one flag per quirk.

Real servers answer in ways RFC 959 did not foresee: a FEAT reply with a stray line in it,
no FEAT at all, PWD without quotes, TYPE I answered 250, virtual hosts behind HOST, uploads
refused unless announced with ALLO. This is pyftpdlib (a real, complete server) with each of
those behaviours switched on by a flag, so the tests mount a real server and only the quirk
is scripted.

Usage: quirky_ftpd.py --port N --dir ROOT --user U --password P [--quirk NAME]...
                      [--vhost NAME=DIR]... [--log FILE] [--tls CERT KEY]

Each quirk is self-contained: a method below, named after its flag, that overrides one
command. Add a new one the same way (a flag in QUIRKS and a `quirk_...` method).

--log FILE appends every command received (PASS masked), one per line, with the session's
number: "3 STOR /f". Tests count commands and check their order from it.

--tls CERT KEY offers AUTH TLS (explicit FTPS) with that certificate, the quirks unchanged.
"""

import argparse
import itertools
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

QUIRKS = {
    "feat-malformed": "FEAT carries a line with a reply code inside the 211- block, "
    "and MLST unindented",
    "feat-500": "FEAT is answered 500",
    "feat-needs-login": "FEAT before login is answered 530",
    "pwd-unquoted": "PWD is answered 257 /dir without quotes",
    "syst-500": "SYST is answered 500",
    "type-250": "TYPE is answered 250 instead of 200",
    "allo-required": "STOR is refused with 503 unless an ALLO came since the last STOR "
    "(ALLO answered 200)",
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
            with open(self.log_path, "a") as f:
                f.write("%d %s\n" % (self._session, line))

    def pre_process_command(self, line, cmd, arg):
        self.record(line)
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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interface", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--quirk", action="append", default=[], choices=sorted(QUIRKS))
    p.add_argument("--vhost", action="append", default=[], metavar="NAME=DIR")
    p.add_argument("--log")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = p.parse_args()

    handler = QuirkyHandler
    if a.tls:
        class QuirkyTLS(QuirkyHandler, TLS_FTPHandler):
            proto_cmds = dict(TLS_FTPHandler.proto_cmds, HOST=QuirkyHandler.proto_cmds["HOST"])

        QuirkyTLS.certfile, QuirkyTLS.keyfile = a.tls
        handler = QuirkyTLS

    auth = DummyAuthorizer()
    auth.add_user(a.user, a.password, os.path.realpath(a.dir), perm="elradfmwMT")
    handler.authorizer = auth
    handler.quirks = set(a.quirk)
    handler.vhosts = {
        n.lower(): os.path.realpath(d) for n, d in (v.split("=", 1) for v in a.vhost)
    }
    handler.log_path = a.log
    if not a.vhost:
        del handler.proto_cmds["HOST"]
    server = FTPServer((a.interface, a.port), handler)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
