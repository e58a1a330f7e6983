//! `tollgate run`: load, start the data plane and the admin listener, reload, shut down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use prometheus_client::registry::Registry;
use tollgate_proxy::{AccessLogSink, Proxy, ProxyConfig, ProxyMetrics};
use tollgate_runtime::SnapshotHandle;

use crate::load;
use crate::logging::{self, LogFormat};
use crate::reload::{ReloadMetrics, Reloader};

/// Options of `tollgate run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Configuration file (YAML or JSON).
    #[arg(short, long, env = "TOLLGATE_CONFIG")]
    config: PathBuf,
    /// Log level or filter (`info`, `debug`, `tollgate_proxy=debug`); RUST_LOG overrides.
    #[arg(long, default_value = "info", env = "TOLLGATE_LOG")]
    log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Do not reload when the configuration file changes (SIGHUP still reloads).
    #[arg(long)]
    no_watch: bool,
}

pub(crate) fn run(args: RunArgs) -> ExitCode {
    if let Err(e) = logging::init(&args.log_level, args.log_format) {
        eprintln!("tollgate: {e}");
        return ExitCode::from(2);
    }
    let control = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tollgate-control")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start the control runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Catch SIGHUP/SIGTERM/SIGINT from the very start: a signal during startup must not kill
    // the process with the default action.
    let signals = match control.block_on(async { crate::reload::Signals::install() }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tollgate: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let loaded = match load::read_config(&args.config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let workers = match loaded.config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let plugins = tollgate_plugins::registry();
    let snapshot = match load::compile(&loaded, &plugins, None, workers, 1) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let listen = loaded.config.listen.clone();
    let https = snapshot.tls.is_some().then_some(listen.proxy_tls);
    let access_log_config = loaded.config.server.access_log.clone();
    let handle = SnapshotHandle::new(snapshot);

    let mut registry = Registry::default();
    let metrics = ProxyMetrics::new(&mut registry);
    let reload_metrics = ReloadMetrics::new(&mut registry);
    reload_metrics.published(1);
    let access_log = AccessLogSink::disabled();
    if let Err(e) = access_log.configure(access_log_config.enabled, &access_log_config.output) {
        eprintln!(
            "tollgate: cannot open access log {:?}: {e}",
            access_log_config.output
        );
        return ExitCode::from(1);
    }

    let admin_listener = match control.block_on(tollgate_admin::bind(listen.admin)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::from(1);
        }
    };
    let access_log_handle = access_log.clone();
    let access_log_final = access_log.clone();
    let proxy = match Proxy::start(
        &ProxyConfig {
            http: listen.proxy,
            https,
            workers,
        },
        handle.clone(),
        metrics,
        access_log,
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::from(1);
        }
    };
    log_listening(listen.proxy, https, listen.admin, workers);

    let ready = Arc::new(AtomicBool::new(true));
    let admin_state = tollgate_admin::AdminState {
        registry: Arc::new(registry),
        ready: ready.clone(),
    };
    let reloader = Reloader {
        path: args.config.clone(),
        plugins,
        handle: handle.clone(),
        workers,
        listen,
        metrics: reload_metrics,
        access_log: access_log_handle,
        watch: std::cell::RefCell::new({
            let mut w = crate::watch::ConfigWatch::new(
                &args.config,
                std::fs::read_to_string(&args.config).unwrap_or_default(),
            );
            w.track(&loaded.config);
            w
        }),
    };
    let watch = !args.no_watch;
    control.block_on(async move {
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = tokio::spawn(tollgate_admin::serve(admin_listener, admin_state, async {
            let _ = admin_stopped.await;
        }));
        reloader.run_until_shutdown(signals, watch).await;
        ready.store(false, std::sync::atomic::Ordering::Release);
        let _ = stop_admin.send(());
        let _ = admin.await;
    });

    let grace = handle.load().server.timeouts.shutdown_grace.get();
    tracing::info!(grace = ?grace, "shutting down: draining in-flight requests");
    let drained = proxy.shutdown(grace);
    if drained {
        tracing::info!("stopped");
    } else {
        tracing::warn!("stopped before every connection drained");
    }
    access_log_final.close();
    ExitCode::SUCCESS
}

fn log_listening(http: SocketAddr, https: Option<SocketAddr>, admin: SocketAddr, workers: usize) {
    tracing::info!(
        proxy = %http,
        proxy_tls = ?https,
        admin = %admin,
        workers,
        "tollgate {} listening",
        env!("CARGO_PKG_VERSION")
    );
}
