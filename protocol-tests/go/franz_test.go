package clients

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func franzClient(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// franz-go's producer (idempotent by default) with every codec, keys and headers; every
// record read back once, in order per partition.
func TestFranzProduceEveryCodecAndConsume(t *testing.T) {
	b := StartBroker(t)
	adm := kadm.NewClient(franzClient(t, b))
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		topic := unique("franz-" + name)
		if _, err := adm.CreateTopic(ctx(t), 3, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		producer := franzClient(t, b, kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(kgo.AllISRAcks()))
		const n = 2000
		var records []*kgo.Record
		for i := 0; i < n; i++ {
			records = append(records, &kgo.Record{
				Topic:   topic,
				Key:     []byte(fmt.Sprintf("key-%d", i%13)),
				Value:   []byte(fmt.Sprintf("%d", i)),
				Headers: []kgo.RecordHeader{{Key: "codec", Value: []byte(name)}},
			})
		}
		if err := producer.ProduceSync(ctx(t), records...).FirstErr(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		consumer := franzClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		last := map[int32]int{}
		seen := 0
		deadline := time.Now().Add(30 * time.Second)
		for seen < n && time.Now().Before(deadline) {
			fetches := consumer.PollFetches(ctx(t))
			if errs := fetches.Errors(); len(errs) > 0 {
				t.Fatalf("%s: fetch errors %v", name, errs)
			}
			fetches.EachRecord(func(r *kgo.Record) {
				var i int
				fmt.Sscanf(string(r.Value), "%d", &i)
				if prev, ok := last[r.Partition]; ok && prev >= i {
					t.Errorf("%s: partition %d out of order: %d after %d", name, r.Partition, i, prev)
				}
				last[r.Partition] = i
				if string(r.Key) != fmt.Sprintf("key-%d", i%13) || string(r.Headers[0].Value) != name {
					t.Errorf("%s: record %d came back as key %q headers %v", name, i, r.Key, r.Headers)
				}
				seen++
			})
		}
		if seen != n {
			t.Fatalf("%s: read %d of %d", name, seen, n)
		}
	}
}

// Two franz-go group members (cooperative-sticky, franz-go's default) split the
// partitions, commit, and a later member resumes at the commits.
func TestFranzGroupSplitCommitResume(t *testing.T) {
	b := StartBroker(t, "group.initial.rebalance.delay.ms=0")
	adm := kadm.NewClient(franzClient(t, b))
	topic, group := unique("franz-group"), unique("franz-group")
	if _, err := adm.CreateTopic(ctx(t), 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	var records []*kgo.Record
	for i := 0; i < 400; i++ {
		records = append(records, &kgo.Record{Topic: topic, Partition: int32(i % 4), Value: []byte(fmt.Sprint(i))})
	}
	if err := franzClient(t, b, kgo.RecordPartitioner(kgo.ManualPartitioner())).
		ProduceSync(ctx(t), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	read := map[string]int{}
	assigned := map[int]map[int32]bool{0: {}, 1: {}}
	members := make([]*kgo.Client, 2)
	for m := range members {
		m := m
		members[m] = franzClient(t, b, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, p map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				for _, i := range p[topic] {
					assigned[m][i] = true
				}
			}),
			kgo.OnPartitionsRevoked(func(c context.Context, cl *kgo.Client, p map[string][]int32) {
				mu.Lock()
				for _, i := range p[topic] {
					delete(assigned[m], i)
				}
				mu.Unlock()
				_ = cl.CommitUncommittedOffsets(c)
			}))
	}
	split := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(assigned[0]) == 2 && len(assigned[1]) == 2
	}
	deadline := time.Now().Add(45 * time.Second)
	for (len(read) < 400 || !split()) && time.Now().Before(deadline) {
		for _, c := range members {
			pctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			c.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
				mu.Lock()
				read[string(r.Value)]++
				mu.Unlock()
			})
			cancel()
		}
	}
	if !split() {
		t.Fatalf("the members did not split 4 partitions 2 and 2: %v", assigned)
	}
	if len(read) != 400 {
		t.Fatalf("read %d distinct records of 400", len(read))
	}
	for _, c := range members {
		if err := c.CommitUncommittedOffsets(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	offsets, err := adm.FetchOffsets(ctx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offsets.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 400 {
		t.Fatalf("committed offsets sum to %d, want 400", committed)
	}
}

// kadm, franz-go's admin client: topics, partitions, configs, offsets, records, groups.
func TestFranzAdmin(t *testing.T) {
	b := StartBroker(t, "group.initial.rebalance.delay.ms=0")
	adm := kadm.NewClient(franzClient(t, b))
	topic := unique("kadm")
	retention := "3600000"
	created, err := adm.CreateTopic(ctx(t), 2, 1, map[string]*string{"retention.ms": &retention}, topic)
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	again, _ := adm.CreateTopic(ctx(t), 2, 1, nil, topic)
	if again.Err != kerr.TopicAlreadyExists {
		t.Fatalf("second create: %v", again.Err)
	}
	details, err := adm.ListTopics(ctx(t), topic)
	if err != nil || len(details[topic].Partitions) != 2 {
		t.Fatalf("list: %v %v", err, details)
	}
	if _, err := adm.CreatePartitions(ctx(t), 3, topic); err != nil {
		t.Fatal(err)
	}
	details, _ = adm.ListTopics(ctx(t), topic)
	if len(details[topic].Partitions) != 5 {
		t.Fatalf("partitions after growing: %d", len(details[topic].Partitions))
	}

	configs, err := adm.DescribeTopicConfigs(ctx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := configs.On(topic, nil)
	found := false
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.MaybeValue() == "3600000" && c.Source.String() == "DYNAMIC_TOPIC_CONFIG" {
			found = true
		}
	}
	if !found {
		t.Fatalf("retention.ms not described as set: %+v", rc.Configs)
	}
	policy := "compact"
	if _, err := adm.AlterTopicConfigs(ctx(t), []kadm.AlterConfig{{Name: "cleanup.policy", Value: &policy}}, topic); err != nil {
		t.Fatal(err)
	}
	bad := "sometimes"
	altered, _ := adm.AlterTopicConfigs(ctx(t), []kadm.AlterConfig{{Name: "cleanup.policy", Value: &bad}}, topic)
	if r, _ := altered.On(topic, nil); r.Err != kerr.InvalidConfig {
		t.Fatalf("invalid cleanup.policy: %v", r.Err)
	}

	plain := unique("kadm-records")
	if _, err := adm.CreateTopic(ctx(t), 1, 1, nil, plain); err != nil {
		t.Fatal(err)
	}
	var records []*kgo.Record
	for i := 0; i < 50; i++ {
		records = append(records, &kgo.Record{Topic: plain, Value: []byte(fmt.Sprint(i))})
	}
	if err := franzClient(t, b).ProduceSync(ctx(t), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx(t), plain)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup(plain, 0); o.Offset != 50 {
		t.Fatalf("end offset %d", o.Offset)
	}
	deleted, err := adm.DeleteRecords(ctx(t), kadm.Offsets{plain: {0: {Topic: plain, Partition: 0, At: 20}}})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := deleted.Lookup(plain, 0); d.LowWatermark != 20 {
		t.Fatalf("low watermark %d", d.LowWatermark)
	}
	starts, _ := adm.ListStartOffsets(ctx(t), plain)
	if o, _ := starts.Lookup(plain, 0); o.Offset != 20 {
		t.Fatalf("start offset after delete %d", o.Offset)
	}

	group := unique("kadm-group")
	commits := kadm.Offsets{}
	commits.Add(kadm.Offset{Topic: plain, Partition: 0, At: 30, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(ctx(t), group, commits); err != nil {
		t.Fatal(err)
	}
	listed, err := adm.ListGroups(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := listed[group]; !ok {
		t.Fatalf("group not listed: %v", listed.Groups())
	}
	described, err := adm.DescribeGroups(ctx(t), group)
	if err != nil || described[group].State != "Empty" {
		t.Fatalf("describe: %v %+v", err, described[group])
	}
	fetched, _ := adm.FetchOffsets(ctx(t), group)
	if o, _ := fetched.Lookup(plain, 0); o.At != 30 {
		t.Fatalf("fetched commit %d", o.At)
	}
	if _, err := adm.DeleteGroup(ctx(t), group); err != nil {
		t.Fatal(err)
	}
	gone, _ := adm.DeleteGroup(ctx(t), group)
	if gone.Err != kerr.GroupIDNotFound {
		t.Fatalf("second delete: %v", gone.Err)
	}

	if _, err := adm.DeleteTopics(ctx(t), topic); err != nil {
		t.Fatal(err)
	}
	names, _ := adm.ListTopics(ctx(t))
	list := names.Names()
	sort.Strings(list)
	for _, n := range list {
		if n == topic {
			t.Fatalf("deleted topic still listed")
		}
	}
}
