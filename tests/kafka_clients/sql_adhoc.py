"""Ad-hoc SQL over a cluster: librdkafka writes a topic with a weir.schema config (plain records,
a committed transaction, an aborted one and one left open), and `weir --bootstrap sql` reads it
read_committed over Fetch. Each answer is checked against what this script wrote, computed here:
the aborted and open transactions never show, the scan ends at the last stable offset, and
`_partition`, `_offset` and `_timestamp` filters narrow what is fetched (EXPLAIN shows the ranges)."""
import json
import os
import subprocess
from collections import Counter

from confluent_kafka import Producer

from common import args, check, create_topic, done, transactional_producer, unique

a = args(__doc__)
weir = os.environ["WEIR_BIN"]
topic = unique("adhoc")
PARTITIONS = 3
BASE_TS = 1_700_000_000_000
create_topic(a.bootstrap, topic, PARTITIONS,
             {"weir.schema": "ad_id BIGINT, player VARCHAR, ts TIMESTAMP"})


def value(ad_id, player, i):
    return json.dumps({"ad_id": ad_id, "player": player, "ts": BASE_TS + i}).encode()


# Plain records: record i goes to partition i % 3 at offset i // 3, stamped BASE_TS + 1000 i.
PLAIN = 600
plain = Producer({"bootstrap.servers": a.bootstrap, "enable.idempotence": True, "linger.ms": 5})
written = []  # (partition, offset, ad_id, player, timestamp) of every committed record
for i in range(PLAIN):
    p, ts = i % PARTITIONS, BASE_TS + 1000 * i
    plain.produce(topic, key=str(i % 7).encode(), value=value(i % 7, f"p{i}", i), partition=p,
                  timestamp=ts)
    written.append((p, i // PARTITIONS, i % 7, f"p{i}", ts))
check(plain.flush(30) == 0, "plain records were not all delivered")


def transactional(txn_id):
    return transactional_producer(a.bootstrap, txn_id)


def write(p, ad_id, n):
    p.begin_transaction()
    for i in range(n):
        p.produce(topic, key=b"t", value=value(ad_id, f"t{ad_id}-{i}", i), partition=i % PARTITIONS,
                  timestamp=BASE_TS + 10_000_000 + i)
    p.flush(30)


committer = transactional(unique("c"))
write(committer, 100, 60)
committer.commit_transaction(30)
aborter = transactional(unique("a"))
write(aborter, 200, 45)
aborter.abort_transaction(30)
opener = transactional(unique("o"))
write(opener, 300, 30)  # left open: every partition's last stable offset stops before it
committed = Counter({ad: n for ad, n in Counter(w[2] for w in written).items()})
committed[100] += 60


def sql(query, *extra):
    out = subprocess.run([weir, "--bootstrap", a.bootstrap, "sql", query, *extra],
                         capture_output=True, text=True, timeout=120)
    return out


def rows(query):
    out = sql(query, "--format", "json")
    check(out.returncode == 0, f"{query}: exit {out.returncode}: {out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


t = f'"{topic}"'
# Every committed record, and none of the aborted or open ones.
got = rows(f"SELECT ad_id, count(*) AS n FROM {t} GROUP BY ad_id ORDER BY ad_id")
check({r["ad_id"]: r["n"] for r in got} == dict(committed), f"counts per ad: {got}")

# Offsets and partitions: what this script put there, exactly.
got = rows(f"SELECT _partition, _offset, player FROM {t} "
           f"WHERE _partition = 1 AND _offset >= 50 AND _offset < 60 ORDER BY _offset")
want = [{"_partition": p, "_offset": o, "player": pl}
        for (p, o, _, pl, _) in written if p == 1 and 50 <= o < 60]
check(got == want, f"partition 1, offsets 50..60: {got} != {want}")
plan = sql(f"EXPLAIN SELECT player FROM {t} WHERE _partition = 1 AND _offset >= 50 "
           f"AND _offset < 60")
check(plan.returncode == 0 and "ranges=[p1:[50,60)]" in plan.stdout,
      f"offset pushdown: {plan.stdout}{plan.stderr}")

# A timestamp lower bound seeks by ListOffsets: each partition's range starts at the first
# record at or after it, and the rows are those a full read would give.
since = BASE_TS + 1000 * 450
got = rows(f"SELECT count(*) AS n FROM {t} WHERE _timestamp >= to_timestamp_millis({since}) "
           f"AND ad_id < 100")
want = sum(1 for w in written if w[4] >= since)
check(got == [{"n": want}], f"since {since}: {got}, want {want}")
plan = sql(f"EXPLAIN SELECT player FROM {t} WHERE _timestamp >= to_timestamp_millis({since})")
for p in range(PARTITIONS):
    first = min(o for (q, o, _, _, ts) in written if q == p and ts >= since)
    check(f"p{p}:[{first}," in plan.stdout, f"timestamp pushdown, partition {p}: {plan.stdout}")

# Bad input: a clear error, not a hang or a panic.
bad = sql("SELECT nope FROM missing_table")
check(bad.returncode != 0 and "missing_table" in bad.stderr and "panicked" not in bad.stderr,
      f"an unknown table: exit {bad.returncode}: {bad.stderr}")

opener.abort_transaction(30)
done("sql_adhoc")
