"""Apache Kafka 4.1's own command-line tools against the real weir binary, run as
Kafka's bin/ scripts run them, checking what each tool prints, not only its exit code."""
import json
import re
import time
import uuid

import subprocess

import pytest
from confluent_kafka import Producer

from kafka_tools import installed, spawn, table, tool

pytestmark = pytest.mark.skipif(not installed(), reason="Kafka's jars are not installed: run scripts/setup.sh")

FAST_GROUPS = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
}


@pytest.fixture(scope="module")
def b():
    from conftest import BrokerProcess
    broker = BrokerProcess(FAST_GROUPS)
    yield broker
    broker.stop()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce_lines(b, topic, lines, *props):
    args = ["--bootstrap-server", b.bootstrap, "--topic", topic]
    for p in props:
        args += ["--property", p]
    tool("kafka-console-producer.sh", *args, input="".join(line + "\n" for line in lines))


def consume(b, topic, count, *extra):
    out = tool("kafka-console-consumer.sh", "--bootstrap-server", b.bootstrap, "--topic", topic,
               "--from-beginning", "--max-messages", count, "--timeout-ms", 20000, *extra)
    assert f"Processed a total of {count} messages" in out.stderr, out.stderr
    return out.stdout.splitlines()


def describe_partitions(b, topic):
    """kafka-topics.sh --describe: the topic line's fields and one dict per partition line."""
    out = tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--describe", "--topic", topic).stdout
    lines = out.splitlines()
    head = dict(re.findall(r"(\w+): (\S*)", lines[0]))
    parts = [dict(re.findall(r"(\w+): (\S*)", line)) for line in lines[1:] if line.strip()]
    return head, parts


def test_the_quickstart_first_steps(b):
    out = tool("kafka-topics.sh", "--create", "--topic", "first-topic", "--bootstrap-server", b.bootstrap)
    assert out.stdout.strip() == "Created topic first-topic."
    head, parts = describe_partitions(b, "first-topic")
    assert head["Topic"] == "first-topic"
    assert head["PartitionCount"] == "1" and head["ReplicationFactor"] == "1"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", head["TopicId"])
    assert parts == [{"Topic": "first-topic", "Partition": "0", "Leader": "1", "Replicas": "1",
                      "Isr": "1", "Elr": "", "LastKnownElr": ""}]

    produce_lines(b, "first-topic", ["This is my first event", "This is my second event"])
    assert consume(b, "first-topic", 2) == ["This is my first event", "This is my second event"]

    # Creating it again is an error that names the topic, as Kafka prints it.
    again = tool("kafka-topics.sh", "--create", "--topic", "first-topic", "--bootstrap-server",
                 b.bootstrap, check=False)
    assert again.returncode != 0
    assert "Topic 'first-topic' already exists." in again.stdout + again.stderr


def test_console_producer_with_keys_and_consumer_printing_them(b):
    topic = unique("keyed")
    tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--create", "--topic", topic, "--partitions", 3)
    produce_lines(b, topic, [f"user{i % 3}:event {i}" for i in range(9)],
                  "parse.key=true", "key.separator=:")
    rows = consume(b, topic, 9, "--property", "print.key=true", "--property", "key.separator=|",
                   "--property", "print.partition=true")
    seen = {}
    for row in rows:
        partition, key, value = row.split("|")  # "Partition:N|key|value"
        assert partition.startswith("Partition:") and value.startswith("event ")
        seen.setdefault(key, set()).add(partition)
    assert sorted(seen) == ["user0", "user1", "user2"]
    assert all(len(p) == 1 for p in seen.values()), f"each key stays on one partition: {seen}"


def test_console_consumers_split_a_group_and_a_second_group_gets_everything(b, tmp_path):
    topic = unique("split")
    tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--create", "--topic", topic, "--partitions", 2)
    group1, group2 = unique("group1"), unique("group2")
    common = ["--bootstrap-server", b.bootstrap, "--topic", topic, "--from-beginning"]
    members = [spawn("kafka-console-consumer.sh", *common, "--group", group1, stdout_path=tmp_path / f"m{i}")
               for i in range(2)]
    other = spawn("kafka-console-consumer.sh", *common, "--group", group2, stdout_path=tmp_path / "other")
    try:
        # Wait for both members of group1 to hold a partition each.
        deadline = time.time() + 60
        while time.time() < deadline:
            out = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--describe",
                       "--group", group1, "--members", check=False).stdout
            rows = [r for r in table(out) if r and r[0] == group1]
            if len(rows) == 2 and all(r[-1] == "1" for r in rows):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"group1 did not settle with two members of one partition each:\n{out}")
        producer = Producer({"bootstrap.servers": b.bootstrap})
        for i in range(20):
            producer.produce(topic, value=f"m{i}".encode(), partition=i % 2)
        assert producer.flush(20) == 0
        expected = {f"m{i}" for i in range(20)}
        deadline = time.time() + 60
        while time.time() < deadline:
            got = [set((tmp_path / f"m{i}").read_text().split()) for i in range(2)]
            got_other = set((tmp_path / "other").read_text().split())
            if got[0] | got[1] == expected and got_other == expected:
                break
            time.sleep(0.5)
        assert got[0] | got[1] == expected and got_other == expected
        assert got[0] and got[1] and not got[0] & got[1], f"group1 split the partitions: {got}"
    finally:
        for p in members + [other]:
            p.terminate()
        for p in members + [other]:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_consumer_groups_tool_list_describe_reset_delete(b):
    topic, group = unique("cg"), unique("cg")
    tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--create", "--topic", topic, "--partitions", 2)
    producer = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(10):
        producer.produce(topic, value=str(i).encode(), partition=i % 2)
    assert producer.flush(20) == 0
    # Read 6 of the 10 and commit: 4 left as lag.
    consume(b, topic, 6, "--group", group)

    listed = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--list").stdout.split()
    assert group in listed
    states = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--list", "--state").stdout
    assert [r for r in table(states) if r[0] == group][0][-1] == "Empty"

    out = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--describe", "--group", group)
    assert f"Consumer group '{group}' has no active members." in out.stdout + out.stderr
    rows = table(out.stdout)
    header = rows[0]
    assert header[:6] == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"]
    lag = {int(r[2]): (int(r[3]), int(r[4]), int(r[5])) for r in rows[1:] if r[1] == topic}
    assert sum(v[1] for v in lag.values()) == 10
    assert sum(v[2] for v in lag.values()) == 4
    assert all(cur + lg == end for cur, end, lg in lag.values())

    reset = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--reset-offsets",
                 "--to-earliest", "--execute", "--group", group, "--topic", topic).stdout
    new = {int(r[2]): int(r[3]) for r in table(reset)[1:] if r[1] == topic}
    assert new == {0: 0, 1: 0}
    out = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--describe", "--group", group)
    assert sum(int(r[5]) for r in table(out.stdout)[1:] if r[1] == topic) == 10

    gone = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--delete-offsets",
                "--group", group, "--topic", f"{topic}:0").stdout
    assert re.search(rf"{re.escape(topic)}\s+0\s+Successful", gone), gone
    out = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--describe", "--group", group)
    assert {int(r[2]) for r in table(out.stdout)[1:] if r[1] == topic} == {1}

    deleted = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--delete", "--group", group)
    assert f"Deletion of requested consumer groups ('{group}') was successful." in deleted.stdout
    listed = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--list").stdout.split()
    assert group not in listed
    missing = tool("kafka-consumer-groups.sh", "--bootstrap-server", b.bootstrap, "--delete", "--group", group,
                   check=False)
    assert "does not exist" in missing.stdout + missing.stderr


def test_configs_tool_for_topics_and_brokers(b):
    topic = unique("conf")
    tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--create", "--topic", topic)
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "topics",
               "--entity-name", topic, "--add-config", "retention.ms=3600000,cleanup.policy=compact")
    assert f"Completed updating config for topic {topic}." in out.stdout
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "topics",
               "--entity-name", topic).stdout
    assert f"Dynamic configs for topic {topic} are:" in out
    assert re.search(r"^\s+retention\.ms=3600000 sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:retention\.ms=3600000",
                     out, re.M), out
    assert re.search(r"^\s+cleanup\.policy=compact sensitive=false synonyms=\{DYNAMIC_TOPIC_CONFIG:cleanup\.policy=compact,"
                     r" DEFAULT_CONFIG:log\.cleanup\.policy=delete\}", out, re.M), out
    tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "topics",
         "--entity-name", topic, "--delete-config", "retention.ms")
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "topics",
               "--entity-name", topic).stdout
    assert "retention.ms" not in out and "cleanup.policy=compact" in out
    # kafka-topics.sh --describe shows the topic's own configs.
    assert "cleanup.policy=compact" in tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap,
                                            "--describe", "--topic", topic).stdout
    # An invalid value is refused with Kafka's message.
    bad = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "topics",
               "--entity-name", topic, "--add-config", "cleanup.policy=sometimes", check=False)
    assert bad.returncode != 0 and "InvalidConfigurationException" in bad.stdout + bad.stderr

    # Broker dynamic configs, per broker and cluster-wide.
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "brokers",
               "--entity-name", "1", "--add-config", "log.cleaner.threads=2")
    assert "Completed updating config for broker 1." in out.stdout
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "brokers",
               "--entity-name", "1").stdout
    assert "Dynamic configs for broker 1 are:" in out
    assert re.search(r"log\.cleaner\.threads=2 sensitive=false synonyms=\{DYNAMIC_BROKER_CONFIG:log\.cleaner\.threads=2",
                     out), out
    tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "brokers",
         "--entity-default", "--add-config", "log.retention.ms=7200000")
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "brokers",
               "--entity-default").stdout
    assert "Default configs for brokers in the cluster are:" in out and "log.retention.ms=7200000" in out
    tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "brokers",
         "--entity-name", "1", "--delete-config", "log.cleaner.threads")
    tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "brokers",
         "--entity-default", "--delete-config", "log.retention.ms")
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "brokers",
               "--entity-name", "1").stdout
    assert "log.cleaner.threads" not in out
    # --all lists every broker config with its value and source.
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "brokers",
               "--entity-name", "1", "--all").stdout
    assert re.search(r"num\.partitions=1 sensitive=false synonyms=\{.*DEFAULT_CONFIG:num\.partitions=1\}", out), out


def test_topics_tool_alter_list_delete(b):
    topic = unique("grow")
    tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--create", "--topic", topic, "--partitions", 2,
         "--config", "max.message.bytes=100000")
    assert topic in tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--list").stdout.split()
    tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--alter", "--topic", topic, "--partitions", 5)
    head, parts = describe_partitions(b, topic)
    assert head["PartitionCount"] == "5" and [p["Partition"] for p in parts] == ["0", "1", "2", "3", "4"]
    shrink = tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--alter", "--topic", topic,
                  "--partitions", 3, check=False)
    assert shrink.returncode != 0
    assert "InvalidPartitionsException" in shrink.stdout + shrink.stderr
    tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--delete", "--topic", topic)
    deadline = time.time() + 10
    while topic in tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--list").stdout.split():
        assert time.time() < deadline, "the deleted topic is still listed"
        time.sleep(0.2)
    missing = tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--describe", "--topic", topic,
                   check=False)
    assert missing.returncode != 0 and f"Topic '{topic}' does not exist as expected" in missing.stdout + missing.stderr


def test_offsets_records_log_dirs_and_api_versions_tools(b):
    topic = unique("offs")
    tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--create", "--topic", topic, "--partitions", 2)
    producer = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(30):
        producer.produce(topic, value=str(i).encode(), partition=i % 2, timestamp=1_000_000 + i)
    assert producer.flush(20) == 0

    out = tool("kafka-get-offsets.sh", "--bootstrap-server", b.bootstrap, "--topic", topic).stdout
    assert sorted(out.split()) == [f"{topic}:0:15", f"{topic}:1:15"]
    out = tool("kafka-get-offsets.sh", "--bootstrap-server", b.bootstrap, "--topic", topic, "--time", "-2").stdout
    assert sorted(out.split()) == [f"{topic}:0:0", f"{topic}:1:0"]
    out = tool("kafka-get-offsets.sh", "--bootstrap-server", b.bootstrap, "--topic", topic, "--time", 1_000_010).stdout
    assert sorted(out.split()) == [f"{topic}:0:5", f"{topic}:1:5"]

    spec = b.data_dir / "delete.json"
    spec.write_text('{"version":1,"partitions":[{"topic":"%s","partition":0,"offset":10}]}' % topic)
    out = tool("kafka-delete-records.sh", "--bootstrap-server", b.bootstrap, "--offset-json-file", spec).stdout
    assert f"partition: {topic}-0\tlow_watermark: 10" in out, out
    out = tool("kafka-get-offsets.sh", "--bootstrap-server", b.bootstrap, "--topic", topic, "--partitions", "0",
               "--time", "-2").stdout
    assert out.split() == [f"{topic}:0:10"]

    out = tool("kafka-log-dirs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--topic-list", topic).stdout
    json_line = [line for line in out.splitlines() if line.startswith("{")][0]
    dirs = json.loads(json_line)
    assert [br["broker"] for br in dirs["brokers"]] == [1]
    (log_dir,) = dirs["brokers"][0]["logDirs"]
    assert log_dir["error"] is None and log_dir["logDir"] == str(b.data_dir)
    sizes = {p["partition"]: p for p in log_dir["partitions"]}
    assert set(sizes) == {f"{topic}-0", f"{topic}-1"}
    assert all(p["size"] > 0 and p["offsetLag"] == 0 and p["isFuture"] is False for p in sizes.values())

    out = tool("kafka-broker-api-versions.sh", "--bootstrap-server", b.bootstrap).stdout
    assert re.search(r"^127\.0\.0\.1:\d+ \(id: 1 rack: null isFenced: false\) -> \($", out, re.M), out
    assert re.search(r"^\s+Produce\(0\): 0 to \d+ \[usable: \d+\],$", out, re.M), out
    assert re.search(r"^\s+Fetch\(1\): \d+ to \d+ \[usable: \d+\],$", out, re.M), out


def test_perf_test_tools_run_to_completion(b):
    topic = unique("perf")
    tool("kafka-topics.sh", "--bootstrap-server", b.bootstrap, "--create", "--topic", topic, "--partitions", 2)
    out = tool("kafka-producer-perf-test.sh", "--topic", topic, "--num-records", 20000, "--record-size", 1024,
               "--throughput", -1, "--producer-props", f"bootstrap.servers={b.bootstrap}", "acks=all",
               timeout=180).stdout
    final = out.strip().splitlines()[-1]
    assert re.match(r"20000 records sent, [\d.]+ records/sec \([\d.]+ MB/sec\), [\d.]+ ms avg latency", final), out
    out = tool("kafka-consumer-perf-test.sh", "--bootstrap-server", b.bootstrap, "--topic", topic,
               "--messages", 20000, "--timeout", 30000, timeout=180).stdout
    lines = out.strip().splitlines()
    assert lines[0].startswith("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg"), out
    cells = [c.strip() for c in lines[1].split(",")]
    assert int(cells[4]) == 20000, out


# What kafka-dump-log.sh prints when it finds something wrong in a log or index file.
DUMP_LOG_PROBLEMS = ("isvalid: false", "Mismatches in", "mismatch", "out of order", "Non-consecutive",
                     "failed sanity check", "Exception", "ERROR", "corrupt", "not found in")


def dump_log(files, *extra, compacted=False):
    """kafka-dump-log.sh over `files`; fails on any problem it reports. Returns stdout.

    With --deep-iteration the tool lists every pair of neighbouring records whose offsets are
    not consecutive. Compaction leaves exactly such gaps (Kafka's own compacted segments list
    them too), so for a `compacted` log a gap is accepted as long as offsets still increase."""
    files = [str(f) for f in files]
    out = tool("kafka-dump-log.sh", *extra, "--files", ",".join(files), timeout=180)
    text = out.stdout + out.stderr
    problems = []
    for line in text.splitlines():
        gap = re.fullmatch(r"\s*(\d+) is followed by (\d+)", line)
        if compacted and gap:
            if int(gap.group(1)) >= int(gap.group(2)):
                problems.append(line)
        elif compacted and line.startswith("Non-consecutive offsets in "):
            continue
        elif any(p in line for p in DUMP_LOG_PROBLEMS):
            problems.append(line)
    assert not problems, "kafka-dump-log.sh found problems:\n" + "\n".join(problems[:20])
    return out.stdout


def check_partition_with_kafkas_reader(partition_dir, compacted=False):
    """Kafka's own reader over every segment of a partition: records (--deep-iteration),
    the index sanity check the broker runs at start-up, and every index entry against the
    log (without --index-sanity-check the tool verifies each entry)."""
    files = sorted(p for p in partition_dir.iterdir() if p.suffix in (".log", ".index", ".timeindex"))
    assert any(p.suffix == ".log" for p in files), f"no segment in {partition_dir}"
    dump_log(files, "--deep-iteration", "--index-sanity-check", compacted=compacted)
    dump_log(files, "--deep-iteration", compacted=compacted)
    return files


def batch_lines(dump):
    return [line for line in dump.splitlines() if line.startswith("baseOffset:")]


def test_kafka_dump_log_reads_what_weir_wrote(make_broker):
    from confluent_kafka.admin import AdminClient, NewTopic
    b = make_broker({"log.retention.check.interval.ms": "200", "log.cleaner.backoff.ms": "100",
                     "log.index.interval.bytes": "512"})
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    topics = {
        "dump-plain": {"internal.segment.bytes": "6000"},
        "dump-compacted": {"cleanup.policy": "compact", "internal.segment.bytes": "8192",
                           "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100"},
        "dump-retained": {"internal.segment.bytes": "4000", "retention.bytes": "8000",
                          "file.delete.delay.ms": "0"},
    }
    for f in admin.create_topics([NewTopic(t, 1, 1, config=c) for t, c in topics.items()]).values():
        f.result(10)

    # Every codec, keys, headers, and an idempotent producer's sequences.
    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        p = Producer({"bootstrap.servers": b.bootstrap, "compression.type": codec, "linger.ms": 5,
                      "enable.idempotence": True, "batch.num.messages": 50})
        for i in range(300):
            p.produce("dump-plain", key=f"k{i}".encode(), value=f"{codec}-{i}".encode() * 5,
                      headers=[("h", codec.encode())])
        assert p.flush(20) == 0
    # Small batches, so that segments roll and the cleaner has closed ones to clean.
    # CreateTime going backwards between batches: the time index keeps the largest so far.
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    recent = int(time.time() * 1000) - 60_000  # well inside retention.ms
    for i, ts in enumerate([5_000, 9_000, 7_000, 8_000, 9_500, 3_000, 12_000, 11_000] * 10):
        p.produce("dump-plain", key=f"t{i}".encode(), value=b"t" * 200, timestamp=recent + ts)
        p.flush(10)
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5, "batch.num.messages": 100})
    for i in range(3000):
        p.produce("dump-compacted", key=f"k{i % 20}".encode(), value=f"v{i}".encode())
    p.produce("dump-compacted", key=b"k0", value=None)
    for i in range(100):
        p.produce("dump-compacted", key=f"filler{i}".encode(), value=b"." * 100)
    for i in range(400):
        p.produce("dump-retained", value=b"r" * 100)
    assert p.flush(20) == 0

    # Wait for the cleaner and retention to have done their work.
    def segments(topic):
        return sorted((b.data_dir / f"{topic}-0").glob("*.log"))
    deadline = time.time() + 30
    while time.time() < deadline:
        compacted = sum(f.stat().st_size for f in segments("dump-compacted"))
        retained_start = segments("dump-retained")[0].name
        if compacted < 40_000 and retained_start != "00000000000000000000.log":
            break
        time.sleep(0.3)
    assert compacted < 40_000, f"the cleaner ran: {compacted} bytes left"
    assert retained_start != "00000000000000000000.log", "retention removed the first segments"

    plain = check_partition_with_kafkas_reader(b.data_dir / "dump-plain-0")
    assert len([f for f in plain if f.suffix == ".log"]) > 3, "several segments were rolled"
    dump = dump_log([f for f in plain if f.suffix == ".log"], "--deep-iteration", "--print-data-log")
    codecs = {re.search(r"compresscodec: (\w+)", line).group(1) for line in batch_lines(dump)}
    assert codecs == {"none", "gzip", "snappy", "lz4", "zstd"}, codecs
    assert len([line for line in dump.splitlines() if line.startswith("| offset:")]) == 1580
    assert "headerKeys: [h]" in dump and "key: k299" in dump

    compacted = check_partition_with_kafkas_reader(b.data_dir / "dump-compacted-0", compacted=True)
    dump = dump_log([f for f in compacted if f.suffix == ".log"], "--deep-iteration", "--print-data-log",
                    compacted=True)
    assert len([line for line in dump.splitlines() if line.startswith("| offset:")]) < 1000
    check_partition_with_kafkas_reader(b.data_dir / "dump-retained-0")

    # A group's commits in __consumer_offsets, read with Kafka's offsets decoder.
    group = unique("dumpgroup")
    consume(b, "dump-plain", 10, "--group", group)
    offsets_dirs = [d for d in b.data_dir.iterdir() if d.name.startswith("__consumer_offsets-")
                    and any(f.stat().st_size for f in d.glob("*.log"))]
    assert offsets_dirs
    found = False
    for d in offsets_dirs:
        files = check_partition_with_kafkas_reader(d, compacted=True)
        dump = dump_log([f for f in files if f.suffix == ".log"], "--offsets-decoder", compacted=True)
        found |= f'"group":"{group}"' in dump.replace(" ", "") or group in dump
    assert found, "the group's commit is decoded from __consumer_offsets"

    # kill -9 in the middle of produce, then recovery: Kafka's reader agrees with what is left.
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "acks": "1", "batch.num.messages": 10})
    delivered = []
    for i in range(3000):
        p.produce("dump-plain", value=f"late-{i}".encode() * 10,
                  on_delivery=lambda err, msg: delivered.append(err is None))
        p.poll(0)
        if i == 1500:
            deadline = time.time() + 20
            while sum(delivered) < 500 and time.time() < deadline:
                p.poll(0.05)
            assert sum(delivered) >= 500, "records reached the broker before the kill"
            b.kill9()
            break
    p.purge()
    p.flush(0)
    b.restart()
    check_partition_with_kafkas_reader(b.data_dir / "dump-plain-0")


def test_configs_tool_for_groups(b):
    """Kafka 4's group configs (resource type GROUP) with kafka-configs.sh --entity-type groups."""
    group = unique("conf-group")
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "groups",
               "--entity-name", group, "--all").stdout
    assert f"All configs for group {group} are:" in out
    # Exactly what Kafka 4.1.2 prints for a group with nothing set (FAST_GROUPS changes
    # no group.consumer/share/streams setting).
    defaults = {"consumer.heartbeat.interval.ms": "5000", "consumer.session.timeout.ms": "45000",
                "share.auto.offset.reset": "latest", "share.heartbeat.interval.ms": "5000",
                "share.isolation.level": "read_uncommitted", "share.record.lock.duration.ms": "30000",
                "share.session.timeout.ms": "45000", "streams.heartbeat.interval.ms": "5000",
                "streams.num.standby.replicas": "0", "streams.session.timeout.ms": "45000"}
    expected = [f"  {k}={v} sensitive=false synonyms={{DEFAULT_CONFIG:{k}={v}}}" for k, v in defaults.items()]
    assert out.splitlines()[1:] == expected, out
    low_share = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "groups",
                     "--entity-name", group, "--add-config", "share.session.timeout.ms=1000", check=False)
    assert ("share.session.timeout.ms must be greater than or equal to group.share.min.session.timeout.ms"
            in low_share.stdout + low_share.stderr), low_share.stdout + low_share.stderr

    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "groups",
               "--entity-name", group, "--add-config", "consumer.session.timeout.ms=50000")
    assert f"Completed updating config for group {group}." in out.stdout
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "groups",
               "--entity-name", group).stdout
    assert f"Dynamic configs for group {group} are:" in out
    assert ("consumer.session.timeout.ms=50000 sensitive=false "
            "synonyms={DYNAMIC_GROUP_CONFIG:consumer.session.timeout.ms=50000}") in out

    low = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "groups",
               "--entity-name", group, "--add-config", "consumer.session.timeout.ms=5", check=False)
    assert low.returncode != 0
    assert ("InvalidConfigurationException: consumer.session.timeout.ms must be greater than or equal to "
            "group.consumer.min.session.timeout.ms") in low.stdout + low.stderr
    unknown = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "groups",
                   "--entity-name", group, "--add-config", "no.such=5", check=False)
    assert unknown.returncode != 0
    assert "InvalidConfigurationException: Unknown group config name: no.such" in unknown.stdout + unknown.stderr

    tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "groups",
         "--entity-name", group, "--delete-config", "consumer.session.timeout.ms")
    out = tool("kafka-configs.sh", "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "groups",
               "--entity-name", group).stdout
    assert "consumer.session.timeout.ms" not in out
