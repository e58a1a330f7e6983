//! The API lifecycle and declarative apply, on in-memory state (no database).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use tollgate_model::{Format, parse_config};
use tollgate_store::secrets::SecretKey;
use tollgate_store::{ReleaseAction, State, WriteError, Writer};

const BASE: &str = r#"
environments:
  - name: prod
    hosts: [api.example.com]
  - name: test
    hosts: [test.example.com]
services:
  - name: pets
    targets: [{url: "http://127.0.0.1:9001"}]
apis:
  - name: pets
    version: "1"
    publish: [prod, test]
    routes:
      - {name: list, paths: ["/pets"], service: pets}
  - name: pets
    version: "2"
    publish: []
    routes:
      - {name: list, paths: ["/v2/pets"], service: pets}
consumers:
  - name: app
    credentials:
      - {type: key-auth, id: k1, key: "secret-key-1"}
      - {type: hmac, id: h1, secret: "hmac-secret"}
"#;

fn key() -> SecretKey {
    SecretKey::from_bytes(&[3; 32]).unwrap()
}

/// Commits a prepared change set in memory, as a store would.
fn commit(writer: Writer) -> State {
    let prepared = writer.finish();
    let mut state = prepared.state;
    state.revision = prepared.base_revision + 1;
    state
}

fn applied() -> State {
    let config = parse_config(BASE, Format::Yaml, "t.yaml").unwrap();
    let mut w = Writer::new(&State::default(), "tester");
    w.apply_config(&config, &key()).unwrap();
    commit(w)
}

#[test]
fn apply_is_idempotent_and_export_round_trips() {
    let state = applied();
    assert_eq!(state.versions.len(), 2);
    assert_eq!(state.deployments.len(), 2);
    assert_eq!(state.releases.len(), 2);
    // Same file again: nothing to do (clear secrets match their stored forms).
    let config = parse_config(BASE, Format::Yaml, "t.yaml").unwrap();
    let mut w = Writer::new(&state, "tester");
    w.apply_config(&config, &key()).unwrap();
    assert!(w.is_empty(), "{:?}", w.audit());
    // The export applies as a no-op too, and never holds clear secrets.
    let export = state.to_config(Default::default());
    let text = serde_json::to_string(&export).unwrap();
    assert!(
        !text.contains("secret-key-1") && !text.contains("hmac-secret"),
        "{text}"
    );
    let mut w = Writer::new(&state, "tester");
    w.apply_config(&export, &key()).unwrap();
    assert!(w.is_empty(), "{:?}", w.audit());
}

#[test]
fn publish_rollback_unpublish_deprecate() {
    let mut state = applied();
    let mut w = Writer::new(&state, "ops");
    let r = w
        .publish("pets", "2", "prod", Some("v2 launch".into()))
        .unwrap();
    assert_eq!(r.action, ReleaseAction::Publish);
    state = commit(w);
    let live = &state.deployments[&("prod".to_owned(), "pets".to_owned())].value;
    assert_eq!(live.version, "2");
    assert!(
        state.versions[&("pets".to_owned(), "2".to_owned())]
            .value
            .published
    );

    // Published versions are immutable; drafts are not.
    let mut changed = state.versions[&("pets".to_owned(), "2".to_owned())]
        .value
        .definition
        .clone();
    changed.description = Some("edited".into());
    let mut w = Writer::new(&state, "ops");
    assert!(matches!(
        w.update_api_version(changed, None),
        Err(WriteError::Conflict(_))
    ));

    // Rollback without a target goes to the previous version.
    let mut w = Writer::new(&state, "ops");
    let r = w.rollback("pets", "prod", None, None).unwrap();
    assert_eq!(r.version.as_deref(), Some("1"));
    assert_eq!(r.action, ReleaseAction::Rollback);
    state = commit(w);
    assert_eq!(
        state.deployments[&("prod".to_owned(), "pets".to_owned())]
            .value
            .version,
        "1"
    );

    // Deprecate keeps serving with dates; unpublish removes the API from the environment.
    let mut w = Writer::new(&state, "ops");
    w.deprecate(
        "pets",
        "prod",
        None,
        Some(tollgate_model::Timestamp::parse("2030-01-01T00:00:00Z").unwrap()),
        None,
        None,
    )
    .unwrap();
    state = commit(w);
    assert!(
        state.deployments[&("prod".to_owned(), "pets".to_owned())]
            .value
            .deprecation
            .is_some()
    );
    let config = state.to_config(Default::default());
    let v1 = config.apis.iter().find(|a| a.version == "1").unwrap();
    assert!(v1.deprecation.contains_key("prod"));

    let mut w = Writer::new(&state, "ops");
    w.unpublish("pets", "prod", None).unwrap();
    state = commit(w);
    assert!(
        !state
            .deployments
            .contains_key(&("prod".to_owned(), "pets".to_owned()))
    );
    let history: Vec<_> = state
        .releases_of("pets", Some("prod"))
        .map(|r| r.value.action)
        .collect();
    assert_eq!(
        history,
        [
            ReleaseAction::Unpublish,
            ReleaseAction::Deprecate,
            ReleaseAction::Rollback,
            ReleaseAction::Publish,
            ReleaseAction::Publish
        ]
    );

    // Errors name what is wrong and change nothing.
    let mut w = Writer::new(&state, "ops");
    assert!(matches!(
        w.unpublish("pets", "prod", None),
        Err(WriteError::NotFound(_))
    ));
    assert!(matches!(
        w.publish("pets", "9", "prod", None),
        Err(WriteError::NotFound(_))
    ));
    assert!(matches!(
        w.publish("pets", "1", "nowhere", None),
        Err(WriteError::NotFound(_))
    ));
    assert!(w.is_empty());
}

#[test]
fn guards_on_live_objects_and_if_match() {
    let state = applied();
    let mut w = Writer::new(&state, "ops");
    assert!(matches!(
        w.delete_api_version("pets", "1", None),
        Err(WriteError::Conflict(_))
    ));
    assert!(matches!(
        w.delete_environment("test", None),
        Err(WriteError::Conflict(_))
    ));
    let svc = state.services["pets"].clone();
    let err = w
        .replace::<tollgate_store::state::Services>(
            "pets".into(),
            svc.value.clone(),
            Some(svc.revision + 7),
        )
        .unwrap_err();
    assert!(
        matches!(err, WriteError::PreconditionFailed { .. }),
        "{err}"
    );
    let _ = Arc::clone(&svc);
    assert!(w.is_empty());
}
