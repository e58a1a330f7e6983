//! `/api/v1/consumers`: callers. Handlers from [`super::resources`]; secrets given in clear
//! are hashed or encrypted before anything is stored, so no response (and no audit entry)
//! ever holds them.

use tollgate_model::{Consumer as Body, FieldPath};
use tollgate_store::secrets::SecretKey;
use tollgate_store::state::protect_consumer;
use tollgate_store::{Consumers, WriteError};

use super::resources::{Resource, endpoints};
use crate::schema::Consumer;

impl Resource for Consumers {
    const PATH: &'static str = "/consumers";
    const CONFIG_FIELD: &'static str = "consumers";
    type View = Body;

    fn view(value: &Body) -> Body {
        value.clone()
    }

    fn name(value: &Body) -> &str {
        &value.name
    }

    fn tags(value: &Body) -> &[String] {
        &value.tags
    }

    fn prepare(
        value: Body,
        previous: Option<&Body>,
        key: &SecretKey,
        _at: &FieldPath,
    ) -> Result<Body, WriteError> {
        Ok(protect_consumer(&value, previous, key)?)
    }
}

endpoints! {
    resource: Consumers,
    schema: Consumer,
    page: ConsumerPage,
    query: TaggedQuery,
    tag: "consumers",
    collection: "/consumers",
    item: "/consumers/{name}",
    ids: ["list_consumers", "get_consumer", "create_consumer", "replace_consumer", "delete_consumer"],
    summaries: ["List consumers", "Get a consumer", "Create a consumer", "Replace a consumer", "Delete a consumer"],
}
