"""IncrementalAlterConfigs and DeleteRecords through librdkafka's AdminClient (confluent-kafka) and
kafka-python's KafkaAdminClient: SET, DELETE, validate_only and every refusal with its code;
DescribeConfigs showing each value and its source; DeleteRecords' low watermarks, ListOffsets
earliest, and consumers reading exactly the records from the new start.

Run twice against one data directory: `--phase setup` makes the changes; `--phase check`, against
a server restarted on the same directory, checks that they persisted."""
import argparse

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, OffsetSpec, ResourceType)

from common import check, create_topic, done, unique

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--bootstrap", required=True)
parser.add_argument("--phase", choices=["setup", "check"], required=True)
parser.add_argument("--topic", required=True)
a = parser.parse_args()
TOPIC = a.topic
# Records produced per partition in setup, and the start DeleteRecords gives each.
RECORDS = {0: 100, 1: 50}
START = {0: 40, 1: 20}
WEEK_MS = "604800000"

admin = AdminClient({"bootstrap.servers": a.bootstrap})


def topic_resource(*entries, name=TOPIC):
    return ConfigResource(ResourceType.TOPIC, name, incremental_configs=list(entries))


def entry(name, value, op=AlterConfigOpType.SET):
    return ConfigEntry(name, value, incremental_operation=op)


def alter(resource, **kwargs):
    """The alter's outcome: None, or the KafkaError code it was refused with."""
    future = admin.incremental_alter_configs([resource], **kwargs)[resource]
    try:
        future.result(timeout=30)
        return None
    except KafkaException as e:
        return e.args[0].code()


def described(name=TOPIC):
    resource = ConfigResource(ResourceType.TOPIC, name)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    return {k: (v.value, v.source) for k, v in configs.items()}


def expect_config(key, value, source, why):
    got = described()[key]
    want = (value, source.value)
    check(got == want, f"{why}: {key} is {got}, expected {want}")


def earliest(partition):
    tp = TopicPartition(TOPIC, partition)
    return admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(timeout=30).offset


def latest(partition):
    tp = TopicPartition(TOPIC, partition)
    return admin.list_offsets({tp: OffsetSpec.latest()})[tp].result(timeout=30).offset


def librdkafka_reads_from_the_beginning(partition):
    c = Consumer({"bootstrap.servers": a.bootstrap, "group.id": unique("reader"),
                  "enable.partition.eof": True, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(TOPIC, partition, -2)])  # OFFSET_BEGINNING
    got = []
    while True:
        m = c.poll(10)
        check(m is not None, f"librdkafka reader of partition {partition} timed out")
        if m.error():
            check(m.error().code() == KafkaError._PARTITION_EOF, f"consume error {m.error()}")
            break
        got.append((m.offset(), m.value().decode()))
    c.close()
    return got


def kafka_python_reads_from_the_beginning(partition):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition

    c = KafkaConsumer(bootstrap_servers=a.bootstrap, enable_auto_commit=False, group_id=None,
                      consumer_timeout_ms=5000)
    tp = KTopicPartition(TOPIC, partition)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = []
    for m in c:
        got.append((m.offset, m.value.decode()))
        if m.offset == RECORDS[partition] - 1:
            break
    c.close()
    return got


def expected_records(partition):
    return [(o, f"p{partition}-r{o}") for o in range(START[partition], RECORDS[partition])]


def check_what_persists(why):
    """What setup leaves, the same before and after a restart."""
    expect_config("segment.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG, why)
    expect_config("max.message.bytes", "524288", ConfigSource.DYNAMIC_TOPIC_CONFIG, why)
    expect_config("retention.bytes", "1073741824", ConfigSource.DYNAMIC_TOPIC_CONFIG, why)
    expect_config("retention.ms", WEEK_MS, ConfigSource.DEFAULT_CONFIG, why)
    expect_config("cleanup.policy", "delete", ConfigSource.DEFAULT_CONFIG, why)
    for p in RECORDS:
        check(earliest(p) == START[p], f"{why}: earliest of {p} is {earliest(p)}, expected {START[p]}")
        check(latest(p) == RECORDS[p], f"{why}: latest of {p} is {latest(p)}")
        got = librdkafka_reads_from_the_beginning(p)
        check(got == expected_records(p),
              f"{why}: librdkafka read {got[:3]}...({len(got)}) from partition {p}")
        got = kafka_python_reads_from_the_beginning(p)
        check(got == expected_records(p),
              f"{why}: kafka-python read {got[:3]}...({len(got)}) from partition {p}")


def setup():
    create_topic(a.bootstrap, TOPIC, 2)
    expect_config("retention.ms", WEEK_MS, ConfigSource.DEFAULT_CONFIG, "a new topic")

    # SET, then DescribeConfigs shows the value as the topic's own.
    check(alter(topic_resource(entry("retention.ms", "3600000"), entry("segment.bytes", "1048576"),
                               entry("max.message.bytes", "524288"))) is None, "SET refused")
    expect_config("retention.ms", "3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG, "after SET")
    expect_config("segment.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG, "after SET")
    # DELETE: back to the default.
    check(alter(topic_resource(entry("retention.ms", None, AlterConfigOpType.DELETE))) is None,
          "DELETE refused")
    expect_config("retention.ms", WEEK_MS, ConfigSource.DEFAULT_CONFIG, "after DELETE")
    # cleanup.policy both ways.
    check(alter(topic_resource(entry("cleanup.policy", "compact"))) is None, "compact refused")
    expect_config("cleanup.policy", "compact", ConfigSource.DYNAMIC_TOPIC_CONFIG, "compact")
    check(alter(topic_resource(entry("cleanup.policy", "compact", AlterConfigOpType.SUBTRACT),
                               )) == KafkaError.INVALID_CONFIG, "a topic with no cleanup.policy")
    check(alter(topic_resource(entry("cleanup.policy", "delete", AlterConfigOpType.APPEND)))
          == KafkaError.INVALID_CONFIG, "compact,delete is not weir's")
    check(alter(topic_resource(entry("cleanup.policy", None, AlterConfigOpType.DELETE))) is None,
          "DELETE of cleanup.policy refused")
    expect_config("cleanup.policy", "delete", ConfigSource.DEFAULT_CONFIG, "policy deleted")

    # validate_only: accepted, nothing changes.
    check(alter(topic_resource(entry("retention.ms", "1000")), validate_only=True) is None,
          "validate_only refused a valid value")
    expect_config("retention.ms", WEEK_MS, ConfigSource.DEFAULT_CONFIG, "after validate_only")
    check(alter(topic_resource(entry("segment.bytes", "10")), validate_only=True)
          == KafkaError.INVALID_CONFIG, "validate_only accepted an invalid value")

    # Refusals, each with its code; nothing changes.
    refusals = [
        ("an unknown config", topic_resource(entry("no.such.config", "1")),
         KafkaError.INVALID_CONFIG),
        ("APPEND to a non-list config", topic_resource(entry("retention.ms", "5", AlterConfigOpType.APPEND)),
         KafkaError.INVALID_CONFIG),
        ("SUBTRACT from a non-list config",
         topic_resource(entry("segment.ms", "5", AlterConfigOpType.SUBTRACT)), KafkaError.INVALID_CONFIG),
        ("a value that is not a number", topic_resource(entry("retention.ms", "soon")),
         KafkaError.INVALID_CONFIG),
        ("a segment too small", topic_resource(entry("segment.bytes", "10")), KafkaError.INVALID_CONFIG),
        ("a change of value format", topic_resource(entry("weir.value.format", "binary")),
         KafkaError.INVALID_CONFIG),
        ("an unknown topic", topic_resource(entry("retention.ms", "1000"), name=unique("nope")),
         KafkaError.UNKNOWN_TOPIC_OR_PART),
        ("a broker resource", ConfigResource(ResourceType.BROKER, "0",
                                             incremental_configs=[entry("log.retention.ms", "1")]),
         KafkaError.INVALID_REQUEST),
    ]
    for why, resource, code in refusals:
        got = alter(resource)
        check(got == code, f"{why}: answered {got}, expected {code}")
    expect_config("retention.ms", WEEK_MS, ConfigSource.DEFAULT_CONFIG, "after the refusals")
    expect_config("segment.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG, "after the refusals")

    # kafka-python: IncrementalAlterConfigs too.
    from kafka.admin import ConfigResource as KConfigResource, KafkaAdminClient

    kadmin = KafkaAdminClient(bootstrap_servers=a.bootstrap)
    kadmin.alter_configs([KConfigResource("TOPIC", TOPIC, configs={"retention.bytes": ("SET", "1073741824")})],
                         incremental=True)
    expect_config("retention.bytes", "1073741824", ConfigSource.DYNAMIC_TOPIC_CONFIG, "kafka-python SET")

    # Records, then DeleteRecords.
    producer = Producer({"bootstrap.servers": a.bootstrap, "acks": "all", "linger.ms": 5})
    for p, n in RECORDS.items():
        for o in range(n):
            producer.produce(TOPIC, value=f"p{p}-r{o}".encode(), partition=p)
    check(producer.flush(30) == 0, "records not delivered")
    tp0 = TopicPartition(TOPIC, 0, START[0])
    low = admin.delete_records([tp0])[tp0].result(timeout=30).low_watermark
    check(low == START[0], f"DeleteRecords answered low watermark {low}, expected {START[0]}")
    # Below the start: nothing changes, the start is answered.
    below = TopicPartition(TOPIC, 0, 5)
    low = admin.delete_records([below])[below].result(timeout=30).low_watermark
    check(low == START[0], f"DeleteRecords below the start answered {low}")
    # Past the high watermark: refused.
    past = TopicPartition(TOPIC, 0, RECORDS[0] + 1)
    try:
        admin.delete_records([past])[past].result(timeout=30)
        check(False, "DeleteRecords past the high watermark accepted")
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE, f"past the end: {e}")
    # kafka-python's DeleteRecords on the other partition.
    from kafka import TopicPartition as KTopicPartition

    result = kadmin.delete_records({KTopicPartition(TOPIC, 1): START[1]})
    low = result[KTopicPartition(TOPIC, 1)]["low_watermark"]
    check(low == START[1], f"kafka-python DeleteRecords answered {low}")
    kadmin.close()

    check_what_persists("before the restart")


if a.phase == "setup":
    setup()
else:
    check_what_persists("after the restart")
done(f"admin_configs {a.phase}")
