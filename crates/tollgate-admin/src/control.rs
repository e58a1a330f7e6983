//! The control core behind the admin API: the current state, and the one write path every
//! mutation takes — prepare the change set on a copy of the state, validate the resulting
//! configuration with the same code as configuration files, commit it with compare-and-swap,
//! and publish the new state. A failed step writes nothing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tollgate_model::{Config, Diagnostic, Listen};
use tollgate_store::secrets::SecretKey;
use tollgate_store::{Feed, State, StoreError, WriteError, Writer};

/// Checks a whole configuration the way loading it from a file would (model validation and
/// the plugins' typed configurations). Provided by the binary, which knows the plugins.
pub trait ConfigValidator: Send + Sync {
    /// Every problem found, with field paths; `Ok` when the configuration would load.
    fn validate(&self, config: &Config) -> Result<(), Vec<Diagnostic>>;

    /// Validates the configuration of `state` (with the node's `listen`), which a write
    /// would commit as store `revision`. A validator that compiles may keep the result, so
    /// that the data plane publishes it once the write is [`ConfigValidator::committed`]
    /// instead of compiling the same state again, and may do the work on a thread of its
    /// own. `key` decrypts certificates' private keys for the check (in memory only).
    /// Default: [`ConfigValidator::validate`] of the state's live configuration, here.
    fn prepare(
        &self,
        state: Arc<State>,
        listen: Listen,
        key: Arc<SecretKey>,
        revision: i64,
    ) -> Preparing<'_> {
        let _ = revision;
        let checked = state
            .to_live_config(listen, &key)
            .and_then(|config| self.validate(&config));
        Box::pin(std::future::ready(checked))
    }

    /// The write prepared as `revision` was committed.
    fn committed(&self, revision: i64) {
        let _ = revision;
    }
}

/// A [`ConfigValidator::prepare`] under way.
pub type Preparing<'a> = Pin<Box<dyn Future<Output = Result<(), Vec<Diagnostic>>> + Send + 'a>>;

/// Where the state comes from.
enum Source {
    /// A store: writable.
    Store(Arc<Feed>),
    /// A configuration file (file mode): read-only; the binary republishes on reload.
    File(tokio::sync::watch::Sender<Arc<State>>),
}

/// The result of a successful write.
#[derive(Debug, Clone)]
pub struct Written<R> {
    /// What the operation returned.
    pub value: R,
    /// The store revision after the write (unchanged when the write changed nothing).
    pub revision: i64,
    /// The state after the write.
    pub state: Arc<State>,
}

/// Why a write failed: the store's refusals, plus file mode.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A refused write.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The gateway runs from a configuration file; the admin API only reads.
    #[error(
        "this gateway runs from a configuration file: the admin API is read-only (edit the file, or run with a store)"
    )]
    ReadOnly,
    /// Other writers kept committing first.
    #[error("the store kept changing concurrently; retry")]
    Busy,
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        Self::Write(WriteError::Store(e))
    }
}

/// The admin API's view of the configuration state.
pub struct Control {
    source: Source,
    key: Arc<SecretKey>,
    validator: Arc<dyn ConfigValidator>,
    listen: Listen,
    writes: tokio::sync::Mutex<()>,
    debugger: Option<Arc<dyn crate::debug::Debugger>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("read_only", &self.read_only())
            .finish_non_exhaustive()
    }
}

const WRITE_ATTEMPTS: usize = 5;

impl Control {
    /// A writable control over a store's feed.
    pub fn with_store(
        feed: Arc<Feed>,
        key: Arc<SecretKey>,
        validator: Arc<dyn ConfigValidator>,
        listen: Listen,
    ) -> Self {
        Self {
            source: Source::Store(feed),
            key,
            validator,
            listen,
            writes: tokio::sync::Mutex::new(()),
            debugger: None,
        }
    }

    /// A read-only control showing a configuration file; see [`Control::show_file`].
    pub fn with_file(
        config: &Config,
        key: Arc<SecretKey>,
        validator: Arc<dyn ConfigValidator>,
    ) -> Result<Self, ControlError> {
        let state = state_of_file(config, &key)?;
        Ok(Self {
            source: Source::File(tokio::sync::watch::channel(Arc::new(state)).0),
            key,
            validator,
            listen: config.listen.clone(),
            writes: tokio::sync::Mutex::new(()),
            debugger: None,
        })
    }

    /// In file mode, shows a newly loaded configuration file.
    pub fn show_file(&self, config: &Config) -> Result<(), ControlError> {
        if let Source::File(tx) = &self.source {
            let mut state = state_of_file(config, &self.key)?;
            state.revision = tx.borrow().revision + 1;
            tx.send_replace(Arc::new(state));
        }
        Ok(())
    }

    /// Adds the sandbox behind the debug endpoint.
    pub fn with_debugger(mut self, debugger: Arc<dyn crate::debug::Debugger>) -> Self {
        self.debugger = Some(debugger);
        self
    }

    /// The sandbox behind the debug endpoint, if any.
    pub fn debugger(&self) -> Option<&Arc<dyn crate::debug::Debugger>> {
        self.debugger.as_ref()
    }

    /// Whether writes are refused (file mode).
    pub fn read_only(&self) -> bool {
        matches!(self.source, Source::File(_))
    }

    /// The store behind a writable control (`None` in file mode).
    pub fn store(&self) -> Option<&tollgate_store::Store> {
        match &self.source {
            Source::Store(feed) => Some(feed.store()),
            Source::File(_) => None,
        }
    }

    /// How the store is doing (`None` in file mode).
    pub fn store_health(&self) -> Option<tollgate_store::StoreHealth> {
        match &self.source {
            Source::Store(feed) => Some(feed.health()),
            Source::File(_) => None,
        }
    }

    /// The key that protects secrets at rest.
    pub fn secret_key(&self) -> &SecretKey {
        &self.key
    }

    /// The node's listeners (not stored; shown in exports).
    pub fn listen(&self) -> &Listen {
        &self.listen
    }

    /// The current state.
    pub fn state(&self) -> Arc<State> {
        match &self.source {
            Source::Store(feed) => feed.current(),
            Source::File(tx) => tx.borrow().clone(),
        }
    }

    /// States as they are published (the binary compiles each one for the data plane).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<State>> {
        match &self.source {
            Source::Store(feed) => feed.subscribe(),
            Source::File(tx) => tx.subscribe(),
        }
    }

    /// The whole configuration of the current state, in the file schema.
    pub fn export(&self) -> Config {
        self.state().to_config(self.listen.clone())
    }

    /// Validates a configuration as a write would.
    pub fn validate(&self, config: &Config) -> Result<(), WriteError> {
        self.validator.validate(config).map_err(WriteError::Invalid)
    }

    /// Runs `change` on a copy of the current state, validates the result and commits it.
    /// When another writer commits first, the change is prepared again on the newer state
    /// (so `If-Match` checks and lifecycle rules always see the state they commit onto).
    pub async fn write<R>(
        &self,
        actor: &str,
        change: impl Fn(&mut Writer) -> Result<R, WriteError>,
    ) -> Result<Written<R>, ControlError> {
        let Source::Store(feed) = &self.source else {
            return Err(ControlError::ReadOnly);
        };
        let _serialized = self.writes.lock().await;
        for _ in 0..WRITE_ATTEMPTS {
            let base = feed.current();
            let mut writer = Writer::new(&base, actor);
            let value = change(&mut writer)?;
            if writer.is_empty() {
                return Ok(Written {
                    value,
                    revision: base.revision,
                    state: base,
                });
            }
            let prepared = writer.finish();
            let next = Arc::new(prepared.state);
            self.validator
                .prepare(
                    next.clone(),
                    self.listen.clone(),
                    self.key.clone(),
                    prepared.base_revision + 1,
                )
                .await
                .map_err(WriteError::Invalid)?;
            match feed
                .store()
                .commit(prepared.base_revision, &prepared.changes, &prepared.audit)
                .await
            {
                Ok(revision) => {
                    self.validator.committed(revision);
                    let mut state = Arc::unwrap_or_clone(next);
                    state.revision = revision;
                    let state = Arc::new(state);
                    feed.install(state.clone());
                    return Ok(Written {
                        value,
                        revision,
                        state,
                    });
                }
                Err(StoreError::Conflict { .. }) => {
                    feed.refresh().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ControlError::Busy)
    }

    /// What `change` would do, without writing: the audit records it would produce (what
    /// `config diff` shows), after validation.
    pub fn dry_run<R>(
        &self,
        actor: &str,
        change: impl Fn(&mut Writer) -> Result<R, WriteError>,
    ) -> Result<(R, Vec<tollgate_store::AuditRecord>), ControlError> {
        let base = self.state();
        let mut writer = Writer::new(&base, actor);
        let value = change(&mut writer)?;
        let prepared = writer.finish();
        self.validate(&self.live_config(&prepared.state)?)?;
        Ok((value, prepared.audit))
    }

    /// What the data plane compiles for `state`: its configuration with certificates'
    /// private keys decrypted (in memory only: never exported, stored or logged).
    pub fn live_config(&self, state: &State) -> Result<Config, WriteError> {
        state
            .to_live_config(self.listen.clone(), &self.key)
            .map_err(WriteError::Invalid)
    }
}

/// The state a configuration file describes (as if applied to an empty store).
fn state_of_file(config: &Config, key: &SecretKey) -> Result<State, ControlError> {
    let mut writer = Writer::new(&State::default(), "file");
    writer.apply_config(config, key)?;
    let mut state = writer.finish().state;
    state.revision = 1;
    Ok(state)
}
