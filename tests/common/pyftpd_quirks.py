"""pyftpdlib with quirks: servers that behave like ones people run, for the tests.

    python3 pyftpd_quirks.py --quirk NAME[,NAME...] --root DIR --user U --password P
                             [--port N] [--commands FILE]

Prints the port it listens on (on 127.0.0.1) once it does. With --commands, every command
received is appended to FILE as one `COMMAND ARGUMENT` line (PASS arguments left out), so a
test can count commands instead of timing.

Each quirk is a function in QUIRKS that takes the handler class and returns the class to
serve with; several, comma separated, are applied in order. Add new ones beside the others,
self-contained.
"""

import argparse
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


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
    """No quirk: stock pyftpdlib, with the command log."""
    return base


QUIRKS = {
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
    p.add_argument("--quirk", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--commands")
    a = p.parse_args()
    handler = FTPHandler
    for name in a.quirk.split(","):
        if name not in QUIRKS:
            p.error("unknown quirk %r; known: %s" % (name, ", ".join(sorted(QUIRKS))))
        handler = QUIRKS[name](handler)
    if a.commands:
        handler = with_command_log(handler, a.commands)
    auth = DummyAuthorizer()
    auth.add_user(a.user, a.password, a.root, perm="elradfmwMT")
    handler.authorizer = auth
    server = FTPServer(("127.0.0.1", a.port), handler)
    print(server.address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
