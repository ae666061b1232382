"""Consumer groups with confluent-kafka (librdkafka): classic and KIP-848 protocols,
static membership, cooperative rebalancing, commits across restarts, admin."""
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition, KafkaError
from confluent_kafka.admin import AdminClient, NewTopic

FAST_GROUPS = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "group.consumer.heartbeat.interval.ms": "300",
    "group.consumer.min.heartbeat.interval.ms": "300",
    "group.consumer.session.timeout.ms": "3000",
    "group.consumer.min.session.timeout.ms": "3000",
}


@pytest.fixture(scope="module")
def groups_broker():
    from conftest import BrokerProcess
    b = BrokerProcess(FAST_GROUPS)
    yield b
    b.stop()


def create_topic(bootstrap, name, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(10)


def produce(bootstrap, topic, count, partitions, start=0):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(topic, value=str(i).encode(), partition=i % partitions)
    assert producer.flush(20) == 0


class Member:
    """A consumer plus what it was assigned and read."""

    def __init__(self, bootstrap, group, topic, **extra):
        conf = {"bootstrap.servers": bootstrap, "group.id": group,
                "auto.offset.reset": "earliest", "enable.auto.commit": False,
                "session.timeout.ms": 6000, "heartbeat.interval.ms": 200,
                "enable.partition.eof": False}
        if extra.get("group.protocol") == "consumer":
            for key in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
                conf.pop(key, None)
        conf.update(extra)
        # Cooperative and KIP-848 rebalances hand out and take back increments.
        self.incremental = (conf.get("partition.assignment.strategy") == "cooperative-sticky"
                            or conf.get("group.protocol") == "consumer")
        self.assignment = set()
        self.topic_partitions = set()
        self.assign_events = 0
        self.revoked = []
        self.values = []
        self.consumer = Consumer(conf)
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)

    def _on_assign(self, consumer, partitions):
        self.assign_events += 1
        self.topic_partitions |= {(p.topic, p.partition) for p in partitions}
        if self.incremental:
            self.assignment |= {p.partition for p in partitions}
        else:
            self.assignment = {p.partition for p in partitions}

    def _on_revoke(self, consumer, partitions):
        self.revoked.append({p.partition for p in partitions})
        self.topic_partitions -= {(p.topic, p.partition) for p in partitions}
        if self.incremental:
            self.assignment -= {p.partition for p in partitions}
        else:
            self.assignment = set()

    def poll(self):
        msg = self.consumer.poll(0.05)
        if msg is not None and not msg.error():
            self.values.append(int(msg.value()))
            return msg
        return None

    def commit(self):
        try:
            self.consumer.commit(asynchronous=False)
        except Exception as e:  # nothing to commit yet
            if "NO_OFFSET" not in str(e):
                raise

    def close(self):
        self.consumer.close()


def poll_until(members, condition, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for m in members:
            m.poll()
        if condition():
            return
    raise AssertionError("condition not reached: " + ", ".join(
        f"assignment={sorted(m.assignment)} read={len(m.values)}" for m in members))


def test_two_members_split_then_one_leaves_and_nothing_is_lost(groups_broker):
    bootstrap = groups_broker.bootstrap
    topic, group = "grp-split", "g-split"
    create_topic(bootstrap, topic, 4)
    a = Member(bootstrap, group, topic)
    b = Member(bootstrap, group, topic)
    poll_until([a, b], lambda: len(a.assignment) == 2 and len(b.assignment) == 2)
    assert a.assignment.isdisjoint(b.assignment)
    # Records arrive once the split is settled, so each is read exactly once.
    produce(bootstrap, topic, 400, 4)
    poll_until([a, b], lambda: len(a.values) + len(b.values) >= 400)
    a.commit()
    b.commit()
    read_before = sorted(a.values + b.values)
    assert read_before == list(range(400)), "every record once"
    b.close()
    poll_until([a], lambda: a.assignment == {0, 1, 2, 3})
    produce(bootstrap, topic, 100, 4, start=400)
    poll_until([a], lambda: len(a.values) + len(b.values) >= 500)
    assert sorted(a.values + b.values) == list(range(500)), "nothing lost or read twice"
    a.close()

    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(10)
    assert str(described.state).endswith("EMPTY")


def test_killed_member_is_expired_and_its_partitions_move(groups_broker, tmp_path):
    bootstrap = groups_broker.bootstrap
    topic, group = "grp-kill", "g-kill"
    create_topic(bootstrap, topic, 4)
    script = tmp_path / "member.py"
    script.write_text(
        "import sys\n"
        "from confluent_kafka import Consumer\n"
        f"c = Consumer({{'bootstrap.servers': '{bootstrap}', 'group.id': '{group}',"
        " 'session.timeout.ms': 2000, 'heartbeat.interval.ms': 200, 'auto.offset.reset': 'earliest'})\n"
        f"c.subscribe(['{topic}'], on_assign=lambda c, ps: print('assigned', len(ps), flush=True))\n"
        "while True:\n    c.poll(0.1)\n")
    other = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().startswith("assigned")
        a = Member(bootstrap, group, topic, **{"session.timeout.ms": 6000})
        poll_until([a], lambda: len(a.assignment) == 2)
        other.kill()
        other.wait()
        started = time.time()
        poll_until([a], lambda: a.assignment == {0, 1, 2, 3})
        # The dead member's session (2 s) must lapse first; the rebalance follows promptly.
        assert 1.5 < time.time() - started < 15
        a.close()
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_cooperative_sticky_keeps_partitions_without_stopping_the_world(groups_broker):
    bootstrap = groups_broker.bootstrap
    topic, group = "grp-coop", "g-coop"
    create_topic(bootstrap, topic, 6)
    conf = {"partition.assignment.strategy": "cooperative-sticky"}
    a = Member(bootstrap, group, topic, **conf)
    b = Member(bootstrap, group, topic, **conf)
    poll_until([a, b], lambda: len(a.assignment) == 3 and len(b.assignment) == 3)
    before_a, before_b = set(a.assignment), set(b.assignment)
    a.revoked.clear()
    b.revoked.clear()
    c = Member(bootstrap, group, topic, **conf)
    poll_until([a, b, c], lambda: len(c.assignment) == 2 and len(a.assignment) == 2
               and len(b.assignment) == 2, timeout=40)
    # The two old members each gave up one partition and kept the rest: incremental.
    assert a.assignment <= before_a and b.assignment <= before_b
    for revoked in a.revoked + b.revoked:
        assert len(revoked) <= 1, f"revoked {revoked}: not incremental"
    for m in (a, b, c):
        m.close()


def test_static_member_restarts_without_rebalancing_the_others(groups_broker):
    bootstrap = groups_broker.bootstrap
    topic, group = "grp-static", "g-static"
    create_topic(bootstrap, topic, 4)
    a = Member(bootstrap, group, topic, **{"group.instance.id": "a"})
    b = Member(bootstrap, group, topic, **{"group.instance.id": "b", "session.timeout.ms": 10000})
    poll_until([a, b], lambda: len(a.assignment) == 2 and len(b.assignment) == 2)
    kept = set(b.assignment)
    events_a = a.assign_events
    b.close()  # a static member's close does not leave the group
    b2 = Member(bootstrap, group, topic, **{"group.instance.id": "b", "session.timeout.ms": 10000})
    poll_until([a, b2], lambda: b2.assignment == kept)
    for _ in range(20):
        a.poll()
    assert a.assign_events == events_a, "the other member was rebalanced: " + groups_broker.log()[-3000:]
    a.close()
    b2.close()


def test_commit_survives_broker_restart_and_offsets_fetch_across_groups(make_broker):
    broker = make_broker(FAST_GROUPS)
    bootstrap = broker.bootstrap
    topic = "grp-restart"
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 100, 2)
    a = Member(bootstrap, "g-restart", topic)
    poll_until([a], lambda: len(a.values) >= 60)
    a.commit()
    committed = {tp.partition: tp.offset for tp in a.consumer.committed(
        [TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)}
    read = len(a.values)
    a.close()
    assert sum(committed.values()) == read

    # A second group commits by hand (assign() users commit outside any generation).
    simple = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-simple"})
    simple.commit(offsets=[TopicPartition(topic, 0, 7)], asynchronous=False)
    simple.close()

    broker.kill9()
    broker.restart()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    from confluent_kafka import ConsumerGroupTopicPartitions
    futures = admin.list_consumer_group_offsets([
        ConsumerGroupTopicPartitions("g-restart", [TopicPartition(topic, 0), TopicPartition(topic, 1)])])
    got = {tp.partition: tp.offset for tp in futures["g-restart"].result(10).topic_partitions}
    assert got == committed
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions("g-simple")])
    got = futures["g-simple"].result(10).topic_partitions
    assert [(tp.partition, tp.offset) for tp in got] == [(0, 7)]

    b = Member(bootstrap, "g-restart", topic)
    poll_until([b], lambda: read + len(b.values) >= 100)
    assert sorted(a.values + b.values) == sorted(
        [i for i in range(100)]), "resumed at the committed offsets"
    b.close()


def test_kip848_consumer_protocol_join_split_leave_rejoin(groups_broker):
    bootstrap = groups_broker.bootstrap
    topic, group = "grp-848", "g-848"
    create_topic(bootstrap, topic, 4)
    produce(bootstrap, topic, 200, 4)
    conf = {"group.protocol": "consumer"}
    a = Member(bootstrap, group, topic, **conf)
    poll_until([a], lambda: len(a.assignment) == 4)
    b = Member(bootstrap, group, topic, **conf)
    poll_until([a, b], lambda: len(a.assignment) == 2 and len(b.assignment) == 2)
    assert a.assignment.isdisjoint(b.assignment)
    poll_until([a, b], lambda: len(set(a.values) | set(b.values)) >= 200)
    a.commit()
    b.commit()
    b.close()
    poll_until([a], lambda: len(a.assignment) == 4)
    b2 = Member(bootstrap, group, topic, **conf)
    poll_until([a, b2], lambda: len(a.assignment) == 2 and len(b2.assignment) == 2)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups([group])[group].result(10)
    assert len(described.members) == 2
    assert str(described.type).endswith("CONSUMER")
    a.close()
    b2.close()


def test_kip848_group_survives_a_broker_restart(make_broker):
    broker = make_broker(FAST_GROUPS)
    bootstrap = broker.bootstrap
    topic, group = "grp-848-restart", "g-848-restart"
    create_topic(bootstrap, topic, 4)
    conf = {"group.protocol": "consumer"}
    a = Member(bootstrap, group, topic, **conf)
    b = Member(bootstrap, group, topic, **conf)
    poll_until([a, b], lambda: len(a.assignment) == 2 and len(b.assignment) == 2)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    before = admin.describe_consumer_groups([group])[group].result(10)
    members_before = sorted(m.member_id for m in before.members)
    assignments_before = (set(a.assignment), set(b.assignment))

    broker.kill9()
    broker.restart()
    # Straight after start-up, before anyone heartbeats: the group is back from the store.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    after = admin.describe_consumer_groups([group])[group].result(10)
    assert str(after.type).endswith("CONSUMER")
    assert sorted(m.member_id for m in after.members) == members_before
    for _ in range(40):
        a.poll()
        b.poll()
    assert (a.assignment, b.assignment) == assignments_before, "no reassignment"
    a.close()
    b.close()


def test_admin_list_describe_lag_delete(groups_broker):
    bootstrap = groups_broker.bootstrap
    topic, group = "grp-admin", "g-admin"
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 50, 2)
    a = Member(bootstrap, group, topic)
    poll_until([a], lambda: len(a.values) >= 50)
    a.consumer.commit(offsets=[TopicPartition(topic, 0, 20), TopicPartition(topic, 1, 25)],
                      asynchronous=False)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups().result(10)
    ids = {g.group_id: g for g in listed.valid}
    assert group in ids and str(ids[group].state).endswith("STABLE")
    described = admin.describe_consumer_groups([group])[group].result(10)
    assert described.partition_assignor == "range" and len(described.members) == 1
    assert not described.is_simple_consumer_group
    assert {tp.partition for tp in described.members[0].assignment.topic_partitions} == {0, 1}

    # Lag as kafka-consumer-groups.sh computes it: log end offset minus committed offset.
    from confluent_kafka import ConsumerGroupTopicPartitions
    committed = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    lag = 0
    for tp in committed.topic_partitions:
        _, high = a.consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
        lag += high - tp.offset
    assert lag == 5

    # OffsetDelete (kafka-python's admin) while the member is subscribed to the topic.
    from kafka import KafkaAdminClient, TopicPartition as KpPartition
    kp_admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    deleted = kp_admin.delete_group_offsets(group, [KpPartition(topic, 0)])
    assert deleted[KpPartition(topic, 0)].__name__ == "GroupSubscribedToTopicError"
    kp_admin.close()

    not_empty = admin.delete_consumer_groups([group])[group]
    with pytest.raises(Exception) as err:
        not_empty.result(10)
    assert "NON_EMPTY_GROUP" in str(err.value)
    a.close()
    admin.delete_consumer_groups([group])[group].result(10)
    listed = admin.list_consumer_groups().result(10)
    assert group not in {g.group_id for g in listed.valid}
    missing = admin.delete_consumer_groups(["g-never"])["g-never"]
    with pytest.raises(Exception) as err:
        missing.result(10)
    assert "GROUP_ID_NOT_FOUND" in str(err.value)


def test_offsets_topic_is_internal_and_compacted(groups_broker):
    bootstrap = groups_broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Finding a coordinator creates __consumer_offsets with Kafka's configs.
    Member(bootstrap, "g-internal", "grp-internal").close()
    from confluent_kafka.admin import ConfigResource
    topic = admin.list_topics(timeout=10).topics["__consumer_offsets"]
    assert len(topic.partitions) == 50
    configs = list(admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, "__consumer_offsets")]).values())[0].result(10)
    assert configs["cleanup.policy"].value == "compact"
    assert configs["segment.bytes"].value == "104857600"
    producer = Producer({"bootstrap.servers": bootstrap, "retries": 0})
    errors = []
    producer.produce("__consumer_offsets", value=b"x", partition=0,
                     on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None
    assert errors[0].code() == KafkaError.TOPIC_EXCEPTION


def test_kip848_range_assignor_and_regex_subscription(groups_broker):
    bootstrap = groups_broker.bootstrap
    for name in ("grp-re-a", "grp-re-b"):
        create_topic(bootstrap, name, 2)
    conf = {"group.protocol": "consumer", "group.remote.assignor": "range"}
    # librdkafka sends a subscription starting with ^ as a regex (KIP-848 regexes).
    a = Member(bootstrap, "g-848-re", "^grp-re-.*", **conf)
    poll_until([a], lambda: len(a.topic_partitions) == 4)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups(["g-848-re"])["g-848-re"].result(10)
    assert described.partition_assignor == "range"
    topics = {tp.topic for tp in described.members[0].assignment.topic_partitions}
    assert topics == {"grp-re-a", "grp-re-b"}
    # A topic created later that matches joins the subscription.
    create_topic(bootstrap, "grp-re-c", 1)
    poll_until([a], lambda: ("grp-re-c", 0) in a.topic_partitions, timeout=40)
    a.close()


def test_offsets_expire_after_retention(make_broker):
    broker = make_broker({**FAST_GROUPS, "offsets.retention.minutes": "1",
                          "offsets.retention.check.interval.ms": "1000"})
    bootstrap = broker.bootstrap
    create_topic(bootstrap, "grp-retention", 1)
    simple = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-retention"})
    simple.commit(offsets=[TopicPartition("grp-retention", 0, 3)], asynchronous=False)
    simple.close()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    from confluent_kafka import ConsumerGroupTopicPartitions

    def committed():
        result = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions("g-retention")])["g-retention"].result(10)
        return [tp.offset for tp in result.topic_partitions]

    assert committed() == [3]
    time.sleep(45)
    assert committed() == [3], "kept inside offsets.retention.minutes"
    deadline = time.time() + 40
    while time.time() < deadline and "g-retention" in {
            g.group_id for g in admin.list_consumer_groups().result(10).valid}:
        time.sleep(1)
    assert "g-retention" not in {g.group_id for g in admin.list_consumer_groups().result(10).valid}
    assert committed() in ([], [-1001])
