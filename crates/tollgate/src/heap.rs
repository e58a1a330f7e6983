//! Giving freed heap memory back to the operating system.
//!
//! glibc's `malloc` returns memory to the system only from the top of each heap. A burst of
//! connections leaves their freed buffers (hyper's 8 KiB read and write buffers, request
//! futures) between allocations that live on, such as the connections that stay open, parked,
//! afterwards; that memory stays resident though nothing uses it. A process holding 1,000 idle
//! keep-alive connections after such a burst measured 6.4 KB of resident memory per connection
//! where 2.4 KB were in use.
//!
//! So, like Envoy's `shrink_heap` action does with tcmalloc, a task on the control runtime looks
//! once per [`INTERVAL`] at what `malloc` holds and, when at least the threshold is free and
//! the heap moved by at least the threshold since the last release, asks it to return whole
//! free pages (`malloc_trim(0)`). Memory given back costs a page fault when it is used again, so
//! small fluctuations are left alone. `TOLLGATE_HEAP_RELEASE=MIB` sets the threshold (default
//! [`DEFAULT_THRESHOLD_MIB`]), `off` disables it.

use std::time::Duration;

/// How often free memory is looked at.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
/// Growth of free memory (MiB) that triggers a release.
pub(crate) const DEFAULT_THRESHOLD_MIB: usize = 1;

/// The release threshold in bytes from `TOLLGATE_HEAP_RELEASE`: `None` when disabled.
pub(crate) fn threshold_from_env() -> Result<Option<usize>, String> {
    match std::env::var("TOLLGATE_HEAP_RELEASE") {
        Err(_) => Ok(Some(DEFAULT_THRESHOLD_MIB << 20)),
        Ok(v) => parse_threshold(&v),
    }
}

fn parse_threshold(v: &str) -> Result<Option<usize>, String> {
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match v.parse::<usize>() {
        Ok(mib) if mib > 0 && mib < (1 << 20) => Ok(Some(mib << 20)),
        _ => Err(format!(
            "TOLLGATE_HEAP_RELEASE={v:?}: expected a number of MiB (1 or more) or \"off\""
        )),
    }
}

/// Decides when to release: `malloc` holds at least `threshold` free, and what it holds (in
/// use or free) moved by at least `threshold` since the last release. Sampled once a second, a
/// burst can come and go between two samples; the change it leaves behind (connections that
/// stay open, buffers freed) is what counts.
#[derive(Debug)]
struct Trigger {
    threshold: usize,
    /// `(free, in use)` at the last release (or at start).
    last: Usage,
}

/// Bytes `malloc` holds free and in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    free: usize,
    used: usize,
}

impl Trigger {
    /// Whether to release now.
    fn should_release(&mut self, now: Usage) -> bool {
        let moved = now.free.abs_diff(self.last.free) + now.used.abs_diff(self.last.used);
        if now.free >= self.threshold && moved >= self.threshold {
            self.last = now;
            return true;
        }
        false
    }
}

/// Spawns the release task on the current runtime (no-op where `malloc` is not glibc's).
pub(crate) fn spawn(threshold: usize) {
    if !SUPPORTED {
        return;
    }
    tokio::spawn(async move {
        let mut trigger = Trigger {
            threshold,
            last: usage(),
        };
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            if trigger.should_release(usage()) {
                let started = std::time::Instant::now();
                release();
                tracing::debug!(elapsed = ?started.elapsed(), "released free heap pages");
            }
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SUPPORTED: bool = true;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const SUPPORTED: bool = false;

/// What `malloc` holds in its heaps.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn usage() -> Usage {
    // SAFETY: `mallinfo2` takes no arguments, returns a plain struct by value and only reads
    // the allocator's own state under its locks; glibc ≥ 2.33 provides it (Debian 12: 2.36).
    let info = unsafe { libc::mallinfo2() };
    Usage {
        free: info.fordblks,
        used: info.uordblks,
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn usage() -> Usage {
    Usage { free: 0, used: 0 }
}

/// Returns whole free pages of every heap to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn release() {
    // SAFETY: `malloc_trim` takes a plain integer and only changes the allocator's own state
    // under its locks (it advises the kernel that free pages are unneeded); no Rust object is
    // touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_when_enough_is_free_and_the_heap_moved_since_the_last_release() {
        let at = |free, used| Usage { free, used };
        let mut t = Trigger {
            threshold: 100,
            last: at(50, 1000),
        };
        assert!(!t.should_release(at(120, 1000)), "moved 70 only");
        assert!(t.should_release(at(160, 1000)), "moved 110, 160 free");
        assert!(!t.should_release(at(160, 1000)), "nothing new since");
        assert!(t.should_release(at(150, 1100)), "connections took 100 more");
        assert!(
            !t.should_release(at(60, 2000)),
            "moved a lot, but little is free"
        );
    }

    #[test]
    fn the_threshold_comes_from_the_environment_value() {
        assert_eq!(parse_threshold("off"), Ok(None));
        assert_eq!(parse_threshold("8"), Ok(Some(8 << 20)));
        assert!(parse_threshold("0").is_err());
        assert!(parse_threshold("lots").is_err());
    }
}
