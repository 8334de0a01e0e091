"""SIGKILL of the server while an idempotent librdkafka producer produces with acks=all, many
rounds. After each restart (same data directory, same port) every record the producer saw
acknowledged is in the log exactly once, offsets are dense, and the producer carries on without
duplicates."""
import collections
import os
import random
import signal
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from common import (check, create_topic, done, free_loopback_addr, own_server_parser,
                    parse_own_server_args, start_weir_serve)

ROUNDS = 8
PARTITIONS = 3

parser = own_server_parser()
a = parse_own_server_args(parser)
data = tempfile.mkdtemp(prefix="weir-crash-")
bootstrap = free_loopback_addr()


def start():
    return start_weir_serve(a.weir_bin, data, bootstrap)


server = start()
create_topic(bootstrap, "crash", PARTITIONS)
acked = []
failed = []
lock = threading.Lock()


def on_delivery(err, msg):
    with lock:
        (failed if err else acked).append(msg.value() if not err else (msg.value(), str(err)))


producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                     "linger.ms": 2, "message.timeout.ms": 120000, "retry.backoff.ms": 50,
                     "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
stop = threading.Event()


def produce():
    i = 0
    while not stop.is_set():
        try:
            producer.produce("crash", key=str(i % 11).encode(), value=str(i).encode(), on_delivery=on_delivery)
            i += 1
        except BufferError:
            producer.poll(0.05)
        producer.poll(0)
        if i % 100 == 0:
            time.sleep(0.005)


thread = threading.Thread(target=produce)
thread.start()
rng = random.Random(int(os.environ.get("WEIR_SEED", "11")))
for round_ in range(ROUNDS):
    time.sleep(rng.uniform(0.5, 2.0))
    server.send_signal(signal.SIGKILL)
    server.wait()
    time.sleep(rng.uniform(0.0, 0.5))
    server = start()
stop.set()
thread.join()
remaining = producer.flush(120)
check(remaining == 0, f"{remaining} records still unacknowledged after the last restart")
check(not failed, f"{len(failed)} deliveries failed, e.g. {failed[:3]}")

c = Consumer({"bootstrap.servers": bootstrap, "group.id": "checker", "enable.partition.eof": True,
              "enable.auto.commit": False, "auto.offset.reset": "earliest"})
c.assign([TopicPartition("crash", q, 0) for q in range(PARTITIONS)])
values, offsets, eof = [], collections.defaultdict(list), set()
while len(eof) < PARTITIONS:
    m = c.poll(10)
    check(m is not None, "checker timed out")
    if m.error():
        eof.add(m.partition())
        continue
    values.append(m.value())
    offsets[m.partition()].append(m.offset())
c.close()
counts = collections.Counter(values)
dupes = [v for v, n in counts.items() if n > 1]
lost = [v for v in acked if v not in counts]
check(not dupes, f"{len(dupes)} records stored twice, e.g. {dupes[:5]}")
check(not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}")
for q, offs in offsets.items():
    check(offs == list(range(offs[0], offs[0] + len(offs))) and offs[0] == 0, f"partition {q}: offsets not dense")
print(f"server_crash: {len(acked)} acknowledged records, {ROUNDS} SIGKILLs, none lost or duplicated")
server.send_signal(signal.SIGTERM)
check(server.wait(60) == 0, "weir serve did not stop cleanly")
done("server_crash")
