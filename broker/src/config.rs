//! Broker configuration, the Kafka way.
//!
//! Values come from four layers, later ones winning: the embedded defaults (a single node
//! on 127.0.0.1:9092 with data in `./data`), a `server.properties` file, the environment
//! variables the `apache/kafka` image reads (`KAFKA_` + upper-cased key, `.` as `_`, `__`
//! as `_`, `___` as `-`), and `--override key=value`. figment does the layering; every
//! value stays tagged with the layer it came from, which is what DescribeConfigs reports
//! as its source.
//!
//! Key names and defaults are Kafka's. Each known key has one [`ConfigDef`] with its type;
//! a value that does not parse as that type stops start-up with a message naming the key
//! and the value. Unknown keys only warn, as Kafka does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::Serialized;
use figment::Figment;

/// The type of a config value, as Kafka's `ConfigDef.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    /// The `config_type` code of DescribeConfigs v3+.
    pub fn describe_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }

    /// Checks that `value` parses as this type.
    pub fn validate(self, value: &str) -> Result<(), String> {
        let value = value.trim();
        let ok = match self {
            ConfigType::Boolean => {
                value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
            }
            ConfigType::Int => value.parse::<i32>().is_ok(),
            ConfigType::Short => value.parse::<i16>().is_ok(),
            ConfigType::Long => value.parse::<i64>().is_ok(),
            ConfigType::Double => value.parse::<f64>().is_ok(),
            ConfigType::String | ConfigType::List | ConfigType::Class | ConfigType::Password => {
                true
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expected a value of type {self:?}"))
        }
    }
}

/// One broker config key Kafka knows, with its default (None: Kafka's `null`).
#[derive(Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    kind: ConfigType,
    default: Option<&'static str>,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef {
        name,
        kind,
        default,
        doc,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, Password, Short, String as Str};

/// Every broker key this broker reads or knowingly accepts, with Kafka 4.1's defaults.
/// The first group drives behaviour; the rest are accepted so that a stock
/// `server.properties` or compose file starts without warnings.
pub static BROKER_CONFIGS: &[ConfigDef] = &[
    def("node.id", Int, Some("1"), "The node id of this server."),
    def(
        "process.roles",
        List,
        Some("broker,controller"),
        "The roles this process plays.",
    ),
    def(
        "controller.quorum.voters",
        List,
        Some(""),
        "Map of id/endpoint of the voters of the metadata quorum.",
    ),
    def(
        "controller.quorum.bootstrap.servers",
        List,
        Some(""),
        "Endpoints used to discover the metadata quorum.",
    ),
    def(
        "controller.listener.names",
        List,
        Some(""),
        "Listener names used by the controller.",
    ),
    def(
        "listeners",
        List,
        Some("PLAINTEXT://127.0.0.1:9092"),
        "Listener URIs to bind.",
    ),
    def(
        "advertised.listeners",
        List,
        None,
        "Listeners published to clients; defaults to listeners.",
    ),
    def(
        "listener.security.protocol.map",
        List,
        Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"),
        "Listener name to security protocol.",
    ),
    def(
        "inter.broker.listener.name",
        Str,
        None,
        "Listener used between brokers.",
    ),
    def(
        "log.dirs",
        List,
        Some("./data"),
        "Directories in which log data is kept.",
    ),
    def(
        "log.dir",
        Str,
        Some("/tmp/kafka-logs"),
        "Log directory, used when log.dirs is not set.",
    ),
    def(
        "num.partitions",
        Int,
        Some("1"),
        "Default number of partitions per topic.",
    ),
    def(
        "default.replication.factor",
        Short,
        Some("1"),
        "Default replication factor of automatically created topics.",
    ),
    def(
        "auto.create.topics.enable",
        Boolean,
        Some("true"),
        "Create topics on first use in Metadata.",
    ),
    def(
        "delete.topic.enable",
        Boolean,
        Some("true"),
        "Whether topics may be deleted.",
    ),
    def(
        "message.max.bytes",
        Int,
        Some("1048588"),
        "Largest record batch size allowed.",
    ),
    def(
        "socket.request.max.bytes",
        Int,
        Some("104857600"),
        "Largest request size allowed.",
    ),
    def(
        "queued.max.requests",
        Int,
        Some("500"),
        "Requests in flight per connection before reading pauses.",
    ),
    def(
        "max.connections",
        Int,
        Some("2147483647"),
        "Maximum number of connections.",
    ),
    def(
        "max.connections.per.ip",
        Int,
        Some("2147483647"),
        "Maximum number of connections from one IP address; more are closed at once.",
    ),
    def(
        "connections.max.idle.ms",
        Long,
        Some("600000"),
        "Connections with no request or response for this long are closed.",
    ),
    def(
        "fetch.max.bytes",
        Int,
        Some("57671680"),
        "Largest response a Fetch request gets, whatever its own max_bytes says.",
    ),
    def(
        "log.segment.bytes",
        Int,
        Some("1073741824"),
        "Maximum size of a single log segment file.",
    ),
    def(
        "log.roll.ms",
        Long,
        None,
        "Maximum time before a new segment is rolled (ms).",
    ),
    def(
        "log.roll.hours",
        Int,
        Some("168"),
        "Maximum time before a new segment is rolled (hours).",
    ),
    def(
        "log.index.interval.bytes",
        Int,
        Some("4096"),
        "Bytes of log between offset index entries.",
    ),
    def(
        "log.index.size.max.bytes",
        Int,
        Some("10485760"),
        "Maximum size of an offset index file.",
    ),
    def(
        "log.flush.interval.messages",
        Long,
        Some("9223372036854775807"),
        "Messages appended before a flush is forced.",
    ),
    def(
        "log.flush.interval.ms",
        Long,
        None,
        "Longest time a message stays unflushed (ms).",
    ),
    def(
        "log.flush.scheduler.interval.ms",
        Long,
        Some("9223372036854775807"),
        "How often the flusher checks for logs to flush.",
    ),
    def(
        "log.flush.offset.checkpoint.interval.ms",
        Int,
        Some("60000"),
        "How often each log's recovery point is written to recovery-point-offset-checkpoint.",
    ),
    def(
        "log.retention.hours",
        Int,
        Some("168"),
        "Hours to keep a log segment.",
    ),
    def(
        "log.retention.minutes",
        Int,
        None,
        "Minutes to keep a log segment.",
    ),
    def(
        "log.retention.ms",
        Long,
        None,
        "Milliseconds to keep a log segment.",
    ),
    def(
        "log.retention.bytes",
        Long,
        Some("-1"),
        "Maximum size of a partition log before deletion.",
    ),
    def(
        "log.retention.check.interval.ms",
        Long,
        Some("300000"),
        "How often retention is checked.",
    ),
    def(
        "log.cleanup.policy",
        List,
        Some("delete"),
        "Default cleanup policy.",
    ),
    def(
        "log.cleaner.enable",
        Boolean,
        Some("true"),
        "Run the log cleaner for compacted topics.",
    ),
    def(
        "log.cleaner.backoff.ms",
        Long,
        Some("15000"),
        "Sleep between cleaner passes.",
    ),
    def(
        "log.cleaner.delete.retention.ms",
        Long,
        Some("86400000"),
        "How long delete markers are kept.",
    ),
    def(
        "log.cleaner.min.compaction.lag.ms",
        Long,
        Some("0"),
        "Minimum time a message stays uncompacted.",
    ),
    def(
        "log.cleaner.min.cleanable.ratio",
        Double,
        Some("0.5"),
        "Minimum dirty ratio for cleaning.",
    ),
    def(
        "log.segment.delete.delay.ms",
        Long,
        Some("60000"),
        "Delay before deleting a file from disk.",
    ),
    def(
        "log.message.timestamp.type",
        Str,
        Some("CreateTime"),
        "CreateTime or LogAppendTime.",
    ),
    def(
        "compression.type",
        Str,
        Some("producer"),
        "Final compression type of stored batches.",
    ),
    def(
        "min.insync.replicas",
        Int,
        Some("1"),
        "Minimum in-sync replicas for acks=all.",
    ),
    def(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        "Allow leaders outside the ISR.",
    ),
    def(
        "max.incremental.fetch.session.cache.slots",
        Int,
        Some("1000"),
        "Maximum number of incremental fetch sessions.",
    ),
    def(
        "producer.id.expiration.ms",
        Int,
        Some("86400000"),
        "How long producer id state is kept without writes.",
    ),
    def(
        "offsets.topic.num.partitions",
        Int,
        Some("50"),
        "Partitions of the offsets topic.",
    ),
    def(
        "offsets.topic.replication.factor",
        Short,
        Some("3"),
        "Replication factor of the offsets topic.",
    ),
    def(
        "offsets.retention.minutes",
        Int,
        Some("10080"),
        "How long committed offsets are kept.",
    ),
    def(
        "group.initial.rebalance.delay.ms",
        Int,
        Some("3000"),
        "Delay before the first rebalance of a new group.",
    ),
    def(
        "group.min.session.timeout.ms",
        Int,
        Some("6000"),
        "Minimum session timeout.",
    ),
    def(
        "group.max.session.timeout.ms",
        Int,
        Some("1800000"),
        "Maximum session timeout.",
    ),
    def(
        "group.max.size",
        Int,
        Some("2147483647"),
        "Maximum members of one group.",
    ),
    def(
        "offsets.retention.check.interval.ms",
        Long,
        Some("600000"),
        "How often committed offsets are checked for expiry.",
    ),
    def(
        "offsets.topic.segment.bytes",
        Int,
        Some("104857600"),
        "Segment size of the offsets topic.",
    ),
    def(
        "offsets.commit.timeout.ms",
        Int,
        Some("5000"),
        "How long an offset commit waits to be written.",
    ),
    def(
        "offset.metadata.max.bytes",
        Int,
        Some("4096"),
        "Largest metadata string kept with a committed offset.",
    ),
    def(
        "group.coordinator.rebalance.protocols",
        List,
        Some("classic,consumer,streams"),
        "Rebalance protocols the group coordinator accepts.",
    ),
    def(
        "group.consumer.session.timeout.ms",
        Int,
        Some("45000"),
        "Session timeout of consumer-protocol (KIP-848) members.",
    ),
    def(
        "group.consumer.min.session.timeout.ms",
        Int,
        Some("45000"),
        "Minimum session timeout of consumer-protocol members.",
    ),
    def(
        "group.consumer.max.session.timeout.ms",
        Int,
        Some("60000"),
        "Maximum session timeout of consumer-protocol members.",
    ),
    def(
        "group.consumer.heartbeat.interval.ms",
        Int,
        Some("5000"),
        "Heartbeat interval given to consumer-protocol members.",
    ),
    def(
        "group.consumer.min.heartbeat.interval.ms",
        Int,
        Some("5000"),
        "Minimum heartbeat interval of consumer-protocol members.",
    ),
    def(
        "group.consumer.max.heartbeat.interval.ms",
        Int,
        Some("15000"),
        "Maximum heartbeat interval of consumer-protocol members.",
    ),
    def(
        "group.consumer.max.size",
        Int,
        Some("2147483647"),
        "Maximum members of one consumer-protocol group.",
    ),
    def(
        "group.consumer.assignors",
        List,
        Some("uniform,range"),
        "Server-side assignors; the first is the default.",
    ),
    def(
        "transaction.state.log.replication.factor",
        Short,
        Some("3"),
        "Replication factor of the transaction topic.",
    ),
    def(
        "transaction.state.log.min.isr",
        Int,
        Some("2"),
        "Minimum ISR of the transaction topic.",
    ),
    def(
        "transaction.state.log.num.partitions",
        Int,
        Some("50"),
        "Partitions of the transaction topic.",
    ),
    def(
        "share.coordinator.state.topic.replication.factor",
        Short,
        Some("3"),
        "Replication factor of the share state topic.",
    ),
    def(
        "share.coordinator.state.topic.min.isr",
        Int,
        Some("2"),
        "Minimum ISR of the share state topic.",
    ),
    def(
        "num.network.threads",
        Int,
        Some("3"),
        "Accepted for compatibility; the runtime sizes its own threads.",
    ),
    def(
        "num.io.threads",
        Int,
        Some("8"),
        "Accepted for compatibility; the runtime sizes its own threads.",
    ),
    def(
        "num.recovery.threads.per.data.dir",
        Int,
        Some("2"),
        "Accepted for compatibility.",
    ),
    def(
        "socket.send.buffer.bytes",
        Int,
        Some("102400"),
        "SO_SNDBUF of sockets; -1 for the OS default.",
    ),
    def(
        "socket.receive.buffer.bytes",
        Int,
        Some("102400"),
        "SO_RCVBUF of sockets; -1 for the OS default.",
    ),
    def(
        "metadata.log.dir",
        Str,
        None,
        "Directory of the metadata log.",
    ),
    def(
        "metadata.log.max.record.bytes.between.snapshots",
        Long,
        Some("20971520"),
        "Bytes of metadata records after which a node writes a snapshot of the metadata image.",
    ),
    def(
        "metadata.log.max.snapshot.interval.ms",
        Long,
        Some("3600000"),
        "Longest time between metadata snapshots while records are committed; 0: no limit.",
    ),
    def(
        "ssl.keystore.password",
        Password,
        None,
        "Password of the key store.",
    ),
];

/// Environment variables of the `apache/kafka` image that are not broker configs.
const ENV_NOT_CONFIG: &[&str] = &[
    "KAFKA_VERSION",
    "KAFKA_HOME",
    "KAFKA_OPTS",
    "KAFKA_HEAP_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_DEBUG",
    "KAFKA_LOG_LEVEL",
];

/// Where a value came from, in DescribeConfigs' terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Kafka's DYNAMIC_BROKER_CONFIG: set for this broker with AlterConfigs.
    DynamicBroker,
    /// Kafka's DYNAMIC_DEFAULT_BROKER_CONFIG: set for every broker with AlterConfigs.
    DynamicDefaultBroker,
    /// Kafka's DEFAULT_CONFIG.
    Default,
    /// Kafka's STATIC_BROKER_CONFIG: the file, the environment or an override.
    StaticBroker,
}

impl ConfigSource {
    pub fn describe_code(self) -> i8 {
        match self {
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::Default => 5,
            ConfigSource::StaticBroker => 4,
        }
    }
}

/// A start-up config error; it names the key and the value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid value '{value}' for configuration {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    #[error("invalid argument '{0}': expected a config file path, or --override key=value")]
    Argument(String),
    #[error("configuration layering failed: {0}")]
    Layering(String),
}

/// `node.id`, with Kafka's `broker.id` as its synonym: either may be set; both must agree.
/// Returns the id and the source of the key that set it.
fn node_id(
    values: &BTreeMap<String, (String, ConfigSource)>,
    num: &dyn Fn(&str) -> Result<i64, ConfigError>,
) -> Result<(i32, ConfigSource), ConfigError> {
    let source = |key: &str| values.get(key).map_or(ConfigSource::Default, |(_, s)| *s);
    let invalid = |key: &str, value: i64, reason: &str| ConfigError::Invalid {
        key: key.into(),
        value: value.to_string(),
        reason: reason.into(),
    };
    let node_id = num("node.id")?;
    if !(0..=i32::MAX as i64).contains(&node_id) {
        return Err(invalid("node.id", node_id, "must be at least 0"));
    }
    // broker.id's own default, -1 ("none"), leaves node.id in charge.
    let broker_id = match source("broker.id") {
        ConfigSource::Default => -1,
        _ => num("broker.id")?,
    };
    if broker_id < 0 {
        return Ok((node_id as i32, source("node.id")));
    }
    if broker_id > i32::MAX as i64 {
        return Err(invalid("broker.id", broker_id, "out of range"));
    }
    if source("node.id") != ConfigSource::Default && node_id != broker_id {
        return Err(invalid(
            "node.id",
            node_id,
            "You must set `node.id` to the same value as `broker.id`.",
        ));
    }
    Ok((broker_id as i32, source("broker.id")))
}

/// A voter of the metadata quorum, from `controller.quorum.voters` (`id@host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

impl Voter {
    /// Where its controller listener is reached: `host:port`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Parses `controller.quorum.voters`, refusing malformed entries and repeated ids.
pub fn parse_voters(value: &str) -> Result<Vec<Voter>, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: "controller.quorum.voters".into(),
        value: value.to_string(),
        reason,
    };
    let mut voters: Vec<Voter> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once('@').and_then(|(id, endpoint)| {
            let (host, port) = endpoint.rsplit_once(':')?;
            Some(Voter {
                node_id: id.trim().parse().ok().filter(|id: &i32| *id >= 0)?,
                host: host.trim_matches(|c| c == '[' || c == ']').to_string(),
                port: port.parse().ok()?,
            })
        });
        let Some(voter) = parsed else {
            return Err(invalid(format!(
                "'{entry}' is not of the form {{id}}@{{host}}:{{port}}"
            )));
        };
        if voters.iter().any(|v| v.node_id == voter.node_id) {
            return Err(invalid(format!("node {} is listed twice", voter.node_id)));
        }
        voters.push(voter);
    }
    Ok(voters)
}

/// Checks `process.roles` and the quorum settings as Kafka 4.1 does: a controller is a
/// voter and a broker-only node is not; a controller-only node listens on controller
/// listeners only, a broker-only node on none. A dynamic quorum is refused, naming what
/// was asked.
fn check_quorum(node_id: i32, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    let roles_value = get("process.roles").unwrap_or_default();
    let mut roles: Vec<&str> = Vec::new();
    for role in roles_value
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        let invalid = |reason: String| ConfigError::Invalid {
            key: "process.roles".into(),
            value: roles_value.clone(),
            reason,
        };
        if role != "broker" && role != "controller" {
            return Err(invalid(format!(
                "Unknown process role '{role}' (only 'broker' and 'controller' are allowed roles)"
            )));
        }
        if roles.contains(&role) {
            return Err(invalid(format!(
                "Duplicate role names found in `process.roles`: {roles_value}"
            )));
        }
        roles.push(role);
    }
    let voters_value = get("controller.quorum.voters").unwrap_or_default();
    let voters = parse_voters(&voters_value)?;
    let ids: Vec<i32> = voters.iter().map(|v| v.node_id).collect();
    let is_controller = roles.contains(&"controller");
    if !voters.is_empty() && is_controller != ids.contains(&node_id) {
        let reason = if is_controller {
            format!(
                "If process.roles contains the 'controller' role, the node id {node_id} must be \
                 included in the set of voters controller.quorum.voters={ids:?}"
            )
        } else {
            format!(
                "If process.roles contains just the 'broker' role, the node id {node_id} must \
                 not be included in the set of voters controller.quorum.voters={ids:?}"
            )
        };
        return Err(ConfigError::Invalid {
            key: "controller.quorum.voters".into(),
            value: voters_value,
            reason,
        });
    }
    let bootstrap = get("controller.quorum.bootstrap.servers").unwrap_or_default();
    let bootstrap_count = bootstrap
        .split(',')
        .filter(|e| !e.trim().is_empty())
        .count();
    let not_yet = |key: &str, value: String, what: &str| ConfigError::Invalid {
        key: key.into(),
        value,
        reason: format!(
            "{what} is not supported yet: the voters are listed in controller.quorum.voters"
        ),
    };
    if roles.is_empty() {
        return Err(ConfigError::Invalid {
            key: "process.roles".into(),
            value: roles_value,
            reason: "process.roles must be set: broker, controller, or both".into(),
        });
    }
    let names: Vec<String> = get("controller.listener.names")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    let bound: Vec<String> = parse_listeners("listeners", &get("listeners").unwrap_or_default())
        .map(|l| l.into_iter().map(|l| l.name).collect())
        .unwrap_or_default();
    if roles == ["broker"] {
        if voters.is_empty() && bootstrap_count == 0 {
            return Err(ConfigError::Invalid {
                key: "controller.quorum.bootstrap.servers".into(),
                value: bootstrap.clone(),
                reason: "a broker-only node needs controller.quorum.voters or controller.quorum.bootstrap.servers to find the controllers".into(),
            });
        }
        if let Some(name) = bound.iter().find(|b| names.contains(b)) {
            return Err(ConfigError::Invalid {
                key: "listeners".into(),
                value: get("listeners").unwrap_or_default(),
                reason: format!("controller.listener.names must not contain a value appearing in the 'listeners' configuration when running KRaft with just the broker role: {name}"),
            });
        }
    }
    if roles == ["controller"] {
        if let Some(name) = bound.iter().find(|b| !names.contains(b)) {
            return Err(ConfigError::Invalid {
                key: "listeners".into(),
                value: get("listeners").unwrap_or_default(),
                reason: format!("The listeners config must only contain KRaft controller listeners from controller.listener.names when process.roles=controller: {name} is not one"),
            });
        }
    }
    // Several bootstrap servers without voters are a dynamic quorum for a controller; a
    // broker only uses them to find the controllers.
    if voters.is_empty() && bootstrap_count > 1 && is_controller {
        return Err(not_yet(
            "controller.quorum.bootstrap.servers",
            bootstrap,
            "a dynamic quorum (KIP-853)",
        ));
    }
    // A voter of several, or one that serves brokers of their own, is reached on its
    // controller listener.
    if is_controller && (voters.len() > 1 || roles == ["controller"]) {
        let first = names.first();
        if !first.is_some_and(|n| bound.iter().any(|b| b == n)) {
            return Err(ConfigError::Invalid {
                key: "controller.listener.names".into(),
                value: names.join(","),
                reason: "controller.listener.names must contain at least one value appearing in the 'listeners' configuration when running the KRaft controller role".into(),
            });
        }
    }
    Ok(())
}

/// A listener: its name and where it binds or is advertised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// The layered, validated broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    values: BTreeMap<String, (String, ConfigSource)>,
    pub node_id: i32,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub message_max_bytes: i32,
    pub socket_request_max_bytes: usize,
    pub queued_max_requests: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub connections_max_idle_ms: i64,
    pub fetch_max_bytes: usize,
    pub log_index_interval_bytes: u32,
    pub log_flush_interval_messages: i64,
    pub log_flush_interval_ms: Option<i64>,
    pub log_flush_scheduler_interval_ms: i64,
    pub max_incremental_fetch_session_cache_slots: usize,
    /// `controller.quorum.voters`; empty or this node alone for a single node.
    pub voters: Vec<Voter>,
    /// The listener of `controller.listener.names` that is bound, when there is one.
    pub controller_listener: Option<String>,
    /// `controller.quorum.bootstrap.servers` (`host:port`): where a broker-only node without
    /// `controller.quorum.voters` first asks for the metadata log.
    pub quorum_bootstrap: Vec<String>,
    /// `process.roles` has `broker`: the node registers, holds partitions and serves clients.
    pub is_broker: bool,
    /// `process.roles` has `controller`: the node is a voter of the metadata quorum.
    pub is_controller: bool,
    pub socket_send_buffer_bytes: i32,
    pub socket_receive_buffer_bytes: i32,
}

impl BrokerConfig {
    /// The listeners clients are given (every advertised one but the controller
    /// listener), with a wildcard or empty host advertised as `localhost`.
    pub fn client_endpoints(&self) -> impl Iterator<Item = Listener> + '_ {
        self.advertised_listeners
            .iter()
            .filter(|l| Some(&l.name) != self.controller_listener.as_ref())
            .map(|l| Listener {
                host: if l.host.is_empty() || l.host == "0.0.0.0" {
                    "localhost".into()
                } else {
                    l.host.clone()
                },
                ..l.clone()
            })
    }

    /// Whether this node is part of a cluster, not a lone node: one of several voters, a
    /// broker of other voters, or a controller of other brokers.
    pub fn is_cluster(&self) -> bool {
        !(self.is_broker && self.is_controller)
            || self.voters.iter().any(|v| v.node_id != self.node_id)
    }

    /// Loads the config from `weir [server.properties] [--override key=value ...]` and
    /// the process environment.
    pub fn load(args: &[String]) -> Result<BrokerConfig, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(args, &env)
    }

    /// As [`BrokerConfig::load`], with the environment given (so tests need not set it).
    pub fn load_from(
        args: &[String],
        env: &[(String, String)],
    ) -> Result<BrokerConfig, ConfigError> {
        let mut file: Option<PathBuf> = None;
        let mut overrides = BTreeMap::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if arg == "--override" {
                let pair = iter
                    .next()
                    .ok_or_else(|| ConfigError::Argument(arg.clone()))?;
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| ConfigError::Argument(pair.clone()))?;
                overrides.insert(key.trim().to_string(), value.trim().to_string());
            } else if file.is_none() && !arg.starts_with('-') {
                file = Some(PathBuf::from(arg));
            } else {
                return Err(ConfigError::Argument(arg.clone()));
            }
        }
        let file_values = match &file {
            Some(path) => parse_properties(&read_file(path)?),
            None => BTreeMap::new(),
        };
        let env_values = env_to_configs(env);

        let set_by_user: std::collections::BTreeSet<String> = file_values
            .keys()
            .chain(env_values.keys())
            .chain(overrides.keys())
            .cloned()
            .collect();
        let defaults: BTreeMap<String, String> = BROKER_CONFIGS
            .iter()
            .filter_map(|d| d.default.map(|v| (d.name.to_string(), v.to_string())))
            .collect();
        let merged: BTreeMap<String, String> = Figment::new()
            .merge(Serialized::defaults(defaults))
            .merge(Serialized::defaults(file_values))
            .merge(Serialized::defaults(env_values))
            .merge(Serialized::defaults(overrides))
            .extract()
            .map_err(|e| ConfigError::Layering(e.to_string()))?;
        let values = merged
            .into_iter()
            .map(|(key, value)| {
                let source = if set_by_user.contains(&key) {
                    ConfigSource::StaticBroker
                } else {
                    ConfigSource::Default
                };
                (key, (value, source))
            })
            .collect();
        Self::from_values(values)
    }

    fn from_values(
        values: BTreeMap<String, (String, ConfigSource)>,
    ) -> Result<BrokerConfig, ConfigError> {
        for (key, (value, _)) in &values {
            // Keys this broker reads, then Kafka keys it accepts without acting on them: both
            // are type-checked. Topic-level names are checked by the topic config table.
            let kind = BROKER_CONFIGS
                .iter()
                .find(|d| d.name == key)
                .map(|d| d.kind)
                .or_else(|| kafka_broker_key(key).map(|k| k.kind));
            match kind {
                Some(kind) => kind
                    .validate(value)
                    .map_err(|reason| ConfigError::Invalid {
                        key: key.clone(),
                        value: value.clone(),
                        reason,
                    })?,
                None if is_topic_level_broker_key(key) => {}
                None => tracing::warn!(key = %key, "unknown configuration key, ignored"),
            }
        }
        let get = |key: &str| values.get(key).map(|(v, _)| v.trim().to_string());
        let num = |key: &str| -> Result<i64, ConfigError> {
            let value = get(key).unwrap_or_default();
            value.parse::<i64>().map_err(|e| ConfigError::Invalid {
                key: key.to_string(),
                value,
                reason: e.to_string(),
            })
        };
        let positive = |key: &str| -> Result<i64, ConfigError> {
            let n = num(key)?;
            if n <= 0 {
                return Err(ConfigError::Invalid {
                    key: key.to_string(),
                    value: n.to_string(),
                    reason: "must be positive".into(),
                });
            }
            Ok(n)
        };
        let flag = |key: &str| get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"));

        let listeners = parse_listeners("listeners", &get("listeners").unwrap_or_default())?;
        let advertised_listeners = match get("advertised.listeners") {
            Some(v) if !v.is_empty() => parse_listeners("advertised.listeners", &v)?,
            _ => listeners.clone(),
        };
        let log_dirs = get("log.dirs")
            .filter(|v| !v.is_empty())
            .or_else(|| get("log.dir"))
            .unwrap_or_default();
        let log_dir = log_dirs.split(',').next().unwrap_or("./data").trim();
        if log_dirs.contains(',') {
            tracing::warn!(log_dirs = %log_dirs, "several log.dirs are given; this broker uses the first one");
        }
        let segment_bytes = num("log.segment.bytes")?;
        if segment_bytes < crate::log::SEGMENT_BYTES_MIN {
            return Err(ConfigError::Invalid {
                key: "log.segment.bytes".into(),
                value: segment_bytes.to_string(),
                reason: "Value must be at least 1048576".into(),
            });
        }
        let log_flush_interval_ms = get("log.flush.interval.ms")
            .map(|_| positive("log.flush.interval.ms"))
            .transpose()?;
        let message_timestamp_type = get("log.message.timestamp.type").unwrap_or_default();
        if message_timestamp_type != "CreateTime" && message_timestamp_type != "LogAppendTime" {
            return Err(ConfigError::Invalid {
                key: "log.message.timestamp.type".into(),
                value: message_timestamp_type,
                reason: "must be CreateTime or LogAppendTime".into(),
            });
        }
        if let Some(codec) = get("compression.type") {
            if crate::log::TopicConfig::parse_compression(&codec).is_none() {
                return Err(ConfigError::Invalid {
                    key: "compression.type".into(),
                    value: codec,
                    reason: "must be one of uncompressed, zstd, lz4, snappy, gzip, producer".into(),
                });
            }
        }
        let (node_id, id_source) = node_id(&values, &num)?;
        check_quorum(node_id, &get)?;
        let roles: Vec<String> = get("process.roles")
            .unwrap_or_default()
            .split(',')
            .map(|r| r.trim().to_string())
            .collect();
        let voters = parse_voters(&get("controller.quorum.voters").unwrap_or_default())?;
        let controller_listener = get("controller.listener.names")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .find(|name| listeners.iter().any(|l| l.name == *name))
            .map(str::to_string);
        let mut config = BrokerConfig {
            node_id,
            listeners,
            advertised_listeners,
            log_dir: PathBuf::from(log_dir),
            num_partitions: positive("num.partitions")? as i32,
            default_replication_factor: positive("default.replication.factor")? as i16,
            auto_create_topics_enable: flag("auto.create.topics.enable"),
            delete_topic_enable: flag("delete.topic.enable"),
            message_max_bytes: positive("message.max.bytes")? as i32,
            socket_request_max_bytes: positive("socket.request.max.bytes")? as usize,
            queued_max_requests: positive("queued.max.requests")? as usize,
            max_connections: positive("max.connections")? as usize,
            max_connections_per_ip: positive("max.connections.per.ip")? as usize,
            connections_max_idle_ms: positive("connections.max.idle.ms")?,
            fetch_max_bytes: positive("fetch.max.bytes")? as usize,
            log_index_interval_bytes: positive("log.index.interval.bytes")?.min(i32::MAX as i64)
                as u32,
            log_flush_interval_messages: positive("log.flush.interval.messages")?,
            log_flush_interval_ms,
            log_flush_scheduler_interval_ms: positive("log.flush.scheduler.interval.ms")?,
            max_incremental_fetch_session_cache_slots: num(
                "max.incremental.fetch.session.cache.slots",
            )?
            .max(0) as usize,
            socket_send_buffer_bytes: num("socket.send.buffer.bytes")? as i32,
            socket_receive_buffer_bytes: num("socket.receive.buffer.bytes")? as i32,
            voters,
            controller_listener,
            quorum_bootstrap: get("controller.quorum.bootstrap.servers")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
            is_broker: roles.iter().any(|r| r == "broker"),
            is_controller: roles.iter().any(|r| r == "controller"),
            values,
        };
        // Synonyms: both report the node id in force, as Kafka 4.1's DescribeConfigs does.
        for key in ["node.id", "broker.id"] {
            config
                .values
                .insert(key.into(), (node_id.to_string(), id_source));
        }
        Ok(config)
    }

    /// The raw value of a key and where it came from.
    pub fn value(&self, key: &str) -> Option<(&str, ConfigSource)> {
        self.values.get(key).map(|(v, s)| (v.as_str(), *s))
    }

    /// The effective value of a key, or Kafka's default when it has one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.value(key).map(|(v, _)| v)
    }

    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.trim().parse().ok())
    }

    /// This config with dynamic broker configs laid over it: the cluster-wide defaults,
    /// then this broker's own, each winning over what is below it.
    pub fn with_dynamic(
        &self,
        cluster_default: &BTreeMap<String, String>,
        this_broker: &BTreeMap<String, String>,
    ) -> BrokerConfig {
        let mut next = self.clone();
        for (key, value) in cluster_default {
            next.values.insert(
                key.clone(),
                (value.clone(), ConfigSource::DynamicDefaultBroker),
            );
        }
        for (key, value) in this_broker {
            next.values
                .insert(key.clone(), (value.clone(), ConfigSource::DynamicBroker));
        }
        next
    }

    /// Every key set by any layer, for DescribeConfigs of the broker resource.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, ConfigSource)> {
        self.values
            .iter()
            .map(|(k, (v, s))| (k.as_str(), v.as_str(), *s))
    }
}

/// One key of Apache Kafka 4.1's broker configuration, as its reference lists it.
#[derive(Debug, Clone)]
pub struct KafkaBrokerKey {
    pub name: &'static str,
    pub kind: ConfigType,
    /// None: Kafka's `null` default.
    pub default: Option<&'static str>,
    /// Whether Kafka can change it without a restart (update mode per-broker or
    /// cluster-wide); DescribeConfigs reports the others as read-only.
    pub dynamic: bool,
}

/// Kafka 4.1's broker keys in name order, from `broker/data/kafka-4.1-broker-configs.tsv`. DescribeConfigs
/// lists all of them, as Kafka does; those this broker does not act on are accepted in
/// `server.properties` without a warning.
pub fn kafka_broker_keys() -> &'static [KafkaBrokerKey] {
    static KEYS: std::sync::OnceLock<Vec<KafkaBrokerKey>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = include_str!("../data/kafka-4.1-broker-configs.tsv")
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let fields: Vec<&'static str> = line.split('\t').collect();
                let [name, kind, default, mode] = fields[..] else {
                    panic!("malformed line in the Kafka broker key table: {line}");
                };
                KafkaBrokerKey {
                    name,
                    kind: match kind {
                        "boolean" => ConfigType::Boolean,
                        "int" => ConfigType::Int,
                        "short" => ConfigType::Short,
                        "long" => ConfigType::Long,
                        "double" => ConfigType::Double,
                        "list" => ConfigType::List,
                        "class" => ConfigType::Class,
                        "password" => ConfigType::Password,
                        _ => ConfigType::String,
                    },
                    default: (default != "null").then_some(default),
                    dynamic: mode != "read-only",
                }
            })
            .collect::<Vec<_>>();
        // Sorted by name, so a lookup is a binary search.
        keys.sort_unstable_by_key(|k| k.name);
        keys
    })
}

pub fn kafka_broker_key(name: &str) -> Option<&'static KafkaBrokerKey> {
    let keys = kafka_broker_keys();
    keys.binary_search_by_key(&name, |k| k.name)
        .ok()
        .map(|i| &keys[i])
}

/// Keys such as `log.retention.bytes` are read by the topic config table, and a few
/// topic-level defaults may be given under their topic names in tests; both are known.
fn is_topic_level_broker_key(key: &str) -> bool {
    crate::log::TOPIC_CONFIGS
        .iter()
        .any(|d| d.broker_synonym == Some(key))
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses Java `.properties` text: `key=value`, `key: value` or `key value`, `#` and `!`
/// comments, and backslash line continuations.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            logical.push_str(stripped);
            continue;
        }
        logical.push_str(line);
        let entry = std::mem::take(&mut logical);
        let split = entry.find(['=', ':', ' ', '\t']);
        let (key, value) = match split {
            Some(i) => (
                &entry[..i],
                entry[i + 1..].trim_start_matches(['=', ':', ' ', '\t']),
            ),
            None => (entry.as_str(), ""),
        };
        out.insert(key.trim().to_string(), value.trim().to_string());
    }
    out
}

/// Maps the `apache/kafka` image's environment variables to config keys.
fn env_to_configs(env: &[(String, String)]) -> BTreeMap<String, String> {
    env.iter()
        .filter(|(k, _)| k.starts_with("KAFKA_") && !ENV_NOT_CONFIG.contains(&k.as_str()))
        .map(|(k, v)| {
            let key = k["KAFKA_".len()..]
                .to_ascii_lowercase()
                .replace("___", "-")
                .replace("__", "\u{0}")
                .replace('_', ".")
                .replace('\u{0}', "_");
            (key, v.clone())
        })
        .collect()
}

/// Parses `NAME://host:port,...`; an empty host means all interfaces.
pub fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once("://")
            .ok_or_else(|| invalid("expected NAME://host:port"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected NAME://host:port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid("port is not a number from 0 to 65535"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        out.push(Listener {
            name: name.to_string(),
            host,
            port,
        });
    }
    if out.is_empty() {
        return Err(invalid("at least one listener is needed"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str], env: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::load_from(&args, &env)
    }

    #[test]
    fn the_kafka_key_table_is_whole() {
        let keys = kafka_broker_keys();
        assert!(keys.len() >= 300, "{} keys", keys.len());
        let mut names: Vec<&str> = keys.iter().map(|k| k.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), keys.len(), "no key twice");
        for key in keys {
            if let Some(default) = key.default {
                assert!(
                    key.kind.validate(default).is_ok() || default.is_empty(),
                    "{} default {default:?} is not a {:?}",
                    key.name,
                    key.kind
                );
            }
        }
        let retention = kafka_broker_key("log.retention.ms").unwrap();
        assert!(retention.dynamic && retention.default.is_none());
        assert_eq!(
            kafka_broker_key("ssl.key.password").unwrap().kind,
            ConfigType::Password
        );
        // Every key this broker reads is a Kafka key, or one of Kafka's topic-level names.
        for def in BROKER_CONFIGS {
            assert!(
                kafka_broker_key(def.name).is_some(),
                "{} is not in Kafka 4.1's broker configuration",
                def.name
            );
        }
    }

    #[test]
    fn embedded_default_is_a_single_local_node() {
        let config = load(&[], &[]).unwrap();
        assert_eq!(config.node_id, 1);
        assert_eq!(config.listeners[0].host, "127.0.0.1");
        assert_eq!(config.listeners[0].port, 9092);
        assert_eq!(config.log_dir, PathBuf::from("./data"));
        assert_eq!(
            config.value("num.partitions"),
            Some(("1", ConfigSource::Default))
        );
    }

    #[test]
    fn layers_win_in_order() {
        let dir = tempfile_dir();
        let path = dir.join("server.properties");
        std::fs::write(
            &path,
            "num.partitions=3\nnode.id : 4\nlog.retention.hours 10\n",
        )
        .unwrap();
        let config = load(
            &[path.to_str().unwrap(), "--override", "node.id=7"],
            &[("KAFKA_NUM_PARTITIONS", "5"), ("KAFKA_HEAP_OPTS", "-Xmx1G")],
        )
        .unwrap();
        assert_eq!(config.num_partitions, 5);
        assert_eq!(config.node_id, 7);
        assert_eq!(
            config.value("log.retention.hours"),
            Some(("10", ConfigSource::StaticBroker))
        );
        assert!(config.get("heap.opts").is_none());
    }

    #[test]
    fn invalid_value_names_key_and_value() {
        let err = load(&["--override", "num.partitions=many"], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("num.partitions") && err.contains("many"),
            "{err}"
        );
    }

    #[test]
    fn env_names_map_like_the_kafka_image() {
        let map = env_to_configs(&[
            ("KAFKA_LOG_DIRS".into(), "/d".into()),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP".into(), "x".into()),
            ("KAFKA_SOME__UNDERSCORE".into(), "y".into()),
        ]);
        assert_eq!(map.get("log.dirs").map(String::as_str), Some("/d"));
        assert_eq!(
            map.get("listener.security.protocol.map")
                .map(String::as_str),
            Some("x")
        );
        assert_eq!(map.get("some_underscore").map(String::as_str), Some("y"));
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("weir-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn voters_parse_as_kafka_writes_them() {
        let voters = parse_voters("1@kafka-1:9093, 2@[::1]:9094").unwrap();
        assert_eq!(
            voters,
            vec![
                Voter {
                    node_id: 1,
                    host: "kafka-1".into(),
                    port: 9093
                },
                Voter {
                    node_id: 2,
                    host: "::1".into(),
                    port: 9094
                },
            ]
        );
        assert!(parse_voters("").unwrap().is_empty());
        for bad in ["1@host", "@host:1", "-1@host:1", "1@host:99999", "1:host@1"] {
            assert!(parse_voters(bad).is_err(), "{bad}");
        }
    }
}
