"""A consume-transform-produce copier (Kafka's TransactionalMessageCopier): reads `input` in a
consumer group, writes each value to `output`, and sends its offsets in the same transaction.
The test driver SIGKILLs it at random moments and starts it again."""
import argparse
import sys

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

parser = argparse.ArgumentParser()
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--input", required=True)
parser.add_argument("--output", required=True)
parser.add_argument("--group", required=True)
parser.add_argument("--txn-id", required=True)
parser.add_argument("--total", type=int, required=True)
a = parser.parse_args()

consumer = Consumer({"bootstrap.servers": a.bootstrap, "group.id": a.group,
                     "isolation.level": "read_committed", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 6000})
producer = Producer({"bootstrap.servers": a.bootstrap, "transactional.id": a.txn_id,
                     "transaction.timeout.ms": 30000})
producer.init_transactions(30)
consumer.subscribe([a.input])


def remaining():
    """Records of input not yet consumed by the group's committed position."""
    left = 0
    for p in consumer.assignment():
        lo, hi = consumer.get_watermark_offsets(p, timeout=10, cached=False)
        pos = consumer.position([p])[0].offset
        if pos < 0:
            # Nothing fetched since the assignment: where the group's commits say it is.
            pos = consumer.committed([p], timeout=10)[0].offset
        left += hi - (pos if pos >= 0 else lo)
    return left


idle = 0
while True:
    msgs = consumer.consume(num_messages=50, timeout=1.0)
    msgs = [m for m in msgs if m.error() is None]
    if not msgs:
        idle += 1
        if idle > 5 and consumer.assignment() and remaining() == 0:
            break
        continue
    idle = 0
    producer.begin_transaction()
    for m in msgs:
        producer.produce(a.output, key=m.key(), value=m.value())
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                         consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
print("copier: input drained", flush=True)
consumer.close()
