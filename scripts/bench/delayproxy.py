#!/usr/bin/env python3
"""delayproxy.py LISTEN_HOST TARGET_HOST DELAY_MS PORT [PORT...]

A TCP proxy that adds DELAY_MS in each direction (so 2 x DELAY_MS of round-trip time) to
every connection, for each PORT: LISTEN_HOST:PORT -> TARGET_HOST:PORT. For an FTP server,
list the control port and the server's passive port range, and connect with EPSV (whose
reply carries only a port) to LISTEN_HOST. Bytes keep their order. Bandwidth is not
limited unless DELAYPROXY_RATE is set: then each direction of each connection carries at
most that many bytes per second (a slow link, for scripts/bench/modez.sh). This kernel has
no netem, so latency and bandwidth are simulated here."""
import asyncio, os, sys, time

listen, target, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]) / 1000
ports = [int(p) for p in sys.argv[4:]]
rate = float(os.environ.get("DELAYPROXY_RATE", "0"))


async def pipe(reader, writer):
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
                    free = max(free, time.monotonic()) + len(piece) / rate
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
            await queue.put((time.monotonic() + delay, data or None))
            if not data:
                break
    except ConnectionError:
        await queue.put((time.monotonic(), None))
    await task


async def handle(port, cr, cw):
    try:
        sr, sw = await asyncio.open_connection(target, port)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw), return_exceptions=True)


async def main():
    servers = []
    for p in ports:
        servers.append(await asyncio.start_server(
            lambda r, w, p=p: handle(p, r, w), listen, p))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))

asyncio.run(main())
