//! HTTPS serving: TLS, authentication, routing of every path, and response encoding.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::body::{MAX_BODY_BYTES, decode_object, decode_value, media_type};
use crate::conversion;
use crate::read::list_json;
use crate::request::{self, Query, ResourceRequest, Verb};
use crate::server::ApiServer;
use crate::status::{ApiError, success_status};
use crate::table::{IncludeObject, table, wants_table};
use crate::watch::{self, Encoding};
use crate::write::{DeleteOptions, FieldValidation, WriteOptions, WriteOutcome};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Accepts connections until the listener fails; each connection is served on its own task.
pub async fn serve(server: Arc<ApiServer>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let server = Arc::clone(&server);
        tokio::spawn(async move { serve_connection(server, acceptor, tcp, peer).await });
    }
}

async fn serve_connection(
    server: Arc<ApiServer>,
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(err) => {
            tracing::debug!(%peer, %err, "TLS handshake failed");
            return;
        }
    };
    let service = hyper::service::service_fn(move |req| {
        let server = Arc::clone(&server);
        async move { Ok::<_, Infallible>(handle(server, req).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(err) = builder.serve_connection(TokioIo::new(tls), service).await {
        tracing::debug!(%peer, %err, "connection ended with an error");
    }
}

/// Answers one request.
pub async fn handle(server: Arc<ApiServer>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let (label_verb, label_resource, response) = match route(&server, req).await {
        Ok(routed) => routed,
        Err((verb, resource, err)) => (verb, resource, error_response(&err)),
    };
    server.metrics.observe_request(
        label_verb,
        &label_resource,
        response.status().as_u16(),
        started.elapsed(),
    );
    tracing::debug!(%path, status = response.status().as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "request");
    response
}

type Routed = (&'static str, String, Response<Body>);
type RouteError = (&'static str, String, ApiError);

async fn route(server: &Arc<ApiServer>, req: Request<Incoming>) -> Result<Routed, RouteError> {
    let path = req.uri().path().to_string();
    let fail = |e: ApiError| ("", String::new(), e);
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => {
            return Ok(("get", String::new(), text_response(StatusCode::OK, "ok")));
        }
        "/version" => {
            return Ok((
                "get",
                String::new(),
                json_response(StatusCode::OK, &version()),
            ));
        }
        _ => {}
    }
    if !authenticated(server, &req) {
        return Err(fail(ApiError::unauthorized()));
    }
    if path == "/metrics" {
        return Ok((
            "get",
            String::new(),
            text_response(StatusCode::OK, &server.metrics.render()),
        ));
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if let Some(doc) = crate::discovery_routes::answer(&path, accept.as_deref()) {
        return Ok(("get", String::new(), doc.map_err(fail)?));
    }
    let query = Query::parse(req.uri().query());
    let resource_request = request::parse(req.method(), &path, query).map_err(fail)?;
    let Some(rreq) = resource_request else {
        return Err(fail(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )));
    };
    let verb = rreq.verb.as_str();
    let plural = rreq.resource.plural.to_string();
    let span = tracing::debug_span!("request", verb, resource = %plural, key = %rreq.key());
    let _enter = span.enter();
    match resource_response(server, rreq, req, accept.as_deref()).await {
        Ok(resp) => Ok((verb, plural, resp)),
        Err(err) => Err((verb, plural, err)),
    }
}

fn authenticated<B>(server: &ApiServer, req: &Request<B>) -> bool {
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value
        .strip_prefix("Bearer ")
        .is_some_and(|token| constant_time_eq(token.trim().as_bytes(), server.token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `/version` answer; kubectl picks its minor version from it.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0",
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": format!("linux/{}", std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64")),
    })
}

async fn read_body(req: Request<Incoming>) -> Result<(Option<String>, Bytes), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES);
    let bytes = body
        .collect()
        .await
        .map_err(|_| ApiError::too_large())?
        .to_bytes();
    Ok((content_type, bytes))
}

async fn resource_response(
    server: &Arc<ApiServer>,
    rreq: ResourceRequest,
    req: Request<Incoming>,
    accept: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let as_table = wants_table(accept);
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let include = IncludeObject::from_query(rreq.query.get("includeObject"));
    let resource = rreq.resource;
    match rreq.verb {
        Verb::Get => {
            let obj = server.get_object(&rreq).await?;
            if as_table {
                let value = conversion::served(resource, obj.value());
                return Ok(json_response(
                    StatusCode::OK,
                    &table(resource, &[value], include, &obj.rv.to_string(), true, None),
                ));
            }
            Ok(bytes_response(
                StatusCode::OK,
                conversion::served_json(resource, &obj.json).into_owned(),
            ))
        }
        Verb::List => {
            let page = server.list_objects(&rreq).await?;
            if as_table {
                let values: Vec<Value> = page
                    .items
                    .iter()
                    .map(|o| conversion::served(resource, o.value()))
                    .collect();
                let t = table(
                    resource,
                    &values,
                    include,
                    &page.revision.to_string(),
                    true,
                    page.continue_token.as_deref(),
                );
                return Ok(json_response(StatusCode::OK, &t));
            }
            Ok(bytes_response(StatusCode::OK, list_json(resource, &page)))
        }
        Verb::Watch => {
            let encoding = if as_table {
                Encoding::Table(include)
            } else {
                Encoding::Object
            };
            let body = watch::start(Arc::clone(server), rreq, encoding).await?;
            let stream = body.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)));
            let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        Verb::Create | Verb::Update => {
            let (content_type, bytes) = read_body(req).await?;
            let obj = decode_object(resource, content_type.as_deref(), &bytes)?;
            let mut opts = WriteOptions::from_request(&rreq, user_agent.as_deref())?;
            let (sreq, obj) = to_storage(&rreq, obj, &mut opts)?;
            let outcome = if rreq.verb == Verb::Create {
                server.create(&sreq, obj, &opts).await?
            } else {
                server.update(&sreq, obj, &opts).await?
            };
            Ok(write_response(resource, outcome))
        }
        Verb::Patch => {
            let (content_type, bytes) = read_body(req).await?;
            let opts = WriteOptions::from_request(&rreq, user_agent.as_deref())?;
            let patch_type =
                crate::patching::PatchType::from_media_type(media_type(content_type.as_deref()))?;
            let patch = decode_value(content_type.as_deref(), &bytes)?;
            let outcome = server.patch(&rreq, patch_type, patch, &opts).await?;
            Ok(write_response(resource, outcome))
        }
        Verb::Delete => {
            let (content_type, bytes) = read_body(req).await?;
            let body = if bytes.is_empty() {
                None
            } else {
                Some(decode_value(content_type.as_deref(), &bytes)?)
            };
            let options = DeleteOptions::from_request(&rreq, body.as_ref())?;
            let sreq = rreq.to_storage();
            let outcome = server.delete(&sreq, &options).await?;
            Ok(write_response(resource, outcome))
        }
        Verb::DeleteCollection => {
            let (content_type, bytes) = read_body(req).await?;
            let body = if bytes.is_empty() {
                None
            } else {
                Some(decode_value(content_type.as_deref(), &bytes)?)
            };
            let options = DeleteOptions::from_request(&rreq, body.as_ref())?;
            server
                .delete_collection(&rreq.to_storage(), &options)
                .await?;
            Ok(json_response(
                StatusCode::OK,
                &success_status(resource, "", ""),
            ))
        }
    }
}

/// The request as the storage resource sees it (events.k8s.io → core events).
/// Converts a written object to the stored form, checking unknown fields against the served
/// form first (the stored form's schema would not know the served form's fields).
fn to_storage(
    rreq: &ResourceRequest,
    mut obj: Value,
    opts: &mut WriteOptions,
) -> Result<(ResourceRequest, Value), ApiError> {
    let sreq = rreq.to_storage();
    if std::ptr::eq(sreq.resource, rreq.resource) {
        return Ok((sreq, obj));
    }
    crate::validation_glue::check_fields(rreq.resource, &mut obj, opts.field_validation)?;
    opts.field_validation = FieldValidation::Ignore;
    Ok((sreq, conversion::stored(rreq.resource, obj)))
}

fn write_response(
    resource: &volplane_api::resources::ResourceInfo,
    outcome: WriteOutcome,
) -> Response<Body> {
    let code = StatusCode::from_u16(outcome.code).unwrap_or(StatusCode::OK);
    let object = conversion::served(resource, outcome.object);
    let mut resp = json_response(code, &object);
    for warning in outcome.warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_response(code, &err.to_status());
    if err.code == 401 {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if err.code == 413 {
        // The rest of the body stays unread, so this connection cannot carry another request.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

pub fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    bytes_response(
        code,
        serde_json::to_vec(value).expect("JSON values serialise"),
    )
}

pub fn bytes_response(code: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(BodyExt::boxed_unsync(Full::new(Bytes::from(bytes))));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

pub fn text_response(code: StatusCode, text: &str) -> Response<Body> {
    let mut resp = Response::new(BodyExt::boxed_unsync(Full::new(Bytes::from(
        text.to_string(),
    ))));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
