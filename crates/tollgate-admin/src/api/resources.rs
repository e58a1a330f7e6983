//! The four plain resources (services, policies, environments, consumers) share their
//! handlers: list (paged, filtered), get (with `ETag`), create (`POST`, 409 if the name is
//! taken), replace (`PUT`, 404 if missing: a typo must not create an object; `If-Match`
//! honored) and delete (`If-Match` honored). They are written once over [`Resource`];
//! [`endpoints!`] stamps out the annotated, non-generic handlers each resource module
//! registers, so every operation has its own OpenAPI entry. Certificates share them too; their
//! answers are a view (the stored object without its key, plus what the certificate says)
//! rather than the stored object.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tollgate_model::FieldPath;
use tollgate_store::secrets::SecretKey;
use tollgate_store::{Collection, Entry, State, WriteError, Writer};

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;
use super::page::{self, Page, TaggedQuery, name_matches, paginate, tag_matches};
use super::respond::{Tagged, segment};

/// A collection of named objects exposed as a REST resource.
pub(crate) trait Resource:
    Collection<Key = String, Value: Serialize + DeserializeOwned + Clone + Send + Sync + 'static>
    + Sized
    + Send
    + Sync
    + 'static
{
    /// Path of the collection under `/api/v1` (`/services`).
    const PATH: &'static str;
    /// The field of the whole configuration that lists these objects (`services`).
    const CONFIG_FIELD: &'static str;
    /// What reads and writes answer with.
    type View: Serialize + Send + 'static;

    /// The answer for a stored object (most resources: the object itself).
    fn view(value: &Self::Value) -> Self::View;

    /// The object's name (its key).
    fn name(value: &Self::Value) -> &str;

    /// The object's tags, for the `tag` filter.
    fn tags(_value: &Self::Value) -> &[String] {
        &[]
    }

    /// The object as stored, from the request body (consumers: secrets protected;
    /// certificates: key encrypted, validity checked). `previous` is the stored object being
    /// replaced; `at` is where the object is in the whole configuration.
    fn prepare(
        value: Self::Value,
        _previous: Option<&Self::Value>,
        _key: &SecretKey,
        _at: &FieldPath,
    ) -> Result<Self::Value, WriteError> {
        Ok(value)
    }

    /// Deletes the object (environments refuse while something is published to them).
    fn remove(writer: &mut Writer, name: &str, if_match: Option<i64>) -> Result<(), WriteError> {
        writer.delete::<Self>(&name.to_owned(), if_match)
    }
}

/// Where an object is (or would be) in the whole configuration: validation problems under
/// this path are reported relative to the request body.
pub(crate) fn config_path<R: Resource>(state: &State, name: &str) -> FieldPath {
    let index = R::map(state).range(..name.to_owned()).count();
    FieldPath::root().key(R::CONFIG_FIELD).index(index)
}

fn missing<R: Resource>(name: &str) -> ApiError {
    ApiError::NotFound(format!("no {} {name:?}", R::LABEL))
}

fn stored<R: Resource>(
    state: &State,
    name: &str,
) -> Result<std::sync::Arc<Entry<R::Value>>, ApiError> {
    R::map(state)
        .get(name)
        .cloned()
        .ok_or_else(|| missing::<R>(name))
}

/// 400 unless the name in the path and the one in the body agree.
pub(crate) fn same_name(field: &'static str, path: &str, body: &str) -> Result<(), ApiError> {
    if path == body {
        Ok(())
    } else {
        Err(ApiError::NameMismatch {
            field,
            message: format!(
                "the path names {path:?} but the body's {field} is {body:?}; they must agree (renaming is delete + create)"
            ),
        })
    }
}

pub(crate) fn list<R: Resource>(
    state: &ApiState,
    query: TaggedQuery,
) -> Result<Page<R::View>, ApiError> {
    let limit = page::limit(query.limit)?;
    let snapshot = state.control.state();
    paginate(
        R::map(&snapshot),
        query.cursor.as_deref(),
        limit,
        |name, entry| {
            name_matches(query.name.as_deref(), name)
                && tag_matches(query.tag.as_deref(), R::tags(&entry.value))
        },
        |_, entry| R::view(&entry.value),
    )
}

pub(crate) fn get<R: Resource>(state: &ApiState, name: &str) -> Result<Tagged<R::View>, ApiError> {
    let entry = stored::<R>(&state.control.state(), name)?;
    Ok(Tagged::ok(entry.revision, R::view(&entry.value)))
}

pub(crate) async fn create<R: Resource>(
    state: &ApiState,
    caller: &Caller,
    body: R::Value,
) -> Result<Tagged<R::View>, ApiError> {
    let name = R::name(&body).to_owned();
    let key = state.control.secret_key();
    let written = state
        .control
        .write(caller.actor(), |w| {
            let previous = R::map(w.state()).get(&name).map(|e| e.value.clone());
            let at = config_path::<R>(w.state(), &name);
            let value = R::prepare(body.clone(), previous.as_ref(), key, &at)?;
            w.create::<R>(name.clone(), value)
        })
        .await
        .map_err(|e| ApiError::write(e, Some(&config_path::<R>(&state.control.state(), &name))))?;
    let entry = stored::<R>(&written.state, &name)?;
    Ok(Tagged::created(
        entry.revision,
        format!("/api/v1{}/{}", R::PATH, segment(&name)),
        R::view(&entry.value),
    ))
}

pub(crate) async fn replace<R: Resource>(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    if_match: Option<i64>,
    body: R::Value,
) -> Result<Tagged<R::View>, ApiError> {
    same_name("name", name, R::name(&body))?;
    let key = state.control.secret_key();
    let written = state
        .control
        .write(caller.actor(), |w| {
            let previous = R::map(w.state()).get(name).map(|e| e.value.clone());
            let at = config_path::<R>(w.state(), name);
            let value = R::prepare(body.clone(), previous.as_ref(), key, &at)?;
            w.replace::<R>(name.to_owned(), value, if_match)
        })
        .await
        .map_err(|e| ApiError::write(e, Some(&config_path::<R>(&state.control.state(), name))))?;
    let entry = stored::<R>(&written.state, name)?;
    Ok(Tagged::ok(entry.revision, R::view(&entry.value)))
}

pub(crate) async fn delete<R: Resource>(
    state: &ApiState,
    caller: &Caller,
    name: &str,
    if_match: Option<i64>,
) -> Result<(), ApiError> {
    state
        .control
        .write(caller.actor(), |w| R::remove(w, name, if_match))
        .await
        .map_err(|e| ApiError::write(e, None))?;
    Ok(())
}

/// Generates the five annotated handlers of a [`Resource`] and its `routes()`.
macro_rules! endpoints {
    (
        resource: $resource:ty,
        schema: $schema:ident,
        page: $page:ident,
        $($rest:tt)*
    ) => {
        crate::api::resources::endpoints! {
            @views resource: $resource, schema: $schema, view: $schema, page: $page, $($rest)*
        }
    };
    (
        @views
        resource: $resource:ty,
        schema: $schema:ident,
        view: $view:ident,
        page: $page:ident,
        query: $query:ident,
        tag: $tag:tt,
        collection: $collection:tt,
        item: $item:tt,
        ids: [$list_id:tt, $get_id:tt, $create_id:tt, $replace_id:tt, $delete_id:tt],
        summaries: [$list_doc:tt, $get_doc:tt, $create_doc:tt, $replace_doc:tt, $delete_doc:tt] $(,)?
    ) => {
        /// One page of the list, for the OpenAPI document.
        type $page = crate::api::page::Page<$view>;

        pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<crate::api::ApiState> {
            utoipa_axum::router::OpenApiRouter::new()
                .routes(utoipa_axum::routes!(list, create))
                .routes(utoipa_axum::routes!(get, replace, delete))
        }

        #[utoipa::path(
            get,
            path = $collection,
            tag = $tag,
            operation_id = $list_id,
            summary = $list_doc,
            params(crate::api::page::$query),
            responses(
                (status = 200, description = "One page, in name order.", body = $page),
                crate::api::openapi::ListErrors,
            )
        )]
        async fn list(
            _: crate::api::auth::Viewer,
            axum::extract::State(state): axum::extract::State<crate::api::ApiState>,
            crate::api::extract::Params(query): crate::api::extract::Params<crate::api::page::$query>,
        ) -> Result<axum::Json<crate::api::page::Page<<$resource as crate::api::resources::Resource>::View>>, crate::api::error::ApiError> {
            crate::api::resources::list::<$resource>(&state, query.into()).map(axum::Json)
        }

        #[utoipa::path(
            get,
            path = $item,
            tag = $tag,
            operation_id = $get_id,
            summary = $get_doc,
            params(("name" = String, Path, description = "The object's name.")),
            responses(
                (status = 200, description = "The object; `ETag` is its revision.", body = $view,
                    headers(("ETag" = String, description = "The object's revision, for If-Match."))),
                crate::api::openapi::ReadErrors,
            )
        )]
        async fn get(
            _: crate::api::auth::Viewer,
            axum::extract::State(state): axum::extract::State<crate::api::ApiState>,
            crate::api::extract::Segments(name): crate::api::extract::Segments<String>,
        ) -> Result<crate::api::respond::Tagged<<$resource as crate::api::resources::Resource>::View>, crate::api::error::ApiError> {
            crate::api::resources::get::<$resource>(&state, &name)
        }

        #[utoipa::path(
            post,
            path = $collection,
            tag = $tag,
            operation_id = $create_id,
            summary = $create_doc,
            request_body = $schema,
            responses(
                (status = 201, description = "Created; the object as stored.", body = $view,
                    headers(("ETag" = String, description = "The object's revision."), ("Location" = String, description = "The object's URL.")),
                    links(
                        ("Get" = (operation_id = $get_id, parameters(("name" = "$response.body#/name")))),
                        ("Replace" = (operation_id = $replace_id, parameters(("name" = "$response.body#/name")))),
                        ("Delete" = (operation_id = $delete_id, parameters(("name" = "$response.body#/name")))),
                    )),
                crate::api::openapi::WriteErrors,
            )
        )]
        async fn create(
            crate::api::auth::Admin(caller): crate::api::auth::Admin,
            axum::extract::State(state): axum::extract::State<crate::api::ApiState>,
            crate::api::extract::JsonBody(body): crate::api::extract::JsonBody<<$resource as tollgate_store::Collection>::Value>,
        ) -> Result<crate::api::respond::Tagged<<$resource as crate::api::resources::Resource>::View>, crate::api::error::ApiError> {
            crate::api::resources::create::<$resource>(&state, &caller, body).await
        }

        #[utoipa::path(
            put,
            path = $item,
            tag = $tag,
            operation_id = $replace_id,
            summary = $replace_doc,
            params(
                ("name" = String, Path, description = "The object's name; must equal the body's."),
                crate::api::openapi::IfMatchHeader,
            ),
            request_body = $schema,
            responses(
                (status = 200, description = "Replaced (or unchanged); the object as stored.", body = $view,
                    headers(("ETag" = String, description = "The object's revision."))),
                crate::api::openapi::WriteErrors,
            )
        )]
        async fn replace(
            crate::api::auth::Admin(caller): crate::api::auth::Admin,
            axum::extract::State(state): axum::extract::State<crate::api::ApiState>,
            crate::api::extract::Segments(name): crate::api::extract::Segments<String>,
            crate::api::extract::IfMatch(if_match): crate::api::extract::IfMatch,
            crate::api::extract::JsonBody(body): crate::api::extract::JsonBody<<$resource as tollgate_store::Collection>::Value>,
        ) -> Result<crate::api::respond::Tagged<<$resource as crate::api::resources::Resource>::View>, crate::api::error::ApiError> {
            crate::api::resources::replace::<$resource>(&state, &caller, &name, if_match, body).await
        }

        #[utoipa::path(
            delete,
            path = $item,
            tag = $tag,
            operation_id = $delete_id,
            summary = $delete_doc,
            params(
                ("name" = String, Path, description = "The object's name."),
                crate::api::openapi::IfMatchHeader,
            ),
            responses(
                (status = 204, description = "Deleted."),
                crate::api::openapi::WriteErrors,
            )
        )]
        async fn delete(
            crate::api::auth::Admin(caller): crate::api::auth::Admin,
            axum::extract::State(state): axum::extract::State<crate::api::ApiState>,
            crate::api::extract::Segments(name): crate::api::extract::Segments<String>,
            crate::api::extract::IfMatch(if_match): crate::api::extract::IfMatch,
        ) -> Result<axum::http::StatusCode, crate::api::error::ApiError> {
            crate::api::resources::delete::<$resource>(&state, &caller, &name, if_match).await?;
            Ok(axum::http::StatusCode::NO_CONTENT)
        }
    };
}

pub(crate) use endpoints;
