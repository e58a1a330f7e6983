//! A small client for the admin API, used by the commands that act on a running gateway
//! (`config export|diff|apply`, `api ...`).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Where the admin API is and how to authenticate.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AdminArgs {
    /// Admin API base URL.
    #[arg(
        long = "admin",
        env = "TOLLGATE_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub(crate) url: String,
    /// Admin API token (see `tollgate admin token create`).
    #[arg(long, env = "TOLLGATE_ADMIN_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) output: Output,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// For people.
    Text,
    /// The API's JSON, for scripts.
    Json,
}

/// An answer of the admin API.
pub(crate) struct Answer {
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body as JSON (or null).
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The error message of a JSON error body, or the body as text.
    pub(crate) fn error_message(&self) -> String {
        let json = self.json();
        let error = &json["error"];
        let mut message = error["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_owned());
        if let Some(details) = error["details"].as_array() {
            for d in details {
                message.push_str(&format!(
                    "\n  {}: {}",
                    d["path"].as_str().unwrap_or(""),
                    d["message"].as_str().unwrap_or("")
                ));
            }
        }
        message
    }
}

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// Could not reach the admin API.
    Unreachable(String),
    /// It answered with an error status.
    Refused { status: u16, message: String },
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) => f.write_str(m),
            Self::Refused { status, message } => write!(f, "{status}: {message}"),
        }
    }
}

impl CallError {
    /// Exit code: 2 for refused input (4xx), 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Refused { status, .. } if (400..500).contains(status) => 2,
            _ => 1,
        }
    }
}

impl AdminArgs {
    /// Calls the admin API; non-2xx answers become [`CallError::Refused`].
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Bytes)>,
        accept: &str,
    ) -> Result<Answer, CallError> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = Request::builder()
            .method(method)
            .uri(&url)
            .header(ACCEPT, accept);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header(CONTENT_TYPE, content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let request = request
            .body(body)
            .map_err(|e| CallError::Unreachable(format!("invalid admin URL {url:?}: {e}")))?;
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let response = tokio::time::timeout(Duration::from_secs(60), client.request(request))
            .await
            .map_err(|_| CallError::Unreachable(format!("{url}: no answer within 60 s")))?
            .map_err(|e| {
                CallError::Unreachable(format!(
                    "cannot reach the admin API at {}: {e} (is the gateway running? see --admin)",
                    self.url
                ))
            })?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CallError::Unreachable(format!("{url}: reading the answer: {e}")))?
            .to_bytes();
        let answer = Answer { body };
        if (200..300).contains(&status) {
            Ok(answer)
        } else {
            Err(CallError::Refused {
                status,
                message: answer.error_message(),
            })
        }
    }
}

/// Runs an admin API call on a small runtime and turns its outcome into an exit code: 0,
/// 2 when the gateway refused the request (4xx), 1 otherwise.
pub(crate) fn remote<F: std::future::Future<Output = Result<(), CallError>>>(
    call: impl FnOnce() -> F,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start a runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(call()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A path segment or query value, percent-encoded.
pub(crate) fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
