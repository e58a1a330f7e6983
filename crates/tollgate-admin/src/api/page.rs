//! Pagination and filters of list endpoints: `limit` (default 100, at most 1000), an opaque
//! `cursor` (the key of the last item of the previous page, so pages stay correct while
//! objects are added or removed), and `name` (substring) / `tag` (exact) filters.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use super::error::ApiError;

/// Items when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit`.
pub(crate) const MAX_LIMIT: u32 = 1000;

/// One page of a list.
#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    /// The items, in key order (newest first for releases and the audit log).
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> PartialSchema for Page<T> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some("One page of a list."))
            .property(
                "items",
                ArrayBuilder::new()
                    .items(Ref::from_schema_name(T::name()))
                    .description(Some(
                        "The items, in key order (newest first for releases and the audit log).",
                    )),
            )
            .required("items")
            .property(
                "next_cursor",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .description(Some(
                        "Pass as `cursor` to get the next page; `null` on the last page.",
                    )),
            )
            .required("next_cursor")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl<T: ToSchema> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Page_{}", T::name()))
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

impl<T> Page<T> {
    /// Every item on one page.
    pub(crate) fn all(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
        }
    }
}

/// Paging only.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Paging and the name filter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct NameQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only objects whose name contains this text (case-insensitive).
    pub name: Option<String>,
}

/// Paging and the name and tag filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TaggedQuery {
    /// Items per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only objects whose name contains this text (case-insensitive).
    pub name: Option<String>,
    /// Only objects with this tag.
    pub tag: Option<String>,
}

impl From<NameQuery> for TaggedQuery {
    fn from(q: NameQuery) -> Self {
        Self {
            limit: q.limit,
            cursor: q.cursor,
            name: q.name,
            tag: None,
        }
    }
}

/// A validated `limit`.
pub(crate) fn limit(limit: Option<u32>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n as usize),
        n => Err(ApiError::InvalidQuery {
            field: Some("limit".into()),
            message: format!("limit must be between 1 and {MAX_LIMIT}, not {n}"),
        }),
    }
}

/// The opaque cursor for `key`.
pub(crate) fn encode_cursor<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(key).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The key a cursor stands for.
pub(crate) fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::InvalidQuery {
            field: Some("cursor".into()),
            message: "cursor is not one this list returned as next_cursor".into(),
        })
}

/// Whether `name` passes the `name` filter.
pub(crate) fn name_matches(filter: Option<&str>, name: &str) -> bool {
    filter.is_none_or(|f| name.to_lowercase().contains(&f.to_lowercase()))
}

/// Whether `tags` pass the `tag` filter.
pub(crate) fn tag_matches(filter: Option<&str>, tags: &[String]) -> bool {
    filter.is_none_or(|f| tags.iter().any(|t| t == f))
}

/// One page of `map` in key order, after the cursor, of the entries `keep` accepts.
pub(crate) fn paginate<K, V, T>(
    map: &BTreeMap<K, V>,
    cursor: Option<&str>,
    limit: usize,
    keep: impl Fn(&K, &V) -> bool,
    show: impl Fn(&K, &V) -> T,
) -> Result<Page<T>, ApiError>
where
    K: Ord + Serialize + DeserializeOwned,
{
    let after = cursor.map(decode_cursor::<K>).transpose()?;
    let start = match &after {
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let mut kept = map
        .range((start, Bound::Unbounded))
        .filter(|(k, v)| keep(k, v));
    let mut items = Vec::new();
    let mut last = None;
    for (k, v) in kept.by_ref().take(limit) {
        items.push(show(k, v));
        last = Some(k);
    }
    let next_cursor = match (last, kept.next()) {
        (Some(k), Some(_)) => Some(encode_cursor(k)),
        _ => None,
    };
    Ok(Page { items, next_cursor })
}

/// Like [`paginate`], newest (largest key) first; the cursor is the last key shown.
pub(crate) fn paginate_rev<K, V, T>(
    map: &BTreeMap<K, V>,
    cursor: Option<&str>,
    limit: usize,
    keep: impl Fn(&K, &V) -> bool,
    show: impl Fn(&K, &V) -> T,
) -> Result<Page<T>, ApiError>
where
    K: Ord + Serialize + DeserializeOwned,
{
    let before = cursor.map(decode_cursor::<K>).transpose()?;
    let end = match &before {
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let mut kept = map
        .range((Bound::Unbounded, end))
        .rev()
        .filter(|(k, v)| keep(k, v));
    let mut items = Vec::new();
    let mut last = None;
    for (k, v) in kept.by_ref().take(limit) {
        items.push(show(k, v));
        last = Some(k);
    }
    let next_cursor = match (last, kept.next()) {
        (Some(k), Some(_)) => Some(encode_cursor(k)),
        _ => None,
    };
    Ok(Page { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_cursor_and_end_with_null() {
        let map: BTreeMap<String, u32> = (0..5).map(|i| (format!("k{i}"), i)).collect();
        let first = paginate(&map, None, 2, |_, _| true, |_, v| *v).unwrap();
        assert_eq!(first.items, vec![0, 1]);
        let second = paginate(
            &map,
            first.next_cursor.as_deref(),
            2,
            |_, _| true,
            |_, v| *v,
        )
        .unwrap();
        assert_eq!(second.items, vec![2, 3]);
        let third = paginate(
            &map,
            second.next_cursor.as_deref(),
            2,
            |_, _| true,
            |_, v| *v,
        )
        .unwrap();
        assert_eq!((third.items, third.next_cursor), (vec![4], None));
        let exact = paginate(&map, None, 5, |_, _| true, |_, v| *v).unwrap();
        assert_eq!(exact.next_cursor, None, "no empty last page");
    }

    #[test]
    fn reverse_pages_and_bad_cursors() {
        let map: BTreeMap<i64, i64> = (1..=3).map(|i| (i, i)).collect();
        let first = paginate_rev(&map, None, 2, |_, _| true, |_, v| *v).unwrap();
        assert_eq!(first.items, vec![3, 2]);
        let second = paginate_rev(
            &map,
            first.next_cursor.as_deref(),
            2,
            |_, _| true,
            |_, v| *v,
        )
        .unwrap();
        assert_eq!((second.items, second.next_cursor), (vec![1], None));
        assert!(paginate(&map, Some("!!"), 2, |_, _| true, |_, v| *v).is_err());
        assert!(limit(Some(0)).is_err() && limit(Some(1001)).is_err());
        assert_eq!(limit(None).unwrap(), 100);
    }
}
