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
//! at the resident memory not accounted for by what `malloc` has in use and, when that grew by
//! more than the threshold since the last release, asks `malloc` to return whole free pages
//! (`malloc_trim(0)`). A process under steady load frees and reuses the same pages, which is not
//! growth (a first version that counted any movement of the heap released every 1–3 s under
//! load, 0.1–0.8 ms each with the worker's arena locked); memory given back costs a page fault
//! when it is used again. `TOLLGATE_HEAP_RELEASE=MIB` sets the threshold (default
//! [`DEFAULT_THRESHOLD_MIB`]), `off` disables it.
//!
//! Asking `malloc` what it has in use (`mallinfo2`) walks every free chunk of every arena, each
//! arena locked meanwhile: 5–9 ms at 10,000 routes, where the compiles leave many small free
//! chunks. Done once a second, that was most of an idle node's CPU and a stall of the worker
//! whose arena was being walked. So the resident size, one read of `/proc/self/statm`, is
//! checked every [`INTERVAL`], and `malloc` is asked only when it grew by the threshold since it
//! was last asked, or [`LOOK_AT_LEAST_EVERY`] passed: memory freed after a burst without the
//! resident size moving (connections that closed) is returned within that time.

use std::time::{Duration, Instant};

/// How often the resident size is read.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
/// The longest time between two looks at what `malloc` has in use.
pub(crate) const LOOK_AT_LEAST_EVERY: Duration = Duration::from_secs(30);
/// Growth of resident slack (MiB) that triggers a release.
pub(crate) const DEFAULT_THRESHOLD_MIB: usize = 2;

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

/// Decides when to release: the resident memory not accounted for by what `malloc` has in
/// use (freed pages it still holds, plus the program's code and stacks) grew by more than the
/// threshold since the last release. A process under steady load keeps freeing and reusing
/// the same pages, which does not count as growth; the pages left behind by a burst do.
#[derive(Debug)]
struct Trigger {
    threshold: usize,
    /// The slack right after the last release (or at start).
    base: usize,
    /// The resident size when `malloc` was last asked, and when.
    looked: (usize, Instant),
}

/// Resident bytes and bytes `malloc` has in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Usage {
    resident: usize,
    used: usize,
}

impl Usage {
    fn slack(self) -> usize {
        self.resident.saturating_sub(self.used)
    }
}

impl Trigger {
    fn new(threshold: usize, now: Usage, at: Instant) -> Self {
        Self {
            threshold,
            base: now.slack(),
            looked: (now.resident, at),
        }
    }

    /// Whether to ask `malloc` what it has in use, the resident size being `resident`: it
    /// grew by the threshold since the last look, or the last look is old.
    fn should_look(&self, resident: usize, at: Instant) -> bool {
        let (last, when) = self.looked;
        resident > last + self.threshold || at.duration_since(when) >= LOOK_AT_LEAST_EVERY
    }

    /// Records a look at `now`.
    fn looked(&mut self, now: Usage, at: Instant) {
        self.looked = (now.resident, at);
    }

    /// Whether to release now.
    fn should_release(&self, now: Usage) -> bool {
        now.slack() > self.base + self.threshold
    }

    /// Records the state right after a release.
    fn released(&mut self, after: Usage) {
        self.base = after.slack();
    }
}

/// Spawns the release task on the current runtime (no-op where `malloc` is not glibc's).
pub(crate) fn spawn(threshold: usize) {
    if !SUPPORTED {
        return;
    }
    tokio::spawn(async move {
        let mut trigger = Trigger::new(threshold, usage(), Instant::now());
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            let at = Instant::now();
            if !trigger.should_look(resident_bytes().unwrap_or(0), at) {
                continue;
            }
            let now = usage();
            trigger.looked(now, at);
            if trigger.should_release(now) {
                let started = Instant::now();
                release();
                let after = usage();
                trigger.released(after);
                trigger.looked(after, Instant::now());
                tracing::debug!(elapsed = ?started.elapsed(), slack = after.slack(), "released free heap pages");
            }
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SUPPORTED: bool = true;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
const SUPPORTED: bool = false;

/// Resident memory (from `/proc/self/statm`) and what `malloc` has in use.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn usage() -> Usage {
    // SAFETY: `mallinfo2` takes no arguments, returns a plain struct by value and only reads
    // the allocator's own state under its locks; glibc ≥ 2.33 provides it (Debian 12: 2.36).
    let info = unsafe { libc::mallinfo2() };
    Usage {
        resident: resident_bytes().unwrap_or(0),
        used: info.uordblks + info.hblkhd,
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn usage() -> Usage {
    Usage {
        resident: 0,
        used: 0,
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn resident_bytes() -> Option<usize> {
    None
}

/// Resident set size: the second field of `/proc/self/statm`, in pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn page_size() -> usize {
    // SAFETY: `sysconf` takes a plain integer and reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
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
    fn releases_when_resident_slack_grew_past_the_threshold_since_the_last_release() {
        let at = |resident, used| Usage { resident, used };
        let mut t = Trigger::new(100, at(1500, 1000), Instant::now());
        assert!(!t.should_release(at(1500, 1000)), "steady");
        assert!(!t.should_release(at(1600, 1000)), "grew 100 only");
        assert!(t.should_release(at(1700, 1000)), "grew 200");
        t.released(at(1550, 1000));
        assert!(
            !t.should_release(at(1600, 1000)),
            "measured from the last release"
        );
        assert!(
            !t.should_release(at(2500, 2000)),
            "more in use is not slack"
        );
    }

    #[test]
    fn malloc_is_asked_when_the_resident_size_grew_or_the_last_look_is_old() {
        let start = Instant::now();
        let mut t = Trigger::new(
            100,
            Usage {
                resident: 1500,
                used: 1000,
            },
            start,
        );
        let later = |s| start + Duration::from_secs(s);
        assert!(!t.should_look(1500, later(1)), "steady");
        assert!(!t.should_look(1600, later(2)), "grew by the threshold only");
        assert!(!t.should_look(900, later(3)), "shrank");
        assert!(t.should_look(1601, later(4)), "grew past the threshold");
        assert!(t.should_look(1500, later(30)), "old look");
        t.looked(
            Usage {
                resident: 1601,
                used: 1000,
            },
            later(30),
        );
        assert!(
            !t.should_look(1601, later(31)),
            "measured from the last look"
        );
        assert!(!t.should_look(1701, later(59)));
        assert!(t.should_look(1702, later(59)));
    }

    #[test]
    fn the_threshold_comes_from_the_environment_value() {
        assert_eq!(parse_threshold("off"), Ok(None));
        assert_eq!(parse_threshold("8"), Ok(Some(8 << 20)));
        assert!(parse_threshold("0").is_err());
        assert!(parse_threshold("lots").is_err());
    }
}
