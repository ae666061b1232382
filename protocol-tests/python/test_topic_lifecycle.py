"""Topic lifecycle against weir: configs, partitions, retention, compaction, records deletion."""
import os
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewPartitions, NewTopic, OffsetSpec)

FAST_LOG_TASKS = {"log.retention.check.interval.ms": "300", "log.cleaner.backoff.ms": "200"}


def admin_for(broker):
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def create(admin, name, partitions=1, config=None):
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                  config=config or {})])[name].result(10)


def describe(admin, name):
    return list(admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)]).values())[0].result(10)


def consume(broker, topic, partitions=1, expected=None, timeout=20):
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reader-" + uuid.uuid4().hex,
                         "enable.auto.commit": False, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    out, eofs = [], set()
    deadline = time.time() + timeout
    while time.time() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == -191:  # _PARTITION_EOF
                eofs.add(msg.partition())
                if len(eofs) == partitions and (expected is None or len(out) >= expected):
                    break
                continue
            raise KafkaException(msg.error())
        out.append(msg)
    consumer.close()
    return out


def produce(broker, topic, records, batch=None):
    """Produces `records`; with `batch`, flushes every `batch` records so they land in
    separate record batches."""
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 2})
    for i, r in enumerate(records):
        producer.produce(topic, **r)
        if batch and i % batch == batch - 1:
            producer.flush(30)
    assert producer.flush(30) == 0


def log_files(broker, topic, partition=0):
    d = broker.data_dir / f"{topic}-{partition}"
    return sorted(f for f in os.listdir(d))


def test_configs_create_describe_alter_incremental(make_broker):
    broker = make_broker()
    admin = admin_for(broker)
    create(admin, "cfg", config={"retention.ms": "3600000", "cleanup.policy": "delete"})
    entries = describe(admin, "cfg")
    assert entries["retention.ms"].value == "3600000" and entries["retention.ms"].source == 1
    assert entries["segment.bytes"].value == "1073741824" and entries["segment.bytes"].is_default

    # Legacy AlterConfigs replaces the topic's whole set.
    resource = ConfigResource(ConfigResource.Type.TOPIC, "cfg", set_config={"max.message.bytes": "2000000"})
    list(admin.alter_configs([resource]).values())[0].result(10)
    entries = describe(admin, "cfg")
    assert entries["max.message.bytes"].value == "2000000"
    assert entries["retention.ms"].value == "604800000", "not in the new set: back to the default"

    # Incremental: set, delete, append to a list.
    resource = ConfigResource(ConfigResource.Type.TOPIC, "cfg", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
    ])
    list(admin.incremental_alter_configs([resource]).values())[0].result(10)
    entries = describe(admin, "cfg")
    assert entries["retention.ms"].value == "1000"
    assert entries["max.message.bytes"].value == "1048588"
    assert entries["cleanup.policy"].value == "delete,compact"

    # A dynamic broker config: applies to topics without their own value.
    resource = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry("log.segment.bytes", "5000000", incremental_operation=AlterConfigOpType.SET)])
    list(admin.incremental_alter_configs([resource]).values())[0].result(10)
    entries = describe(admin, "cfg")
    assert entries["segment.bytes"].value == "5000000"
    assert entries["segment.bytes"].source == 2  # DYNAMIC_BROKER_CONFIG

    # Changes survive a restart.
    broker.restart()
    entries = describe(admin_for(broker), "cfg")
    assert entries["retention.ms"].value == "1000"
    assert entries["segment.bytes"].value == "5000000"


def test_bad_configs_partitions_and_names_change_nothing(make_broker):
    broker = make_broker()
    admin = admin_for(broker)
    before = sorted(os.listdir(broker.data_dir))
    bad = {
        "no-such-config": NewTopic("bad1", 1, 1, config={"no.such.config": "1"}),
        "bad-value": NewTopic("bad2", 1, 1, config={"retention.ms": "soon"}),
        "bad-policy": NewTopic("bad3", 1, 1, config={"cleanup.policy": "shred"}),
        "long-name": NewTopic("x" * 250, 1, 1),
        "slash": NewTopic("a/b", 1, 1),
    }
    invalid_config, invalid_topic = 40, 17
    expected = {"no-such-config": invalid_config, "bad-value": invalid_config, "bad-policy": invalid_config,
                "long-name": invalid_topic, "slash": invalid_topic}
    for case, topic in bad.items():
        with pytest.raises(KafkaException) as err:
            admin.create_topics([topic])[topic.topic].result(10)
        assert err.value.args[0].code() == expected[case], (case, err.value)
    # confluent-kafka refuses a negative count itself; kafka-python sends it to the broker.
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic
    from kafka.errors import InvalidPartitionsError
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    with pytest.raises(InvalidPartitionsError):
        kadmin.create_topics([KNewTopic("bad4", num_partitions=-5, replication_factor=1)])
    kadmin.close()
    create(admin, "good")
    resource = ConfigResource(ConfigResource.Type.TOPIC, "good", incremental_configs=[
        ConfigEntry("retention.ms", "forever", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as err:
        list(admin.incremental_alter_configs([resource]).values())[0].result(10)
    assert err.value.args[0].code() == invalid_config
    with pytest.raises(KafkaException) as err:
        admin.create_partitions([NewPartitions("good", 1)])["good"].result(10)
    assert err.value.args[0].code() == 37  # INVALID_PARTITIONS
    assert describe(admin, "good")["retention.ms"].value == "604800000"
    assert sorted(os.listdir(broker.data_dir)) == sorted(before + ["good-0"])


def test_create_partitions_then_produce_to_them(make_broker):
    broker = make_broker()
    admin = admin_for(broker)
    create(admin, "grow", partitions=2)
    admin.create_partitions([NewPartitions("grow", 5)])["grow"].result(10)
    assert len(admin.list_topics(timeout=10).topics["grow"].partitions) == 5
    produce(broker, "grow", [{"value": f"p{p}".encode(), "partition": p} for p in range(5)])
    got = consume(broker, "grow", partitions=5, expected=5)
    assert sorted((m.partition(), m.value()) for m in got) == [(p, f"p{p}".encode()) for p in range(5)]


def test_retention_deletes_segments_and_moves_earliest(make_broker):
    broker = make_broker(FAST_LOG_TASKS)
    admin = admin_for(broker)
    create(admin, "ret", config={"internal.segment.bytes": "2000", "retention.bytes": "4000", "file.delete.delay.ms": "0"})
    produce(broker, "ret", [{"value": b"x" * 100} for _ in range(300)], batch=10)
    segments_before = [f for f in log_files(broker, "ret") if f.endswith(".log")]
    assert len(segments_before) > 5
    deadline = time.time() + 10
    earliest = 0
    while time.time() < deadline:
        earliest = admin.list_offsets({TopicPartition("ret", 0): OffsetSpec.earliest()})[TopicPartition("ret", 0)].result(10).offset
        files = log_files(broker, "ret")
        if earliest > 0 and not any(f.endswith(".deleted") for f in files):
            break
        time.sleep(0.2)
    assert earliest > 200, earliest
    remaining = [f for f in log_files(broker, "ret") if f.endswith(".log")]
    assert len(remaining) < len(segments_before)
    assert not any(f.endswith(".deleted") for f in log_files(broker, "ret"))
    got = consume(broker, "ret")
    assert got and got[0].offset() == earliest and got[-1].offset() == 299


def test_delete_records_and_offsets_for_times(make_broker):
    broker = make_broker()
    admin = admin_for(broker)
    create(admin, "dr")
    base = 1_700_000_000_000
    produce(broker, "dr", [{"value": f"{i}".encode(), "timestamp": base + i * 10} for i in range(100)])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "t-" + uuid.uuid4().hex})
    found = consumer.offsets_for_times([TopicPartition("dr", 0, base + 255)], timeout=10)[0]
    assert found.offset == 26, "first offset with a timestamp at or after the one asked"
    consumer.close()
    result = admin.delete_records([TopicPartition("dr", 0, 40)])
    deleted = list(result.values())[0].result(10)
    assert deleted.low_watermark == 40
    got = consume(broker, "dr")
    assert [int(m.value()) for m in got] == list(range(40, 100))
    earliest = admin.list_offsets({TopicPartition("dr", 0): OffsetSpec.earliest()})[TopicPartition("dr", 0)].result(10)
    assert earliest.offset == 40
    broker.restart()
    got = consume(broker, "dr")
    assert got[0].offset() == 40, "the log start offset survives a restart"


def latest_per_key(msgs):
    latest = {}
    for m in msgs:
        latest[m.key()] = m.value()
    return latest


def test_compaction_keeps_latest_per_key_and_drops_tombstones(make_broker):
    broker = make_broker(FAST_LOG_TASKS)
    admin = admin_for(broker)
    create(admin, "compacted", config={"cleanup.policy": "compact", "internal.segment.bytes": "4096",
                                       "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100"})
    updates = [{"key": f"k{i % 10}".encode(), "value": f"v{i}".encode()} for i in range(2000)]
    produce(broker, "compacted", updates)
    old = int(time.time() * 1000) - 86_400_000
    produce(broker, "compacted", [{"key": b"k0", "value": None, "timestamp": old},
                                  {"key": b"k1", "value": None, "timestamp": old}])
    # Fillers with distinct keys push every update out of the active segment.
    produce(broker, "compacted", [{"key": f"f{i}".encode(), "value": b"." * 100} for i in range(100)])
    deadline = time.time() + 20
    while time.time() < deadline:
        got = consume(broker, "compacted")
        updates_seen = [m for m in got if m.key().startswith(b"k")]
        if len(updates_seen) == 8:
            break
        time.sleep(0.5)
    expected = {f"k{k}".encode(): f"v{1990 + k}".encode() for k in range(2, 10)}
    assert latest_per_key(updates_seen) == expected
    assert len(updates_seen) == 8, "exactly one record per live key; tombstoned keys gone"
    offsets = [m.offset() for m in got]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert len([m for m in got if m.key().startswith(b"f")]) == 100


def test_compaction_survives_kill_9_mid_clean(make_broker):
    broker = make_broker({"log.cleaner.backoff.ms": "50"})
    admin = admin_for(broker)
    create(admin, "crashy", config={"cleanup.policy": "compact", "internal.segment.bytes": "100000",
                                    "min.cleanable.dirty.ratio": "0.01"})
    updates = [{"key": f"k{i % 500}".encode(), "value": (f"v{i}-" + "x" * 200).encode()} for i in range(30000)]
    produce(broker, "crashy", updates)
    produce(broker, "crashy", [{"key": f"f{i}".encode(), "value": b"."} for i in range(10)])
    for delay in (0.03, 0.08, 0.15):
        time.sleep(delay)
        broker.kill9()
        broker.restart()
    time.sleep(0.5)
    got = consume(broker, "crashy")
    offsets = [m.offset() for m in got]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    latest = latest_per_key([m for m in got if m.key().startswith(b"k")])
    assert len(latest) == 500
    for k in range(500):
        assert latest[f"k{k}".encode()].startswith(f"v{29500 + k}-".encode())
    assert not [f for f in log_files(broker, "crashy") if f.endswith((".cleaned", ".swap"))]


def test_kafka_python_partitions_log_dirs_and_configs(make_broker):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, NewPartitions as KNewPartitions
    from kafka.admin import NewTopic as KNewTopic
    broker = make_broker()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([KNewTopic("kp", num_partitions=1, replication_factor=1)])
    admin.create_partitions({"kp": KNewPartitions(total_count=3)})
    admin.alter_configs([KConfigResource(ConfigResourceType.TOPIC, "kp", configs={"retention.ms": "12345"})])
    described = admin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, "kp")])
    assert described["topic"]["kp"]["retention.ms"]["value"] == "12345"
    produce(broker, "kp", [{"value": b"abc", "partition": 2}])
    dirs = admin.describe_log_dirs()
    text = str(dirs)
    assert "kp" in text
    admin.close()
