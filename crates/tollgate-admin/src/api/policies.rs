//! `/api/v1/policies`: global policies, keyed by plugin name. Handlers from
//! [`super::resources`].

use tollgate_model::PolicySpec as Body;
use tollgate_store::Policies;

use super::resources::{Resource, endpoints};
use crate::schema::PolicySpec;

impl Resource for Policies {
    const PATH: &'static str = "/policies";
    const CONFIG_FIELD: &'static str = "policies";
    type View = Body;

    fn view(value: &Body) -> Body {
        value.clone()
    }

    fn name(value: &Body) -> &str {
        &value.name
    }
}

endpoints! {
    resource: Policies,
    schema: PolicySpec,
    page: PolicyPage,
    query: NameQuery,
    tag: "policies",
    collection: "/policies",
    item: "/policies/{name}",
    ids: ["list_policies", "get_policy", "create_policy", "replace_policy", "delete_policy"],
    summaries: ["List global policies", "Get a global policy", "Add a global policy", "Replace a global policy", "Remove a global policy"],
}
