//! Cooperative pacing of long background work that shares cores with the proxy workers.
//!
//! Validating and compiling a configuration of 10,000 routes takes a few milliseconds of CPU.
//! Run in one go on a core where a worker is serving requests, it holds that core for as long:
//! Linux's scheduler (EEVDF) lets a thread that waited run off the share it is owed before a
//! woken worker gets the CPU back, whatever the thread's nice value, so every request on that
//! core waits milliseconds. Measured at 10,000 routes with one worker: request p99 went from
//! 0.4 ms to 2–3.5 ms while writes were made, with runs of the compile thread of 5 ms.
//!
//! So such work runs in short slices. A thread that opts in with [`enable`] and calls
//! [`point`] (in loops whose steps are short) or [`check`] (in loops whose steps take tens of
//! microseconds) sleeps for [`Pace::rest`] once it has worked for [`Pace::work`]: the worker
//! on its core runs meanwhile. On threads that did not opt in (workers, the CLI, tests) a
//! call is one thread-local read.
//!
//! Sleeping costs nothing when nobody else wants the core but lengthens the work: with the
//! default pace a compile of 5 ms of CPU takes about a quarter of a second, busy core or not.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long a slice of work may run and how long the thread then gives way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Work between rests.
    pub work: Duration,
    /// Sleep after each slice of work; zero: give the core to any other thread that wants
    /// it (`sched_yield`) and go on at once when none does.
    pub rest: Duration,
}

impl Pace {
    /// Slices of 100 µs, each followed by 1 ms of rest: a request on a worker sharing the core
    /// waits at most about a slice (plus the time between two calls) and the paced thread takes
    /// at most a tenth of the core. First chosen when a write cost 5 ms of compile work, with
    /// `bench/control_plane.py` at 10,000 routes on one saturated core (request p99 during
    /// writes against p99 without, and the writes' time to go live, p50): unpaced 7.3× (50 ms);
    /// 100 µs / 200 µs 1.9× (54 ms); 30 µs / 1 ms 1.5× (178 ms); 20 µs / 1 ms 1.26× (264 ms);
    /// 20 µs / 2 ms 1.08–1.33× (530 ms). Since a write recompiles only what it touched (about
    /// 0.3 ms of work), the rests cost more than the slices: at 20 µs a write took 14 runs and
    /// 1 ms of CPU on its core, at 100 µs 5 runs and 0.54 ms, and went live in 6 ms instead of
    /// 15 (`bench/write_threads.py`); the p99 ratio was the same within the host's noise (a
    /// median of 1.07× over 18 rounds, against 1.14× at 20 µs; unpaced 1.96× and 2.01×).
    pub const DEFAULT: Pace = Pace {
        work: Duration::from_micros(100),
        rest: Duration::from_millis(1),
    };
}

#[derive(Clone, Copy)]
struct Pacer {
    pace: Pace,
    since: Instant,
}

thread_local! {
    static PACER: Cell<Option<Pacer>> = const { Cell::new(None) };
    /// Calls of [`point`] since the clock was last read.
    static POINTS: Cell<u32> = const { Cell::new(0) };
}

/// [`point`] reads the clock once every this many calls.
const POINTS_PER_CHECK: u32 = 16;

/// Paces the calling thread from now on.
pub fn enable(pace: Pace) {
    PACER.with(|p| {
        p.set(Some(Pacer {
            pace,
            since: Instant::now(),
        }))
    });
}

/// Stops pacing the calling thread.
pub fn disable() {
    PACER.with(|p| p.set(None));
}

/// Runs `f` without pacing (work nobody waits behind, such as the compile before a node
/// starts serving), then paces the calling thread as before.
pub fn unpaced<R>(f: impl FnOnce() -> R) -> R {
    let saved = PACER.with(Cell::take);
    let result = f();
    PACER.with(|p| p.set(saved));
    restart();
    result
}

/// Whether the calling thread is paced.
pub fn enabled() -> bool {
    PACER.with(|p| p.get().is_some())
}

/// Starts a new slice of work now: call it when a paced thread starts a job after waiting for
/// one, so that the wait does not count as work.
pub fn restart() {
    PACER.with(|p| {
        if let Some(mut pacer) = p.get() {
            pacer.since = Instant::now();
            p.set(Some(pacer));
        }
    });
    POINTS.with(|n| n.set(0));
}

/// A point where a paced thread may give way; for loops whose steps take around a
/// microsecond (the clock is read every few calls).
#[inline]
pub fn point() {
    let due = POINTS.with(|n| {
        let calls = n.get() + 1;
        n.set(if calls >= POINTS_PER_CHECK { 0 } else { calls });
        calls >= POINTS_PER_CHECK
    });
    if due {
        check();
    }
}

/// A point where a paced thread may give way; for loops whose steps take tens of microseconds
/// (the clock is read on every call).
pub fn check() {
    PACER.with(|p| {
        if let Some(mut pacer) = p.get() {
            rest_if_due(&mut pacer);
            p.set(Some(pacer));
        }
    });
}

fn rest_if_due(pacer: &mut Pacer) {
    if pacer.since.elapsed() >= pacer.pace.work {
        if pacer.pace.rest.is_zero() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(pacer.pace.rest);
        }
        pacer.since = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let start = Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn unpaced_threads_never_sleep() {
        disable();
        let start = Instant::now();
        for _ in 0..1000 {
            check();
            point();
        }
        assert!(!enabled());
        // Nothing to sleep on: far below any rest.
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_paced_thread_rests_after_each_slice_of_work() {
        let pace = Pace {
            work: Duration::from_millis(2),
            rest: Duration::from_millis(20),
        };
        enable(pace);
        // 10 slices of 1 ms of work each: a rest is due after every second one.
        let start = Instant::now();
        for _ in 0..10 {
            spin(Duration::from_millis(1));
            check();
        }
        let elapsed = start.elapsed();
        disable();
        // 5 rests of 20 ms at least (sleeps never end early); without pacing it takes 10 ms.
        assert!(elapsed >= Duration::from_millis(100), "{elapsed:?}");
    }

    #[test]
    fn point_reads_the_clock_only_every_few_calls() {
        enable(Pace {
            work: Duration::ZERO,
            rest: Duration::from_millis(300),
        });
        let start = Instant::now();
        for _ in 0..POINTS_PER_CHECK - 1 {
            point();
        }
        let before_due = start.elapsed();
        point();
        let after = start.elapsed();
        disable();
        assert!(before_due < Duration::from_millis(300), "{before_due:?}");
        assert!(after >= Duration::from_millis(300), "{after:?}");
    }

    #[test]
    fn unpaced_work_never_rests_and_pacing_resumes_after() {
        enable(Pace {
            work: Duration::ZERO,
            rest: Duration::from_secs(5),
        });
        let start = Instant::now();
        let inside = unpaced(|| {
            check();
            enabled()
        });
        assert!(!inside);
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(enabled());
        disable();
    }

    #[test]
    fn restart_does_not_count_the_wait_as_work() {
        enable(Pace {
            work: Duration::from_millis(200),
            rest: Duration::from_secs(5),
        });
        std::thread::sleep(Duration::from_millis(250));
        restart();
        let start = Instant::now();
        check();
        let elapsed = start.elapsed();
        disable();
        // Without the restart the 250 ms wait would count as work and `check` would rest 5 s.
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }
}
