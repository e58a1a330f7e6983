//! JSON access log lines, written by a background thread so a slow terminal or disk never
//! blocks a worker (lines are dropped, and counted, when the writer falls behind).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use arc_swap::ArcSwapOption;

use serde::Serialize;

/// One access log line.
#[derive(Debug, Serialize)]
pub(crate) struct AccessRecord<'a> {
    pub(crate) time: String,
    pub(crate) request_id: &'a str,
    pub(crate) client_ip: String,
    pub(crate) method: &'a str,
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    pub(crate) environment: Option<&'a str>,
    pub(crate) route: Option<&'a str>,
    pub(crate) api: Option<&'a str>,
    pub(crate) api_version: Option<&'a str>,
    pub(crate) service: Option<&'a str>,
    pub(crate) target: Option<&'a str>,
    pub(crate) status: u16,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) duration_ms: f64,
    pub(crate) upstream_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<&'a str>,
}

/// Where access log lines go. Cloning shares the destination; [`AccessLogSink::configure`]
/// switches it (on reload) for every clone at once.
#[derive(Debug, Clone, Default)]
pub struct AccessLogSink {
    current: Arc<ArcSwapOption<Writer>>,
}

/// One destination with its writer thread.
#[derive(Debug)]
struct Writer {
    output: String,
    tx: SyncSender<Vec<u8>>,
    /// Set by the writer thread when it has written everything and stopped.
    finished: Arc<AtomicBool>,
}

impl AccessLogSink {
    /// A sink that drops everything (until configured).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Writes to `output` (`stdout`, `stderr` or a file path, appended) when `enabled`, or
    /// nowhere. Keeps the current writer when nothing changed. On error the previous
    /// destination stays in use.
    pub fn configure(&self, enabled: bool, output: &str) -> std::io::Result<()> {
        let current = self.current.load();
        match (&*current, enabled) {
            (Some(w), true) if w.output == output => return Ok(()),
            (None, false) => return Ok(()),
            _ => {}
        }
        let next = if enabled {
            Some(Arc::new(Writer::open(output)?))
        } else {
            None
        };
        if let Some(old) = self.current.swap(next) {
            old.close();
        }
        Ok(())
    }

    /// Stops writing and waits (briefly) until queued lines are written.
    pub fn close(&self) {
        if let Some(old) = self.current.swap(None) {
            old.close();
        }
    }

    /// True when lines are written somewhere.
    pub(crate) fn enabled(&self) -> bool {
        self.current.load().is_some()
    }

    /// Queues a line; returns false when it had to be dropped.
    pub(crate) fn write(&self, record: &AccessRecord<'_>) -> bool {
        let guard = self.current.load();
        let Some(writer) = &*guard else { return true };
        let mut line = Vec::with_capacity(384);
        if serde_json::to_writer(&mut line, record).is_err() {
            return false;
        }
        line.push(b'\n');
        match writer.tx.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

impl Writer {
    fn open(output: &str) -> std::io::Result<Self> {
        let mut out: Box<dyn Write + Send> = match output {
            "stdout" => Box::new(std::io::stdout()),
            "stderr" => Box::new(std::io::stderr()),
            path => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(16 * 1024);
        let finished = Arc::new(AtomicBool::new(false));
        let done = finished.clone();
        std::thread::Builder::new()
            .name("tollgate-access-log".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(64 * 1024);
                while let Ok(line) = rx.recv() {
                    buf.extend_from_slice(&line);
                    while let Ok(more) = rx.try_recv() {
                        buf.extend_from_slice(&more);
                        if buf.len() > 60 * 1024 {
                            break;
                        }
                    }
                    if out.write_all(&buf).and_then(|()| out.flush()).is_err() {
                        // Nowhere to report a failing log output but stderr.
                        eprintln!("tollgate: access log write failed");
                    }
                    buf.clear();
                }
                done.store(true, Ordering::Release);
            })?;
        Ok(Self {
            output: output.to_owned(),
            tx,
            finished,
        })
    }

    /// Ends the writer thread once every queued line is written (at most ~2 s). Lines still
    /// being queued by requests holding this writer go to the closed channel and are dropped.
    fn close(self: Arc<Self>) {
        let finished = self.finished.clone();
        // The channel closes when the last sender goes; requests may briefly hold one.
        drop(self);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !finished.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
