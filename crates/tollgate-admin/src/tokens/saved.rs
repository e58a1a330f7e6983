//! The copy of the token table a node keeps in its data directory ([`MIRROR_FILE_NAME`]:
//! hashes, ids, names and roles, owner-only), so that a node restarted while its store is
//! unreachable still accepts its tokens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tollgate_store::Role;
use tollgate_store::secrets::is_sha256_hex;

use super::Identity;

/// The file a node keeps its copy of the token table in (see [`super::StoreTokens::persisted_in`]).
pub const MIRROR_FILE_NAME: &str = "admin-tokens.json";

/// Version of that file's layout.
const MIRROR_FORMAT: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MirrorFile {
    format: u32,
    tokens: Vec<MirroredToken>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MirroredToken {
    sha256: String,
    id: String,
    name: String,
    role: String,
}

/// Reads the copy.
pub(super) fn read(path: &Path) -> std::io::Result<HashMap<String, Identity>> {
    let bytes = std::fs::read(path)?;
    let file: MirrorFile = serde_json::from_slice(&bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    if file.format != MIRROR_FORMAT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "format {} is not the one this binary writes ({MIRROR_FORMAT})",
                file.format
            ),
        ));
    }
    file.tokens
        .into_iter()
        .map(|t| {
            let role = Role::parse(&t.role).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("unknown role {:?}", t.role),
                )
            })?;
            if !is_sha256_hex(&t.sha256) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a token hash is not 64 hex digits",
                ));
            }
            let identity = Identity {
                id: t.id,
                name: t.name,
                role,
            };
            Ok((t.sha256, identity))
        })
        .collect()
}

/// Writes the copy atomically (a temporary file, synced, renamed; owner-only), off the
/// async threads. A failure is logged: the copy in memory still serves.
pub(super) async fn save(path: PathBuf, by_hash: &HashMap<String, Identity>) {
    let mut tokens: Vec<MirroredToken> = by_hash
        .iter()
        .map(|(hash, who)| MirroredToken {
            sha256: hash.clone(),
            id: who.id.clone(),
            name: who.name.clone(),
            role: who.role.as_str().to_owned(),
        })
        .collect();
    tokens.sort_by(|a, b| a.id.cmp(&b.id));
    let file = MirrorFile {
        format: MIRROR_FORMAT,
        tokens,
    };
    let written = tokio::task::spawn_blocking(move || {
        serde_json::to_vec(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| tollgate_store::cache::write_private_file(&path, &bytes))
            .map_err(|e| (path, e))
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err((path, e))) => tracing::warn!(
            file = %path.display(),
            error = %e,
            "cannot save the copy of the admin tokens"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot save the copy of the admin tokens"),
    }
}
