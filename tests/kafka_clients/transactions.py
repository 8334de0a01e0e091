"""Transactions through librdkafka: one committed, one aborted, one left open. A read_committed
reader (librdkafka, kafka-python) sees exactly the committed records; a read_uncommitted reader
sees all of them, aborted and open ones included."""
from confluent_kafka import Producer

from common import args, check, create_topic, done, transactional_producer, read_all, unique

a = args(__doc__)
topic = unique("txn")
create_topic(a.bootstrap, topic, 3)


def transactional(txn_id):
    return transactional_producer(a.bootstrap, txn_id)


def write(p, label, n):
    p.begin_transaction()
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"{label}-{i}".encode())
    p.flush(30)


committer = transactional(unique("t-commit"))
write(committer, "committed", 300)
committer.commit_transaction(30)
# The same producer runs a second transaction with the same epoch (transaction version 1).
write(committer, "committed2", 100)
committer.commit_transaction(30)

aborter = transactional(unique("t-abort"))
write(aborter, "aborted", 200)
aborter.abort_transaction(30)

opener = transactional(unique("t-open"))
write(opener, "open", 50)  # neither committed nor aborted while the readers read

# Plain (non-transactional) records after all of them: a read_committed reader stops at the
# open transaction's first offset (the LSO) in the partitions it touched.
plain = Producer({"bootstrap.servers": a.bootstrap})
for i in range(30):
    plain.produce(topic, key=str(i).encode(), value=f"plain-{i}".encode())
plain.flush(30)


def read_all_at(isolation):
    return read_all(a.bootstrap, topic, 3, isolation)


committed = read_all_at("read_committed")
labels = {v.rsplit("-", 1)[0] for v in committed}
check(not any(v.startswith("aborted") or v.startswith("open") for v in committed),
      f"read_committed saw aborted or open records: {sorted(labels)}")
check(sum(v.startswith("committed-") for v in committed) == 300, "read_committed missed committed records")
check(sum(v.startswith("committed2-") for v in committed) == 100, "read_committed missed the second transaction")

uncommitted = read_all_at("read_uncommitted")
for label, n in [("committed", 300), ("committed2", 100), ("aborted", 200), ("open", 50), ("plain", 30)]:
    got = sum(v.rsplit("-", 1)[0] == label for v in uncommitted)
    check(got == n, f"read_uncommitted saw {got} {label} records, not {n}")

# Once the open transaction commits, read_committed sees it and everything behind it.
opener.commit_transaction(30)
after = read_all_at("read_committed")
check(sum(v.startswith("open-") for v in after) == 50, "the late commit is not visible")
check(sum(v.startswith("plain-") for v in after) == 30, "records behind the LSO stayed hidden")
check(not any(v.startswith("aborted") for v in after), "aborted records became visible")

# kafka-python agrees at read_committed.
from kafka import KafkaConsumer
kc = KafkaConsumer(topic, bootstrap_servers=a.bootstrap, isolation_level="read_committed",
                   auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=5000)
kvalues = [m.value.decode() for m in kc]
kc.close()
check(sorted(kvalues) == sorted(after), f"kafka-python read_committed differs ({len(kvalues)} vs {len(after)})")

# A second producer with the same transactional id fences the first.
txn_id = unique("t-fence")
first = transactional(txn_id)
first.begin_transaction()
first.produce(topic, value=b"zombie")
first.flush(30)
second = transactional(txn_id)  # aborts first's open transaction
try:
    first.commit_transaction(30)
    check(False, "a fenced producer committed")
except Exception as e:  # KafkaException: fenced
    check("fenced" in str(e).lower() or "epoch" in str(e).lower(), f"unexpected error for the zombie: {e}")
final = read_all_at("read_committed")
check("zombie" not in final, "the fenced producer's record became visible")
done("transactions")
