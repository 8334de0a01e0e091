"""Resource bounds of `weir serve` under hostile load, with real clients beside it.

A server of the test's own with a 256 MiB buffer pool (`--buffer-bytes-max`) gets, at once:
- 2,000 idle connections (connected, never sending a byte);
- 40 clients that never read: each sends 32 fetches asking for 2 GiB (max_bytes and
  partition_max_bytes at i32::MAX) of a topic holding ~120 MB, with a 4 KiB receive buffer;
- a topic of 5,000 partitions, created, written (one record per partition) and read back.
Meanwhile a librdkafka producer (acks=all) and consumer do the same work as before the load.

What must hold: the server's resident memory stays under its stated bound (the RSS before the
load, plus the buffer pool, plus 64 KiB per connection and 16 KiB per partition); every record of
the clients that behave is delivered and read, in full; the 5,000-partition topic reads back
exactly. The clients' throughput before and during the load is printed as `name: value` lines
(figures, not checks: the machine is shared)."""
import os
import resource
import socket
import struct
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import (check, done, free_loopback_addr, own_server_parser, parse_own_server_args,
                    start_weir_serve)

parser = own_server_parser()
a = parse_own_server_args(parser)

POOL_BYTES = 256 << 20
IDLE = int(os.environ.get("WEIR_BOUNDS_IDLE", 2000))
NON_READERS = int(os.environ.get("WEIR_BOUNDS_NON_READERS", 40))
FETCHES_EACH = 32
WIDE_PARTITIONS = 5000
LOAD_RECORDS, LOAD_VALUE_BYTES, LOAD_PARTITIONS = 120_000, 1000, 8
GOOD_RECORDS, GOOD_VALUE_BYTES = 100_000, 100
CONNECTION_BYTES, PARTITION_BYTES = 64 << 10, 16 << 10

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
check(hard >= IDLE + NON_READERS + 200, f"this test needs {IDLE + NON_READERS + 200} file descriptors")


STARTED = time.monotonic()


def phase(name, pid):
    """Marks where the run is, with the seconds since it started and the server's RSS then: a
    failure in a slow CI run shows what took long or grew (these are not checks)."""
    print(f"[{time.monotonic() - STARTED:7.1f} s, server RSS {rss_bytes(pid) >> 20} MiB] {name}")


def rss_bytes(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class RssPeak(threading.Thread):
    """The largest VmRSS seen, sampled every 50 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stopped = pid, 0, False

    def run(self):
        while not self.stopped:
            try:
                self.peak = max(self.peak, rss_bytes(self.pid))
            except FileNotFoundError:
                return
            time.sleep(0.05)


def produce(addr, topic, n, value_bytes, acks, partitions=None):
    """Produces n values; returns the seconds it took. Every delivery must succeed."""
    p = Producer({"bootstrap.servers": addr, "acks": acks, "linger.ms": 5,
                  "compression.type": "none", "queue.buffering.max.messages": 1_000_000})
    failures = []
    value = os.urandom(value_bytes)

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)

    start = time.monotonic()
    for i in range(n):
        kwargs = {"partition": i % partitions} if partitions else {}
        while True:
            try:
                p.produce(topic, value, on_delivery=on_delivery, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        if i % 10_000 == 0:
            p.poll(0)
    left = p.flush(120)
    elapsed = time.monotonic() - start
    check(left == 0 and not failures, f"producing to {topic}: {left} undelivered, failures {failures[:3]}")
    return elapsed


def consume(addr, topic, partitions, n):
    """Reads the first n records of `topic` (assigned, no group); returns (seconds, bytes)."""
    c = Consumer({"bootstrap.servers": addr, "group.id": "bounds-reader",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got, total, start = 0, 0, time.monotonic()
    seen = set()
    while got < n:
        batch = c.consume(num_messages=10_000, timeout=60)
        check(batch, f"reading {topic}: nothing for 60 s after {got} of {n} records")
        for m in batch:
            check(m.error() is None or m.error().code() == KafkaError._PARTITION_EOF,
                  f"reading {topic}: {m.error()}")
            if m.error() is None:
                key = (m.partition(), m.offset())
                if key not in seen:
                    seen.add(key)
                    got += 1
                    total += len(m.value())
    elapsed = time.monotonic() - start
    c.close()
    return elapsed, total


def measure(addr, phase):
    t = produce(addr, "good", GOOD_RECORDS, GOOD_VALUE_BYTES, "all", partitions=LOAD_PARTITIONS)
    produced = GOOD_RECORDS / t
    n = LOAD_RECORDS // 2
    t, nbytes = consume(addr, "load", LOAD_PARTITIONS, n)
    consumed, mb = n / t, nbytes / t / 1e6
    print(f"bounds_{phase}_produce_acks_all_records_per_s: {produced:.0f}")
    print(f"bounds_{phase}_consume_records_per_s: {consumed:.0f}")
    print(f"bounds_{phase}_consume_mb_per_s: {mb:.1f}")
    return produced, consumed


def fetch_request(correlation, topic, partitions):
    """Fetch v4 asking for everything: max_bytes and partition_max_bytes at i32::MAX."""
    client_id = b"non-reader"
    header = struct.pack(">hhih", 1, 4, correlation, len(client_id)) + client_id
    name = topic.encode()
    body = struct.pack(">iiiib", -1, 0, 1, 0x7FFFFFFF, 0)
    body += struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
    body += struct.pack(">i", partitions)
    for p in range(partitions):
        body += struct.pack(">iqi", p, 0, 0x7FFFFFFF)
    frame = header + body
    return struct.pack(">i", len(frame)) + frame


work = tempfile.mkdtemp(prefix="weir-bounds-")
addr = free_loopback_addr()
server = start_weir_serve(a.weir_bin, os.path.join(work, "data"), addr,
                          extra=["--buffer-bytes-max", str(POOL_BYTES), "--connections-max",
                                 str(IDLE + NON_READERS + 500)])
sockets = []
try:
    admin = AdminClient({"bootstrap.servers": addr})
    phase("server up; creating topics and producing the load topic", server.pid)
    for topic, n in (("load", LOAD_PARTITIONS), ("good", LOAD_PARTITIONS)):
        admin.create_topics([NewTopic(topic, n, 1)])[topic].result(timeout=30)
    produce(addr, "load", LOAD_RECORDS, LOAD_VALUE_BYTES, "1", partitions=LOAD_PARTITIONS)
    phase("measuring before the load", server.pid)
    quiet = measure(addr, "quiet")
    base_rss = rss_bytes(server.pid)
    peak = RssPeak(server.pid)
    peak.start()

    host, port = addr.split(":")
    phase(f"opening {IDLE} idle connections", server.pid)
    for _ in range(IDLE):
        sockets.append(socket.create_connection((host, int(port))))
    time.sleep(1)
    idle_rss = rss_bytes(server.pid)
    print(f"bounds_idle_connections: {IDLE}")
    print(f"bounds_rss_per_idle_connection_bytes: {max(0, idle_rss - base_rss) / IDLE:.0f}")

    phase(f"{NON_READERS} clients sending huge fetches and never reading", server.pid)
    for i in range(NON_READERS):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((host, int(port)))
        for j in range(FETCHES_EACH):
            s.sendall(fetch_request(j, "load", LOAD_PARTITIONS))
        sockets.append(s)
    time.sleep(2)

    phase(f"creating, writing and reading a topic of {WIDE_PARTITIONS} partitions", server.pid)
    admin.create_topics([NewTopic("wide", WIDE_PARTITIONS, 1)])["wide"].result(timeout=60)
    md = admin.list_topics("wide", timeout=30)
    check(len(md.topics["wide"].partitions) == WIDE_PARTITIONS,
          f"metadata lists {len(md.topics['wide'].partitions)} partitions of wide")
    phase("writing one record to each partition of wide", server.pid)
    produce(addr, "wide", WIDE_PARTITIONS, 10, "all", partitions=WIDE_PARTITIONS)
    phase("reading wide back", server.pid)
    _, wide_bytes = consume(addr, "wide", WIDE_PARTITIONS, WIDE_PARTITIONS)
    check(wide_bytes == WIDE_PARTITIONS * 10, f"wide read back {wide_bytes} bytes")

    phase("measuring under the load", server.pid)
    loaded = measure(addr, "loaded")
    print(f"bounds_loaded_to_quiet_produce_ratio: {loaded[0] / quiet[0]:.2f}")
    print(f"bounds_loaded_to_quiet_consume_ratio: {loaded[1] / quiet[1]:.2f}")

    phase("the load done", server.pid)
    peak.stopped = True
    peak.join()
    connections = IDLE + NON_READERS + 10
    bound = base_rss + POOL_BYTES + connections * CONNECTION_BYTES + WIDE_PARTITIONS * PARTITION_BYTES
    print(f"bounds_rss_before_load_mb: {base_rss / 2**20:.0f}")
    print(f"bounds_rss_peak_mb: {peak.peak / 2**20:.0f}")
    print(f"bounds_rss_bound_mb: {bound / 2**20:.0f}")
    check(peak.peak <= bound, f"the server's RSS reached {peak.peak >> 20} MiB, over its bound of {bound >> 20} MiB")
    # The server still answers, and still holds every connection it was given.
    check(AdminClient({"bootstrap.servers": addr}).list_topics(timeout=30).topics, "no metadata after the load")
    done("idle connections, non-reading clients, huge fetches and 5,000 partitions stay within the bound")
finally:
    for s in sockets:
        s.close()
    server.terminate()
    server.wait(timeout=60)
