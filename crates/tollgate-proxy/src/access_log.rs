//! JSON access log lines, written by a background thread so a slow terminal or disk never
//! blocks a worker (lines are dropped, and counted, when the writer falls behind).

use std::io::Write;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

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
    pub(crate) route: Option<&'a str>,
    pub(crate) api: Option<&'a str>,
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

/// Where access log lines go.
#[derive(Debug, Clone)]
pub struct AccessLogSink {
    tx: Option<SyncSender<Vec<u8>>>,
}

impl AccessLogSink {
    /// A sink that drops everything.
    pub fn disabled() -> Self {
        Self { tx: None }
    }

    /// A sink writing to `output`: `stdout`, `stderr` or a file path (appended). Starts the
    /// writer thread.
    pub fn open(output: &str) -> std::io::Result<Self> {
        let mut writer: Box<dyn Write + Send> = match output {
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
                    if writer
                        .write_all(&buf)
                        .and_then(|()| writer.flush())
                        .is_err()
                    {
                        // Nowhere to report a failing log output but stderr.
                        eprintln!("tollgate: access log write failed");
                    }
                    buf.clear();
                }
            })?;
        Ok(Self { tx: Some(tx) })
    }

    /// True when lines are written somewhere.
    pub(crate) fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queues a line; returns false when it had to be dropped.
    pub(crate) fn write(&self, record: &AccessRecord<'_>) -> bool {
        let Some(tx) = &self.tx else { return true };
        let mut line = Vec::with_capacity(384);
        if serde_json::to_writer(&mut line, record).is_err() {
            return false;
        }
        line.push(b'\n');
        match tx.try_send(line) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}
