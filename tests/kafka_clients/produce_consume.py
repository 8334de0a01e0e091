"""Keyed, idempotent produce with every compression through librdkafka (confluent-kafka), read
back by librdkafka and by kafka-python: every record once, in order per key, bytes intact."""
import collections

from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer

from common import args, check, create_topic, done, unique

RECORDS_PER_CODEC = 3000
KEYS = 37

a = args(__doc__)
for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
    topic = unique(f"pc-{codec}")
    create_topic(a.bootstrap, topic, 4)
    producer = Producer({
        "bootstrap.servers": a.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": codec,
        "linger.ms": 5,
    })
    sent = collections.defaultdict(list)
    failures = []

    def delivered(err, msg):
        if err is not None:
            failures.append(err)

    for i in range(RECORDS_PER_CODEC):
        key = f"k{i % KEYS}".encode()
        value = f"{codec}:{i}:".encode() + bytes([i % 251]) * (i % 200)
        producer.produce(topic, value=value, key=key, headers=[("n", str(i).encode())], on_delivery=delivered)
        sent[key].append(value)
        producer.poll(0)
    producer.flush(60)
    check(not failures, f"{codec}: delivery failures {failures[:3]}")

    # librdkafka reads it back: assign all partitions from the beginning, stop at the end.
    consumer = Consumer({
        "bootstrap.servers": a.bootstrap,
        "group.id": unique("reader"),
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    consumer.assign([TopicPartition(topic, p, 0) for p in range(4)])
    got = collections.defaultdict(list)
    eof = set()
    while len(eof) < 4:
        msg = consumer.poll(10)
        check(msg is not None, f"{codec}: librdkafka consumer timed out with {sum(map(len, got.values()))} records")
        if msg.error():
            check(msg.error().code() == -191, f"{codec}: consume error {msg.error()}")  # _PARTITION_EOF
            eof.add(msg.partition())
            continue
        got[msg.key()].append(msg.value())
        check(msg.headers() and msg.headers()[0][0] == "n", f"{codec}: header lost")
    consumer.close()
    check(dict(got) == dict(sent), f"{codec}: librdkafka read back differs from what was produced")

    # kafka-python reads it back too.
    kc = KafkaConsumer(topic, bootstrap_servers=a.bootstrap, auto_offset_reset="earliest",
                       enable_auto_commit=False, consumer_timeout_ms=5000, group_id=None)
    got2 = collections.defaultdict(list)
    for msg in kc:
        got2[msg.key].append(msg.value)
        if sum(map(len, got2.values())) == RECORDS_PER_CODEC:
            break
    kc.close()
    check(dict(got2) == dict(sent), f"{codec}: kafka-python read back differs ({sum(map(len, got2.values()))} records)")
done("produce_consume")
