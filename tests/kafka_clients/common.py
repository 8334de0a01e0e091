"""Shared helpers of the real-client tests: arguments, checks that fail loudly, unique names."""
import argparse
import os
import sys
import uuid


def args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of a running weir serve")
    return parser.parse_args()


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


def read_all(bootstrap, topic, partitions, isolation="read_committed"):
    """Every value of `topic` from the beginning to the end each partition has now, as a
    librdkafka consumer at `isolation` sees them (no group: assign and read to the end)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"),
                  "isolation.level": isolation, "enable.partition.eof": True,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values, eof = [], set()
    while len(eof) < partitions:
        m = c.poll(10)
        check(m is not None, f"a {isolation} reader of {topic} timed out")
        if m.error():
            eof.add(m.partition())
            continue
        values.append(m.value().decode())
    c.close()
    return values
