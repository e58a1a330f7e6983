//! [`StoreTokens`]: the store's token table, checked against a per-node copy.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tollgate_store::{Store, StoreError, TokenRecord};

use super::saved::{self, MIRROR_FILE_NAME};
use super::{Identity, Lookup, TokenSource};

/// How long [`StoreTokens`] trusts its copy of the token table without reading the store
/// again: a token revoked on another node stops working here within this time (at once on
/// the node that revoked it).
pub const FRESH_FOR: Duration = Duration::from_secs(5);

/// Where [`StoreTokens`] reads the token table: the store, or a stand-in in tests.
pub trait TokenTable: Send + Sync + 'static {
    /// Every token (hashes, never clear tokens).
    fn tokens(&self) -> TableRead<'_>;
}

/// A boxed read of the token table.
pub type TableRead<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<TokenRecord>, StoreError>> + Send + 'a>>;

impl TokenTable for Store {
    fn tokens(&self) -> TableRead<'_> {
        Box::pin(self.list_tokens())
    }
}

/// Tokens in the store's token table, checked against a copy of the whole table (a few
/// hashes) that survives the store going away.
///
/// - The copy is read at start and every half [`FRESH_FOR`] in the background
///   ([`StoreTokens::refresh_in_background`]). A token in a copy read less than
///   [`FRESH_FOR`] ago is accepted without a query.
/// - Any other token (unknown to the copy, or the copy is old) reads the table again, so a
///   token created on another node works at once and a revoked one stops within
///   [`FRESH_FOR`] (at once on the node that revoked it: [`TokenSource::invalidate`]).
///   Unknown tokens never enter the copy, so guesses cannot fill memory.
/// - When the store cannot be reached, tokens of the last copy are still accepted (and the
///   store is not asked again for [`FRESH_FOR`]); unknown ones get the store's error (503).
///   So `/metrics` and the read-only calls keep working through an outage, which is when
///   operators need them. A known token never waits for a read that another lookup started.
/// - With [`StoreTokens::persisted_in`], the copy is kept in a file (hashes, roles and
///   names, owner-only permissions), so a node restarted during an outage still knows its
///   tokens.
pub struct StoreTokens {
    table: Box<dyn TokenTable>,
    file: Option<PathBuf>,
    generation: AtomicU64,
    mirror: tokio::sync::Mutex<Mirror>,
    /// Held while the table is read: one read at a time.
    reading: tokio::sync::Mutex<()>,
    /// [`FRESH_FOR`], shorter in tests.
    fresh_for: Duration,
}

/// The copy of the token table.
#[derive(Default)]
struct Mirror {
    by_hash: HashMap<String, Identity>,
    /// The generation (see [`TokenSource::invalidate`]) when the copy was read or loaded
    /// from its file: a token revoked on this node since then may still be in it.
    generation: u64,
    /// When the table was last read.
    read: Option<Instant>,
    /// When the store last failed to answer.
    failed: Option<Instant>,
}

impl Mirror {
    /// Whether a known token can be accepted without reading the table.
    fn usable(&self, generation: u64, fresh_for: Duration) -> bool {
        let recent = |at: Option<Instant>| at.is_some_and(|at| at.elapsed() < fresh_for);
        self.generation == generation && (recent(self.read) || recent(self.failed))
    }
}

impl std::fmt::Debug for StoreTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTokens")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl StoreTokens {
    /// Tokens of `store`.
    pub fn new(store: Store) -> Self {
        Self::over(Box::new(store))
    }

    /// Tokens of any token table.
    pub fn over(table: Box<dyn TokenTable>) -> Self {
        Self {
            table,
            file: None,
            generation: AtomicU64::new(0),
            mirror: tokio::sync::Mutex::new(Mirror::default()),
            reading: tokio::sync::Mutex::new(()),
            fresh_for: FRESH_FOR,
        }
    }

    /// Keeps the copy of the token table in `data_dir` ([`MIRROR_FILE_NAME`]), and starts
    /// from the copy found there (it is used only while the store cannot be reached: the
    /// first lookup reads the store). A missing or unreadable file starts empty (logged).
    pub fn persisted_in(mut self, data_dir: &Path) -> Self {
        let path = data_dir.join(MIRROR_FILE_NAME);
        match saved::read(&path) {
            Ok(by_hash) => self.mirror.get_mut().by_hash = by_hash,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                file = %path.display(),
                error = %e,
                "ignoring the saved copy of the admin tokens"
            ),
        }
        self.file = Some(path);
        self
    }

    /// Reads the table now and then every half [`FRESH_FOR`] on the current runtime (while
    /// `self` lives), so that the copy is current even where no token was presented since
    /// the start. Does nothing outside a runtime.
    pub fn refresh_in_background(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let Some(period) = weak.upgrade().map(|tokens| tokens.fresh_for / 2) else {
                return;
            };
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(tokens) = weak.upgrade() else { return };
                let generation = tokens.generation.load(Ordering::Acquire);
                // (`_reading` is held until the end of the statement: one read at a time)
                if let Ok(_reading) = tokens.reading.try_lock()
                    && let Err(e) = tokens.read_table(generation).await
                    && !e.is_unreachable()
                {
                    tracing::warn!(error = %e, "cannot read the admin tokens");
                }
            }
        });
    }

    async fn lookup(&self, hash: &str) -> Result<Option<Identity>, StoreError> {
        let generation = self.generation.load(Ordering::Acquire);
        let fresh_for = self.fresh_for;
        let (known, current) = {
            let mirror = self.mirror.lock().await;
            let known = mirror.by_hash.get(hash).cloned();
            if known.is_some() && mirror.usable(generation, fresh_for) {
                return Ok(known);
            }
            (known, mirror.generation == generation)
        };
        let _reading = match self.reading.try_lock() {
            Ok(reading) => reading,
            // Another lookup or the refresher is reading the table: a known token does not
            // wait for it, unless a token was revoked here since the copy was read.
            Err(_) if known.is_some() && current => return Ok(known),
            Err(_) => self.reading.lock().await,
        };
        match self.read_table(generation).await {
            Ok(()) => Ok(self.mirror.lock().await.by_hash.get(hash).cloned()),
            // not a token revoked here since the copy was read
            Err(e) if e.is_unreachable() && known.is_some() && current => Ok(known),
            Err(e) => Err(e),
        }
    }

    /// Reads the table into the copy and saves it when it changed. The caller holds
    /// `reading`.
    async fn read_table(&self, generation: u64) -> Result<(), StoreError> {
        let result = self.table.tokens().await;
        let mut mirror = self.mirror.lock().await;
        match result {
            Ok(records) => {
                let by_hash: HashMap<String, Identity> = records
                    .into_iter()
                    .map(|r| {
                        let identity = Identity {
                            id: r.id,
                            name: r.name,
                            role: r.role,
                        };
                        (r.hash, identity)
                    })
                    .collect();
                let changed = by_hash != mirror.by_hash;
                mirror.by_hash = by_hash;
                mirror.generation = generation;
                mirror.read = Some(Instant::now());
                mirror.failed = None;
                if changed && let Some(path) = &self.file {
                    let copy = mirror.by_hash.clone();
                    drop(mirror);
                    saved::save(path.clone(), &copy).await;
                }
                Ok(())
            }
            Err(e) => {
                if e.is_unreachable() {
                    if mirror.failed.is_none() {
                        tracing::warn!(
                            error = %e,
                            "the store cannot be reached: admin tokens are checked against the last copy of the token table"
                        );
                    }
                    mirror.failed = Some(Instant::now());
                }
                Err(e)
            }
        }
    }
}

impl TokenSource for StoreTokens {
    fn identify<'a>(&'a self, token_sha256: &'a str) -> Lookup<'a> {
        Box::pin(self.lookup(token_sha256))
    }

    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use tollgate_store::Role;
    use tollgate_store::secrets::sha256_hex;

    use super::*;
    use crate::tokens::block_on;

    /// A token table that can be made unreachable, counting its reads.
    #[derive(Clone, Default)]
    struct FakeTable {
        tokens: Arc<std::sync::atomic::AtomicBool>,
        down: Arc<std::sync::atomic::AtomicBool>,
        reads: Arc<AtomicU64>,
    }

    impl FakeTable {
        /// Reachable, holding `tg_secret` (a viewer named `scraper`).
        fn holding_a_token() -> Self {
            let table = Self::default();
            table.tokens.store(true, Ordering::SeqCst);
            table
        }
    }

    impl TokenTable for FakeTable {
        fn tokens(&self) -> TableRead<'_> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let down = self.down.load(Ordering::SeqCst);
            let present = self.tokens.load(Ordering::SeqCst);
            Box::pin(async move {
                if down {
                    return Err(StoreError::Timeout(Duration::from_millis(1)));
                }
                Ok(if present {
                    vec![TokenRecord {
                        id: "tok_1".into(),
                        name: "scraper".into(),
                        role: Role::Viewer,
                        hash: sha256_hex("tg_secret"),
                        created_at: 0,
                        created_by: "test".into(),
                    }]
                } else {
                    Vec::new()
                })
            })
        }
    }

    #[test]
    fn known_tokens_survive_an_unreachable_store_and_unknown_ones_get_its_error() {
        let table = FakeTable::holding_a_token();
        let mut tokens = StoreTokens::over(Box::new(table.clone()));
        tokens.fresh_for = Duration::from_millis(50);
        let hash = sha256_hex("tg_secret");
        let who = block_on(tokens.identify(&hash)).unwrap().unwrap();
        assert_eq!((who.name.as_str(), who.role), ("scraper", Role::Viewer));
        // fresh copy: no second read
        block_on(tokens.identify(&hash)).unwrap().unwrap();
        assert_eq!(table.reads.load(Ordering::SeqCst), 1);

        table.down.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(60)); // the copy is no longer fresh
        let who = block_on(tokens.identify(&hash)).unwrap();
        assert_eq!(who.map(|w| w.id), Some("tok_1".to_owned()));
        assert_eq!(table.reads.load(Ordering::SeqCst), 2);
        // while the store is down it is not asked again for known tokens...
        block_on(tokens.identify(&hash)).unwrap().unwrap();
        assert_eq!(table.reads.load(Ordering::SeqCst), 2);
        // ...but an unknown token cannot be told from a new one: the store's error
        let e = block_on(tokens.identify(&sha256_hex("other"))).unwrap_err();
        assert!(e.is_unreachable(), "{e}");

        // back, and the token revoked meanwhile: refused at the next read
        table.down.store(false, Ordering::SeqCst);
        table.tokens.store(false, Ordering::SeqCst);
        tokens.invalidate();
        assert!(block_on(tokens.identify(&hash)).unwrap().is_none());
    }

    #[test]
    fn a_token_revoked_here_is_refused_even_when_the_store_then_fails() {
        let table = FakeTable::holding_a_token();
        let tokens = StoreTokens::over(Box::new(table.clone()));
        let hash = sha256_hex("tg_secret");
        block_on(tokens.identify(&hash)).unwrap().unwrap();
        tokens.invalidate(); // revoked through this node's API...
        table.down.store(true, Ordering::SeqCst); // ...and the store goes away at once
        assert!(block_on(tokens.identify(&hash)).is_err());
    }

    #[test]
    fn the_background_refresh_reads_the_table_before_any_token_is_presented() {
        let table = FakeTable::holding_a_token();
        let mut tokens = StoreTokens::over(Box::new(table.clone()));
        tokens.fresh_for = Duration::from_millis(200);
        let tokens = Arc::new(tokens);
        block_on(async {
            tokens.refresh_in_background();
            tokio::time::sleep(Duration::from_millis(20)).await;
            table.down.store(true, Ordering::SeqCst);
            // no fresh copy any more: the lookup asks the store, which fails
            tokio::time::sleep(Duration::from_millis(250)).await;
            let who = tokens.identify(&sha256_hex("tg_secret")).await.unwrap();
            assert_eq!(who.map(|w| w.name), Some("scraper".to_owned()));
        });
        assert!(table.reads.load(Ordering::SeqCst) >= 2);
    }

    #[test]
    fn the_copy_is_saved_and_serves_a_restart_during_an_outage() {
        let dir = std::env::temp_dir().join(format!("tollgate-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let table = FakeTable::holding_a_token();
        let hash = sha256_hex("tg_secret");
        let first = StoreTokens::over(Box::new(table.clone())).persisted_in(&dir);
        block_on(first.identify(&hash)).unwrap().unwrap();
        let path = dir.join(MIRROR_FILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&hash) && !text.contains("tg_secret"),
            "{text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        table.down.store(true, Ordering::SeqCst);
        let restarted = StoreTokens::over(Box::new(table.clone())).persisted_in(&dir);
        let who = block_on(restarted.identify(&hash)).unwrap().unwrap();
        assert_eq!(who.name, "scraper");

        std::fs::write(&path, "{not json").unwrap();
        let corrupt = StoreTokens::over(Box::new(table)).persisted_in(&dir);
        assert!(block_on(corrupt.identify(&hash)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
