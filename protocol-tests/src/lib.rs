//! Test harness: starts the real `weir` binary and helps drive it over TCP.
//!
//! Every broker gets a free loopback port and its own temporary data directory, and is
//! stopped when its handle is dropped, so tests can run in parallel and leave nothing
//! behind. `WEIR_BIN` overrides where the binary is looked for.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of the broker binary built by `make build`.
pub fn weir_bin() -> PathBuf {
    if let Ok(path) = std::env::var("WEIR_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/weir")
}

/// A free loopback port (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running broker process.
pub struct Broker {
    binary: PathBuf,
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    overrides: Vec<(String, String)>,
    env: Vec<(String, String)>,
    log: Arc<Mutex<Vec<String>>>,
    _temp: Option<Arc<tempfile::TempDir>>,
}

impl Broker {
    /// Starts a broker on a free port with a fresh data directory.
    pub fn start(overrides: &[(&str, &str)]) -> Broker {
        Broker::start_with(overrides, &[], None)
    }

    /// Starts a broker with extra environment variables and, if given, a data directory
    /// of the test's own (a small file system, say) instead of a fresh temporary one.
    pub fn start_with(
        overrides: &[(&str, &str)],
        env: &[(&str, &str)],
        data_dir: Option<&Path>,
    ) -> Broker {
        let temp = match data_dir {
            Some(_) => None,
            None => Some(Arc::new(tempfile::tempdir().expect("temp dir"))),
        };
        let data_dir = data_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| temp.as_ref().expect("temp dir").path().to_path_buf());
        let mut broker = Broker::unstarted(free_port(), overrides, env, data_dir, temp);
        broker.spawn();
        broker
    }

    /// A weir broker not started yet.
    fn unstarted(
        port: u16,
        overrides: &[(&str, &str)],
        env: &[(&str, &str)],
        data_dir: PathBuf,
        temp: Option<Arc<tempfile::TempDir>>,
    ) -> Broker {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Broker {
            binary: weir_bin(),
            child: None,
            port,
            data_dir,
            overrides: pairs(overrides),
            env: pairs(env),
            log: Arc::new(Mutex::new(Vec::new())),
            _temp: temp,
        }
    }

    /// Starts Apache Kafka itself (`scripts/kafka-as-weir`: a single KRaft node from the
    /// jars `scripts/setup.sh` installed) as the reference for differential tests. None, with
    /// one line on stderr, when the jars are not installed.
    pub fn start_reference(overrides: &[(&str, &str)]) -> Option<Broker> {
        let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts");
        let libs = Command::new(scripts.join("kafka-tool"))
            .arg("--libs")
            .output()
            .ok()?;
        let libs = PathBuf::from(String::from_utf8_lossy(&libs.stdout).trim());
        if !libs.join(".complete").exists() {
            eprintln!("skipped: Kafka's jars are not installed (scripts/setup.sh)");
            return None;
        }
        let temp = Arc::new(tempfile::tempdir().expect("temp dir"));
        // Inside the temporary directory, so that kafka-as-weir's files beside the data
        // directory go with it.
        let data_dir = temp.path().join("data");
        let mut broker = Broker::unstarted(free_port(), overrides, &[], data_dir, Some(temp));
        broker.binary = scripts.join("kafka-as-weir");
        broker.spawn();
        Some(broker)
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts a broker on a given client port (a cluster member, whose ports its peers
    /// know): no retry on another port.
    pub fn start_on(
        port: u16,
        overrides: &[(&str, &str)],
        env: &[(&str, &str)],
        data_dir: &Path,
    ) -> Broker {
        Broker::try_start_on(port, overrides, env, data_dir)
            .unwrap_or_else(|| panic!("port {port} was taken"))
    }

    /// As [`Broker::start_on`]; None if one of its ports was taken meanwhile.
    pub fn try_start_on(
        port: u16,
        overrides: &[(&str, &str)],
        env: &[(&str, &str)],
        data_dir: &Path,
    ) -> Option<Broker> {
        let mut broker = Broker::unstarted(port, overrides, env, data_dir.to_path_buf(), None);
        broker.spawn_once().then_some(broker)
    }

    /// Starts the process; if its port was taken meanwhile, on another free port.
    fn spawn(&mut self) {
        for _ in 0..5 {
            if self.spawn_once() {
                return;
            }
            self.port = free_port();
        }
        panic!("no free port could be bound:\n{}", self.log_text());
    }

    fn spawn_once(&mut self) -> bool {
        let mut command = Command::new(&self.binary);
        command
            .arg("--override")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port))
            .arg("--override")
            .arg(format!("log.dirs={}", self.data_dir.display()))
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.overrides {
            command.arg("--override").arg(format!("{k}={v}"));
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let first_line = self.log.lock().unwrap().len();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
        self.wait_ready(first_line)
    }

    /// Waits until this broker (not another process that took the same port) listens.
    /// Returns false if it could not bind its port, which a parallel test may have taken
    /// between `free_port` and the bind.
    fn wait_ready(&mut self, first_line: usize) -> bool {
        // A JVM (the reference Kafka) takes seconds where weir takes milliseconds.
        let deadline = Instant::now() + Duration::from_secs(60);
        let listening = format!("127.0.0.1:{}", self.port);
        // Every listener is bound before any serves; a node with a controller listener
        // has started only once that one is bound too.
        let listeners = self
            .overrides
            .iter()
            .find(|(k, _)| k == "listeners")
            .map_or(1, |(_, v)| v.split(',').count());
        while Instant::now() < deadline {
            let (ours, bound) = {
                let log = self.log.lock().unwrap();
                let lines = || log.iter().skip(first_line);
                (
                    lines().any(|l| l.contains("listening") && l.contains(&listening)),
                    lines()
                        .filter(|l| l.contains("listening listener="))
                        .count(),
                )
            };
            // (The reference Kafka logs its listeners another way: bound stays 0.)
            if ours && (bound == 0 || bound >= listeners) {
                return true;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                // Let the log reader catch the last lines.
                std::thread::sleep(Duration::from_millis(50));
                let log = self.log.lock().unwrap()[first_line..].join("\n");
                if log.contains("cannot bind listener") {
                    self.child = None;
                    return false;
                }
                panic!(
                    "broker exited with {status} before serving:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("broker did not start listening:\n{}", self.log_text());
    }

    /// The broker's log so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The broker's resident memory now and at its peak (VmRSS, VmHWM), in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let pid = self.child.as_ref().expect("broker running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Waits for the process to exit by itself; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// SIGTERM and wait: a graceful shutdown. Returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("broker did not stop within 20s of SIGTERM");
    }

    /// Sends a signal by name (STOP, CONT, ...) to the running process; for STOP and
    /// CONT, returns once the process is stopped or running again.
    pub fn signal(&mut self, name: &str) {
        let Some(child) = &self.child else {
            return;
        };
        let pid = child.id();
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} {pid} failed");
        let stopped = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? == "T"))
                .unwrap_or(false)
        };
        let want = match name {
            "STOP" => true,
            "CONT" => false,
            _ => return,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while stopped() != want {
            assert!(Instant::now() < deadline, "{pid} did not take SIG{name}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGKILL: a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What a node of a test cluster is (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Combined,
    Controller,
    Broker,
    /// A broker given `controller.quorum.bootstrap.servers` instead of the voters.
    BootstrapBroker,
}

/// Several weir nodes forming one cluster on loopback: node ids 1..=n, by default each a
/// combined broker and controller with a client port and a controller port, one cluster
/// id, data in one temporary directory per node.
pub struct Cluster {
    pub nodes: Vec<Broker>,
    pub controller_ports: Vec<u16>,
    pub cluster_id: String,
    _temp: tempfile::TempDir,
}

impl Cluster {
    /// Short timeouts for tests: heartbeats every 200 ms, fenced after 2 s.
    pub const TEST_SETTINGS: &'static [(&'static str, &'static str)] = &[
        ("broker.heartbeat.interval.ms", "200"),
        ("broker.session.timeout.ms", "2000"),
        ("controller.quorum.election.timeout.ms", "1000"),
    ];

    pub fn start(n: usize, overrides: &[(&str, &str)]) -> Cluster {
        Cluster::start_each(n, overrides, &[])
    }

    /// Kafka's isolated mode: nodes 1..=controllers are controller-only voters, the next
    /// `brokers` nodes broker-only, the last of them given the controllers as
    /// `controller.quorum.bootstrap.servers` instead of `controller.quorum.voters`. A
    /// controller-only node's `port` is its controller port.
    pub fn start_isolated(
        controllers: usize,
        brokers: usize,
        overrides: &[(&str, &str)],
    ) -> Cluster {
        let roles: Vec<Role> = (0..controllers)
            .map(|_| Role::Controller)
            .chain((1..brokers).map(|_| Role::Broker))
            .chain((brokers > 0).then_some(Role::BootstrapBroker))
            .collect();
        Cluster::start_roles(&roles, overrides, &[])
    }

    /// As [`Cluster::start`], with settings for single nodes: `per_node[i]` for node `i + 1`.
    pub fn start_each(
        n: usize,
        overrides: &[(&str, &str)],
        per_node: &[&[(&str, &str)]],
    ) -> Cluster {
        Cluster::start_roles(&vec![Role::Combined; n], overrides, per_node)
    }

    fn start_roles(
        roles: &[Role],
        overrides: &[(&str, &str)],
        per_node: &[&[(&str, &str)]],
    ) -> Cluster {
        let n = roles.len();
        let temp = tempfile::tempdir().expect("temp dir");
        let out = Command::new(weir_bin())
            .arg("random-uuid")
            .output()
            .unwrap();
        let cluster_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // Free ports can be taken by a test running beside this one before the nodes
        // bind them: then the whole cluster starts again on other ports.
        let mut attempt = 0;
        loop {
            let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
            let dir = temp.path().join(format!("attempt{attempt}"));
            if let Some(nodes) =
                Cluster::try_start(&ports, roles, &dir, &cluster_id, overrides, per_node)
            {
                return Cluster {
                    nodes,
                    controller_ports: ports.iter().map(|(_, c)| *c).collect(),
                    cluster_id,
                    _temp: temp,
                };
            }
            attempt += 1;
            assert!(
                attempt < 5,
                "no free ports for a cluster after {attempt} attempts"
            );
        }
    }

    /// Starts one node per (client port, controller port), together, as a cluster's first
    /// start is: each waits for the quorum. None if a port was taken.
    fn try_start(
        ports: &[(u16, u16)],
        roles: &[Role],
        dir: &Path,
        cluster_id: &str,
        overrides: &[(&str, &str)],
        per_node: &[&[(&str, &str)]],
    ) -> Option<Vec<Broker>> {
        let voters = ports
            .iter()
            .zip(roles)
            .enumerate()
            .filter(|(_, (_, role))| !matches!(role, Role::Broker | Role::BootstrapBroker))
            .map(|(i, ((_, c), _))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let handles: Vec<_> = ports
            .iter()
            .zip(roles)
            .enumerate()
            .map(|(i, ((p, c), role))| {
                let dir = dir.join(format!("node{}", i + 1));
                let (port, listeners, process_roles) = match role {
                    Role::Combined => (
                        *p,
                        format!("PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}"),
                        "broker,controller",
                    ),
                    Role::Controller => (*c, format!("CONTROLLER://127.0.0.1:{c}"), "controller"),
                    Role::Broker | Role::BootstrapBroker => {
                        (*p, format!("PLAINTEXT://127.0.0.1:{p}"), "broker")
                    }
                };
                let p = port;
                let mut settings: Vec<(String, String)> = vec![
                    ("node.id".into(), (i + 1).to_string()),
                    ("process.roles".into(), process_roles.into()),
                    ("listeners".into(), listeners),
                    ("controller.listener.names".into(), "CONTROLLER".into()),
                    ("controller.quorum.voters".into(), voters.clone()),
                ];
                if *role == Role::BootstrapBroker {
                    let addresses: Vec<&str> = voters
                        .split(',')
                        .filter_map(|v| v.split_once('@'))
                        .map(|(_, a)| a)
                        .collect();
                    settings[4].1 = String::new();
                    settings.push((
                        "controller.quorum.bootstrap.servers".into(),
                        addresses.join(","),
                    ));
                }
                let own = per_node.get(i).copied().unwrap_or_default();
                for (k, v) in Cluster::TEST_SETTINGS.iter().chain(overrides).chain(own) {
                    settings.push((k.to_string(), v.to_string()));
                }
                let cluster_id = cluster_id.to_string();
                std::thread::spawn(move || {
                    let settings: Vec<(&str, &str)> = settings
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    Broker::try_start_on(p, &settings, &[("CLUSTER_ID", &cluster_id)], &dir)
                })
            })
            .collect();
        // Every node started is stopped (dropped) if another could not bind.
        let started: Vec<Option<Broker>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        started.into_iter().collect()
    }

    /// The node with this id (1-based).
    pub fn node(&mut self, id: i32) -> &mut Broker {
        &mut self.nodes[id as usize - 1]
    }

    /// Every running node's client address, comma-separated.
    pub fn bootstrap(&mut self) -> String {
        self.nodes
            .iter_mut()
            .filter_map(|n| n.is_running().then(|| n.bootstrap()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `controller.quorum.voters` value of this cluster.
    pub fn voters(&self) -> String {
        self.controller_ports
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}@127.0.0.1:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A TCP proxy in front of a broker whose connections can be cut, to test clients
/// across dropped connections.
pub struct Proxy {
    pub port: u16,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    /// Listens on `port` (0: any free port) and forwards to `upstream_port`.
    pub fn start(port: u16, upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let connections: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (conns, stopped) = (Arc::clone(&connections), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                            continue;
                        };
                        let mut list = conns.lock().unwrap();
                        list.push(client.try_clone().unwrap());
                        list.push(server.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy {
            port,
            connections,
            stop,
        }
    }

    /// Cuts every connection open through the proxy.
    pub fn sever(&self) {
        for c in self.connections.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.sever();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

pub mod clients;
pub mod raw;
