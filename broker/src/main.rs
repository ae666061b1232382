//! `weir [server.properties] [--override key=value ...]`: parse args, load config, serve.
//!
//! Two subcommands do what Kafka's `kafka-storage.sh` does:
//! - `weir format -t CLUSTER_ID [-c server.properties] [--override key=value ...]
//!   [--ignore-formatted]` writes the log directory's `meta.properties` before the first
//!   start, so that the nodes of a cluster share one id (a directory that was not
//!   formatted is formatted on its first start);
//! - `weir random-uuid` prints a new cluster id.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use weir::broker::Broker;
use weir::config::BrokerConfig;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=off")),
        )
        .with_target(false)
        // Colours for a terminal only: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("format") => std::process::exit(format(&args[1..])),
        Some("random-uuid") => {
            println!("{}", weir::meta_properties::random_id());
            return Ok(());
        }
        _ => {}
    }
    let config = match BrokerConfig::load(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("weir: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(serve(config));
    // Tasks still holding the metadata store go first, so RocksDB closes before the
    // process exits (exiting with it open can abort in its destructors).
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    if let Err(e) = served {
        // One line naming the cause, not a backtrace: start-up refusals are the user's to act on.
        eprintln!("weir: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

async fn serve(config: BrokerConfig) -> anyhow::Result<()> {
    let broker = Broker::start(config).await?;
    let (controller, clients): (Vec<_>, Vec<_>) = weir::server::bind(&broker)
        .await?
        .into_iter()
        .partition(|bound| bound.controller);
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    let stopping = Arc::clone(&broker);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        // While the listeners still serve: this node may be the active controller.
        stopping.controller.controlled_shutdown().await;
        signals.cancel();
    });
    let health = Arc::clone(broker.replicas.health());
    tokio::spawn(async move {
        health.offline().await;
        // Kafka halts when its last log directory fails; this broker has one. The short
        // pause lets the KAFKA_STORAGE_ERROR answers already written reach their clients.
        tracing::error!(
            "Shutdown broker because all log dirs in {} have failed",
            health.dir().display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        std::process::exit(1);
    });
    // The controller listener carries the quorum's messages, so it serves before the
    // quorum has a leader; clients are served once this node has caught up with it.
    let quorum_side = tokio::spawn(weir::server::run(
        Arc::clone(&broker),
        controller,
        shutdown.clone(),
    ));
    tokio::select! {
        _ = broker.controller.wait_ready() => {
            weir::server::run(Arc::clone(&broker), clients, shutdown.clone()).await;
        }
        _ = shutdown.cancelled() => {}
    }
    let _ = quorum_side.await;
    broker.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// `weir format`, with `kafka-storage.sh format`'s options (`--standalone` and
/// `--no-initial-controllers` are accepted: a lone node is its own quorum). Returns the
/// exit code.
fn format(args: &[String]) -> i32 {
    use weir::meta_properties::{check_cluster_id, MetaProperties};
    let mut cluster_id = None;
    let mut ignore_formatted = false;
    let mut config_args = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-t" | "--cluster-id" => cluster_id = iter.next().cloned(),
            "-c" | "--config" => config_args.extend(iter.next().cloned()),
            "--override" => {
                config_args.push(arg.clone());
                config_args.extend(iter.next().cloned());
            }
            "-g" | "--ignore-formatted" => ignore_formatted = true,
            "-s" | "--standalone" | "-N" | "--no-initial-controllers" => {}
            other => {
                eprintln!("weir format: unknown argument '{other}'");
                return 2;
            }
        }
    }
    let Some(cluster_id) = cluster_id else {
        eprintln!("weir format: --cluster-id (-t) is required; `weir random-uuid` makes one");
        return 2;
    };
    if let Err(reason) = check_cluster_id(&cluster_id) {
        eprintln!("weir format: {reason}");
        return 1;
    }
    let config = match BrokerConfig::load(&config_args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("weir: {e}");
            return 2;
        }
    };
    let dir = &config.log_dir;
    match MetaProperties::read(dir) {
        Ok(Some(_)) if ignore_formatted => {
            println!("All of the log directories are already formatted.");
            return 0;
        }
        Ok(Some(_)) => {
            eprintln!(
                "Log directory {} is already formatted. Use --ignore-formatted to ignore this \
                 directory and format the others.",
                dir.display()
            );
            return 1;
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("weir format: {e}");
            return 1;
        }
    }
    let written = std::fs::create_dir_all(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            MetaProperties::new(&cluster_id, config.node_id)
                .write(dir)
                .map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => {
            println!(
                "Formatting metadata directory {} with cluster.id {cluster_id}.",
                dir.display()
            );
            0
        }
        Err(e) => {
            eprintln!("weir format: {e}");
            1
        }
    }
}
