package dev.weir.clients;

import static dev.weir.clients.Clients.createTopic;
import static dev.weir.clients.Clients.producer;
import static dev.weir.clients.Clients.readAll;
import static dev.weir.clients.Clients.unique;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The Java client's default producer (idempotent, acks=all) against weir. */
class ProducerTest {
    static WeirBroker broker;
    static Admin admin;

    @BeforeAll
    static void start() {
        broker = WeirBroker.start();
        admin = Clients.admin(broker);
    }

    @AfterAll
    static void stop() {
        admin.close();
        broker.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void everyCompressionTypeRoundTripsWithKeysAndHeaders(String codec) throws Exception {
        String topic = unique("codec-" + codec);
        createTopic(admin, topic, 3, Map.of());
        int n = 3000;
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> p = producer(broker.bootstrap(),
                Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec, ProducerConfig.LINGER_MS_CONFIG, 5))) {
            for (int i = 0; i < n; i++) {
                RecordHeaders headers = new RecordHeaders();
                headers.add("index", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                headers.add("codec", codec.getBytes(StandardCharsets.UTF_8));
                sent.add(p.send(new ProducerRecord<>(topic, null, "key-" + (i % 17), "value-" + i, headers)));
            }
            p.flush();
        }
        // Per key: one partition, offsets increasing in send order.
        Map<String, Integer> partitionOfKey = new HashMap<>();
        Map<String, Long> lastOffsetOfKey = new HashMap<>();
        for (int i = 0; i < n; i++) {
            RecordMetadata md = sent.get(i).get();
            String key = "key-" + (i % 17);
            assertEquals(partitionOfKey.computeIfAbsent(key, k -> md.partition()), md.partition(), key);
            Long last = lastOffsetOfKey.put(key, md.offset());
            assertTrue(last == null || last < md.offset(), "offsets of one key increase");
        }
        List<TopicPartition> parts = IntStream.range(0, 3).mapToObj(i -> new TopicPartition(topic, i))
                .collect(Collectors.toList());
        List<ConsumerRecord<String, String>> got = readAll(broker.bootstrap(), parts, n);
        assertEquals(n, got.size());
        Map<Integer, List<Integer>> perPartition = new HashMap<>();
        for (ConsumerRecord<String, String> r : got) {
            int i = Integer.parseInt(r.value().substring("value-".length()));
            assertEquals("key-" + (i % 17), r.key());
            assertEquals(Integer.toString(i),
                    new String(r.headers().lastHeader("index").value(), StandardCharsets.UTF_8));
            assertEquals(codec, new String(r.headers().lastHeader("codec").value(), StandardCharsets.UTF_8));
            perPartition.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(i);
        }
        for (List<Integer> order : perPartition.values()) {
            List<Integer> sorted = new ArrayList<>(order);
            sorted.sort(null);
            assertEquals(sorted, order, "each partition holds its records in send order");
        }
    }

    @Test
    void aRecordOverMaxMessageBytesFailsAloneAndTheProducerGoesOn() throws Exception {
        String topic = unique("large");
        createTopic(admin, topic, 1, Map.of("max.message.bytes", "10000"));
        try (KafkaProducer<String, String> p = producer(broker.bootstrap(), Map.of())) {
            Future<RecordMetadata> big = p.send(new ProducerRecord<>(topic, "x".repeat(20000)));
            ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class, big::get);
            assertInstanceOf(RecordTooLargeException.class, e.getCause());
            RecordMetadata ok = p.send(new ProducerRecord<>(topic, "small")).get();
            assertEquals(0, ok.offset());
        }
    }

    /** The idempotent producer retries what a cut connection lost; the broker's sequence
     * checks make every record land exactly once, in order. */
    @Test
    void aProducerWhoseConnectionsAreCutMidStreamWritesEveryRecordOnce() throws Exception {
        String topic = unique("cut");
        try (CuttingProxy proxy = new CuttingProxy();
             WeirBroker behind = WeirBroker.start(Map.of("advertised.listeners",
                     "PLAINTEXT://127.0.0.1:" + proxy.port()))) {
            proxy.forwardTo(behind.port);
            try (Admin a = Clients.admin(behind)) {
                createTopic(a, topic, 2, Map.of());
            }
            int n = 20000;
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            int cuts = 0;
            try (KafkaProducer<String, String> p = producer("127.0.0.1:" + proxy.port(),
                    Map.of(ProducerConfig.LINGER_MS_CONFIG, 1, ProducerConfig.BATCH_SIZE_CONFIG, 2048,
                            ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5,
                            ProducerConfig.RETRY_BACKOFF_MS_CONFIG, 20))) {
                for (int i = 0; i < n; i++) {
                    sent.add(p.send(new ProducerRecord<>(topic, Integer.toString(i % 2), "r" + i)));
                    if (i % 2500 == 2499) {
                        // Cut while the last thousand records are still in flight.
                        sent.get(i - 1000).get();
                        proxy.cutAll();
                        cuts++;
                    }
                }
                p.flush();
                for (Future<RecordMetadata> f : sent) {
                    f.get();
                }
            }
            assertTrue(proxy.connectionsAccepted() > cuts, "the connections were cut and reopened");
            List<TopicPartition> parts = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1));
            List<ConsumerRecord<String, String>> got = readAll("127.0.0.1:" + proxy.port(), parts, n + 1);
            assertEquals(n, got.size(), "every record once, none twice");
            Map<Integer, Integer> lastOfPartition = new HashMap<>();
            for (ConsumerRecord<String, String> r : got) {
                int i = Integer.parseInt(r.value().substring(1));
                Integer last = lastOfPartition.put(r.partition(), i);
                assertTrue(last == null || last < i, "in send order within a partition");
            }
        }
    }

    /** KIP-467: a batch with keyless records for a compacted topic fails exactly those
     * records with the cause, and the others of the batch as collateral, as Kafka 4.1 does. */
    @Test
    void keylessRecordsOnACompactedTopicFailAloneWithTheirCause() throws Exception {
        String topic = unique("compacted");
        createTopic(admin, topic, 1, Map.of("cleanup.policy", "compact"));
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> p = producer(broker.bootstrap(),
                Map.of(ProducerConfig.LINGER_MS_CONFIG, 200))) {
            sent.add(p.send(new ProducerRecord<>(topic, "k", "a")));
            sent.add(p.send(new ProducerRecord<>(topic, null, "b")));
            sent.add(p.send(new ProducerRecord<>(topic, "k2", "c")));
            sent.add(p.send(new ProducerRecord<>(topic, null, "d")));
            p.flush();
        }
        List<String> outcomes = new ArrayList<>();
        for (Future<RecordMetadata> f : sent) {
            ExecutionException e = org.junit.jupiter.api.Assertions.assertThrows(ExecutionException.class, f::get);
            outcomes.add(e.getCause().getClass().getSimpleName() + ": " + e.getCause().getMessage());
        }
        String collateral = "KafkaException: Failed to append record because it was part of a batch which had "
                + "one more more invalid records";
        String cause = "InvalidRecordException: Compacted topic cannot accept message without key in topic "
                + "partition " + topic + "-0";
        assertEquals(List.of(collateral, cause, collateral, cause), outcomes);
        assertEquals(0L, admin.listOffsets(Map.of(new TopicPartition(topic, 0),
                org.apache.kafka.clients.admin.OffsetSpec.latest())).all().get()
                .get(new TopicPartition(topic, 0)).offset(), "nothing of the batch was stored");
    }
}
