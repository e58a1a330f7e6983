//! `tollgate run`: load, start the data plane and the admin listener, reload, shut down.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tollgate_admin::control::Control;
use tollgate_model::{Config, Listen};
use tollgate_proxy::{AccessLogSink, Proxy, ProxyConfig, ProxyMetrics};
use tollgate_runtime::SnapshotHandle;
use tollgate_store::secrets::SecretKey;

use crate::load;
use crate::logging::{self, LogFormat};
use crate::reload::{ReloadMetrics, Reloader};
use crate::store_mode::{self, StoreArgs, StorePublisher};
use crate::validator::CompileValidator;

/// Options of `tollgate run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Configuration file (YAML or JSON): file mode, the admin API only reads. Without it the
    /// configuration lives in the store and is managed through the admin API.
    #[arg(short, long, env = "TOLLGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
    /// Store mode: plain-text proxy listener.
    #[arg(long, env = "TOLLGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Store mode: TLS proxy listener.
    #[arg(long, env = "TOLLGATE_LISTEN_TLS")]
    listen_tls: Option<SocketAddr>,
    /// Store mode: admin listener.
    #[arg(long, env = "TOLLGATE_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Admin API tokens as lines of `ROLE SHA256 NAME` (file mode; in store mode tokens live
    /// in the store, see `tollgate admin token create`).
    #[arg(long, env = "TOLLGATE_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Store mode: how often the store's revision is checked for changes made elsewhere.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    store_poll: Duration,
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
    let plugins = tollgate_plugins::registry();
    let mode = match open_mode(&args, &plugins, &control) {
        Ok(m) => m,
        Err((message, code)) => {
            eprintln!("{message}");
            return ExitCode::from(code);
        }
    };
    let config = mode.config();
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let snapshot = match &mode {
        Mode::File { loaded, .. } => {
            load::compile(loaded, &plugins, None, workers, 1).map_err(|e| (e.to_string(), 2))
        }
        Mode::Store(opened) => store_mode::compile_state(
            &opened.control.state(),
            &config.listen,
            &plugins,
            None,
            workers,
        )
        .map_err(|e| {
            (
                format!("tollgate: the store's configuration cannot be compiled:\n{e}"),
                1,
            )
        }),
    };
    let snapshot = match snapshot {
        Ok(s) => s,
        Err((message, code)) => {
            eprintln!("{message}");
            return ExitCode::from(code);
        }
    };
    let listen = config.listen.clone();
    let https = snapshot.tls.is_some().then_some(listen.proxy_tls);
    let access_log_config = config.server.access_log.clone();
    let handle = SnapshotHandle::new(snapshot);

    let mut registry = Registry::default();
    let metrics = ProxyMetrics::new(&mut registry);
    let reload_metrics = ReloadMetrics::new(&mut registry);
    reload_metrics.published(handle.load().revision);
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
    let mut admin_state = tollgate_admin::AdminState::new(Arc::new(registry), ready.clone())
        .with_api(Some(mode.control()), mode.store());
    if let Some(path) = &args.admin_token_file {
        match tollgate_admin::tokens::StaticTokens::load(path) {
            Ok(tokens) => admin_state = admin_state.with_token_source(Arc::new(tokens)),
            Err(e) => {
                eprintln!("tollgate: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let watch = !args.no_watch;
    let store_poll = args.store_poll;
    let plane = handle.clone();
    control.block_on(async move {
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = tokio::spawn(tollgate_admin::serve(admin_listener, admin_state, async {
            let _ = admin_stopped.await;
        }));
        match mode {
            Mode::File {
                loaded,
                path,
                control,
            } => {
                let reloader = Reloader {
                    path: path.clone(),
                    plugins,
                    handle: plane.clone(),
                    workers,
                    listen,
                    metrics: reload_metrics,
                    access_log: access_log_handle,
                    watch: std::cell::RefCell::new({
                        let mut w = crate::watch::ConfigWatch::new(
                            &path,
                            std::fs::read_to_string(&path).unwrap_or_default(),
                        );
                        w.track(&loaded.config);
                        w
                    }),
                    control: Some(control),
                };
                reloader.run_until_shutdown(signals, watch).await;
            }
            Mode::Store(opened) => {
                opened.validator.serve(plane.clone(), workers);
                let publisher = StorePublisher {
                    control: opened.control,
                    feed: opened.feed,
                    validator: opened.validator,
                    handle: plane.clone(),
                    listen,
                    workers,
                    metrics: reload_metrics,
                    access_log: access_log_handle,
                };
                publisher.run_until_shutdown(signals, store_poll).await;
            }
        }
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

/// Where the configuration comes from.
enum Mode {
    /// A configuration file, reloaded on change.
    File {
        loaded: Box<load::Loaded>,
        path: PathBuf,
        control: Arc<Control>,
    },
    /// A store, changed through the admin API.
    Store(store_mode::Opened),
}

impl Mode {
    fn config(&self) -> Config {
        match self {
            Self::File { loaded, .. } => loaded.config.clone(),
            Self::Store(opened) => opened.control.export(),
        }
    }

    fn store(&self) -> Option<tollgate_store::Store> {
        match self {
            Self::File { .. } => None,
            Self::Store(opened) => Some(opened.feed.store().clone()),
        }
    }

    fn control(&self) -> Arc<Control> {
        match self {
            Self::File { control, .. } => control.clone(),
            Self::Store(opened) => opened.control.clone(),
        }
    }
}

/// Reads the configuration file, or opens the store; errors come with their exit code.
fn open_mode(
    args: &RunArgs,
    plugins: &tollgate_plugin_api::Registry,
    runtime: &tokio::runtime::Runtime,
) -> Result<Mode, (String, u8)> {
    if let Some(path) = &args.config {
        // Read-only: writes are never prepared, the thread stays idle.
        let thread = crate::compile_thread::CompileThread::spawn(plugins.clone())
            .map_err(|e| (format!("tollgate: cannot start the compile thread: {e}"), 1))?;
        let validator = Arc::new(CompileValidator::new(plugins.clone(), thread));
        if args.listen.is_some() || args.listen_tls.is_some() || args.admin_listen.is_some() {
            return Err((
                "tollgate: --listen, --listen-tls and --admin-listen are for store mode; with --config set `listen` in the file".into(),
                2,
            ));
        }
        let loaded = load::read_config(path).map_err(|e| (e.to_string(), 2))?;
        let key = SecretKey::generate().map_err(|e| (format!("tollgate: {e}"), 1))?;
        let debugger = Arc::new(crate::debugger::SandboxDebugger {
            plugins: plugins.clone(),
        });
        let control = Control::with_file(&loaded.config, Arc::new(key), validator)
            .map_err(|e| (format!("tollgate: {e}"), 2))?
            .with_debugger(debugger);
        return Ok(Mode::File {
            loaded: Box::new(loaded),
            path: path.clone(),
            control: Arc::new(control),
        });
    }
    let defaults = Listen::default();
    let listen = Listen {
        proxy: args.listen.unwrap_or(defaults.proxy),
        proxy_tls: args.listen_tls.unwrap_or(defaults.proxy_tls),
        admin: args.admin_listen.unwrap_or(defaults.admin),
    };
    let opened = runtime
        .block_on(store_mode::open(&args.store, plugins, listen))
        .map_err(|e| (format!("tollgate: {e}"), 1))?;
    tracing::info!(
        store = opened.feed.store().display_url(),
        revision = opened.control.state().revision,
        "configuration store opened"
    );
    Ok(Mode::Store(opened))
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
