use http::HeaderName;

use super::*;

fn entry(route: usize, pattern: &PathPattern, methods: &[Method]) -> Entry {
    Entry {
        route: crate::RouteId::new(0, route),
        conditions: Conditions {
            methods: methods.to_vec(),
            ..Conditions::default()
        },
        params: pattern.param_names().into_iter().map(Into::into).collect(),
        static_prefix: pattern.static_prefix().into(),
        order: route,
        priority: 0,
    }
}

fn router(routes: &[(Option<&str>, &str)]) -> Router {
    let mut r = Router::default();
    for (i, (host, p)) in routes.iter().enumerate() {
        let pattern = PathPattern::parse(p).unwrap();
        r.insert(*host, &pattern, entry(i, &pattern, &[]));
    }
    r.finish();
    r
}

fn find(r: &Router, host: Option<&str>, path: &str) -> Option<usize> {
    find_with(r, host, &Method::GET, path, &HeaderMap::new(), None).map(|m| m.route.index as usize)
}

fn find_with(
    r: &Router,
    host: Option<&str>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<Match> {
    r.find(&RequestView {
        host,
        method,
        path,
        query,
        headers,
    })
}

#[test]
fn prefix_is_segment_bounded() {
    let r = router(&[(None, "/echo")]);
    assert_eq!(find(&r, None, "/echo"), Some(0));
    assert_eq!(find(&r, None, "/echo/"), Some(0));
    assert_eq!(find(&r, None, "/echo/a/b"), Some(0));
    assert_eq!(find(&r, None, "/echoes"), None);
    assert_eq!(find(&r, None, "/"), None);
}

#[test]
fn more_specific_wins() {
    let r = router(&[
        (None, "/"),
        (None, "/users"),
        (None, "/users/{id}"),
        (None, "= /users/me"),
        (None, "= /users/exact"),
        (None, "/files/{*rest}"),
        (None, "~ ^/users/[0-9]+/posts$"),
        (None, "/users/admin"),
    ]);
    assert_eq!(find(&r, None, "/other"), Some(0));
    assert_eq!(find(&r, None, "/users"), Some(1));
    assert_eq!(find(&r, None, "/users/42"), Some(2));
    assert_eq!(find(&r, None, "/users/me"), Some(3));
    assert_eq!(find(&r, None, "/users/exact"), Some(4));
    assert_eq!(find(&r, None, "/files/a/b/c"), Some(5));
    assert_eq!(find(&r, None, "/users/42/posts"), Some(6));
    assert_eq!(find(&r, None, "/users/42/other"), Some(1));
    // A template beats a prefix, even a longer one.
    assert_eq!(find(&r, None, "/users/admin"), Some(2));
    assert_eq!(find(&r, None, "/users/admin/x"), Some(7));
}

#[test]
fn templates_backtrack_and_capture() {
    let r = router(&[
        (None, "/a/{x}/c"),
        (None, "/a/b/{y}/d"),
        (None, "/files/{*rest}"),
    ]);
    let m = find_with(&r, None, &Method::GET, "/a/b/c", &HeaderMap::new(), None).unwrap();
    assert_eq!((m.route.index, m.params.get("x")), (0, Some("b")));
    let m = find_with(&r, None, &Method::GET, "/a/b/z/d", &HeaderMap::new(), None).unwrap();
    assert_eq!((m.route.index, m.params.get("y")), (1, Some("z")));
    let m = find_with(
        &r,
        None,
        &Method::GET,
        "/files/x/y.txt",
        &HeaderMap::new(),
        None,
    )
    .unwrap();
    assert_eq!(m.params.get("rest"), Some("x/y.txt"));
    assert_eq!(&*m.static_prefix, "/files");
}

#[test]
fn hosts_exact_then_wildcard_then_any() {
    let r = router(&[
        (Some("api.example.com"), "/x"),
        (Some("*.example.com"), "/x"),
        (None, "/x"),
        (Some("*.b.example.com"), "/x"),
        (Some("api.example.com"), "/only"),
    ]);
    assert_eq!(find(&r, Some("api.example.com"), "/x"), Some(0));
    assert_eq!(find(&r, Some("API.Example.com"), "/x"), Some(0));
    assert_eq!(find(&r, Some("www.example.com"), "/x"), Some(1));
    assert_eq!(find(&r, Some("a.b.example.com"), "/x"), Some(3));
    assert_eq!(find(&r, Some("example.com"), "/x"), Some(2));
    assert_eq!(find(&r, None, "/x"), Some(2));
    assert_eq!(find(&r, Some("api.example.com"), "/only"), Some(4));
    assert_eq!(find(&r, Some("www.example.com"), "/only"), None);
}

#[test]
fn methods_headers_and_query_select_among_candidates() {
    let mut r = Router::default();
    let p = PathPattern::parse("/x").unwrap();
    r.insert(None, &p, entry(0, &p, &[Method::GET]));
    r.insert(None, &p, entry(1, &p, &[Method::POST]));
    let mut canary = entry(2, &p, &[Method::GET]);
    canary.conditions.headers.push((
        HeaderName::from_static("x-canary"),
        ValueTest::Equals("1".into()),
    ));
    r.insert(None, &p, canary);
    let mut q = entry(3, &p, &[]);
    q.conditions
        .query
        .push(("v".into(), ValueTest::Present(true)));
    r.insert(None, &p, q);
    r.finish();
    let mut h = HeaderMap::new();
    assert_eq!(
        find_with(&r, None, &Method::GET, "/x", &h, None)
            .unwrap()
            .route
            .index,
        0
    );
    assert_eq!(
        find_with(&r, None, &Method::POST, "/x", &h, None)
            .unwrap()
            .route
            .index,
        1
    );
    assert_eq!(
        find_with(&r, None, &Method::PUT, "/x", &h, Some("v=2"))
            .unwrap()
            .route
            .index,
        3
    );
    assert!(find_with(&r, None, &Method::PUT, "/x", &h, None).is_none());
    h.insert("x-canary", "1".parse().unwrap());
    assert_eq!(
        find_with(&r, None, &Method::GET, "/x", &h, None)
            .unwrap()
            .route
            .index,
        2
    );
}
