//! Group coordinator timings against the real broker (`make bench-groups`).
//!
//! 1. OffsetCommit of 1,000 partitions in one request, next to a baseline of the same
//!    shape measured in the same run: ListOffsets for the same 1,000 partitions; and the
//!    latency of a one-partition commit.
//! 2. A rebalance of 10 classic members joining together: wall time from the first
//!    JoinGroup to the last SyncGroup answer, against what the protocol needs: the initial
//!    rebalance delay, extended once because members arrived during it (Kafka's
//!    `InitialDelayedJoin`), plus round trips.
//!
//! Medians of several runs are printed; the machine is shared, so ratios matter more than
//! absolute figures.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use protocol_tests::raw::{new_topic, topic_name, Client};
use protocol_tests::Broker;

const PARTITIONS: i32 = 1000;
const RUNS: usize = 15;
const MEMBERS: usize = 10;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn commit_request(group: &str, offset: i64, count: i32) -> RequestKind {
    let partitions = (0..count)
        .map(|p| {
            offset_commit_request::OffsetCommitRequestPartition::default()
                .with_partition_index(p)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("")))
        })
        .collect();
    RequestKind::OffsetCommit(
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(topic_name("bench-commit"))
                    .with_partitions(partitions),
            ]),
    )
}

fn list_offsets_request() -> RequestKind {
    let partitions = (0..PARTITIONS)
        .map(|p| {
            list_offsets_request::ListOffsetsPartition::default()
                .with_partition_index(p)
                .with_timestamp(-1)
        })
        .collect();
    RequestKind::ListOffsets(
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic_name("bench-commit"))
                .with_partitions(partitions)]),
    )
}

fn bench_commit() {
    let broker = Broker::start(&[]);
    let mut client = Client::connect(&broker);
    client.call(
        ApiKey::CreateTopics,
        7,
        &RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![new_topic(
            "bench-commit",
            PARTITIONS,
            &[],
        )])),
    );
    client.call(
        ApiKey::FindCoordinator,
        4,
        &RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("bench-g")]),
        ),
    );
    let (mut commits, mut lists, mut singles) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        let body = commit_request("bench-g", run as i64, 1);
        let started = Instant::now();
        client.call(ApiKey::OffsetCommit, 9, &body);
        singles.push(started.elapsed());

        let body = commit_request("bench-g", run as i64, PARTITIONS);
        let started = Instant::now();
        let ResponseKind::OffsetCommit(r) = client.call(ApiKey::OffsetCommit, 9, &body) else {
            panic!("commit answer expected");
        };
        commits.push(started.elapsed());
        assert!(r.topics[0].partitions.iter().all(|p| p.error_code == 0));
        assert_eq!(r.topics[0].partitions.len(), PARTITIONS as usize);

        let body = list_offsets_request();
        let started = Instant::now();
        client.call(ApiKey::ListOffsets, 9, &body);
        lists.push(started.elapsed());
    }
    let (commit, list) = (median(commits), median(lists));
    println!(
        "offset commit of {PARTITIONS} partitions: median {:.2} ms over {RUNS} runs; ListOffsets of the same partitions {:.2} ms; ratio {:.2}",
        commit.as_secs_f64() * 1e3,
        list.as_secs_f64() * 1e3,
        commit.as_secs_f64() / list.as_secs_f64()
    );
    println!(
        "offset commit of 1 partition: median {:.3} ms over {RUNS} runs",
        median(singles).as_secs_f64() * 1e3
    );
}

fn join(client: &mut Client, group: &str, member_id: &str) -> JoinGroupResponse {
    let body = RequestKind::JoinGroup(
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_member_id(s(member_id))
            .with_session_timeout_ms(30_000)
            .with_rebalance_timeout_ms(60_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(bytes::Bytes::from_static(b"m"))]),
    );
    match client.call(ApiKey::JoinGroup, 9, &body) {
        ResponseKind::JoinGroup(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

/// One member: handshake, join, sync. Returns when its SyncGroup is answered.
fn run_member(broker_port: u16, group: String, barrier: Arc<Barrier>) -> Instant {
    let mut client = Client::connect_port(broker_port);
    barrier.wait();
    let first = join(&mut client, &group, "");
    let joined = join(&mut client, &group, &first.member_id);
    assert_eq!(joined.error_code, 0);
    let assignments = joined
        .members
        .iter()
        .map(|m| {
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(m.member_id.clone())
                .with_assignment(bytes::Bytes::from_static(b"a"))
        })
        .collect();
    let ResponseKind::SyncGroup(sync) = client.call(
        ApiKey::SyncGroup,
        5,
        &RequestKind::SyncGroup(
            SyncGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_generation_id(joined.generation_id)
                .with_member_id(joined.member_id)
                .with_assignments(assignments),
        ),
    ) else {
        panic!("sync answer expected");
    };
    assert_eq!(sync.error_code, 0);
    assert_eq!(sync.assignment.as_ref(), b"a");
    Instant::now()
}

fn bench_rebalance(delay_ms: u64) {
    let delay = delay_ms.to_string();
    let broker = Broker::start(&[("group.initial.rebalance.delay.ms", delay.as_str())]);
    let mut client = Client::connect(&broker);
    client.call(
        ApiKey::FindCoordinator,
        4,
        &RequestKind::FindCoordinator(
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("x")]),
        ),
    );
    let mut totals = Vec::new();
    for run in 0..3 {
        let group = format!("rebalance-{run}");
        let barrier = Arc::new(Barrier::new(MEMBERS + 1));
        let handles: Vec<_> = (0..MEMBERS)
            .map(|_| {
                let (group, barrier, port) = (group.clone(), Arc::clone(&barrier), broker.port);
                std::thread::spawn(move || run_member(port, group, barrier))
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let last = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap();
        totals.push(last - started);
    }
    let total = median(totals);
    let needed = Duration::from_millis(2 * delay_ms);
    println!(
        "rebalance of {MEMBERS} members, initial delay {delay_ms} ms: median {:.1} ms; protocol needs {} ms (delay, extended once) -> overhead {:.1} ms",
        total.as_secs_f64() * 1e3,
        needed.as_millis(),
        (total.as_secs_f64() - needed.as_secs_f64()) * 1e3
    );
}

fn main() {
    bench_commit();
    bench_rebalance(300);
    bench_rebalance(3000);
}
