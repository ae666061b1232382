"""kafka-python against weir: round trip and admin."""
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import TopicAlreadyExistsError


def test_admin_create_describe_delete(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("kp-admin", num_partitions=2, replication_factor=1,
                                  topic_configs={"max.message.bytes": "2000000"})])
    try:
        admin.create_topics([NewTopic("kp-admin", num_partitions=2, replication_factor=1)])
        raise AssertionError("duplicate create must fail")
    except TopicAlreadyExistsError:
        pass
    assert "kp-admin" in admin.list_topics()
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin")])
    entry = described["topic"]["kp-admin"]["max.message.bytes"]
    assert entry["value"] == "2000000"
    assert entry["config_source"] == "DYNAMIC_TOPIC_CONFIG"
    assert entry["config_type"] == "INT"
    admin.delete_topics(["kp-admin"])
    assert "kp-admin" not in admin.list_topics()
    admin.close()


def test_produce_consume_round_trip(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type="gzip")
    for i in range(300):
        producer.send("kp-rt", key=b"k", value=f"m{i}".encode())
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             consumer_timeout_ms=5000)
    tp = TopicPartition("kp-rt", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    values = [m.value for m in consumer]
    consumer.close()
    assert values == [f"m{i}".encode() for i in range(300)]


def test_group_consume_commit_and_resume(make_broker):
    broker = make_broker({"group.initial.rebalance.delay.ms": "0"})
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for i in range(100):
        producer.send("kp-group", value=f"m{i}".encode())
    producer.flush(30)
    producer.close()

    def consumer():
        return KafkaConsumer("kp-group", bootstrap_servers=broker.bootstrap, group_id="kp-g",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=3000)

    first = consumer()
    seen = []
    for message in first:
        seen.append(message.value)
        if len(seen) == 60:
            break
    first.commit()
    assert first.committed(TopicPartition("kp-group", 0)) == 60
    first.close()

    second = consumer()
    rest = [m.value for m in second]
    second.commit()
    second.close()
    assert seen + rest == [f"m{i}".encode() for i in range(100)], "resumed at the commit"

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    listed = admin.list_groups(states_filter=["Empty"])
    assert "kp-g" in [g["group_id"] for g in listed], listed
    # OffsetFetch for many groups in one request (v8+), a group that never existed too.
    offsets = admin.list_group_offsets({"kp-g": None, "kp-none": None})
    assert offsets["kp-g"][TopicPartition("kp-group", 0)].offset == 100
    assert offsets["kp-none"] == {}
    described = admin.describe_groups(["kp-g"])["kp-g"]
    assert described["group_state"] == "Empty", described
    # OffsetDelete on an empty group, then DeleteGroups.
    deleted = admin.delete_group_offsets("kp-g", [TopicPartition("kp-group", 0)])
    assert deleted[TopicPartition("kp-group", 0)].errno == 0
    assert admin.list_group_offsets({"kp-g": None})["kp-g"] == {}
    assert dict(admin.delete_groups(["kp-g"]))["kp-g"] == "OK"
    assert dict(admin.delete_groups(["kp-none"]))["kp-none"] == "GroupIdNotFoundError"
    assert "kp-g" not in [g["group_id"] for g in admin.list_groups()]
    admin.close()
