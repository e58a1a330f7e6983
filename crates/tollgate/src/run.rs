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
use crate::role::Role;
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
    /// What this node runs: `all` (proxy and admin listeners), `data-plane` (proxy only;
    /// health and metrics on --status-listen) or `control-plane` (admin listener only).
    #[arg(long, value_enum, default_value = "all", env = "TOLLGATE_ROLE")]
    role: Role,
    /// A listener for health (`/health/live`, `/health/ready`) and `/metrics` without a token
    /// (on the admin listener `/metrics` needs one), e.g. for a load balancer and Prometheus.
    /// A data-plane node serves them here, by default on 127.0.0.1:8081. Overrides
    /// `listen.status` of a configuration file.
    #[arg(long, env = "TOLLGATE_STATUS_LISTEN")]
    status_listen: Option<SocketAddr>,
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
    if let Err(e) = check_role(&args) {
        eprintln!("tollgate: {e}");
        return ExitCode::from(2);
    }
    // The control plane (admin API, store feed, reloads, signals) on this thread alone: an
    // admin write is a chain of hand-offs (request, compile thread, store, publish), and with
    // a second runtime thread each was also a wake-up across threads, on cores the workers
    // use (`bench/write_threads.py`: about 5 fewer runs per write on one thread).
    let control = match tokio::runtime::Builder::new_current_thread()
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
    // Listeners are registered with the control runtime; the data plane starts its own.
    let started = {
        let _context = control.enter();
        serve(args, mode, plugins, signals)
    };
    match started {
        Ok(serving) => serving.run(&control),
        Err((message, code)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

/// Roles are for store mode; a data-plane node has no admin listener.
fn check_role(args: &RunArgs) -> Result<(), String> {
    if args.role != Role::All && args.config.is_some() {
        return Err(format!(
            "--role {} is for store mode (nodes sharing a store); with --config the node runs both planes",
            args.role.name()
        ));
    }
    if args.role == Role::DataPlane && args.admin_listen.is_some() {
        return Err(
            "a data-plane node has no admin listener: drop --admin-listen (health and metrics are on --status-listen)"
                .into(),
        );
    }
    if args.role == Role::ControlPlane && (args.listen.is_some() || args.listen_tls.is_some()) {
        return Err(
            "a control-plane node serves no traffic: drop --listen and --listen-tls".into(),
        );
    }
    Ok(())
}

/// How often, at most, a node writes the state it serves to its local cache: a node restarted
/// while its store is down serves a state at most this much older than the one it served.
const CACHE_INTERVAL: Duration = Duration::from_secs(2);

/// A started node, before it runs until shutdown.
struct Serving {
    args: RunArgs,
    mode: Mode,
    plugins: tollgate_plugin_api::Registry,
    signals: crate::reload::Signals,
    listen: Listen,
    workers: usize,
    plane: Option<(SnapshotHandle, tollgate_proxy::ProxyHandle, AccessLogSink)>,
    /// Whether the TLS proxy listener is bound.
    tls_bound: bool,
    reload_metrics: ReloadMetrics,
    admin: Option<(tokio::net::TcpListener, tollgate_admin::AdminState)>,
    status: Option<(tokio::net::TcpListener, tollgate_admin::AdminState)>,
    ready: Arc<AtomicBool>,
    /// Free-heap growth that triggers a release to the system (`None`: never).
    heap_release: Option<usize>,
}

/// Compiles the first snapshot, binds the listeners and starts the data plane.
fn serve(
    args: RunArgs,
    mode: Mode,
    plugins: tollgate_plugin_api::Registry,
    signals: crate::reload::Signals,
) -> Result<Serving, (String, u8)> {
    let role = args.role;
    let heap_release =
        crate::heap::threshold_from_env().map_err(|e| (format!("tollgate: {e}"), 2))?;
    let config = mode.config();
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let listen = config.listen.clone();
    let mut registry = Registry::default();
    let reload_metrics = ReloadMetrics::new(&mut registry);
    if let Mode::Store(opened) = &mode {
        crate::store_health::export_metrics(&opened.feed, &mut registry);
    }
    let mut tls_bound = false;
    let plane = if role.data_plane() {
        let snapshot = match &mode {
            Mode::File { loaded, .. } => {
                load::compile(loaded, &plugins, None, workers, 1).map_err(|e| (e.to_string(), 2))
            }
            Mode::Store(opened) => store_mode::compile_first(opened, &config.listen, workers)
                .map_err(|e| {
                    (
                        format!("tollgate: the store's configuration cannot be compiled:\n{e}"),
                        1,
                    )
                }),
        }?;
        // File mode binds the TLS listener when the file has certificates. Store mode also
        // binds it when `--listen-tls` is given, so that certificates created later through
        // the admin API are served without a restart (without either, the listener opens on
        // the next start after a certificate exists).
        let tls_wanted =
            snapshot.tls.is_some() || matches!(mode, Mode::Store(_)) && args.listen_tls.is_some();
        let https = tls_wanted.then_some(listen.proxy_tls);
        let access_log_config = config.server.access_log.clone();
        let handle = SnapshotHandle::new(snapshot);
        reload_metrics.published(handle.load().revision);
        let metrics = ProxyMetrics::new(&mut registry);
        let access_log = AccessLogSink::disabled();
        access_log
            .configure(access_log_config.enabled, &access_log_config.output)
            .map_err(|e| {
                (
                    format!(
                        "tollgate: cannot open access log {:?}: {e}",
                        access_log_config.output
                    ),
                    1,
                )
            })?;
        let proxy = Proxy::start(
            &ProxyConfig {
                http: listen.proxy,
                https,
                workers,
                worker_slice: tollgate_proxy::slice::configured()
                    .map_err(|e| (format!("tollgate: {e}"), 2))?,
            },
            handle.clone(),
            metrics,
            access_log.clone(),
        )
        .map_err(|e| (format!("tollgate: {e}"), 1))?;
        tracing::info!(proxy = %listen.proxy, proxy_tls = ?https, workers, "data plane listening");
        tls_bound = https.is_some();
        Some((handle, proxy, access_log))
    } else {
        if let Mode::Store(opened) = &mode {
            reload_metrics.published(u64::try_from(opened.feed.current().revision).unwrap_or(0));
        }
        None
    };

    let ready = Arc::new(AtomicBool::new(true));
    let probe = Arc::new(crate::store_health::Probe {
        role,
        handle: plane.as_ref().map(|(h, _, _)| h.clone()),
        feed: match &mode {
            Mode::Store(opened) => Some(opened.feed.clone()),
            Mode::File { .. } => None,
        },
    });
    let registry = Arc::new(registry);
    let health_only =
        tollgate_admin::AdminState::new(registry.clone(), ready.clone()).with_probe(probe.clone());
    let admin = if role.control_plane() {
        let mut state = health_only
            .clone()
            .with_api(Some(mode.control()), mode.store());
        if let Mode::Store(_) = &mode {
            state = state.with_token_copy_in(args.store.data_dir.clone());
        }
        if let Some(path) = &args.admin_token_file {
            let tokens = tollgate_admin::tokens::StaticTokens::load(path)
                .map_err(|e| (format!("tollgate: {e}"), 2))?;
            state = state.with_token_source(Arc::new(tokens));
        }
        let listener = bind_blocking(listen.admin)?;
        tracing::info!(admin = %listen.admin, "admin listening");
        Some((listener, state))
    } else {
        None
    };
    let status_addr = args
        .status_listen
        .or(listen.status)
        .or_else(|| (role == Role::DataPlane).then(|| Listen::default().admin));
    let status = match status_addr {
        Some(addr) => {
            let listener = bind_blocking(addr)?;
            tracing::info!(status = %addr, "status (health, metrics) listening");
            Some((listener, health_only))
        }
        None => None,
    };
    tracing::info!(
        role = role.name(),
        "tollgate {} started",
        env!("CARGO_PKG_VERSION")
    );
    Ok(Serving {
        args,
        mode,
        plugins,
        signals,
        listen,
        workers,
        plane,
        tls_bound,
        reload_metrics,
        admin,
        status,
        ready,
        heap_release,
    })
}

/// Binds a listener (called in the control runtime's context).
fn bind_blocking(addr: SocketAddr) -> Result<tokio::net::TcpListener, (String, u8)> {
    let std = std::net::TcpListener::bind(addr)
        .map_err(|e| (format!("tollgate: cannot listen on {addr}: {e}"), 1))?;
    std.set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(std))
        .map_err(|e| (format!("tollgate: cannot listen on {addr}: {e}"), 1))
}

impl Serving {
    /// Serves until SIGTERM or SIGINT, then drains and stops.
    fn run(self, control: &tokio::runtime::Runtime) -> ExitCode {
        let Self {
            args,
            mode,
            plugins,
            signals,
            listen,
            workers,
            plane,
            tls_bound,
            reload_metrics,
            admin,
            status,
            ready,
            heap_release,
        } = self;
        let watch = !args.no_watch;
        let store_poll = args.store_poll;
        let handle = plane.as_ref().map(|(h, _, _)| h.clone());
        let access_log = plane.as_ref().map(|(_, _, a)| a.clone());
        control.block_on(async move {
            if let Some(threshold) = heap_release {
                crate::heap::spawn(threshold);
            }
            let (stop_listeners, listeners_stopped) = tokio::sync::watch::channel(false);
            let mut servers = Vec::new();
            for (listener, state) in admin.into_iter().chain(status) {
                let mut stopped = listeners_stopped.clone();
                servers.push(tokio::spawn(tollgate_admin::serve(
                    listener,
                    state,
                    async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    },
                )));
            }
            match (mode, handle, access_log) {
                (
                    Mode::File {
                        loaded,
                        path,
                        control,
                    },
                    Some(handle),
                    Some(access_log),
                ) => {
                    let reloader = Reloader {
                        path: path.clone(),
                        plugins,
                        handle,
                        workers,
                        listen,
                        metrics: reload_metrics,
                        access_log,
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
                (Mode::Store(opened), Some(handle), Some(access_log)) => {
                    opened.validator.serve(handle.clone(), workers);
                    let store = opened.feed.store();
                    let cache = (store.backend() == tollgate_store::Backend::Postgres).then(|| {
                        crate::store_health::keep_cache(
                            args.store.cache(),
                            store.display_url().to_owned(),
                            CACHE_INTERVAL,
                            opened.validator.thread.clone(),
                        )
                    });
                    let publisher = StorePublisher {
                        control: opened.control,
                        feed: opened.feed,
                        validator: opened.validator,
                        handle,
                        listen,
                        workers,
                        metrics: reload_metrics,
                        access_log,
                        cache,
                        tls_listener: tls_bound,
                    };
                    publisher.run_until_shutdown(signals, store_poll).await;
                }
                (Mode::Store(opened), _, _) => {
                    store_mode::follow_until_shutdown(
                        opened.feed,
                        reload_metrics,
                        signals,
                        store_poll,
                    )
                    .await;
                }
                (Mode::File { .. }, _, _) => {
                    tracing::error!("file mode runs both planes");
                }
            }
            ready.store(false, std::sync::atomic::Ordering::Release);
            let _ = stop_listeners.send(true);
            for server in servers {
                let _ = server.await;
            }
        });

        let Some((handle, proxy, access_log)) = plane else {
            tracing::info!("stopped");
            return ExitCode::SUCCESS;
        };
        let grace = handle.load().server.timeouts.shutdown_grace.get();
        tracing::info!(grace = ?grace, "shutting down: draining in-flight requests");
        let drained = proxy.shutdown(grace);
        if drained {
            tracing::info!("stopped");
        } else {
            tracing::warn!("stopped before every connection drained");
        }
        access_log.close();
        ExitCode::SUCCESS
    }
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
        if args.listen.is_some() || args.listen_tls.is_some() || args.admin_listen.is_some() {
            return Err((
                "tollgate: --listen, --listen-tls and --admin-listen are for store mode; with --config set `listen` in the file".into(),
                2,
            ));
        }
        let loaded = load::read_config(path).map_err(|e| (e.to_string(), 2))?;
        let key = Arc::new(SecretKey::generate().map_err(|e| (format!("tollgate: {e}"), 1))?);
        // Read-only: writes are never prepared, the thread stays idle.
        let thread =
            crate::compile_thread::CompileThread::spawn(plugins.clone(), key.clone(), None)
                .map_err(|e| (format!("tollgate: cannot start the compile thread: {e}"), 1))?;
        let validator = Arc::new(CompileValidator::new(plugins.clone(), thread));
        let debugger = Arc::new(crate::debugger::SandboxDebugger {
            plugins: plugins.clone(),
        });
        let control = Control::with_file(&loaded.config, key, validator)
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
        status: args.status_listen,
    };
    let opened = runtime
        .block_on(store_mode::open(&args.store, plugins, listen, args.role))
        .map_err(|(e, code)| (format!("tollgate: {e}"), code))?;
    tracing::info!(
        store = opened.feed.store().display_url(),
        revision = opened.control.state().revision,
        "configuration store opened"
    );
    Ok(Mode::Store(opened))
}
