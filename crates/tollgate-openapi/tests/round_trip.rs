//! Import, export, import again: the same API, routes and policies.

use tollgate_openapi::{ExportOptions, ImportOptions, export, import};

const DOCUMENTS: &[(&str, &str)] = &[
    ("petstore.yaml", include_str!("data/petstore.yaml")),
    ("bookshop-3.1.json", include_str!("data/bookshop-3.1.json")),
];

fn options(auth_policies: bool) -> ImportOptions {
    ImportOptions {
        auth_policies,
        ..ImportOptions::new("backend")
    }
}

#[test]
fn import_export_import_gives_the_same_routes() {
    for (file, text) in DOCUMENTS {
        for auth_policies in [false, true] {
            let first = import(text, &options(auth_policies)).unwrap().api;
            let exported = export(&[&first], &ExportOptions::default());
            let second = import(&exported.to_string(), &options(auth_policies))
                .unwrap_or_else(|e| panic!("{file}: re-import failed: {e}\n{exported:#}"));
            assert_eq!(
                second.api.routes, first.routes,
                "{file} (auth policies: {auth_policies})"
            );
            assert_eq!(second.api, first, "{file} (auth policies: {auth_policies})");
        }
    }
}

#[test]
fn round_trip_through_yaml_and_an_absolute_server_url() {
    for (file, text) in DOCUMENTS {
        let first = import(text, &options(true)).unwrap().api;
        let exported = export(
            &[&first],
            &ExportOptions {
                servers: vec!["https://api.example.com/".to_owned()],
                ..ExportOptions::default()
            },
        );
        let yaml = serde_yaml_ng::to_string(&exported).unwrap();
        let second = import(&yaml, &options(true)).unwrap().api;
        assert_eq!(second, first, "{file}");
    }
}
