//! A short scheduler slice for the proxy workers (Linux 6.12 and later).
//!
//! A worker shares its core with the gateway's own background threads (the control runtime,
//! the compile thread, the store's threads) and, on a small machine, with a database. Linux's
//! scheduler (EEVDF) lets the thread that is running finish its slice before a thread that just
//! woke takes the core ("run to parity"), unless the woken one asked for a shorter slice than
//! the running one: then it preempts at once. A request arriving while a background thread runs
//! waited up to that thread's slice (0.75–3 ms by default) before its worker ran. A worker
//! that asks for the shortest slice there is ([`WORKER_SLICE`]) takes its core back as soon as
//! a request wakes it; its share of the CPU is unchanged (a slice sets how often a thread is
//! picked, not how much it gets).
//!
//! `TOLLGATE_WORKER_SLICE=off` keeps the kernel's default; `TOLLGATE_WORKER_SLICE=N` (µs, 100
//! to 100,000) asks for another length. Kernels before 6.12 ignore the request.

use std::time::Duration;

/// The slice the workers ask for: the kernel's minimum.
pub const WORKER_SLICE: Duration = Duration::from_micros(100);

/// The slice the workers ask for, from `TOLLGATE_WORKER_SLICE` (`None`: the kernel's default).
pub fn configured() -> Result<Option<Duration>, String> {
    match std::env::var("TOLLGATE_WORKER_SLICE") {
        Err(_) => Ok(Some(WORKER_SLICE)),
        Ok(value) => parse(&value),
    }
}

fn parse(value: &str) -> Result<Option<Duration>, String> {
    if value == "off" {
        return Ok(None);
    }
    match value.parse::<u64>() {
        Ok(us @ 100..=100_000) => Ok(Some(Duration::from_micros(us))),
        _ => Err(format!(
            "TOLLGATE_WORKER_SLICE must be 'off' or microseconds from 100 to 100000, not '{value}'"
        )),
    }
}

/// Asks the scheduler to give the calling thread slices of `slice`, keeping its policy and
/// nice value.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn set_for_this_thread(slice: Duration) -> std::io::Result<()> {
    let mut attr = this_thread()?;
    if attr.sched_policy != libc::SCHED_OTHER as u32 {
        // Real-time or idle workers: the slice means nothing there (and an unprivileged thread
        // could not set them back).
        return Ok(());
    }
    attr.sched_flags = 0;
    attr.sched_runtime = u64::try_from(slice.as_nanos()).map_err(std::io::Error::other)?;
    // SAFETY: `sched_setattr(0, attr, 0)` reads `attr.size` bytes of `attr`, a live
    // `sched_attr` whose `size` field is its own size; it changes only the calling thread's
    // scheduling (same policy and nice value, a new slice length).
    let rc = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, std::ptr::from_ref(&attr), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The calling thread's scheduling attributes (`size` set to the struct's).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn this_thread() -> std::io::Result<libc::sched_attr> {
    let size =
        u32::try_from(std::mem::size_of::<libc::sched_attr>()).map_err(std::io::Error::other)?;
    // SAFETY: all-zero bytes are a valid `sched_attr` (a plain struct of integers).
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `sched_getattr(0, attr, size, 0)` writes at most `size` bytes into `attr`, which
    // is a live, exclusively borrowed `sched_attr` of that size; pid 0 is the calling thread.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            std::ptr::from_mut(&mut attr),
            size,
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    attr.size = size;
    Ok(attr)
}

/// Elsewhere: the scheduler's default.
#[cfg(not(target_os = "linux"))]
pub fn set_for_this_thread(_slice: Duration) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_off_or_a_length_the_kernel_accepts() {
        assert_eq!(parse("off"), Ok(None));
        assert_eq!(parse("100"), Ok(Some(Duration::from_micros(100))));
        assert_eq!(parse("3000"), Ok(Some(Duration::from_millis(3))));
        for bad in ["", "99", "100001", "1ms", "-5"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("TOLLGATE_WORKER_SLICE"), "{bad}: {err}");
        }
    }

    /// On a kernel with custom slices the thread's slice is what was asked for, and its nice
    /// value is kept; on an older one the call succeeds and changes nothing.
    #[cfg(target_os = "linux")]
    #[test]
    #[allow(unsafe_code)]
    fn the_thread_gets_the_slice_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            // SAFETY: plain integers in, no memory of ours touched.
            let tid = unsafe { libc::gettid() } as libc::id_t;
            // SAFETY: as above; nice 5 for this test thread only (a per-thread attribute).
            assert_eq!(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 5) }, 0);
            set_for_this_thread(Duration::from_micros(300)).unwrap();
            let attr = this_thread().unwrap();
            assert_eq!(attr.sched_nice, 5);
            if has_custom_slices() {
                assert_eq!(attr.sched_runtime, 300_000);
            }
        })
        .join()
        .unwrap();
    }

    /// Linux 6.12 or later.
    #[cfg(target_os = "linux")]
    fn has_custom_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (major, minor) >= (6, 12)
    }
}
