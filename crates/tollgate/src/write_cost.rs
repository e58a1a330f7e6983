//! CPU cost of one admin write at 10,000 routes, by phase, measured as this thread's CPU
//! time (`/proc/thread-self/schedstat`, nanoseconds): not wall clock, so other processes on
//! the machine do not skew it. Run with
//! `cargo test --profile ci -p tollgate --bin tollgate write_cost -- --ignored --nocapture`
//! (or under `valgrind --tool=callgrind` for instruction counts per function).

use std::time::Duration;

use tollgate_model::{Format, Listen, PolicySpec, parse_config};
use tollgate_runtime::{CompileOptions, SnapshotHandle, compile};
use tollgate_store::secrets::SecretKey;
use tollgate_store::{Policies, State, Writer};

/// The configuration of `bench/control_plane.py`: `apis` APIs of `routes` routes each.
pub(crate) fn bench_config(apis: usize, routes: usize) -> String {
    let mut out = String::from(
        "server:\n  workers: 1\n  access_log: {enabled: false}\nservices:\n  - name: m\n    mock: {status: 200, body: \"ok\\n\"}\npolicies:\n  - name: response-headers\n    config: {set: {x-bench-rev: \"0\"}}\napis:\n",
    );
    for a in 0..apis {
        out.push_str(&format!(
            "  - name: api{a}\n    base_path: /api{a}\n    routes:\n"
        ));
        for r in 0..routes {
            out.push_str(&format!(
                "      - {{name: r{r}, paths: [\"= /r{r}\"], service: m}}\n"
            ));
        }
    }
    out
}

/// The state after `config apply` of [`bench_config`].
pub(crate) fn bench_state(apis: usize, routes: usize) -> State {
    let config = parse_config(&bench_config(apis, routes), Format::Yaml, "bench.yaml")
        .unwrap_or_else(|e| panic!("{e}"));
    let key = SecretKey::from_bytes(&[7; 32]).unwrap();
    let mut writer = Writer::new(&State::default(), "bench");
    writer.apply_config(&config, &key).unwrap();
    let mut state = writer.finish().state;
    state.revision = 1;
    state
}

/// This thread's CPU time so far.
pub(crate) fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// The global policy write the benchmark makes.
pub(crate) fn policy_write(base: &State, i: usize) -> State {
    let mut writer = Writer::new(base, "bench");
    let spec = PolicySpec {
        name: "response-headers".into(),
        config: serde_json::json!({"set": {"x-bench-rev": i.to_string()}}),
        enabled: true,
    };
    writer
        .replace::<Policies>("response-headers".into(), spec, None)
        .unwrap();
    writer.finish().state
}

#[test]
#[ignore = "measurement; run on demand"]
fn write_cost_full_pipeline() {
    let plugins = tollgate_plugins::registry();
    let mut state = bench_state(100, 100);
    let first = compile(
        &state.to_config(Listen::default()),
        &CompileOptions {
            registry: &plugins,
            previous: None,
            workers: 1,
            revision: 1,
        },
    )
    .unwrap();
    let handle = SnapshotHandle::new(first);
    let writes = 5;
    let mut totals = [Duration::ZERO; 5];
    for i in 0..writes {
        let phases = one_write(&mut state, &handle, &plugins, i);
        for (total, d) in totals.iter_mut().zip(phases) {
            *total += d;
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / writes as f64;
    println!(
        "per write (ms CPU): writer {:.2}, project {:.2}, validate {:.2}, compile {:.2}, publish+drop {:.2}, total {:.2}",
        per(totals[0]),
        per(totals[1]),
        per(totals[2]),
        per(totals[3]),
        per(totals[4]),
        per(totals.iter().sum()),
    );
}

/// One write of the benchmark, phase by phase (a function of its own so that callgrind can
/// collect only it: `--toggle-collect='*one_write*'`).
#[inline(never)]
fn one_write(
    state: &mut State,
    handle: &SnapshotHandle,
    plugins: &tollgate_plugin_api::Registry,
    i: usize,
) -> [Duration; 5] {
    let t0 = thread_cpu();
    let next = policy_write(state, i);
    let t1 = thread_cpu();
    let config = next.to_config(Listen::default());
    let t2 = thread_cpu();
    tollgate_model::validate(&config).unwrap();
    let t3 = thread_cpu();
    let previous = handle.load();
    let snapshot = compile(
        &config,
        &CompileOptions {
            registry: plugins,
            previous: Some(&previous),
            workers: 1,
            revision: 2 + i as u64,
        },
    )
    .unwrap();
    drop(previous);
    let t4 = thread_cpu();
    handle.publish(snapshot);
    drop(config);
    let t5 = thread_cpu();
    *state = next;
    [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]
}

#[test]
#[ignore = "measurement; run on demand"]
fn write_cost_incremental() {
    let plugins = tollgate_plugins::registry();
    let mut state = bench_state(100, 100);
    let mut incremental = crate::compile_thread::Incremental::new(
        plugins,
        std::sync::Arc::new(tollgate_store::secrets::SecretKey::from_bytes(&[7; 32]).unwrap()),
    );
    let first = incremental
        .compile_state(&state, Listen::default(), true, None, 1)
        .unwrap();
    let handle = SnapshotHandle::new(first);
    let writes = 5;
    let mut total = Duration::ZERO;
    let mut publish = Duration::ZERO;
    for i in 0..writes {
        let next = policy_write(&state, i);
        let (compile, swap) = one_incremental_write(&mut incremental, &next, &handle);
        total += compile;
        publish += swap;
        state = next;
    }
    let per = |d: Duration| d.as_secs_f64() * 1000.0 / writes as f64;
    println!(
        "per write (ms CPU), reusing: project+validate+compile {:.2}, publish+drop {:.2}",
        per(total),
        per(publish),
    );
}

/// One write through the compile thread's code (for callgrind: `*one_incremental_write*`).
#[inline(never)]
fn one_incremental_write(
    incremental: &mut crate::compile_thread::Incremental,
    next: &State,
    handle: &SnapshotHandle,
) -> (Duration, Duration) {
    let t0 = thread_cpu();
    let previous = handle.load();
    let snapshot = incremental
        .compile_state(next, Listen::default(), true, Some(&previous), 1)
        .unwrap();
    drop(previous);
    let t1 = thread_cpu();
    drop(handle.replace(snapshot));
    let t2 = thread_cpu();
    (t1 - t0, t2 - t1)
}
