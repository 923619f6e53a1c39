//! Bad input: malformed bodies, unknown paths and fields, oversized bodies, invalid objects,
//! conflicts and missing credentials get the upstream Status code, reason and message — and a
//! rejected request stores nothing.

use kube::Client;
use kube::api::PostParams;
use serde_json::{Value, json};
use volplane_testkit::Cluster;

const CONFIG_MAPS: &str = "/api/v1/namespaces/default/configmaps";
const CLAIMS: &str = "/api/v1/namespaces/default/persistentvolumeclaims";

fn start() -> Cluster {
    Cluster::start(env!("CARGO_BIN_EXE_volplane").as_ref(), &[])
}

/// An answer as the wire carried it.
#[derive(Debug)]
struct Reply {
    code: u16,
    /// `Warning` headers.
    warnings: Vec<String>,
    /// The `Connection` header.
    connection: Option<String>,
    /// The body as JSON (a JSON string holding the text when it is not JSON).
    body: Value,
}

impl Reply {
    /// Asserts this is a failure `Status` with `code` and `reason`.
    fn status(&self, code: u16, reason: &str) -> &Reply {
        assert_eq!(self.code, code, "HTTP status of {:#}", self.body);
        assert_eq!(self.body["kind"], "Status", "{:#}", self.body);
        assert_eq!(self.body["apiVersion"], "v1", "{:#}", self.body);
        assert_eq!(self.body["status"], "Failure", "{:#}", self.body);
        assert_eq!(self.body["code"], code, "{:#}", self.body);
        assert_eq!(self.body["reason"], reason, "{:#}", self.body);
        self
    }

    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    fn cause_fields(&self) -> Vec<&str> {
        self.body["details"]["causes"]
            .as_array()
            .map(|causes| causes.iter().filter_map(|c| c["field"].as_str()).collect())
            .unwrap_or_default()
    }
}

/// Sends one request exactly as given (method, path with query, content type, body).
async fn raw(
    client: &Client,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    send(client, method, uri, content_type, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {uri}: no answer: {e}"))
}

/// As [`raw`] with a JSON body, returning a transport failure instead of panicking.
async fn try_raw(
    client: &Client,
    method: &str,
    uri: &str,
    body: Vec<u8>,
) -> Result<Reply, kube::Error> {
    send(client, method, uri, Some("application/json"), body).await
}

async fn send(
    client: &Client,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Result<Reply, kube::Error> {
    // kube-rs builds `http::Request`s; this crate has no `http` dependency of its own, so take
    // one of kube's and set every part of it.
    let mut request = kube::core::Request::new("/")
        .create(&PostParams::default(), Vec::new())
        .expect("a request");
    *request.method_mut() = method.parse().expect("an HTTP method");
    *request.uri_mut() = uri.parse().expect("a URI");
    request.headers_mut().clear();
    if let Some(content_type) = content_type {
        request.headers_mut().insert(
            "content-type",
            content_type.parse().expect("a header value"),
        );
    }
    *request.body_mut() = body;
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let code = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().expect("ASCII warning").to_string())
        .collect();
    let connection = response
        .headers()
        .get("connection")
        .map(|v| v.to_str().expect("ASCII header").to_string());
    let bytes = response.into_body().collect_bytes().await?;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok(Reply {
        code,
        warnings,
        connection,
        body,
    })
}

async fn post(client: &Client, path: &str, body: &Value) -> Reply {
    raw(
        client,
        "POST",
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

async fn put(client: &Client, path: &str, body: &Value) -> Reply {
    raw(
        client,
        "PUT",
        path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

async fn get(client: &Client, path: &str) -> Reply {
    raw(client, "GET", path, None, Vec::new()).await
}

/// The names of a collection's objects.
async fn names(client: &Client, collection: &str) -> Vec<String> {
    let list = get(client, collection).await;
    assert_eq!(list.code, 200, "{:#}", list.body);
    list.body["items"]
        .as_array()
        .expect("a list has items")
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Asserts `name` is not stored in `collection` (neither by GET nor in a list).
async fn assert_absent(client: &Client, collection: &str, name: &str) {
    get(client, &format!("{collection}/{name}"))
        .await
        .status(404, "NotFound");
    assert!(
        !names(client, collection).await.iter().any(|n| n == name),
        "{name} is listed in {collection}"
    );
}

fn config_map(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

fn claim(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
}

#[tokio::test]
async fn malformed_and_mismatched_bodies_are_400_and_store_nothing() {
    let cluster = start();
    let client = cluster.kube_client().await;
    let before = names(&client, CONFIG_MAPS).await;

    let truncated = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"broken""#;
    raw(
        &client,
        "POST",
        CONFIG_MAPS,
        Some("application/json"),
        truncated.to_vec(),
    )
    .await
    .status(400, "BadRequest");

    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  labels: [unclosed\n";
    raw(
        &client,
        "POST",
        CONFIG_MAPS,
        Some("application/yaml"),
        yaml.as_bytes().to_vec(),
    )
    .await
    .status(400, "BadRequest");

    // Valid JSON, but not an object.
    post(&client, CONFIG_MAPS, &json!(["broken"]))
        .await
        .status(400, "BadRequest");

    // A ConfigMap sent to the claims' URL.
    let reply = post(&client, CLAIMS, &config_map("broken", json!({"a": "b"}))).await;
    reply.status(400, "BadRequest");
    assert!(
        reply.message().contains("ConfigMap"),
        "the message names the kind sent: {}",
        reply.message()
    );
    // A claim with another group's apiVersion.
    let mut wrong_version = claim("broken");
    wrong_version["apiVersion"] = json!("storage.k8s.io/v1");
    post(&client, CLAIMS, &wrong_version)
        .await
        .status(400, "BadRequest");

    assert_eq!(names(&client, CONFIG_MAPS).await, before);
    assert_absent(&client, CONFIG_MAPS, "broken").await;
    assert_absent(&client, CLAIMS, "broken").await;

    // A well-formed YAML body is accepted, so the 400s above were about the bodies.
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n";
    let reply = raw(
        &client,
        "POST",
        CONFIG_MAPS,
        Some("application/yaml"),
        good.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(reply.code, 201, "{:#}", reply.body);
}

#[tokio::test]
async fn a_body_over_3_mib_is_413_and_stores_nothing() {
    let cluster = start();
    let big = "x".repeat(3 * 1024 * 1024 + 512 * 1024);
    let body = config_map("huge", json!({"big": big}))
        .to_string()
        .into_bytes();
    // The server answers before reading the whole body, then drops the connection; a client
    // still sending may see the connection reset before it reads the answer. Each attempt
    // uses a fresh client (its own connection).
    let mut reply = None;
    for _ in 0..5 {
        let client = cluster.kube_client().await;
        match try_raw(&client, "POST", CONFIG_MAPS, body.clone()).await {
            Ok(r) => {
                reply = Some(r);
                break;
            }
            Err(e) => eprintln!("oversized POST: no answer ({e}); trying again"),
        }
    }
    let reply = reply.expect("the oversized POST was answered at least once in 5 attempts");
    reply.status(413, "RequestEntityTooLarge");
    assert_eq!(
        reply.message(),
        "Request entity too large: limit is 3145728"
    );
    let client = cluster.kube_client().await;
    assert_absent(&client, CONFIG_MAPS, "huge").await;
    // The server still answers afterwards.
    let reply = post(
        &client,
        CONFIG_MAPS,
        &config_map("small", json!({"a": "b"})),
    )
    .await;
    assert_eq!(reply.code, 201, "{:#}", reply.body);
}

#[tokio::test]
async fn a_413_answer_closes_the_connection_it_will_not_read_further() {
    // Upstream (Go's net/http) answers `Connection: close` when it leaves a request body
    // unread, so pooled HTTP/1.1 clients (client-go, kube-rs) do not send their next request
    // on a connection the server is closing — which fails that request.
    let cluster = start();
    let big = "x".repeat(3 * 1024 * 1024 + 512 * 1024);
    let body = config_map("huge", json!({"big": big}))
        .to_string()
        .into_bytes();
    for _ in 0..5 {
        let client = cluster.kube_client().await;
        if let Ok(reply) = try_raw(&client, "POST", CONFIG_MAPS, body.clone()).await {
            assert_eq!(reply.code, 413, "{:#}", reply.body);
            assert_eq!(
                reply.connection.as_deref(),
                Some("close"),
                "a 413 whose request body stays unread must say `Connection: close`"
            );
            return;
        }
    }
    panic!("the oversized POST was never answered in 5 attempts");
}

#[tokio::test]
async fn unknown_paths_and_objects_are_404() {
    let cluster = start();
    let client = cluster.kube_client().await;
    for path in [
        "/api/v1/namespaces/default/bogusthings",
        "/api/v1/namespaces/default/bogusthings/x",
        "/apis/example.com/v1/widgets",
        "/apis/storage.k8s.io/v1/bogusclasses",
        "/api/v1/namespaces/default/persistentvolumeclaims/x/bogus-subresource",
    ] {
        let reply = get(&client, path).await;
        assert_eq!(reply.code, 404, "GET {path}: {:#}", reply.body);
        reply.status(404, "NotFound");
    }
    let reply = post(
        &client,
        "/api/v1/namespaces/default/bogusthings",
        &json!({"apiVersion": "v1", "kind": "BogusThing", "metadata": {"name": "x"}}),
    )
    .await;
    reply.status(404, "NotFound");

    let reply = get(&client, &format!("{CLAIMS}/nope")).await;
    reply.status(404, "NotFound");
    assert_eq!(
        reply.body["message"],
        "persistentvolumeclaims \"nope\" not found"
    );
    assert_eq!(
        reply.body["details"],
        json!({"name": "nope", "kind": "persistentvolumeclaims"})
    );
    let reply = get(&client, "/apis/storage.k8s.io/v1/storageclasses/nope").await;
    reply.status(404, "NotFound");
    assert_eq!(
        reply.body["message"],
        "storageclasses.storage.k8s.io \"nope\" not found"
    );
    assert_eq!(reply.body["details"]["group"], "storage.k8s.io");
    raw(
        &client,
        "DELETE",
        &format!("{CONFIG_MAPS}/nope"),
        None,
        Vec::new(),
    )
    .await
    .status(404, "NotFound");
}

#[tokio::test]
async fn unknown_fields_are_rejected_under_strict_and_warned_about_under_warn() {
    let cluster = start();
    let client = cluster.kube_client().await;
    let mut body = claim("strict");
    body["spec"]["bogus"] = json!(true);

    let reply = post(&client, &format!("{CLAIMS}?fieldValidation=Strict"), &body).await;
    reply.status(400, "BadRequest");
    assert!(
        reply
            .message()
            .contains(r#"strict decoding error: unknown field "spec.bogus""#),
        "{}",
        reply.message()
    );
    assert_absent(&client, CLAIMS, "strict").await;

    let reply = post(&client, &format!("{CLAIMS}?fieldValidation=Warn"), &body).await;
    assert_eq!(reply.code, 201, "{:#}", reply.body);
    assert!(
        reply
            .warnings
            .iter()
            .any(|w| w.starts_with("299 ") && w.contains(r#"unknown field \"spec.bogus\""#)),
        "warnings: {:?}",
        reply.warnings
    );

    // Ignore: created without a warning.
    body["metadata"]["name"] = json!("ignored");
    let reply = post(&client, &format!("{CLAIMS}?fieldValidation=Ignore"), &body).await;
    assert_eq!(reply.code, 201, "{:#}", reply.body);
    assert!(reply.warnings.is_empty(), "{:?}", reply.warnings);

    // Strict on an update: rejected, the object unchanged.
    let current = get(&client, &format!("{CLAIMS}/strict")).await.body;
    let mut update = current.clone();
    update["metadata"]["labels"] = json!({"changed": "yes"});
    update["spec"]["bogus"] = json!(1);
    put(
        &client,
        &format!("{CLAIMS}/strict?fieldValidation=Strict"),
        &update,
    )
    .await
    .status(400, "BadRequest");
    assert_eq!(
        get(&client, &format!("{CLAIMS}/strict")).await.body,
        current
    );
}

#[tokio::test]
async fn invalid_objects_are_422_with_causes_and_store_nothing() {
    let cluster = start();
    let client = cluster.kube_client().await;

    let reply = post(
        &client,
        CLAIMS,
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "bad"}, "spec": {}}),
    )
    .await;
    reply.status(422, "Invalid");
    assert!(
        reply
            .message()
            .starts_with(r#"PersistentVolumeClaim "bad" is invalid: ["#),
        "{}",
        reply.message()
    );
    assert_eq!(reply.body["details"]["name"], "bad");
    assert_eq!(reply.body["details"]["kind"], "PersistentVolumeClaim");
    let fields = reply.cause_fields();
    assert!(fields.contains(&"spec.accessModes"), "{fields:?}");
    assert!(fields.contains(&"spec.resources[storage]"), "{fields:?}");
    for cause in reply.body["details"]["causes"].as_array().unwrap() {
        assert_eq!(cause["reason"], "FieldValueRequired", "{cause}");
    }
    assert_absent(&client, CLAIMS, "bad").await;

    let reply = post(&client, CONFIG_MAPS, &config_map("Not_A_Name", json!({}))).await;
    reply.status(422, "Invalid");
    assert_eq!(reply.body["details"]["kind"], "ConfigMap");
    assert!(
        reply.cause_fields().contains(&"metadata.name"),
        "{:#}",
        reply.body
    );
    assert!(
        names(&client, CONFIG_MAPS)
            .await
            .iter()
            .all(|n| n != "Not_A_Name")
    );

    // An update that changes an immutable part of a claim's spec.
    let created = post(&client, CLAIMS, &claim("fixed")).await;
    assert_eq!(created.code, 201, "{:#}", created.body);
    let current = get(&client, &format!("{CLAIMS}/fixed")).await.body;
    let mut update = current.clone();
    update["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    let reply = put(&client, &format!("{CLAIMS}/fixed"), &update).await;
    reply.status(422, "Invalid");
    assert!(reply.cause_fields().contains(&"spec"), "{:#}", reply.body);
    assert!(
        reply.message().contains("spec is immutable after creation"),
        "{}",
        reply.message()
    );
    // The same change as a merge patch is refused too.
    let reply = raw(
        &client,
        "PATCH",
        &format!("{CLAIMS}/fixed"),
        Some("application/merge-patch+json"),
        json!({"spec": {"accessModes": ["ReadOnlyMany"]}})
            .to_string()
            .into_bytes(),
    )
    .await;
    reply.status(422, "Invalid");
    assert_eq!(
        get(&client, &format!("{CLAIMS}/fixed")).await.body,
        current,
        "a rejected update changed the claim"
    );
}

#[tokio::test]
async fn conflicts_are_409_with_upstream_messages_and_change_nothing() {
    let cluster = start();
    let client = cluster.kube_client().await;
    let first = post(&client, CONFIG_MAPS, &config_map("c", json!({"v": "1"}))).await;
    assert_eq!(first.code, 201, "{:#}", first.body);
    let mut second = first.body.clone();
    second["data"]["v"] = json!("2");
    let second = put(&client, &format!("{CONFIG_MAPS}/c"), &second).await;
    assert_eq!(second.code, 200, "{:#}", second.body);
    assert_ne!(
        first.body["metadata"]["resourceVersion"],
        second.body["metadata"]["resourceVersion"]
    );

    // An update based on the first version.
    let mut stale = first.body.clone();
    stale["data"]["v"] = json!("stale");
    let reply = put(&client, &format!("{CONFIG_MAPS}/c"), &stale).await;
    reply.status(409, "Conflict");
    assert_eq!(
        reply.message(),
        "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(
        reply.body["details"],
        json!({"name": "c", "kind": "configmaps"})
    );

    // A create of a name that exists.
    let reply = post(
        &client,
        CONFIG_MAPS,
        &config_map("c", json!({"v": "again"})),
    )
    .await;
    reply.status(409, "AlreadyExists");
    assert_eq!(reply.message(), "configmaps \"c\" already exists");
    assert_eq!(
        reply.body["details"],
        json!({"name": "c", "kind": "configmaps"})
    );

    let now = get(&client, &format!("{CONFIG_MAPS}/c")).await.body;
    assert_eq!(now, second.body, "a rejected write changed the ConfigMap");

    // The same for a grouped, cluster-scoped kind.
    let classes = "/apis/storage.k8s.io/v1/storageclasses";
    let class = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                       "metadata": {"name": "fast"}, "provisioner": "example.com/fast"});
    let created = post(&client, classes, &class).await;
    assert_eq!(created.code, 201, "{:#}", created.body);
    let reply = post(&client, classes, &class).await;
    reply.status(409, "AlreadyExists");
    assert_eq!(
        reply.message(),
        "storageclasses.storage.k8s.io \"fast\" already exists"
    );
    assert_eq!(
        reply.body["details"],
        json!({"name": "fast", "group": "storage.k8s.io", "kind": "storageclasses"})
    );
    assert_eq!(
        get(&client, &format!("{classes}/fast")).await.body,
        created.body
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_but_health_checks_answer() {
    let cluster = start();
    let client = cluster.kube_client().await;
    let mut config = cluster.kube_config().await;
    config.auth_info.token = None;
    config.auth_info.token_file = None;
    let anonymous = Client::try_from(config.clone()).expect("kube client");
    config.auth_info.token = Some("not-the-token".to_string().into());
    let impostor = Client::try_from(config).expect("kube client");

    for who in [&anonymous, &impostor] {
        let reply = get(who, "/api/v1/namespaces").await;
        reply.status(401, "Unauthorized");
        assert_eq!(reply.message(), "Unauthorized");
        post(who, CONFIG_MAPS, &config_map("sneaky", json!({})))
            .await
            .status(401, "Unauthorized");
        for path in ["/healthz", "/readyz", "/livez"] {
            let reply = get(who, path).await;
            assert_eq!(reply.code, 200, "{path}: {:#}", reply.body);
        }
    }
    assert_absent(&client, CONFIG_MAPS, "sneaky").await;
}
