//! Admin tokens in the store: created (with an audit record), deleted, looked up by hash,
//! listed. Only hashes are stored.

use sqlx::Row;

use super::{Store, insert_audit, timed, unix_now};
use crate::{AuditRecord, Role, StoreError, TokenRecord};

impl Store {
    /// Stores a new admin token (its hash) and audits the creation.
    pub async fn create_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        timed(async {
            self.schema().await?;
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO admin_tokens (id, name, role, hash, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&token.id)
            .bind(&token.name)
            .bind(token.role.as_str())
            .bind(&token.hash)
            .bind(token.created_at)
            .bind(&token.created_by)
            .execute(&mut *tx)
            .await?;
            let record = AuditRecord {
                actor: token.created_by.clone(),
                action: "token.create".into(),
                kind: "token".into(),
                key: token.id.clone(),
                before: None,
                after: Some(serde_json::to_value(token).unwrap_or_default()),
            };
            let revision = self.revision_in(&mut tx).await?;
            insert_audit(&mut tx, revision, token.created_at, &record).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// Deletes a token; false if there was none with that id.
    pub async fn delete_token(&self, id: &str, actor: &str) -> Result<bool, StoreError> {
        timed(async {
            self.schema().await?;
            let mut tx = self.pool.begin().await?;
            let gone = sqlx::query("DELETE FROM admin_tokens WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone == 0 {
                return Ok(false);
            }
            let record = AuditRecord {
                actor: actor.to_owned(),
                action: "token.delete".into(),
                kind: "token".into(),
                key: id.to_owned(),
                before: None,
                after: None,
            };
            let revision = self.revision_in(&mut tx).await?;
            insert_audit(&mut tx, revision, unix_now(), &record).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    /// The token with this hash, if any.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        timed(async {
            self.schema().await?;
            let row = sqlx::query(
                "SELECT id, name, role, hash, created_at, created_by FROM admin_tokens WHERE hash = $1",
            )
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|r| token_from_row(&r)).transpose()
        })
        .await
    }

    /// Every token (without secrets), oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        timed(async {
            self.schema().await?;
            let rows = sqlx::query(
                "SELECT id, name, role, hash, created_at, created_by FROM admin_tokens \
                 ORDER BY created_at, id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(token_from_row).collect()
        })
        .await
    }

    async fn revision_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT revision FROM store_state WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?)
    }
}

fn token_from_row(row: &sqlx::any::AnyRow) -> Result<TokenRecord, StoreError> {
    let id: String = row.try_get(0)?;
    let role: String = row.try_get(2)?;
    Ok(TokenRecord {
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt {
            kind: "token".into(),
            key: id.clone(),
            reason: format!("unknown role {role:?}"),
        })?,
        id,
        name: row.try_get(1)?,
        hash: row.try_get(3)?,
        created_at: row.try_get(4)?,
        created_by: row.try_get(5)?,
    })
}
