//! Prometheus metrics of the data plane.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A label value that clones without allocating.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Name(pub(crate) Arc<str>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&&*self.0, encoder)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) environment: Name,
    pub(crate) api: Name,
    pub(crate) route: Name,
    pub(crate) service: Name,
    pub(crate) status_class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct ServiceLabels {
    pub(crate) service: Name,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

/// The proxy's metric families, registered once at start.
#[derive(Debug, Clone)]
pub struct ProxyMetrics {
    pub(crate) requests: Family<RouteLabels, Counter>,
    pub(crate) duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub(crate) upstream_duration: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    pub(crate) connections: Gauge,
    pub(crate) parked: Gauge,
    pub(crate) access_log_dropped: Counter,
}

impl ProxyMetrics {
    /// Creates the families and registers them in `registry` (prefix `tollgate_`).
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            upstream_duration: Family::new_with_constructor(latency_histogram),
            connections: Gauge::default(),
            parked: Gauge::default(),
            access_log_dropped: Counter::default(),
        };
        registry.register(
            "tollgate_requests",
            "Requests answered, by environment, API, route, service and status class",
            m.requests.clone(),
        );
        registry.register(
            "tollgate_request_duration_seconds",
            "Time from request head to response end, by environment, API, route, service and status class",
            m.duration.clone(),
        );
        registry.register(
            "tollgate_upstream_duration_seconds",
            "Time from sending upstream to the upstream response head, by service",
            m.upstream_duration.clone(),
        );
        registry.register(
            "tollgate_connections_active",
            "Client connections currently open",
            m.connections.clone(),
        );
        registry.register(
            "tollgate_connections_parked",
            "Idle HTTP/1.1 client connections whose server state is released (socket only)",
            m.parked.clone(),
        );
        registry.register(
            "tollgate_access_log_dropped",
            "Access log lines dropped because the writer could not keep up",
            m.access_log_dropped.clone(),
        );
        m
    }

    pub(crate) fn status_class(status: u16) -> &'static str {
        match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        }
    }
}

/// Metric handles kept so that recording a request costs a few atomic operations instead of
/// a family lookup (a lock and a hash of the label strings). A routed request's handles live in
/// its compiled route's [`RouteSlot`](tollgate_runtime::RouteSlot), which the compiler carries
/// into the next revision while the route is unchanged, so a new snapshot costs a worker
/// nothing here, whatever the number of routes. Requests without a route have one slot per
/// environment and one for "no environment", in a small per-worker table rebuilt when the
/// revision changes, as are the per-service upstream handles.
pub(crate) mod cache {
    use std::cell::RefCell;
    use std::sync::{Arc, OnceLock};

    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::histogram::Histogram;
    use tollgate_runtime::Snapshot;

    use super::{Name, ProxyMetrics, RouteLabels, ServiceLabels};

    /// One route's (or one unrouted slot's) handles, by status class.
    #[derive(Default)]
    struct Handles {
        by_class: [OnceLock<Counter>; 5],
        duration: [OnceLock<Histogram>; 5],
    }

    #[derive(Default)]
    struct Cache {
        revision: u64,
        /// One "no route" slot per environment; the last slot is "no environment".
        unrouted: Vec<Handles>,
        services: Vec<Option<Histogram>>,
    }

    thread_local! {
        static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
    }

    fn class_index(status: u16) -> usize {
        match status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        }
    }

    fn sync(cache: &mut Cache, snapshot: &Snapshot) {
        let slots = snapshot.environments.len() + 1;
        if cache.revision == snapshot.revision && cache.unrouted.len() == slots {
            return;
        }
        cache.revision = snapshot.revision;
        cache.unrouted.clear();
        cache.unrouted.resize_with(slots, Handles::default);
        cache.services.clear();
        cache.services.resize_with(snapshot.services.len(), || None);
    }

    /// Records one answered request.
    pub(crate) fn record_request(
        metrics: &ProxyMetrics,
        snapshot: &Snapshot,
        route: Option<tollgate_runtime::RouteId>,
        environment: Option<usize>,
        empty: &Arc<str>,
        status: u16,
        seconds: f64,
    ) {
        let routed = route.and_then(|r| snapshot.routes.get(r));
        // Labels, only needed the first time a slot records a status class.
        let labels = |status_class: &'static str| {
            let environment = routed.map(|r| r.environment).or(environment);
            let environment = environment
                .and_then(|e| snapshot.environments.get(e))
                .map_or_else(|| empty.clone(), |e| e.name.clone());
            let (api, route, service) = match routed {
                Some(r) => (
                    r.info.api.clone(),
                    r.info.route.clone(),
                    r.info.service.clone(),
                ),
                None => (empty.clone(), empty.clone(), empty.clone()),
            };
            RouteLabels {
                environment: Name(environment),
                api: Name(api),
                route: Name(route),
                service: Name(service),
                status_class,
            }
        };
        let record = |handles: &Handles| {
            let class = class_index(status);
            let status_class = ProxyMetrics::status_class(status);
            handles.by_class[class]
                .get_or_init(|| {
                    metrics
                        .requests
                        .get_or_create(&labels(status_class))
                        .clone()
                })
                .inc();
            handles.duration[class]
                .get_or_init(|| {
                    metrics
                        .duration
                        .get_or_create(&labels(status_class))
                        .clone()
                })
                .observe(seconds);
        };
        if let Some(r) = routed {
            if let Some(handles) = r.slot.get_or_init(Handles::default) {
                record(handles);
            }
            return;
        }
        let _ = CACHE.try_with(|cell| {
            let Ok(mut cache) = cell.try_borrow_mut() else {
                return;
            };
            sync(&mut cache, snapshot);
            let slot = environment.unwrap_or(snapshot.environments.len());
            if let Some(handles) = cache.unrouted.get(slot) {
                record(handles);
            }
        });
    }

    /// Records one upstream exchange of service `service`.
    pub(crate) fn record_upstream(
        metrics: &ProxyMetrics,
        snapshot: &Snapshot,
        service: usize,
        seconds: f64,
    ) {
        let _ = CACHE.try_with(|cell| {
            let Ok(mut cache) = cell.try_borrow_mut() else {
                return;
            };
            sync(&mut cache, snapshot);
            let Some(slot) = cache.services.get_mut(service) else {
                return;
            };
            let Some(s) = snapshot.services.get(service) else {
                return;
            };
            slot.get_or_insert_with(|| {
                metrics
                    .upstream_duration
                    .get_or_create(&ServiceLabels {
                        service: Name(s.name.clone()),
                    })
                    .clone()
            })
            .observe(seconds);
        });
    }
}
