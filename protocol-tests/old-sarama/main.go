// Command old-sarama drives weir with the sarama that Debian packages
// (golang-github-shopify-sarama-dev 1.22.1, 2019), which speaks the request versions
// Kafka 4 removed: Produce v0-2 with magic 0/1 message sets, Fetch v0-3, ListOffsets v0,
// OffsetCommit v1, OffsetFetch v1. Built in GOPATH mode against Debian's sources.
//
// Usage: old-sarama BOOTSTRAP TOPIC_PREFIX. Exits non-zero, naming the failure, if any
// step does not do what a Kafka 3 broker does.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Shopify/sarama"
)

const records = 200

// The step running now, for the watchdog's report.
var step atomic.Value

// begin names a step on stderr and for the watchdog.
func begin(format string, args ...interface{}) {
	name := fmt.Sprintf(format, args...)
	step.Store(name)
	fmt.Fprintln(os.Stderr, "step:", name)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func config(version sarama.KafkaVersion, codec sarama.CompressionCodec) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = version
	c.ClientID = "debian-sarama"
	c.Producer.Return.Successes = true
	c.Producer.RequiredAcks = sarama.WaitForLocal
	c.Producer.Compression = codec
	c.Producer.Flush.Messages = 20
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	c.Consumer.Return.Errors = true
	c.Metadata.Retry.Backoff = 100 * time.Millisecond
	return c
}

// produce sends `records` keyed messages and checks their offsets are 0..n-1.
func produce(bootstrap, topic string, cfg *sarama.Config) {
	client, err := sarama.NewClient([]string{bootstrap}, cfg)
	must(err, "client")
	defer client.Close()
	producer, err := sarama.NewSyncProducerFromClient(client)
	must(err, "producer")
	var messages []*sarama.ProducerMessage
	for i := 0; i < records; i++ {
		messages = append(messages, &sarama.ProducerMessage{
			Topic: topic, Partition: 0,
			Key:   sarama.StringEncoder(fmt.Sprintf("k%d", i%5)),
			Value: sarama.StringEncoder(fmt.Sprintf("value-%d", i)),
		})
	}
	must(producer.SendMessages(messages), "send "+topic)
	for i, m := range messages {
		if m.Offset != int64(i) {
			fail("%s: message %d got offset %d", topic, i, m.Offset)
		}
	}
	must(producer.Close(), "producer close")
	// ListOffsets (v0 before 0.10.1).
	newest, err := client.GetOffset(topic, 0, sarama.OffsetNewest)
	must(err, "newest offset")
	oldest, err := client.GetOffset(topic, 0, sarama.OffsetOldest)
	must(err, "oldest offset")
	if newest != records || oldest != 0 {
		fail("%s: offsets %d..%d, want 0..%d", topic, oldest, newest, records)
	}
}

// consume reads the partition from `from` with the plain consumer (Fetch v0-3).
func consume(bootstrap, topic string, cfg *sarama.Config, from int64) {
	consumer, err := sarama.NewConsumer([]string{bootstrap}, cfg)
	must(err, "consumer")
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, from)
	must(err, "consume partition")
	defer pc.Close()
	start := from
	if from == sarama.OffsetOldest {
		start = 0
	}
	for want := start; want < records; want++ {
		select {
		case m := <-pc.Messages():
			if m.Offset != want || string(m.Value) != fmt.Sprintf("value-%d", want) ||
				string(m.Key) != fmt.Sprintf("k%d", want%5) {
				fail("%s: got offset %d %q=%q, want offset %d", topic, m.Offset, m.Key, m.Value, want)
			}
		case err := <-pc.Errors():
			fail("%s: consume: %v", topic, err)
		case <-time.After(15 * time.Second):
			fail("%s: timed out at offset %d", topic, want)
		}
	}
}

// commit stores an offset through the offset manager (OffsetCommit v1, OffsetFetch v1)
// and reads it back with a new one.
func commit(bootstrap, topic, group string, cfg *sarama.Config) {
	for _, step := range []int64{17, 42} {
		client, err := sarama.NewClient([]string{bootstrap}, cfg)
		must(err, "client")
		om, err := sarama.NewOffsetManagerFromClient(group, client)
		must(err, "offset manager")
		pom, err := om.ManagePartition(topic, 0)
		must(err, "manage partition")
		if step == 42 {
			if got, _ := pom.NextOffset(); got != 17 {
				fail("%s: committed offset read back as %d, want 17", group, got)
			}
		}
		pom.MarkOffset(step, "meta")
		must(pom.Close(), "partition offset manager close")
		must(om.Close(), "offset manager close")
		must(client.Close(), "client close")
	}
}

type handler struct {
	mu   sync.Mutex
	seen map[int64]bool
	done chan struct{}
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		s.MarkMessage(m, "")
		h.mu.Lock()
		h.seen[m.Offset] = true
		if len(h.seen) == records {
			close(h.done)
		}
		h.mu.Unlock()
	}
	return nil
}

// group consumes the topic as a consumer group member (JoinGroup v1, SyncGroup v0,
// Heartbeat v0, OffsetCommit v1 with the group's generation).
func group(bootstrap, topic, groupID string, cfg *sarama.Config) {
	cfg.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{bootstrap}, groupID, cfg)
	must(err, "consumer group")
	h := &handler{seen: map[int64]bool{}, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				fail("%s: group consume: %v", groupID, err)
			}
		}
	}()
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		fail("%s: group saw %d of %d records", groupID, len(h.seen), records)
	}
	time.Sleep(500 * time.Millisecond) // one commit interval
	cancel()
	must(cg.Close(), "group close")
	client, err := sarama.NewClient([]string{bootstrap}, cfg)
	must(err, "client")
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(groupID, client)
	must(err, "offset manager")
	defer om.Close()
	pom, err := om.ManagePartition(topic, 0)
	must(err, "manage partition")
	defer pom.Close()
	if got, _ := pom.NextOffset(); got != records {
		fail("%s: group committed %d, want %d", groupID, got, records)
	}
}

func main() {
	if len(os.Args) != 3 {
		fail("usage: old-sarama BOOTSTRAP TOPIC_PREFIX")
	}
	bootstrap, prefix := os.Args[1], os.Args[2]
	// A step that never returns (a Close that waits forever, say) fails with where it
	// was and every goroutine's stack, not as a silent timeout of the whole run.
	time.AfterFunc(150*time.Second, func() {
		fmt.Fprintf(os.Stderr, "FAIL: no progress after 150 s, in step %v\n", step.Load())
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		os.Exit(1)
	})
	// sarama 1.22's default version: magic 0 message sets, Produce v0, Fetch v0.
	for _, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy} {
		topic := fmt.Sprintf("%s-v082-%d", prefix, codec)
		cfg := config(sarama.V0_8_2_0, codec)
		begin("produce %s", topic)
		produce(bootstrap, topic, cfg)
		begin("consume %s from the start", topic)
		consume(bootstrap, topic, cfg, sarama.OffsetOldest)
		begin("consume %s from 123", topic)
		consume(bootstrap, topic, cfg, 123)
		begin("commit %s", topic)
		commit(bootstrap, topic, topic+"-offsets", cfg)
	}
	// The oldest version with consumer groups: magic 1, Produce v2, Fetch v3, lz4 allowed.
	for _, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionLZ4} {
		topic := fmt.Sprintf("%s-v0102-%d", prefix, codec)
		cfg := config(sarama.V0_10_2_0, codec)
		begin("produce %s", topic)
		produce(bootstrap, topic, cfg)
		begin("consume %s from 57", topic)
		consume(bootstrap, topic, cfg, 57)
		begin("group-consume %s", topic)
		group(bootstrap, topic, topic+"-group", config(sarama.V0_10_2_0, codec))
	}
	fmt.Println("ok")
}
