//! Watching the configuration file and the files it references (certificates, keys, CA
//! bundles) so a change to any of them triggers a reload.
//!
//! Directories are watched rather than files: editors replace files by renaming, and a
//! Kubernetes ConfigMap update swaps a `..data` symlink without touching the file itself. Any
//! event in a watched directory leads to a comparison (the configuration's text, the other
//! files' modification times), so only real changes reload.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tollgate_model::Config;

/// The watched files and what they were when last looked at.
pub(crate) struct ConfigWatch {
    config: PathBuf,
    last_text: String,
    referenced: Vec<(PathBuf, Option<SystemTime>)>,
    watcher: Option<RecommendedWatcher>,
    dirs: HashSet<PathBuf>,
}

impl ConfigWatch {
    /// Tracks `config` (whose current text is `text`); nothing is watched until
    /// [`ConfigWatch::start`].
    pub(crate) fn new(config: &Path, text: String) -> Self {
        Self {
            config: config.to_owned(),
            last_text: text,
            referenced: Vec::new(),
            watcher: None,
            dirs: HashSet::new(),
        }
    }

    /// Starts watching; each event sends `()` on `tx`. Failing to watch is logged, not fatal:
    /// SIGHUP still reloads.
    pub(crate) fn start(&mut self, tx: mpsc::Sender<()>) {
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && (event.kind.is_modify() || event.kind.is_create() || event.kind.is_remove())
            {
                let _ = tx.try_send(());
            }
        });
        match watcher {
            Ok(w) => self.watcher = Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the configuration file; reload with SIGHUP");
                return;
            }
        }
        let config = self.config.clone();
        self.watch_dir_of(&config);
        let referenced: Vec<PathBuf> = self.referenced.iter().map(|(p, _)| p.clone()).collect();
        for path in referenced {
            self.watch_dir_of(&path);
        }
    }

    /// Records the files `config` references (after a successful load) and watches them.
    pub(crate) fn track(&mut self, config: &Config) {
        let mut files: Vec<PathBuf> = Vec::new();
        for cert in &config.tls.certificates {
            files.push(PathBuf::from(&cert.cert));
            files.push(PathBuf::from(&cert.key));
        }
        for service in &config.services {
            if let Some(ca) = &service.tls.ca {
                files.push(PathBuf::from(ca));
            }
        }
        files.sort();
        files.dedup();
        self.referenced = files
            .into_iter()
            .map(|p| (modified(&p), p))
            .map(|(m, p)| (p, m))
            .collect();
        if self.watcher.is_some() {
            let paths: Vec<PathBuf> = self.referenced.iter().map(|(p, _)| p.clone()).collect();
            for path in paths {
                self.watch_dir_of(&path);
            }
        }
    }

    /// Whether anything changed since the last look (and remember what is seen now, so one
    /// edit is loaded, or rejected, once).
    pub(crate) fn changed(&mut self) -> bool {
        let mut changed = false;
        match std::fs::read_to_string(&self.config) {
            Ok(text) if text != self.last_text => {
                self.last_text = text;
                changed = true;
            }
            Ok(_) => {}
            // Unreadable: let the reload report why.
            Err(_) => changed = true,
        }
        for (path, seen) in &mut self.referenced {
            let now = modified(path);
            if now != *seen {
                *seen = now;
                changed = true;
            }
        }
        changed
    }

    fn watch_dir_of(&mut self, file: &Path) {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        if !self.dirs.insert(dir.clone()) {
            return;
        }
        if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot watch a directory; changes there need SIGHUP");
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    // Follows symlinks, so a swapped link target counts as a change.
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
