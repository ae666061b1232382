//! kcat, as Debian packages it (librdkafka 2.0), against the real broker.

use std::io::Write;
use std::process::{Command, Stdio};

use protocol_tests::Broker;

fn kcat(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed by scripts/setup.sh");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kcat {args:?} failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn kcat_lists_produces_and_consumes() {
    let broker = Broker::start(&[("num.partitions", "3")]);
    let b = broker.bootstrap();
    let lines: String = (0..100)
        .map(|i| format!("key{}:value{i}\n", i % 10))
        .collect();
    kcat(
        &[
            "-b",
            &b,
            "-P",
            "-t",
            "kcat-topic",
            "-K",
            ":",
            "-X",
            "topic.request.required.acks=all",
        ],
        Some(&lines),
    );

    let listing = kcat(&["-b", &b, "-L"], None);
    assert!(listing.contains("1 brokers:"), "{listing}");
    assert!(
        listing.contains(&format!("broker 1 at 127.0.0.1:{}", broker.port)),
        "{listing}"
    );
    assert!(
        listing.contains("topic \"kcat-topic\" with 3 partitions"),
        "{listing}"
    );

    let consumed = kcat(
        &[
            "-b",
            &b,
            "-C",
            "-t",
            "kcat-topic",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%p %k=%s\n",
        ],
        None,
    );
    let mut got: Vec<&str> = consumed.lines().collect();
    assert_eq!(got.len(), 100, "{consumed}");
    got.sort_unstable();
    for i in 0..100 {
        let key = format!("key{}", i % 10);
        assert!(
            got.iter().any(|l| l.ends_with(&format!("{key}=value{i}"))),
            "value{i} missing"
        );
    }
    // Every key went to one partition.
    for k in 0..10 {
        let partitions: std::collections::HashSet<&str> = got
            .iter()
            .filter(|l| l.contains(&format!(" key{k}=")))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(partitions.len(), 1, "key{k} in one partition");
    }
}

#[test]
fn kcat_compressed_produce_round_trips() {
    let broker = Broker::start(&[]);
    let b = broker.bootstrap();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("kcat-{codec}");
        let lines: String = (0..50).map(|i| format!("{codec}-{i}\n")).collect();
        kcat(&["-b", &b, "-P", "-t", &topic, "-z", codec], Some(&lines));
        let consumed = kcat(
            &[
                "-b",
                &b,
                "-C",
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
                "-f",
                "%s\n",
            ],
            None,
        );
        assert_eq!(consumed, lines, "{codec}");
    }
}

#[test]
fn kcat_balanced_consumer_commits_and_resumes() {
    let broker = Broker::start(&[
        ("num.partitions", "2"),
        ("group.initial.rebalance.delay.ms", "0"),
    ]);
    let b = broker.bootstrap();
    let lines: String = (0..100).map(|i| format!("v{i}\n")).collect();
    kcat(&["-b", &b, "-P", "-t", "kcat-group"], Some(&lines));
    let group_read = |count: &str| {
        kcat(
            &[
                "-b",
                &b,
                "-G",
                "kcat-g",
                "-X",
                "auto.offset.reset=earliest",
                "-c",
                count,
                "kcat-group",
            ],
            None,
        )
    };
    let first = group_read("60");
    let second = group_read("40");
    let mut all: Vec<&str> = first.lines().chain(second.lines()).collect();
    all.sort_by_key(|v| v[1..].parse::<u32>().unwrap());
    let expected: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    assert_eq!(
        all, expected,
        "the second run resumed at the first run's commit"
    );
}
