//! Preparing a change set: every write is applied to a copy of the state (so later checks of
//! the same change set see it), recorded as a document change, and audited with its before
//! and after. Nothing touches the store until the caller validates the resulting state and
//! commits the change set with compare-and-swap on the base revision.

use std::sync::Arc;

use serde::Serialize;
use tollgate_model::{Diagnostic, ServerConfig};

use super::{Collection, Entry, State, kind};
use crate::{AuditRecord, Change, StoreError};

/// Why a write was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The object does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The object exists already, or the write conflicts with the state (409).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` named a revision the object is no longer at (412).
    #[error("{what} is at revision {current}, not {expected}: reload it and retry")]
    PreconditionFailed {
        /// The object.
        what: String,
        /// The revision the client had.
        expected: i64,
        /// The object's revision.
        current: i64,
    },
    /// The result would be an invalid configuration (400), each problem with its field path.
    #[error("invalid configuration: {}", .0.iter().map(|d| format!("{}: {}", d.path, d.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Diagnostic>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A change set being prepared against a base state.
#[derive(Debug)]
pub struct Writer {
    base_revision: i64,
    next: State,
    changes: Vec<Change>,
    audit: Vec<AuditRecord>,
    actor: String,
    now: i64,
}

/// A prepared change set.
#[derive(Debug)]
pub struct Prepared {
    /// The state after the change (at the base revision + 1 once committed).
    pub state: State,
    /// Document writes.
    pub changes: Vec<Change>,
    /// Audit records.
    pub audit: Vec<AuditRecord>,
    /// The revision the change set was prepared against.
    pub base_revision: i64,
}

impl Writer {
    /// Starts a change set on `base` on behalf of `actor`.
    pub fn new(base: &State, actor: &str) -> Self {
        Self {
            base_revision: base.revision,
            next: State {
                revision: base.revision + 1,
                ..base.clone()
            },
            changes: Vec::new(),
            audit: Vec::new(),
            actor: actor.to_owned(),
            now: crate::db::unix_now(),
        }
    }

    /// The state as changed so far.
    pub fn state(&self) -> &State {
        &self.next
    }

    /// The revision this change set will commit as (a compare-and-swap commit makes it
    /// exactly the base revision + 1).
    pub fn revision(&self) -> i64 {
        self.next.revision
    }

    /// Who is writing.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// Unix seconds of this change set.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Whether anything was changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Ends the change set.
    pub fn finish(self) -> Prepared {
        Prepared {
            state: self.next,
            changes: self.changes,
            audit: self.audit,
            base_revision: self.base_revision,
        }
    }

    /// The audit records so far (what `config diff` shows).
    pub fn audit(&self) -> &[AuditRecord] {
        &self.audit
    }

    fn check_match<C: Collection>(
        &self,
        key: &C::Key,
        if_match: Option<i64>,
    ) -> Result<Option<Arc<Entry<C::Value>>>, WriteError> {
        let current = C::map(&self.next).get(key).cloned();
        if let Some(expected) = if_match {
            match &current {
                Some(entry) if entry.revision != expected => {
                    return Err(WriteError::PreconditionFailed {
                        what: format!("{} {}", C::LABEL, C::show(key)),
                        expected,
                        current: entry.revision,
                    });
                }
                None => {
                    return Err(WriteError::PreconditionFailed {
                        what: format!("{} {}", C::LABEL, C::show(key)),
                        expected,
                        current: 0,
                    });
                }
                Some(_) => {}
            }
        }
        Ok(current)
    }

    /// Creates an object; 409 if it exists.
    pub fn create<C: Collection>(
        &mut self,
        key: C::Key,
        value: C::Value,
    ) -> Result<(), WriteError> {
        if C::map(&self.next).contains_key(&key) {
            return Err(WriteError::Conflict(format!(
                "{} {} exists already",
                C::LABEL,
                C::show(&key)
            )));
        }
        self.write::<C>(key, value, None, "create")
    }

    /// Replaces an existing object (404 if missing, 412 on a stale `if_match`).
    pub fn replace<C: Collection>(
        &mut self,
        key: C::Key,
        value: C::Value,
        if_match: Option<i64>,
    ) -> Result<(), WriteError> {
        let Some(current) = self.check_match::<C>(&key, if_match)? else {
            return Err(WriteError::NotFound(format!(
                "no {} {}",
                C::LABEL,
                C::show(&key)
            )));
        };
        self.write::<C>(key, value, Some(current), "update")
    }

    /// Creates or replaces an object; unchanged values write nothing.
    pub fn upsert<C: Collection>(
        &mut self,
        key: C::Key,
        value: C::Value,
        if_match: Option<i64>,
    ) -> Result<(), WriteError> {
        let current = self.check_match::<C>(&key, if_match)?;
        let verb = if current.is_some() {
            "update"
        } else {
            "create"
        };
        self.write::<C>(key, value, current, verb)
    }

    fn write<C: Collection>(
        &mut self,
        key: C::Key,
        value: C::Value,
        current: Option<Arc<Entry<C::Value>>>,
        verb: &str,
    ) -> Result<(), WriteError> {
        if current.as_ref().is_some_and(|c| c.value == value) {
            return Ok(());
        }
        let body = to_json(&value)?;
        let doc_key = C::doc_key(&key);
        self.changes.push(Change::Put {
            kind: C::KIND.to_owned(),
            key: doc_key.clone(),
            body: body.to_string(),
        });
        self.audit.push(AuditRecord {
            actor: self.actor.clone(),
            action: format!("{}.{verb}", C::KIND),
            kind: C::KIND.to_owned(),
            key: doc_key,
            before: current
                .as_ref()
                .map(|c| audit_json::<C>(&c.value))
                .transpose()?,
            after: Some(audit_json::<C>(&value)?),
        });
        let created_at = current.map_or(self.now, |c| c.created_at);
        let entry = Arc::new(Entry::new_at(
            value,
            self.next.revision,
            created_at,
            self.now,
        ));
        C::map_mut(&mut self.next).insert(key, entry);
        Ok(())
    }

    /// Deletes an object (404 if missing, 412 on a stale `if_match`).
    pub fn delete<C: Collection>(
        &mut self,
        key: &C::Key,
        if_match: Option<i64>,
    ) -> Result<(), WriteError> {
        let Some(current) = self.check_match::<C>(key, if_match)? else {
            return Err(WriteError::NotFound(format!(
                "no {} {}",
                C::LABEL,
                C::show(key)
            )));
        };
        let doc_key = C::doc_key(key);
        self.changes.push(Change::Delete {
            kind: C::KIND.to_owned(),
            key: doc_key.clone(),
        });
        self.audit.push(AuditRecord {
            actor: self.actor.clone(),
            action: format!("{}.delete", C::KIND),
            kind: C::KIND.to_owned(),
            key: doc_key,
            before: Some(audit_json::<C>(&current.value)?),
            after: None,
        });
        C::map_mut(&mut self.next).remove(key);
        Ok(())
    }

    /// Sets the server settings (412 on a stale `if_match`).
    pub fn put_settings(
        &mut self,
        settings: ServerConfig,
        if_match: Option<i64>,
    ) -> Result<(), WriteError> {
        let current = self.next.settings.clone();
        if let Some(expected) = if_match {
            let at = current.as_ref().map_or(0, |c| c.revision);
            if at != expected {
                return Err(WriteError::PreconditionFailed {
                    what: "the server settings".into(),
                    expected,
                    current: at,
                });
            }
        }
        let before = current
            .as_ref()
            .map_or_else(ServerConfig::default, |c| c.value.clone());
        if before == settings {
            return Ok(());
        }
        let body = to_json(&settings)?;
        self.changes.push(Change::Put {
            kind: kind::SETTINGS.into(),
            key: "server".into(),
            body: body.to_string(),
        });
        self.audit.push(AuditRecord {
            actor: self.actor.clone(),
            action: "settings.update".into(),
            kind: kind::SETTINGS.into(),
            key: "server".into(),
            before: Some(to_json(&before)?),
            after: Some(body),
        });
        let created_at = current.map_or(self.now, |c| c.created_at);
        self.next.settings = Some(Arc::new(Entry::new_at(
            settings,
            self.next.revision,
            created_at,
            self.now,
        )));
        Ok(())
    }
}

fn audit_json<C: Collection>(value: &C::Value) -> Result<serde_json::Value, WriteError> {
    C::audit_json(value)
        .map_err(|e| WriteError::Store(StoreError::Secret(format!("cannot encode: {e}"))))
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value, WriteError> {
    serde_json::to_value(value)
        .map_err(|e| WriteError::Store(StoreError::Secret(format!("cannot encode: {e}"))))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tollgate_model::{Format, PolicySpec, parse_config};

    use super::Writer;
    use crate::secrets::SecretKey;
    use crate::state::{Policies, State};

    #[test]
    fn a_write_copies_the_kind_it_changes_and_shares_the_others() {
        let config = parse_config(
            "services:\n  - {name: s, mock: {status: 200}}\npolicies:\n  - {name: cors, config: {}}\napis:\n  - name: a\n    routes: [{name: r, paths: [/a], service: s}]\n",
            Format::Yaml,
            "t.yaml",
        )
        .unwrap();
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        let mut writer = Writer::new(&State::default(), "t");
        writer.apply_config(&config, &key).unwrap();
        let base = writer.finish().state;
        let mut writer = Writer::new(&base, "t");
        let spec = PolicySpec {
            name: "cors".into(),
            config: serde_json::json!({"allow_origins": ["https://a.test"]}),
            enabled: true,
        };
        writer
            .replace::<Policies>("cors".into(), spec.clone(), None)
            .unwrap();
        let next = writer.finish().state;
        assert_eq!(next.policies["cors"].value, spec);
        assert_ne!(base.policies["cors"].value, spec, "the base state changed");
        assert!(!Arc::ptr_eq(&base.policies, &next.policies));
        assert!(Arc::ptr_eq(&base.services, &next.services));
        assert!(Arc::ptr_eq(&base.versions, &next.versions));
        assert!(Arc::ptr_eq(&base.deployments, &next.deployments));
        assert!(Arc::ptr_eq(&base.releases, &next.releases));
    }
}
