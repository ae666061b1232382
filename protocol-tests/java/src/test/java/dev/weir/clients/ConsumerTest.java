package dev.weir.clients;

import static dev.weir.clients.Clients.consumer;
import static dev.weir.clients.Clients.createTopic;
import static dev.weir.clients.Clients.producer;
import static dev.weir.clients.Clients.unique;
import static dev.weir.clients.Clients.waitUntil;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.CommitFailedException;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RebalanceInProgressException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Java consumers in groups: the classic protocol with the range and cooperative-sticky
 * assignors, and the consumer protocol of KIP-848. */
class ConsumerTest {
    static WeirBroker broker;
    static Admin admin;

    @BeforeAll
    static void start() {
        broker = WeirBroker.start(Map.of(
                "group.initial.rebalance.delay.ms", "0",
                "group.consumer.heartbeat.interval.ms", "500",
                "group.consumer.min.heartbeat.interval.ms", "500",
                "group.consumer.session.timeout.ms", "6000",
                "group.consumer.min.session.timeout.ms", "6000"));
        admin = Clients.admin(broker);
    }

    @AfterAll
    static void stop() {
        admin.close();
        broker.close();
    }

    /** Configuration for one of the three ways a Java consumer joins a group. */
    static Map<String, Object> groupProtocol(String mode) {
        Map<String, Object> c = new HashMap<>();
        switch (mode) {
            case "range" -> c.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                    "org.apache.kafka.clients.consumer.RangeAssignor");
            case "cooperative-sticky" -> c.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor");
            case "consumer" -> c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
            default -> throw new IllegalArgumentException(mode);
        }
        if (!mode.equals("consumer")) {
            c.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 6000);
            c.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500);
        }
        return c;
    }

    static void produce(String topic, int partitions, int from, int to) throws Exception {
        try (KafkaProducer<String, String> p = producer(broker.bootstrap(), Map.of())) {
            for (int i = from; i < to; i++) {
                p.send(new ProducerRecord<>(topic, i % partitions, null, Integer.toString(i)));
            }
            p.flush();
        }
    }

    /** A consumer polling on its own thread, recording what it holds and reads. */
    static final class Member implements AutoCloseable {
        final KafkaConsumer<String, String> consumer;
        final Set<TopicPartition> assigned = ConcurrentHashMap.newKeySet();
        final List<String> values = new CopyOnWriteArrayList<>();
        final AtomicBoolean running = new AtomicBoolean(true);
        final Thread thread;
        volatile RuntimeException failure;

        Member(String group, String topic, Map<String, Object> conf) {
            consumer = consumer(broker.bootstrap(), group, conf);
            thread = new Thread(() -> {
                try {
                    consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                        @Override
                        public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                            consumer.commitSync();
                            assigned.removeAll(parts);
                        }

                        @Override
                        public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                            assigned.addAll(parts);
                        }

                        @Override
                        public void onPartitionsLost(Collection<TopicPartition> parts) {
                            assigned.removeAll(parts);
                        }
                    });
                    while (running.get()) {
                        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(100))) {
                            values.add(r.value());
                        }
                        try {
                            consumer.commitSync();
                        } catch (RebalanceInProgressException | CommitFailedException e) {
                            // A rebalance is under way: the revocation callback commits, or
                            // the next poll's commit does once it is over.
                        }
                    }
                } catch (RuntimeException e) {
                    failure = e;
                } finally {
                    consumer.close();
                }
            });
            thread.start();
        }

        @Override
        public void close() throws InterruptedException {
            running.set(false);
            thread.join(30_000);
            if (failure != null) {
                throw failure;
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"range", "cooperative-sticky", "consumer"})
    void membersJoinAndLeaveAndEveryRecordIsReadOnce(String mode) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(!mode.equals("consumer") || Clients.clientIsKafka4(),
                "the 3.9 client's KIP-848 consumer is a preview");
        String topic = unique("grp-" + mode);
        String group = unique("g-" + mode);
        createTopic(admin, topic, 6, Map.of());
        produce(topic, 6, 0, 600);
        Map<String, Object> conf = groupProtocol(mode);
        List<String> all = new ArrayList<>();
        try (Member a = new Member(group, topic, conf)) {
            waitUntil("the first member holds all 6 partitions", Duration.ofSeconds(30),
                    () -> a.assigned.size() == 6 && a.values.size() == 600);
            try (Member b = new Member(group, topic, conf)) {
                waitUntil("two members share the partitions", Duration.ofSeconds(30),
                        () -> a.assigned.size() == 3 && b.assigned.size() == 3);
                Set<TopicPartition> overlap = new HashSet<>(a.assigned);
                overlap.retainAll(b.assigned);
                assertTrue(overlap.isEmpty(), "one owner per partition");
                produce(topic, 6, 600, 1200);
                waitUntil("both read the new records", Duration.ofSeconds(30),
                        () -> a.values.size() + b.values.size() == 1200);
                all.addAll(b.values);
            }
            waitUntil("the member left and its partitions came back", Duration.ofSeconds(30),
                    () -> a.assigned.size() == 6);
            produce(topic, 6, 1200, 1500);
            waitUntil("the remaining member reads everything new", Duration.ofSeconds(30),
                    () -> a.values.size() + all.size() == 1500);
            all.addAll(a.values);
        }
        assertEquals(1500, all.size(), "nothing read twice");
        assertEquals(1500, new HashSet<>(all).size());

        // The commits: a new member resumes at the end.
        Map<TopicPartition, OffsetAndMetadata> committed =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        assertEquals(6, committed.size());
        assertEquals(1500, committed.values().stream().mapToLong(OffsetAndMetadata::offset).sum());
        try (KafkaConsumer<String, String> c = consumer(broker.bootstrap(), group, conf)) {
            c.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> more = new ArrayList<>();
            long until = System.currentTimeMillis() + 3000;
            while (System.currentTimeMillis() < until) {
                c.poll(Duration.ofMillis(200)).forEach(more::add);
            }
            assertTrue(more.isEmpty(), "a resumed member starts at the commits: " + more.size());
            assertEquals(6, c.assignment().size());
        }
    }

    @Test
    void seekAndOffsetsForTimes() throws Exception {
        String topic = unique("seek");
        createTopic(admin, topic, 1, Map.of());
        long base = 1_700_000_000_000L;
        try (KafkaProducer<String, String> p = producer(broker.bootstrap(), Map.of())) {
            for (int i = 0; i < 100; i++) {
                p.send(new ProducerRecord<>(topic, 0, base + i * 10L, null, Integer.toString(i)));
            }
            p.flush();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<String, String> c = consumer(broker.bootstrap(), null, Map.of())) {
            c.assign(List.of(tp));
            Map<TopicPartition, OffsetAndTimestamp> found = c.offsetsForTimes(Map.of(tp, base + 255));
            assertEquals(26, found.get(tp).offset(), "first offset at or after the timestamp");
            assertEquals(base + 260, found.get(tp).timestamp());
            assertNull(c.offsetsForTimes(Map.of(tp, base + 10_000)).get(tp), "none after the last");
            assertEquals(Map.of(tp, 0L), c.beginningOffsets(List.of(tp)));
            assertEquals(Map.of(tp, 100L), c.endOffsets(List.of(tp)));
            c.seek(tp, 90);
            List<String> tail = new ArrayList<>();
            long until = System.currentTimeMillis() + 10_000;
            while (tail.size() < 10 && System.currentTimeMillis() < until) {
                c.poll(Duration.ofMillis(200)).forEach(r -> tail.add(r.value()));
            }
            assertEquals(List.of("90", "91", "92", "93", "94", "95", "96", "97", "98", "99"), tail);
            assertEquals(100, c.position(tp));
        }
    }

    /** A static member that restarts within the session timeout gets its partitions back
     * without a rebalance of the other member. */
    @Test
    void staticMembersKeepTheirPartitionsAcrossARestart() throws Exception {
        String topic = unique("static");
        String group = unique("static");
        createTopic(admin, topic, 4, Map.of());
        Map<String, Object> first = new HashMap<>(groupProtocol("range"));
        first.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "first");
        Map<String, Object> second = new HashMap<>(groupProtocol("range"));
        second.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "second");
        try (Member b = new Member(group, topic, second)) {
            Set<TopicPartition> before;
            try (Member a = new Member(group, topic, first)) {
                waitUntil("two static members share 4 partitions", Duration.ofSeconds(30),
                        () -> a.assigned.size() == 2 && b.assigned.size() == 2);
                before = new HashSet<>(a.assigned);
            }
            Set<TopicPartition> kept = new HashSet<>(b.assigned);
            try (Member a = new Member(group, topic, first)) {
                waitUntil("the restarted static member is assigned again", Duration.ofSeconds(30),
                        () -> a.assigned.size() == 2);
                assertEquals(before, a.assigned, "same partitions as before the restart");
                assertEquals(kept, b.assigned, "the other member kept its partitions");
            }
        }
        var description = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        assertNotNull(description);
        // Static members do not leave on close: both stay until their session times out.
        assertEquals(Set.of("first", "second"), description.members().stream()
                .map(m -> m.groupInstanceId().orElse("")).collect(Collectors.toSet()));
    }

    /** A static member that closes without leaving is expired session.timeout.ms after its
     * last heartbeat, not later; then its empty group can be deleted. */
    @Test
    void aClosedStaticMemberExpiresAfterItsSessionTimeout() throws Exception {
        String topic = unique("expire");
        String group = unique("expire");
        createTopic(admin, topic, 2, Map.of());
        Map<String, Object> conf = new HashMap<>(groupProtocol("range"));
        conf.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "only");
        long closed;
        try (KafkaConsumer<String, String> c = consumer(broker.bootstrap(), group, conf)) {
            c.subscribe(List.of(topic));
            Clients.pollWhile(c, Duration.ofSeconds(20), () -> c.assignment().size() < 2);
            assertEquals(2, c.assignment().size());
            closed = System.currentTimeMillis();
        }
        waitUntil("the static member expires", Duration.ofSeconds(20), () -> {
            try {
                return admin.describeConsumerGroups(List.of(group)).all().get().get(group).members().isEmpty();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        long after = System.currentTimeMillis() - closed;
        // The describe loop polls every 50 ms; allow for a slow, shared machine above it.
        assertTrue(after >= 5_000 && after <= 12_000, "expired " + after + " ms after the close (session 6000 ms)");
        admin.deleteConsumerGroups(List.of(group)).all().get();
    }

    /** Subscriptions changed in quick succession, with and without a rebalance listener,
     * eager and cooperative and KIP-848: the member ends with exactly the partitions of
     * its last subscription within a few seconds. */
    @ParameterizedTest
    @ValueSource(strings = {"range", "cooperative-sticky", "consumer"})
    void quickSubscriptionChangesConvergeOnTheLastOne(String mode) throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(!mode.equals("consumer") || Clients.clientIsKafka4(),
                "the 3.9 client's KIP-848 consumer is a preview");
        String a = unique("churn-a");
        String b = unique("churn-b");
        String c = unique("churn-c");
        for (String t : List.of(a, b, c)) {
            createTopic(admin, t, 2, Map.of());
        }
        String group = unique("churn-" + mode);
        Map<String, Object> conf = new HashMap<>(groupProtocol(mode));
        conf.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 300_000);
        // A steady member on the last topic, polling all along, takes its share.
        try (Member steady = new Member(group, c, conf);
             KafkaConsumer<String, String> consumer = consumer(broker.bootstrap(), group, conf)) {
            waitUntil("the steady member holds the last topic", Duration.ofSeconds(30),
                    () -> steady.assigned.size() == 2);
            ConsumerRebalanceListener listener = new ConsumerRebalanceListener() {
                @Override
                public void onPartitionsRevoked(Collection<TopicPartition> parts) {}

                @Override
                public void onPartitionsAssigned(Collection<TopicPartition> parts) {}
            };
            consumer.subscribe(List.of(a));
            consumer.poll(Duration.ofMillis(300));
            consumer.unsubscribe();
            consumer.subscribe(List.of(b), listener);
            consumer.poll(Duration.ofMillis(50));
            consumer.subscribe(List.of(a, b));
            consumer.poll(Duration.ofMillis(10));
            consumer.unsubscribe();
            consumer.subscribe(List.of(c), listener);
            long start = System.currentTimeMillis();
            while (!(consumer.assignment().size() == 1 && steady.assigned.size() == 1)
                    && System.currentTimeMillis() - start < 20_000) {
                consumer.poll(Duration.ofMillis(100));
            }
            long took = System.currentTimeMillis() - start;
            Set<TopicPartition> all = new HashSet<>(consumer.assignment());
            all.addAll(steady.assigned);
            assertEquals(Set.of(new TopicPartition(c, 0), new TopicPartition(c, 1)), all,
                    "the two members split the last topic: " + consumer.assignment() + " " + steady.assigned);
            assertTrue(took < 10_000, "converged in " + took + " ms");
        }
    }

    /** KIP-848 with a regular expression: a member that changes its pattern ends with
     * exactly the partitions of the topics the new pattern matches. */
    @Test
    void aConsumerProtocolMemberThatChangesItsRegexGetsTheNewTopicsOnly() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(Clients.clientIsKafka4(),
                "the 3.9 client's KIP-848 consumer is a preview");
        String prefix = unique("rx").replace("-", "");
        List<String> alpha = List.of(prefix + "alpha1", prefix + "alpha2");
        List<String> beta = List.of(prefix + "beta1");
        for (String t : alpha) {
            createTopic(admin, t, 2, Map.of());
        }
        for (String t : beta) {
            createTopic(admin, t, 3, Map.of());
        }
        try (KafkaConsumer<String, String> c = consumer(broker.bootstrap(), unique("rx"), groupProtocol("consumer"))) {
            c.subscribe(java.util.regex.Pattern.compile(prefix + "alpha.*"));
            Set<TopicPartition> wantAlpha = new HashSet<>();
            for (String t : alpha) {
                wantAlpha.add(new TopicPartition(t, 0));
                wantAlpha.add(new TopicPartition(t, 1));
            }
            Clients.pollWhile(c, Duration.ofSeconds(30), () -> !c.assignment().equals(wantAlpha));
            assertEquals(wantAlpha, c.assignment());
            c.subscribe(java.util.regex.Pattern.compile(prefix + "beta.*"));
            Set<TopicPartition> wantBeta = Set.of(new TopicPartition(beta.get(0), 0),
                    new TopicPartition(beta.get(0), 1), new TopicPartition(beta.get(0), 2));
            Clients.pollWhile(c, Duration.ofSeconds(30), () -> !c.assignment().equals(wantBeta));
            assertEquals(wantBeta, c.assignment(), "exactly the new pattern's partitions");
        }
    }
}
