#!/usr/bin/env python3
"""delayproxy.py LISTEN_HOST TARGET_HOST DELAY_MS PORT [PORT...]

A TCP proxy that adds DELAY_MS in each direction (so 2 x DELAY_MS of round-trip time) to
every connection, for each PORT: LISTEN_HOST:PORT -> TARGET_HOST:PORT. For an FTP server,
list the control port first, then the server's passive port range. Bytes keep their order.
Bandwidth is not limited unless DELAYPROXY_RATE is set: then each direction of each
connection carries at most that many bytes per second (a slow link, for
scripts/bench/modez.sh). This kernel has no netem, so latency and bandwidth are simulated
here. TCP handshakes are not delayed (the proxy accepts at once and connects to the target
at once): on a real network every new connection costs one more round trip.

With DELAYPROXY_LOG=FILE it also reads the FTP control connections (those on the first
PORT) for scripts/bench/wan.sh, one line per event, flushed as it happens:

  T SESSION C VERB [ARGUMENT]   a command from the client (PASS's argument is masked)
  T SESSION R CODE TEXT         a reply's last line from the server
  T SESSION O                   a control connection opened
  T - D PORT                    a data connection opened (a connection on any other PORT)

T is seconds (monotonic clock) when the proxy read the bytes, before the delay. A 227 reply
(PASV) names TARGET_HOST's address: it is rewritten to LISTEN_HOST's, so that PASV clients
come through the proxy too (229, EPSV, names only a port). After AUTH TLS/SSL the session is
encrypted (when the server accepted it): its later commands are neither seen nor counted,
its data connections still are."""
import asyncio, itertools, os, re, sys, time

listen, target, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]) / 1000
ports = [int(p) for p in sys.argv[4:]]
rate = float(os.environ.get("DELAYPROXY_RATE", "0"))
log_path = os.environ.get("DELAYPROXY_LOG")
log = open(log_path, "a", buffering=1) if log_path else None
sessions = itertools.count(1)
PASV = re.compile(rb"^227 (.*?)(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")
listen_commas = listen.replace(".", ",").encode()


def note(line):
    log.write(f"{time.monotonic():.6f} {line}\n")


class Session:
    """What the proxy reads of one FTP control connection; encrypted after AUTH."""

    def __init__(self):
        self.id = next(sessions)
        self.auth = False  # AUTH sent, its reply not seen yet
        self.tls = False  # AUTH accepted: the rest is encrypted
        self.to_server = b""
        self.to_client = b""
        note(f"{self.id} O")

    def from_client(self, data):
        """Logs the commands in data; forwards data unchanged."""
        if self.tls:
            return data
        self.to_server += data
        while b"\n" in self.to_server and not self.tls:
            line, self.to_server = self.to_server.split(b"\n", 1)
            text = line.decode("latin-1").rstrip("\r")
            verb, _, arg = text.partition(" ")
            verb = verb.upper()
            if verb == "PASS":
                arg = "****"
            note(f"{self.id} C {verb} {arg}".rstrip())
            if verb == "AUTH":
                self.auth = True
        return data

    def from_server(self, data):
        """Logs the replies in data and rewrites 227's address; holds back a partial line."""
        if self.tls:
            out, self.to_client = self.to_client + data, b""
            return out
        self.to_client += data
        out = b""
        while b"\n" in self.to_client and not self.tls:
            line, self.to_client = self.to_client.split(b"\n", 1)
            m = PASV.match(line)
            if m:
                line = b"227 " + m.group(1) + listen_commas + b"," + m.group(6) + b"," + m.group(7) + line[m.end():]
            if re.match(rb"^\d{3} ", line):
                note(f"{self.id} R {line.decode('latin-1').rstrip()[:80]}")
            out += line + b"\n"
            if self.auth and re.match(rb"^\d{3} ", line):
                # The client sends nothing more before this reply: from here the
                # session is encrypted, or AUTH was refused and it goes on in plain.
                self.auth, self.tls = False, line.startswith(b"234")
        if self.tls:
            out, self.to_client = out + self.to_client, b""
        return out

    def end(self):
        rest, self.to_client = self.to_client, b""
        return rest


async def pipe(reader, writer, transform=None, end=None):
    queue = asyncio.Queue()

    async def pump():
        free = time.monotonic()  # when the capped link is free to send again
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            if rate > 0:
                # In pieces, so a big read does not go out in one burst.
                for i in range(0, len(data), 16 * 1024):
                    piece = data[i:i + 16 * 1024]
                    # Oversleeping is made up for (up to 50 ms of bursts), so the
                    # link carries its rate rather than a little less.
                    free = max(free, time.monotonic() - 0.05) + len(piece) / rate
                    writer.write(piece)
                    await writer.drain()
                    wait = free - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                continue
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.create_task(pump())
    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                if end:
                    rest = end()
                    if rest:
                        await queue.put((time.monotonic() + delay, rest))
                await queue.put((time.monotonic() + delay, None))
                break
            if transform:
                data = transform(data)
                if not data:
                    continue
            await queue.put((time.monotonic() + delay, data))
    except ConnectionError:
        await queue.put((time.monotonic(), None))
    await task


async def handle(port, cr, cw):
    try:
        sr, sw = await asyncio.open_connection(target, port)
    except OSError:
        cw.close()
        return
    if log and port == ports[0]:
        s = Session()
        await asyncio.gather(pipe(cr, sw, s.from_client), pipe(sr, cw, s.from_server, s.end),
                             return_exceptions=True)
        return
    if log:
        note(f"- D {port}")
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw), return_exceptions=True)


async def main():
    servers = []
    for p in ports:
        try:
            servers.append(await asyncio.start_server(
                lambda r, w, p=p: handle(p, r, w), listen, p))
        except OSError as e:
            # Said, so that the script waiting for "ready" can show why it never came.
            print(f"delayproxy: cannot listen on {listen}:{p}: {e}", file=sys.stderr, flush=True)
            sys.exit(1)
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))

asyncio.run(main())
