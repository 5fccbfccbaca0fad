#!/usr/bin/env python3
"""bench/nchan_pub.py PORT CHANNEL RATE SECONDS [SENDERS] - nchan's emitter
for bench/run's fan-out: POSTs RATE messages a second for SECONDS to
nchan's publisher endpoint (/pub?id=CHANNEL), each {"i": n, "sent_us":
CLOCK_REALTIME microseconds}, the stamp taken just before the request is
written, as agentgate's bench.ticker stamps just before its emit.

nchan answers a publish once it has handed the message on, which takes
longer as subscribers grow; one connection waiting for each answer would
fall behind the rate. So SENDERS threads (8), each with its own kept-alive
connection, take the messages as they fall due. (Not HTTP pipelining on
one connection: nginx then leaves a queued publish waiting for the next
read on the socket, which adds a delay that is not nchan's fan-out.) Ends
with {"end":true}, which makes bench/sseload close its streams. Prints
"sent=N ok=N late_ms=M": M is the furthest a send fell behind its due
time (all senders busy), so a publisher that could not keep up shows."""
import http.client
import queue
import sys
import threading
import time


def sender(port, path, work, stats, lock):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    hdr = {"Content-Type": "application/json"}
    while True:
        item = work.get()
        if item is None:
            work.task_done()
            return
        i, due = item
        now = time.time()
        body = '{"end":true}' if i == 0 else '{"i":%d,"sent_us":%d}' % (i, time.time_ns() // 1000)
        c.request("POST", path, body, hdr)
        r = c.getresponse()
        r.read()
        with lock:
            stats["late"] = max(stats["late"], now - due)
            stats["ok" if r.status in (200, 201, 202) else "bad"] += 1
        work.task_done()


def main():
    port, channel, rate, seconds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    senders = int(sys.argv[5]) if len(sys.argv) > 5 else 8
    path = f"/pub?id={channel}"
    work = queue.Queue()
    stats = {"ok": 0, "bad": 0, "late": 0.0}
    lock = threading.Lock()
    threads = [threading.Thread(target=sender, args=(port, path, work, stats, lock), daemon=True)
               for _ in range(senders)]
    for t in threads:
        t.start()
    total = rate * seconds
    start = time.time()
    for i in range(1, total + 1):
        due = start + i / rate
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        work.put((i, due))
    # Every message answered (so handed on) before the end mark, which
    # must not overtake one still in flight on another connection.
    work.join()
    time.sleep(0.5)
    work.put((0, time.time()))
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join(timeout=60)
    print(f"sent={total} ok={stats['ok'] - 1} late_ms={stats['late'] * 1000:.1f}")


if __name__ == "__main__":
    main()
