//! `/api/v1/environments`: deployment targets. Handlers from [`super::resources`]; an
//! environment something is published to cannot be deleted (409).

use tollgate_model::Environment as Body;
use tollgate_store::{Environments, WriteError, Writer};

use super::resources::{Resource, endpoints};
use crate::schema::Environment;

impl Resource for Environments {
    const PATH: &'static str = "/environments";
    const CONFIG_FIELD: &'static str = "environments";
    type View = Body;

    fn view(value: &Body) -> Body {
        value.clone()
    }

    fn name(value: &Body) -> &str {
        &value.name
    }

    fn remove(writer: &mut Writer, name: &str, if_match: Option<i64>) -> Result<(), WriteError> {
        writer.delete_environment(name, if_match)
    }
}

endpoints! {
    resource: Environments,
    schema: Environment,
    page: EnvironmentPage,
    query: NameQuery,
    tag: "environments",
    collection: "/environments",
    item: "/environments/{name}",
    ids: ["list_environments", "get_environment", "create_environment", "replace_environment", "delete_environment"],
    summaries: ["List environments", "Get an environment", "Create an environment", "Replace an environment", "Delete an environment"],
}
