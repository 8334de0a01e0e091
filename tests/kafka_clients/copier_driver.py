"""Runs copier.py, SIGKILLing it at random moments and restarting it, until `input` is copied;
then checks that `output` (read_committed) holds exactly one copy of every input record."""
import collections
import os
import random
import signal
import subprocess
import sys
import time

from confluent_kafka import Producer

from common import args, check, create_topic, done, read_all, unique

TOTAL = 4000
KILLS = 6

a = args(__doc__)
src, dst = unique("copy-in"), unique("copy-out")
create_topic(a.bootstrap, src, 3)
create_topic(a.bootstrap, dst, 3)
p = Producer({"bootstrap.servers": a.bootstrap, "enable.idempotence": True})
for i in range(TOTAL):
    p.produce(src, key=str(i).encode(), value=f"r{i}".encode())
p.flush(60)
group, txn_id = unique("copier"), unique("copier-txn")
rng = random.Random(int(os.environ.get("WEIR_SEED", "7")))
cmd = [sys.executable, os.path.join(os.path.dirname(__file__), "copier.py"), "--bootstrap", a.bootstrap,
       "--input", src, "--output", dst, "--group", group, "--txn-id", txn_id, "--total", str(TOTAL)]
kills = 0
while True:
    proc = subprocess.Popen(cmd)
    if kills < KILLS:
        time.sleep(rng.uniform(1.0, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
    code = proc.wait(timeout=300)
    check(code == 0, f"the copier failed with exit code {code}")
    break


out = read_all(a.bootstrap, dst, 3)
counts = collections.Counter(out)
dupes = [v for v, n in counts.items() if n > 1]
missing = {f"r{i}" for i in range(TOTAL)} - set(counts)
check(not dupes, f"{len(dupes)} records copied more than once, e.g. {dupes[:5]} (after {kills} kills)")
check(not missing, f"{len(missing)} records never copied, e.g. {sorted(missing)[:5]}")
print(f"copier: {TOTAL} records copied exactly once across {kills} SIGKILLs")
done("copier_driver")
