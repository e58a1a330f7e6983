//! Certificates: CRUD with the private key encrypted at rest and never answered (not even
//! encrypted), filters, validation errors naming the field, expiry refused on write, and the
//! audit log and export without the key.

use serde_json::{Value, json};

use crate::support::Harness;

fn pem(name: &str) -> String {
    let path = format!(
        "{}/../tollgate-model/testdata/tls/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap()
}

fn certificate(name: &str, stem: &str) -> Value {
    json!({
        "name": name,
        "cert": pem(&format!("{stem}.crt")),
        "key": pem(&format!("{stem}.key")),
        "tags": ["edge"],
    })
}

/// No form of a private key in `text`.
#[track_caller]
fn keyless(text: &str) {
    assert!(
        !text.contains("PRIVATE KEY")
            && !text.contains("v1:")
            && !text.contains("key_encrypted\":\"v"),
        "a key leaked: {text}"
    );
}

#[tokio::test]
async fn certificate_crud_never_answers_the_key() {
    let h = Harness::new().await;
    let created = h
        .post("/api/v1/certificates", certificate("site-a", "a"))
        .await
        .ok(201);
    assert_eq!(created.header("location"), "/api/v1/certificates/site-a");
    keyless(&created.text);
    let body = &created.body;
    assert_eq!(body["subject"], "CN=a.test");
    assert_eq!(body["served_names"], json!(["a.test", "www.a.test"]));
    assert_eq!(body["sans"], json!(["a.test", "www.a.test", "127.0.0.1"]));
    assert_eq!(body["not_after"], "2125-01-01T00:00:00Z");
    assert_eq!(body["valid_now"], true);
    assert_eq!(body["fingerprint_sha256"].as_str().unwrap().len(), 64);
    assert!(body.get("key").is_none() && body.get("key_encrypted").is_none());

    let got = h.get("/api/v1/certificates/site-a").await.ok(200);
    keyless(&got.text);
    assert_eq!(got.etag(), created.etag());

    // A replace without the key keeps the stored one; an identical one writes nothing.
    let mut update =
        json!({"name": "site-a", "cert": pem("a.crt"), "hosts": ["a.test"], "tags": ["edge"]});
    let replaced = h
        .call("PUT", "/api/v1/certificates/site-a")
        .header("if-match", &got.etag())
        .json(update.clone())
        .send()
        .await
        .ok(200);
    assert_eq!(replaced.body["served_names"], json!(["a.test"]));
    let again = h
        .put("/api/v1/certificates/site-a", update.clone())
        .await
        .ok(200);
    assert_eq!(again.etag(), replaced.etag());
    // With the same key in clear again: still nothing to write (the ciphertext is kept).
    update["key"] = json!(pem("a.key"));
    let same = h.put("/api/v1/certificates/site-a", update).await.ok(200);
    assert_eq!(same.etag(), replaced.etag());

    // Stale If-Match: 412.
    h.refused(
        h.call("PUT", "/api/v1/certificates/site-a")
            .header("if-match", &created.etag())
            .json(certificate("site-a", "a")),
        412,
        "precondition_failed",
    )
    .await;

    // Lists: tag and name filters, viewer role.
    h.post("/api/v1/certificates", certificate("site-b", "b"))
        .await
        .ok(201);
    let list = h
        .call("GET", "/api/v1/certificates?tag=edge&name=B")
        .token(&h.viewer.clone())
        .send()
        .await
        .ok(200);
    assert_eq!(list.names(), ["site-b"]);
    keyless(&list.text);

    // Writes need the admin role.
    let reply = h
        .call("POST", "/api/v1/certificates")
        .token(&h.operator.clone())
        .json(certificate("c", "wild"))
        .send()
        .await;
    assert_eq!(reply.status, 403);

    // The key is in the store encrypted, not in clear; the export carries only that form.
    let export = h
        .call("GET", "/api/v1/config")
        .header("accept", "application/json")
        .send()
        .await
        .ok(200);
    assert!(!export.text.contains("PRIVATE KEY"), "{}", export.text);
    let exported = &export.body["certificates"][0];
    assert!(
        exported["key_encrypted"]
            .as_str()
            .unwrap()
            .starts_with("v1:")
    );
    assert!(exported.get("key").is_none());

    // The audit log records every write, without the key in any form.
    let audit = h.get("/api/v1/audit?kind=certificate").await.ok(200);
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "certificate.create",
            "certificate.update",
            "certificate.create"
        ]
    );
    keyless(&audit.text);
    assert!(audit.text.contains("[redacted]"), "{}", audit.text);

    h.delete("/api/v1/certificates/site-a").await.ok(204);
    assert_eq!(h.get("/api/v1/certificates/site-a").await.status, 404);
}

#[tokio::test]
async fn bad_certificates_are_400_naming_the_field_and_write_nothing() {
    let h = Harness::new().await;
    let mut bad_pem = certificate("c", "a");
    bad_pem["cert"] = json!("/etc/ssl/a.pem");
    let reply = h
        .refused(
            h.call("POST", "/api/v1/certificates").json(bad_pem),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(reply.field(), "cert", "{reply:?}");

    let mut bad_key = certificate("c", "a");
    bad_key["key"] = json!("not a key");
    let reply = h
        .refused(
            h.call("POST", "/api/v1/certificates").json(bad_key),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(reply.field(), "key", "{reply:?}");
    assert!(!reply.text.contains("not a key"), "never quoted: {reply:?}");

    let mut bundle = certificate("c", "a");
    bundle["cert"] = json!(format!("{}{}", pem("a.crt"), pem("a.key")));
    let reply = h
        .refused(
            h.call("POST", "/api/v1/certificates").json(bundle),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(reply.field(), "cert", "{reply:?}");
    keyless(&reply.text);

    for stem in ["expired", "future"] {
        let reply = h
            .refused(
                h.call("POST", "/api/v1/certificates")
                    .json(certificate("c", stem)),
                400,
                "invalid_config",
            )
            .await;
        assert_eq!(reply.field(), "cert", "{reply:?}");
    }

    let reply = h
        .refused(
            h.call("POST", "/api/v1/certificates")
                .json(json!({"name": "c", "cert": pem("a.crt"), "kee": "x"})),
            400,
            "invalid_body",
        )
        .await;
    assert_eq!(reply.field(), "kee", "{reply:?}");

    // A server name served by two certificates is a conflict (400, naming the field).
    h.post("/api/v1/certificates", certificate("a1", "a"))
        .await
        .ok(201);
    let reply = h
        .refused(
            h.call("POST", "/api/v1/certificates")
                .json(certificate("a2", "a")),
            400,
            "invalid_config",
        )
        .await;
    assert_eq!(reply.field(), "cert", "{reply:?}");
    assert!(
        reply
            .message()
            .contains("also served by certificate \"a1\""),
        "{reply:?}"
    );
    // The name is taken: 409.
    h.refused(
        h.call("POST", "/api/v1/certificates")
            .json(certificate("a1", "b")),
        409,
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn config_apply_of_an_export_with_certificates_changes_nothing() {
    let h = Harness::new().await;
    h.post("/api/v1/certificates", certificate("site-a", "a"))
        .await
        .ok(201);
    let export = h.get("/api/v1/config").await.ok(200);
    let applied = h
        .call("POST", "/api/v1/config/apply")
        .raw("application/yaml", &export.text)
        .send()
        .await
        .ok(200);
    assert_eq!(applied.body["changed"], false, "{applied:?}");

    // A file with the key in clear: protected before it is stored; the same file again
    // changes nothing.
    let file = format!(
        "certificates:\n  - name: site-b\n    cert: {}\n    key: {}\n",
        serde_json::to_string(&pem("b.crt")).unwrap(),
        serde_json::to_string(&pem("b.key")).unwrap()
    );
    let first = h
        .call("POST", "/api/v1/config/apply")
        .raw("application/yaml", &file)
        .send()
        .await
        .ok(200);
    assert_eq!(first.body["changed"], true);
    keyless(&first.text);
    let second = h
        .call("POST", "/api/v1/config/apply")
        .raw("application/yaml", &file)
        .send()
        .await
        .ok(200);
    assert_eq!(second.body["changed"], false, "{second:?}");
    assert_eq!(h.get("/api/v1/certificates").await.names(), ["site-b"]);

    // An expired certificate is refused by apply (and diff), at its field.
    let expired = file.replace("site-b", "old").replace(
        &serde_json::to_string(&pem("b.crt")).unwrap(),
        &serde_json::to_string(&pem("expired.crt")).unwrap(),
    );
    for path in ["/api/v1/config/apply", "/api/v1/config/diff"] {
        let reply = h
            .refused(
                h.call("POST", path).raw("application/yaml", &expired),
                400,
                "invalid_config",
            )
            .await;
        assert_eq!(reply.field(), "certificates[0].cert", "{reply:?}");
        assert!(reply.message().contains("expired"), "{reply:?}");
    }
}
