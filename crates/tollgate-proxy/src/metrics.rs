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
pub(crate) struct RequestLabels {
    pub(crate) route: Name,
    pub(crate) service: Name,
    pub(crate) status_class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) route: Name,
    pub(crate) service: Name,
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
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    pub(crate) upstream_duration: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    pub(crate) connections: Gauge,
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
            access_log_dropped: Counter::default(),
        };
        registry.register(
            "tollgate_requests",
            "Requests answered, by route, service and status class",
            m.requests.clone(),
        );
        registry.register(
            "tollgate_request_duration_seconds",
            "Time from request head to response end, by route and service",
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
