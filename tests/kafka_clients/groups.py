"""A consumer group of three processes (librdkafka and kafka-python members mixed) that join and
leave while consuming: every record is processed, and committed offsets let a restarted group
resume exactly where it stopped: nothing skipped, nothing read twice."""
import multiprocessing as mp
import sys
import time

from confluent_kafka import Consumer, Producer
from kafka import KafkaConsumer, TopicPartition as KTP

from common import args, check, create_topic, done, unique

RECORDS = 6000
PARTITIONS = 6


def librdkafka_member(bootstrap, topic, group, out, stop_after):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": "range",
    })
    c.subscribe([topic])
    seen = 0
    idle_since = time.time()
    while seen < stop_after and time.time() - idle_since < 20:
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            continue
        idle_since = time.time()
        out.put(int(msg.value()))
        seen += 1
        # Commit what was processed, record by record's batch, synchronously: nothing a later
        # member reads again was counted before its commit.
        c.commit(message=msg, asynchronous=False)
    c.close()  # LeaveGroup: the rest rebalance at once


def kafka_python_member(bootstrap, topic, group, out, stop_after):
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=10000, heartbeat_interval_ms=500)
    seen = 0
    idle_since = time.time()
    while seen < stop_after and time.time() - idle_since < 20:
        batch = c.poll(timeout_ms=500)
        for tp, msgs in batch.items():
            for m in msgs:
                out.put(int(m.value))
                seen += 1
            c.commit({tp: __import__("kafka").OffsetAndMetadata(msgs[-1].offset + 1, None, -1)})
        if batch:
            idle_since = time.time()
    c.close()


def main():
    a = args(__doc__)
    topic = unique("grp")
    group = unique("g")
    create_topic(a.bootstrap, topic, PARTITIONS)
    p = Producer({"bootstrap.servers": a.bootstrap, "enable.idempotence": True})
    for i in range(RECORDS):
        p.produce(topic, key=str(i % 97).encode(), value=str(i).encode())
    p.flush(60)

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    # Member one leaves early (after 1000 records), member two stays to the end, member three
    # (kafka-python) joins late: two rebalances happen while records are being consumed.
    m1 = ctx.Process(target=librdkafka_member, args=(a.bootstrap, topic, group, out, 1000))
    m2 = ctx.Process(target=librdkafka_member, args=(a.bootstrap, topic, group, out, 10**9))
    m3 = ctx.Process(target=kafka_python_member, args=(a.bootstrap, topic, group, out, 10**9))
    m1.start()
    m2.start()
    time.sleep(2)
    m3.start()
    seen = []
    deadline = time.time() + 120
    while len(set(seen)) < RECORDS and time.time() < deadline:
        try:
            seen.append(out.get(timeout=1))
        except Exception:
            pass
    # Stop the members only once the group has committed everything: then a restart must
    # resume exactly at the end, with nothing read twice.
    from confluent_kafka import Consumer as Probe, TopicPartition as TP
    probe = Probe({"bootstrap.servers": a.bootstrap, "group.id": group})
    ends = [probe.get_watermark_offsets(TP(topic, q), timeout=10)[1] for q in range(PARTITIONS)]
    deadline = time.time() + 60
    while time.time() < deadline:
        committed = [tp.offset for tp in probe.committed([TP(topic, q) for q in range(PARTITIONS)], timeout=10)]
        if committed == ends:
            break
        time.sleep(0.2)
    probe.close()
    check(committed == ends, f"the group committed {committed}, not the ends {ends}")
    for m in (m1, m2, m3):
        m.terminate() if m.is_alive() and m is not m1 else None
    for m in (m1, m2, m3):
        m.join(30)
    while not out.empty():
        seen.append(out.get())
    check(set(seen) == set(range(RECORDS)), f"group processed {len(set(seen))} of {RECORDS} distinct records")

    # The committed offsets resume a restarted group: produce more, and a fresh member of the same
    # group reads exactly the records it has not seen, none of the committed ones again.
    for i in range(RECORDS, RECORDS + 500):
        p.produce(topic, key=str(i % 97).encode(), value=str(i).encode())
    p.flush(60)
    out2 = ctx.Queue()
    m4 = ctx.Process(target=librdkafka_member, args=(a.bootstrap, topic, group, out2, 10**9))
    m4.start()
    resumed = []
    deadline = time.time() + 60
    while time.time() < deadline and not set(range(RECORDS, RECORDS + 500)) <= set(resumed):
        try:
            resumed.append(out2.get(timeout=1))
        except Exception:
            pass
    m4.terminate()
    m4.join(30)
    check(set(range(RECORDS, RECORDS + 500)) <= set(resumed), "the restarted group missed new records")
    redelivered = [r for r in resumed if r < RECORDS]
    check(not redelivered, f"the restarted group re-read {len(redelivered)} committed records")
    done("groups")


if __name__ == "__main__":
    main()
