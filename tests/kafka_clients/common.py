"""Shared helpers of the real-client tests: arguments, checks that fail loudly, unique names."""
import argparse
import os
import socket
import subprocess
import sys
import time
import uuid


def args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of a running weir serve")
    return parser.parse_args()


def own_server_parser(description=None):
    """Arguments of a script that starts its own server: --bootstrap is accepted (the test
    driver passes it to every script) and ignored; --weir-bin (or WEIR_BIN) is the server."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", help="ignored: this test runs its own server")
    parser.add_argument("--weir-bin", default=os.environ.get("WEIR_BIN"))
    return parser


def parse_own_server_args(parser):
    a = parser.parse_args()
    check(a.weir_bin, "set --weir-bin or WEIR_BIN")
    return a


def check(condition, message):
    """An assertion that survives `python -O` and says what went wrong."""
    if not condition:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topic(bootstrap, name, partitions, config=None):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])
    futures[name].result(timeout=30)


def transactional_producer(bootstrap, txn_id):
    """A librdkafka transactional producer, its transactions initialised."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": 60000})
    p.init_transactions(30)
    return p


def done(name):
    print(f"ok: {name} (pid {os.getpid()})")


def read_all(bootstrap, topic, partitions, isolation="read_committed", conf=None):
    """Every value of `topic` from the beginning to the end each partition has now, as a
    librdkafka consumer at `isolation` sees them (no group: assign and read to the end). `conf`
    adds client settings (security ones, say)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                  "isolation.level": isolation, "enable.partition.eof": True,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  **(conf or {})})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values, eof = [], set()
    while len(eof) < partitions:
        m = c.poll(10)
        check(m is not None, f"a {isolation} reader of {topic} timed out")
        if m.error():
            # Only the end of a partition counts as its end; a transient error (a connection
            # being set up again) is skipped, a fatal one fails.
            from confluent_kafka import KafkaError

            check(not m.error().fatal(), f"a {isolation} reader of {topic}: {m.error()}")
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
            else:
                print(f"{topic} reader: {m.error()}", file=sys.stderr)
            continue
        values.append(m.value().decode())
    c.close()
    return values


def free_loopback_addr():
    """A HOST:PORT on 127.0.0.1 that nothing listens on now, for a server of the test's own that
    it restarts on the same port (clients reconnect there)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"127.0.0.1:{port}"


def start_weir_serve(weir_bin, data_dir, addr, attempts=50, extra=()):
    """Starts `weir serve` over `data_dir` on `addr` (with `extra` arguments) and waits for its
    `listening:` line. After a SIGKILL the port may be held a moment longer: a start that fails
    is tried again."""
    for _ in range(attempts):
        proc = subprocess.Popen([weir_bin, "--data-dir", data_dir, "serve", "--listen", addr,
                                 *extra],
                                stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if line.startswith("listening: "):
            return proc
        proc.wait()
        time.sleep(0.2)
    check(False, f"weir serve did not start on {addr}")
