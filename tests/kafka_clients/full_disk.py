"""A real full disk under `weir serve`: the data directory on a 6 MiB tmpfs of its own, filled by
librdkafka (confluent-kafka) and kafka-python producers with acks=all until the file system says
ENOSPC. Each client must get KAFKA_STORAGE_ERROR (code 56) for what did not fit, and the server
must keep serving: every acknowledged record readable, nothing else (no half-written batch).
Freeing space lets produce resume; a SIGKILL of the server on the full disk and a restart (a
recovery with no space) lose nothing acknowledged, and writing resumes once more is freed.

Mounting a tmpfs needs root, which CI has; without it the script fails and says so."""
import os
import shutil
import signal
import subprocess
import tempfile

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaProducer
from kafka.errors import KafkaStorageError

from common import (check, create_topic, done, free_loopback_addr, own_server_parser,
                    parse_own_server_args, start_weir_serve)

DISK_BYTES = 6 << 20
BALLAST_BYTES = 1 << 20
PARTITIONS = 2
TOPIC = "full"
VALUE_PAD = "v" * 900

parser = own_server_parser()
a = parse_own_server_args(parser)

mount = tempfile.mkdtemp(prefix="weir-full-disk-")
out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "weir-full-disk", mount],
                     capture_output=True, text=True)
check(out.returncode == 0, f"mounting a tmpfs on {mount} failed (this test needs root): {out.stderr.strip()}")
server = None


def start():
    addr = free_loopback_addr()
    return start_weir_serve(a.weir_bin, os.path.join(mount, "data"), addr), addr


def ballast(name):
    path = os.path.join(mount, name)
    with open(path, "wb") as f:
        f.write(b"\xa5" * BALLAST_BYTES)
    return path


acked = {}  # (partition, offset) -> value


def fill_with_librdkafka(bootstrap, tag):
    """Produces until deliveries fail; returns the error codes of the failed ones."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": False,
                  "retries": 0, "linger.ms": 5, "batch.size": 32768,
                  "message.timeout.ms": 30000})
    errors = []

    def on_delivery(err, msg):
        if err:
            errors.append(err.code())
        else:
            acked[(msg.partition(), msg.offset())] = msg.value().decode()

    i = 0
    while not errors:
        for _ in range(200):
            p.produce(TOPIC, value=f"{tag}:{i}:{VALUE_PAD}".encode(), partition=i % PARTITIONS,
                      on_delivery=on_delivery)
            i += 1
        p.flush(30)
        check(i < 1_000_000, "the disk never filled")
    check(p.flush(30) == 0, "librdkafka delivered every report")
    return errors


def fill_with_kafka_python(bootstrap, tag):
    """Produces one record at a time until one fails; returns the exception."""
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0, linger_ms=0)
    try:
        for i in range(1_000_000):
            value = f"{tag}:{i}:{VALUE_PAD}"
            try:
                md = p.send(TOPIC, value=value.encode(), partition=i % PARTITIONS).get(timeout=30)
            except KafkaStorageError as e:
                return e
            acked[(md.partition, md.offset)] = value
        check(False, "the disk never filled")
    finally:
        p.close()


def assert_log_holds(bootstrap, phase):
    """Every record of the topic, read from the beginning, is exactly what was acknowledged."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{phase}",
                  "enable.partition.eof": True, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    read, eof = {}, set()
    while len(eof) < PARTITIONS:
        m = c.poll(10)
        check(m is not None, f"{phase}: the reader timed out")
        if m.error():
            check(m.error().code() == KafkaError._PARTITION_EOF, f"{phase}: read error {m.error()}")
            eof.add(m.partition())
            continue
        check((m.partition(), m.offset()) not in read, f"{phase}: offset read twice")
        read[(m.partition(), m.offset())] = m.value().decode()
    c.close()
    lost = [k for k in acked if k not in read]
    extra = [k for k in read if k not in acked]
    check(not lost, f"{phase}: {len(lost)} acknowledged records missing, first {sorted(lost)[:3]}")
    check(not extra, f"{phase}: {len(extra)} records read that were never acknowledged, first {sorted(extra)[:3]}")
    check(all(read[k] == v for k, v in acked.items()), f"{phase}: a record's value differs")
    for p in range(PARTITIONS):
        offsets = sorted(o for (q, o) in read if q == p)
        check(offsets == list(range(len(offsets))), f"{phase}: partition {p}'s offsets are not dense")
    print(f"{phase}: {len(read)} records read, all acknowledged ones")


try:
    first_ballast = ballast("ballast-1")
    second_ballast = ballast("ballast-2")
    server, bootstrap = start()
    create_topic(bootstrap, TOPIC, PARTITIONS, {"segment.bytes": str(256 << 10), "max.message.bytes": str(64 << 10)})

    errors = fill_with_librdkafka(bootstrap, "rdkafka")
    check(set(errors) == {KafkaError.KAFKA_STORAGE_ERROR},
          f"librdkafka's failed deliveries say KAFKA_STORAGE_ERROR, not {set(errors)}")
    print(f"full after {len(acked)} acknowledged records: {len(errors)} failed with KAFKA_STORAGE_ERROR")
    e = fill_with_kafka_python(bootstrap, "kafka-python-full")
    print(f"kafka-python on the full disk: {e!r}")
    assert_log_holds(bootstrap, "full")

    os.remove(first_ballast)
    before = len(acked)
    fill_with_kafka_python(bootstrap, "kafka-python-freed")
    check(len(acked) > before, "kafka-python's appends resume once space is freed")
    before = len(acked)
    fill_with_librdkafka(bootstrap, "rdkafka-freed")
    assert_log_holds(bootstrap, "freed, then full again")

    # SIGKILL on the full disk; the restart recovers with no space to spare.
    server.send_signal(signal.SIGKILL)
    server.wait()
    server, bootstrap = start()
    assert_log_holds(bootstrap, "restarted on the full disk")
    os.remove(second_ballast)
    before = len(acked)
    fill_with_librdkafka(bootstrap, "rdkafka-restarted")
    check(len(acked) > before, "librdkafka's appends resume after the restart once space is freed")
    assert_log_holds(bootstrap, "restarted, freed, full again")
    server.send_signal(signal.SIGTERM)
    check(server.wait(60) == 0, "the server shuts down cleanly on a full disk")
    server = None
    done("full_disk")
finally:
    if server is not None:
        server.kill()
        server.wait()
    subprocess.run(["umount", "-l", mount])
    shutil.rmtree(mount, ignore_errors=True)
