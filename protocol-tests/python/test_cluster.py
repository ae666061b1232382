"""A three-node weir cluster seen by the Python clients (confluent-kafka, kafka-python) and
kcat: every node reports the same three brokers, topics are placed across them, admin
requests work against any node, and producers and consumer groups find the leaders and the
group coordinator."""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic as KafkaNewTopic

from conftest import free_port, weir_bin

TEST_SETTINGS = {
    "broker.heartbeat.interval.ms": "200",
    "broker.session.timeout.ms": "2000",
    "controller.quorum.election.timeout.ms": "1000",
}


class Cluster:
    def __init__(self, size=3, extra=None):
        self.dir = tempfile.mkdtemp()
        self.cluster_id = subprocess.run([weir_bin(), "random-uuid"], capture_output=True,
                                         text=True, check=True).stdout.strip()
        # A free port can be taken by a parallel test before a node binds it: then the
        # whole cluster starts again on other ports, in a fresh directory.
        for attempt in range(5):
            self.start(size, extra or {}, f"{self.dir}/attempt{attempt}")
            if self.wait_formed(size):
                return
            bind_failed = "cannot bind listener" in self.logs()
            self.stop(remove=False)
            if not bind_failed:
                break
        raise RuntimeError("the cluster did not form:\n" + self.logs())

    def start(self, size, extra, base):
        self.base = base
        os.makedirs(base)
        self.ports = [(free_port(), free_port()) for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{c}" for i, (_, c) in enumerate(self.ports))
        self.procs = []
        for i, (port, controller) in enumerate(self.ports):
            settings = dict(TEST_SETTINGS, **extra, **{
                "node.id": str(i + 1),
                "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                "controller.listener.names": "CONTROLLER",
                "controller.quorum.voters": voters,
                "log.dirs": f"{base}/node{i + 1}",
            })
            args = [weir_bin()]
            for key, value in settings.items():
                args += ["--override", f"{key}={value}"]
            log = open(f"{base}/node{i + 1}.log", "wb")
            self.procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                                               env=dict(os.environ, CLUSTER_ID=self.cluster_id)))

    def wait_formed(self, size) -> bool:
        deadline = time.time() + 20
        while time.time() < deadline:
            if any(proc.poll() is not None for proc in self.procs):
                return False
            try:
                if len(self.admin(0).list_topics(timeout=2).brokers) == size:
                    return True
            except KafkaException:  # not listening yet
                pass
            time.sleep(0.1)
        return False

    def bootstrap(self, node=None) -> str:
        chosen = self.ports if node is None else [self.ports[node]]
        return ",".join(f"127.0.0.1:{p}" for p, _ in chosen)

    def admin(self, node) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap(node)})

    def logs(self) -> str:
        return "\n".join(Path(f"{self.base}/node{i + 1}.log").read_text(errors="replace")
                         for i in range(len(self.procs)))

    def stop(self, remove=True):
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.stop()


def test_every_node_reports_the_same_three_brokers_and_placement(cluster):
    admin = cluster.admin(1)
    futures = admin.create_topics([NewTopic("spread", 6, 3), NewTopic("single", 3, 1)])
    for future in futures.values():
        future.result(timeout=15)
    views = []
    for node in range(3):
        deadline = time.time() + 10
        while True:
            md = cluster.admin(node).list_topics(timeout=5)
            if "spread" in md.topics and "single" in md.topics:
                break
            assert time.time() < deadline, f"node {node + 1} never saw the topics"
            time.sleep(0.1)
        views.append((sorted(md.brokers), md.controller_id,
                      {(t, p.id): (p.leader, tuple(p.replicas), tuple(p.isrs))
                       for t in ("spread", "single") for p in md.topics[t].partitions.values()}))
    assert views[0] == views[1] == views[2]
    brokers, controller, partitions = views[0]
    assert brokers == [1, 2, 3] and controller in (1, 2, 3)
    for (topic, _), (leader, replicas, isr) in partitions.items():
        assert len(set(replicas)) == len(replicas) == (3 if topic == "spread" else 1)
        # Followers do not copy leaders yet: the ISR is the leader alone.
        assert leader == replicas[0] and isr == (leader,)
    assert {leader for (t, _), (leader, _, _) in partitions.items() if t == "single"} == {1, 2, 3}


def test_confluent_kafka_produces_to_leaders_and_a_group_commits(cluster):
    admin = cluster.admin(2)
    for future in admin.create_topics([NewTopic("orders", 3, 3)]).values():
        future.result(timeout=15)
    producer = Producer({"bootstrap.servers": cluster.bootstrap(0), "acks": "all",
                         "enable.idempotence": True})
    for i in range(60):
        producer.produce("orders", value=f"order-{i}".encode(), partition=i % 3)
    assert producer.flush(20) == 0
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap(), "group.id": "billing",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["orders"])
    seen = []
    deadline = time.time() + 30
    while len(seen) < 60 and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            seen.append(message.value().decode())
    assert sorted(seen) == sorted(f"order-{i}" for i in range(60))
    consumer.commit(asynchronous=False)
    committed = consumer.committed([TopicPartition("orders", p) for p in range(3)], timeout=10)
    assert sum(tp.offset for tp in committed) == 60
    consumer.close()


def java_hash(text: str) -> int:
    """Java's String.hashCode, as Kafka uses it to place a group."""
    h = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(group: str, partitions: int) -> int:
    return abs(java_hash(group)) % partitions


@pytest.mark.parametrize("offsets_partitions", [2, 4])
def test_groups_work_when_each_node_holds_only_some_offsets_partitions(offsets_partitions):
    """With offsets.topic.replication.factor=1 each node holds some of __consumer_offsets
    (with 2 partitions, one node holds none; with 4, one holds two): a group's records go
    to its own partition, on the node that leads it, and every node answers
    FindCoordinator."""
    c = Cluster(extra={"offsets.topic.replication.factor": "1",
                       "offsets.topic.num.partitions": str(offsets_partitions),
                       "group.initial.rebalance.delay.ms": "0"})
    try:
        admin = c.admin(0)
        for future in admin.create_topics([NewTopic("events", 3, 1)]).values():
            future.result(timeout=15)
        producer = Producer({"bootstrap.servers": c.bootstrap(1)})
        for i in range(30):
            producer.produce("events", value=f"e{i}".encode(), partition=i % 3)
        assert producer.flush(20) == 0
        for g in range(6):
            group = f"reader-{g}"
            # Bootstrapping from one node at a time: each must find the coordinator.
            consumer = Consumer({"bootstrap.servers": c.bootstrap(g % 3), "group.id": group,
                                 "auto.offset.reset": "earliest",
                                 "enable.auto.commit": False})
            consumer.subscribe(["events"])
            seen = 0
            deadline = time.time() + 30
            while seen < 30 and time.time() < deadline:
                message = consumer.poll(0.5)
                if message is not None and not message.error():
                    seen += 1
            assert seen == 30, f"{group} read {seen}"
            consumer.commit(asynchronous=False)
            consumer.close()
        for g in range(6):
            reader = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": f"reader-{g}"})
            committed = reader.committed([TopicPartition("events", p) for p in range(3)],
                                         timeout=10)
            assert [tp.offset for tp in committed] == [10, 10, 10], f"reader-{g}"
            reader.close()
        # Each group's records are in the partition Kafka's hash names.
        reader = Consumer({"bootstrap.servers": c.bootstrap(), "group.id": "inspector",
                           "enable.auto.commit": False, "enable.partition.eof": True})
        reader.assign([TopicPartition("__consumer_offsets", p, 0)
                       for p in range(offsets_partitions)])
        found, ended = {}, set()
        deadline = time.time() + 20
        while len(ended) < offsets_partitions and time.time() < deadline:
            message = reader.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(message.partition())
                continue
            key = message.key()
            group = key[4:4 + int.from_bytes(key[2:4], "big")].decode()
            found.setdefault(group, set()).add(message.partition())
        reader.close()
        for g in range(6):
            group = f"reader-{g}"
            assert found.get(group) == {offsets_partition(group, offsets_partitions)}, found
    except Exception:
        print(c.logs())
        raise
    finally:
        c.stop()


def test_kafka_python_describes_the_cluster_and_round_trips(cluster):
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(2))
    described = admin.describe_cluster()
    assert described["cluster_id"] == cluster.cluster_id
    assert sorted(b["broker_id"] for b in described["brokers"]) == [1, 2, 3]
    assert not any(b["is_fenced"] for b in described["brokers"])
    admin.create_topics([KafkaNewTopic("kp", 2, 2)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap(1), acks="all")
    for i in range(10):
        producer.send("kp", f"m{i}".encode(), partition=i % 2)
    producer.flush(20)
    producer.close()
    consumer = KafkaConsumer("kp", bootstrap_servers=cluster.bootstrap(0),
                             auto_offset_reset="earliest", consumer_timeout_ms=15000)
    seen = []
    for message in consumer:
        seen.append(message.value.decode())
        if len(seen) == 10:
            break
    assert sorted(seen) == sorted(f"m{i}" for i in range(10))
    consumer.close()


def test_kcat_lists_three_brokers_from_every_node(cluster):
    if shutil.which("kcat") is None:
        pytest.skip("kcat is not installed (scripts/setup.sh)")
    for node in range(3):
        out = subprocess.run(["kcat", "-b", cluster.bootstrap(node), "-L"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
        assert " 3 brokers:" in out, out
        assert "(controller)" in out, out
