//! Start-up and configuration of the real binary: the no-argument default, layering of
//! file < KAFKA_* environment < --override, and refusal of invalid values.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocol_tests::{free_port, weir_bin};

fn wait_for_port(port: u16, timeout: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kcat_list(port: u16) -> String {
    let out = Command::new("kcat")
        .args(["-b", &format!("127.0.0.1:{port}"), "-L", "-t", "auto-made"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_arguments_serves_on_9092_with_data_in_dot_data() {
    assert!(
        TcpStream::connect("127.0.0.1:9092").is_err(),
        "port 9092 must be free for this test (is another broker running?)"
    );
    let cwd = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let _child = Killed(
        Command::new(weir_bin())
            .current_dir(cwd.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ready = wait_for_port(9092, Duration::from_secs(10)).expect("serving on 127.0.0.1:9092");
    eprintln!(
        "ready after {:?} (spawn to accepting)",
        started.elapsed().max(ready)
    );
    assert!(
        ready < Duration::from_secs(1),
        "serving within a fraction of a second: {ready:?}"
    );
    assert!(
        cwd.path().join("data/meta.properties").exists(),
        "data in ./data"
    );
    assert!(kcat_list(9092).contains("broker 1 at 127.0.0.1:9092"));
}

#[test]
fn file_then_environment_then_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let file = dir.path().join("server.properties");
    std::fs::write(
        &file,
        format!(
            "# a Kafka-style file\nnode.id=3\nnum.partitions=2\nlisteners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={}\n",
            dir.path().join("logs").display()
        ),
    )
    .unwrap();
    let _child = Killed(
        Command::new(weir_bin())
            .arg(&file)
            .args(["--override", "node.id=7"])
            .env("KAFKA_NUM_PARTITIONS", "5")
            .env("KAFKA_NODE_ID", "4")
            .env("KAFKA_HEAP_OPTS", "-Xmx1G")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, Duration::from_secs(10)).expect("serving");
    // Metadata auto-creates the topic with num.partitions from the environment.
    let _ = kcat_list(port);
    let listing = kcat_list(port);
    assert!(
        listing.contains("topic \"auto-made\" with 5 partitions"),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("broker 7 at 127.0.0.1:{port}")),
        "override wins: {listing}"
    );
    assert!(
        dir.path().join("logs/auto-made-4").is_dir(),
        "log.dirs from the file"
    );
}

#[test]
fn invalid_values_stop_start_up_and_unknown_keys_warn() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(weir_bin())
        .args([
            "--override",
            "num.partitions=lots",
            "--override",
            &format!("log.dirs={}", dir.path().display()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("num.partitions") && stderr.contains("lots"),
        "{stderr}"
    );

    let out = Command::new(weir_bin())
        .args(["--override", "listeners=nonsense"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listeners"));

    // A Kafka key this broker does not act on is still type-checked.
    let out = Command::new(weir_bin())
        .args(["--override", "socket.listen.backlog.size=many"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("socket.listen.backlog.size"));

    let port = free_port();
    let mut child = Killed(
        Command::new(weir_bin())
            .args([
                "--override",
                &format!("listeners=PLAINTEXT://127.0.0.1:{port}"),
            ])
            .args(["--override", &format!("log.dirs={}", dir.path().display())])
            .args(["--override", "made.up.key=1"])
            // Kafka keys without effect here start quietly.
            .args(["--override", "ssl.keystore.type=PKCS12"])
            .args(["--override", "num.network.threads=3"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, Duration::from_secs(10)).expect("an unknown key does not stop start-up");
    let _ = child.0.kill();
    let out = child.0.wait_with_output_ref();
    assert!(
        out.contains("unknown configuration key") && out.contains("made.up.key"),
        "{out}"
    );
    assert_eq!(out.matches("unknown configuration key").count(), 1, "{out}");
}

trait WaitOutput {
    fn wait_with_output_ref(&mut self) -> String;
}

impl WaitOutput for std::process::Child {
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut text = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut text);
        }
        text
    }
}
