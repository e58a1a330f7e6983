//! `/api/v1/services`: backends. Handlers from [`super::resources`].

use tollgate_model::Service as Body;
use tollgate_store::Services;

use super::resources::{Resource, endpoints};
use crate::schema::Service;

impl Resource for Services {
    const PATH: &'static str = "/services";
    const CONFIG_FIELD: &'static str = "services";
    type View = Body;

    fn view(value: &Body) -> Body {
        value.clone()
    }

    fn name(value: &Body) -> &str {
        &value.name
    }
}

endpoints! {
    resource: Services,
    schema: Service,
    page: ServicePage,
    query: NameQuery,
    tag: "services",
    collection: "/services",
    item: "/services/{name}",
    ids: ["list_services", "get_service", "create_service", "replace_service", "delete_service"],
    summaries: ["List services", "Get a service", "Create a service", "Replace a service", "Delete a service"],
}
