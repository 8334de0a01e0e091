"""A Jepsen-style check of weir serve's transactions, with librdkafka (confluent-kafka) clients.

Several transactional producers write transactions of one to five records across three topics,
committing most and aborting some, while a read_committed consumer reads along, and a nemesis
SIGKILLs the server (and restarts it on the same directory and port) or pauses it (SIGSTOP, then
SIGCONT) at random. Every transaction's outcome is recorded as its producer saw it: committed,
aborted, or unknown (the commit's answer never came). At the end a read_committed reader reads
every partition to its end, and the checker reports:
- a lost write: a record of a committed transaction that is not there;
- an aborted read: a record of an aborted transaction that a read_committed reader saw;
- a duplicate: a record read twice;
- a torn transaction: a transaction with some of its records visible and others not;
- a stuck consumer: a partition whose last stable offset stays behind its end (an open
  transaction never decided) after the transaction timeout has passed;
- a read that was taken back: a record the reader saw during the run that is not in the end.
"""
import collections
import os
import random
import signal
import tempfile
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from common import (check, create_topic, done, free_loopback_addr, own_server_parser,
                    parse_own_server_args, start_weir_serve)

TOPICS = ["jepsen-a", "jepsen-b", "jepsen-c"]
PARTITIONS = 3
PRODUCERS = 3
TXN_TIMEOUT_MS = 10_000

parser = own_server_parser()
parser.add_argument("--seconds", type=float, default=float(os.environ.get("WEIR_JEPSEN_SECONDS", "20")))
parser.add_argument("--seed", type=int, default=int(os.environ.get("WEIR_SEED", "7")))
a = parse_own_server_args(parser)
rng = random.Random(a.seed)
data = tempfile.mkdtemp(prefix="weir-jepsen-")
bootstrap = free_loopback_addr()


def start():
    return start_weir_serve(a.weir_bin, data, bootstrap)


server = start()
for t in TOPICS:
    create_topic(bootstrap, t, PARTITIONS)

lock = threading.Lock()
outcomes = {}      # txn name -> "committed" | "aborted" | "unknown"
txn_values = {}    # txn name -> [values]
stop = threading.Event()
events = collections.Counter()


def producer_config(i):
    return {"bootstrap.servers": bootstrap, "transactional.id": f"jepsen-{i}",
            "transaction.timeout.ms": TXN_TIMEOUT_MS, "message.timeout.ms": 8000,
            "socket.timeout.ms": 3000, "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500, "linger.ms": 1,
            # Only errors: every kill and pause would print a screen of disconnects.
            "log_level": 3}


def new_producer(i):
    while not stop.is_set():
        p = Producer(producer_config(i))
        try:
            p.init_transactions(15)
            return p
        except KafkaException:
            events["init retried"] += 1
            time.sleep(0.2)
    return None


def run_producer(i):
    prng = random.Random(a.seed * 100 + i)
    p = new_producer(i)
    n = 0
    while not stop.is_set() and p is not None:
        name = f"{i}:{n}"
        n += 1
        values = [f"{name}:{j}" for j in range(prng.randint(1, 5))]
        commit = prng.random() < 0.8
        with lock:
            txn_values[name] = values
            outcomes[name] = "unknown"
        try:
            p.begin_transaction()
            for v in values:
                p.produce(prng.choice(TOPICS), value=v.encode(), partition=prng.randrange(PARTITIONS))
            if commit:
                p.commit_transaction(10)
                result = "committed"
            else:
                p.abort_transaction(10)
                result = "aborted"
        except KafkaException as e:
            err = e.args[0]
            result = "unknown"
            if err.txn_requires_abort():
                try:
                    p.abort_transaction(10)
                    result = "aborted"
                except KafkaException:
                    pass
            if result == "unknown":
                # Its fate is the coordinator's now; a new producer with the same id fences
                # this one and settles the transaction.
                events["producer replaced"] += 1
                p = new_producer(i)
        with lock:
            outcomes[name] = result
        events[result] += 1


seen_during = set()


def run_reader():
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "jepsen-reader",
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "socket.timeout.ms": 3000,
                  "reconnect.backoff.max.ms": 500, "log_level": 3})
    c.assign([TopicPartition(t, p, 0) for t in TOPICS for p in range(PARTITIONS)])
    while not stop.is_set():
        for m in c.consume(num_messages=200, timeout=0.5):
            if m.error() is None:
                seen_during.add(m.value().decode())
    c.close()


def nemesis(deadline):
    global server
    while time.time() < deadline:
        time.sleep(rng.uniform(0.5, 2.0))
        if rng.random() < 0.5:
            server.send_signal(signal.SIGKILL)
            server.wait()
            server = start()
            events["server killed"] += 1
        else:
            server.send_signal(signal.SIGSTOP)
            time.sleep(rng.uniform(0.3, 2.5))
            server.send_signal(signal.SIGCONT)
            events["server paused"] += 1


threads = [threading.Thread(target=run_producer, args=(i,)) for i in range(PRODUCERS)]
threads.append(threading.Thread(target=run_reader))
try:
    for t in threads:
        t.start()
    nemesis(time.time() + a.seconds)
    time.sleep(2)  # a calm spell: the last transactions finish against a running server
    stop.set()
    for t in threads:
        t.join(120)
    check(not any(t.is_alive() for t in threads), "a client thread hung")

    # The final read: every partition to its end, once the transaction timeout has passed for
    # whatever a killed producer left open.
    time.sleep(TXN_TIMEOUT_MS / 1000 + 2)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "jepsen-final",
                  "isolation.level": "read_committed", "enable.partition.eof": True,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    parts = [TopicPartition(t, p, 0) for t in TOPICS for p in range(PARTITIONS)]
    c.assign(parts)
    read = collections.Counter()
    eof = set()
    deadline = time.time() + 60
    while len(eof) < len(parts) and time.time() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add((m.topic(), m.partition()))
            continue
        read[m.value().decode()] += 1
    check(len(eof) == len(parts), f"the final reader reached the end of {len(eof)} of {len(parts)} partitions")
    stuck = []
    for tp in parts:
        _, hw = c.get_watermark_offsets(tp, timeout=10, cached=False)
        pos = c.position([tp])[0].offset
        if pos < hw:
            stuck.append((tp.topic, tp.partition, pos, hw))
    c.close()

    lost, aborted_read, torn = [], [], []
    for name, values in txn_values.items():
        shown = [v for v in values if read[v] > 0]
        outcome = outcomes[name]
        if outcome == "committed" and len(shown) < len(values):
            lost.append((name, len(shown), len(values)))
        elif outcome == "aborted" and shown:
            aborted_read.append(name)
        elif 0 < len(shown) < len(values):
            torn.append((name, len(shown), len(values)))
        if outcome == "aborted" and any(v in seen_during for v in values):
            aborted_read.append(name + " (during the run)")
    duplicates = [v for v, n in read.items() if n > 1]
    taken_back = [v for v in seen_during if read[v] == 0]
    counts = collections.Counter(outcomes.values())
    print(f"jepsen: {len(outcomes)} transactions ({dict(counts)}), {sum(read.values())} records read, "
          f"events {dict(events)}")
    check(events["server killed"] + events["server paused"] > 0, "the nemesis did something")
    check(counts["committed"] > 0 and counts["aborted"] > 0, "transactions committed and aborted")
    check(seen_during, "the reader read records during the run")
    check(not lost, f"lost writes (transaction, shown, records): {lost[:5]}")
    check(not aborted_read, f"aborted reads: {aborted_read[:5]}")
    check(not torn, f"torn transactions (transaction, shown, records): {torn[:5]}")
    check(not duplicates, f"duplicates: {duplicates[:5]}")
    check(not stuck, f"stuck consumers (topic, partition, position, end): {stuck}")
    check(not taken_back, f"records read during the run and gone at the end: {taken_back[:5]}")
    server.send_signal(signal.SIGTERM)
    check(server.wait(60) == 0, "the server shuts down cleanly")
    server = None
    done("jepsen")
finally:
    stop.set()
    if server is not None:
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait()
