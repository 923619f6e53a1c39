//! The benchmark's HTTPS client: one keep-alive HTTP/1.1 connection per simulated client
//! (hyper's client connection over tokio-rustls, trusting the cluster CA), authenticated with
//! the kubeconfig's bearer token — what kubectl and kube-rs send, without their caches. An
//! HTTP/2 connection (ALPN `h2`) can carry many concurrent streams, as client-go multiplexes
//! every request and watch of a process onto one connection.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where a cluster is and how to talk to it.
#[derive(Clone)]
pub struct Cluster {
    /// `https://host:port` (no trailing slash).
    pub server: String,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    tls: TlsConnector,
    /// The same, offering only `h2`.
    tls_h2: TlsConnector,
    /// The bearer token; `None` for the unauthenticated health endpoints.
    token: Option<String>,
}

/// The parts of a kubeconfig the benchmark reads: the current context's server, CA and token.
#[derive(serde::Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context", default)]
    current_context: String,
    #[serde(default)]
    contexts: Vec<Named<ContextSpec>>,
    #[serde(default)]
    clusters: Vec<Named<ClusterSpec>>,
    #[serde(default)]
    users: Vec<Named<UserSpec>>,
}

#[derive(serde::Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "context", alias = "cluster", alias = "user")]
    spec: T,
}

#[derive(serde::Deserialize)]
struct ContextSpec {
    cluster: String,
    user: String,
}

#[derive(serde::Deserialize)]
struct ClusterSpec {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(rename = "certificate-authority")]
    ca_file: Option<String>,
}

#[derive(serde::Deserialize)]
struct UserSpec {
    token: Option<String>,
}

impl Cluster {
    /// Reads the server, CA and token of the kubeconfig's current context; `server` overrides
    /// the kubeconfig's server URL.
    pub fn from_kubeconfig(path: &Path, server: Option<&str>) -> anyhow::Result<Cluster> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
        let config: Kubeconfig = serde_saphyr::from_str(&text)
            .with_context(|| format!("parsing the kubeconfig {}", path.display()))?;
        let context = config
            .contexts
            .iter()
            .find(|c| c.name == config.current_context)
            .or(config.contexts.first())
            .with_context(|| format!("{}: no context", path.display()))?;
        let cluster = config
            .clusters
            .iter()
            .find(|c| c.name == context.spec.cluster)
            .with_context(|| {
                format!("{}: no cluster {:?}", path.display(), context.spec.cluster)
            })?;
        let token = config
            .users
            .iter()
            .find(|u| u.name == context.spec.user)
            .and_then(|u| u.spec.token.clone())
            .with_context(|| {
                format!(
                    "{}: user {:?} has no bearer token (the benchmark authenticates with one)",
                    path.display(),
                    context.spec.user
                )
            })?;
        let ca_pem = match (&cluster.spec.ca_data, &cluster.spec.ca_file) {
            (Some(data), _) => base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .with_context(|| {
                    format!(
                        "{}: certificate-authority-data is not base64",
                        path.display()
                    )
                })?,
            (None, Some(file)) => {
                std::fs::read(file).with_context(|| format!("reading the cluster CA {file}"))?
            }
            (None, None) => bail!(
                "{}: cluster {:?} names no certificate authority",
                path.display(),
                cluster.name
            ),
        };
        let server = server.unwrap_or(&cluster.spec.server);
        Cluster::new(server, &ca_pem, Some(token))
    }

    /// A cluster at `server` (`https://host:port`) whose certificate chains to `ca_pem`.
    pub fn new(server: &str, ca_pem: &[u8], token: Option<String>) -> anyhow::Result<Cluster> {
        let uri: http::Uri = server
            .parse()
            .with_context(|| format!("server URL {server:?}"))?;
        if uri.scheme_str() != Some("https") {
            bail!("server URL {server:?}: only https:// is supported");
        }
        let host = uri
            .host()
            .with_context(|| format!("server URL {server:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
            .with_context(|| format!("resolving {host}:{port}"))?
            .next()
            .with_context(|| format!("{host}:{port} resolves to no address"))?;
        let server_name = ServerName::try_from(host.clone())
            .with_context(|| format!("{host:?} is not a valid TLS server name"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
            roots
                .add(cert.context("reading the cluster CA certificate")?)
                .context("adding the cluster CA certificate")?;
        }
        if roots.is_empty() {
            bail!("the cluster CA holds no certificate");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut config_h2 = config.clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config_h2.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Cluster {
            server: server.trim_end_matches('/').to_string(),
            addr,
            server_name,
            tls: TlsConnector::from(Arc::new(config)),
            tls_h2: TlsConnector::from(Arc::new(config_h2)),
            token,
        })
    }

    /// Opens a new keep-alive HTTP/1.1 connection.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        let tls = self.tls_stream(&self.tls).await?;
        let (sender, driver) = http1::handshake(TokioIo::new(tls))
            .await
            .with_context(|| format!("HTTP handshake with {}", self.server))?;
        tokio::spawn(async move {
            if let Err(err) = driver.await {
                tracing::debug!(%err, "benchmark connection ended");
            }
        });
        Ok(Connection {
            sender: Sender::Http1(sender),
            authorization: self.token.as_ref().map(|t| format!("Bearer {t}")),
        })
    }

    /// Opens a new HTTP/2 connection; [`Connection::stream`] hands out more handles on it.
    pub async fn connect_http2(&self) -> anyhow::Result<Connection> {
        let tls = self.tls_stream(&self.tls_h2).await?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            bail!("{} did not agree to HTTP/2 (ALPN h2)", self.server);
        }
        let (sender, driver) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .with_context(|| format!("HTTP/2 handshake with {}", self.server))?;
        tokio::spawn(async move {
            if let Err(err) = driver.await {
                tracing::debug!(%err, "benchmark connection ended");
            }
        });
        Ok(Connection {
            sender: Sender::Http2(sender),
            authorization: self.token.as_ref().map(|t| format!("Bearer {t}")),
        })
    }

    async fn tls_stream(
        &self,
        connector: &TlsConnector,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.server))?;
        tcp.set_nodelay(true)?;
        connector
            .connect(self.server_name.clone(), tcp)
            .await
            .with_context(|| format!("TLS handshake with {}", self.server))
    }
}

/// One keep-alive connection: HTTP/1.1 (requests one after the other) or a handle on an
/// HTTP/2 connection (concurrent streams).
pub struct Connection {
    sender: Sender,
    authorization: Option<String>,
}

enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

/// A complete answer.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// Fails with the server's Status message unless the answer is 2xx.
    pub fn ok(self, what: &str) -> anyhow::Result<Bytes> {
        if self.status.is_success() {
            return Ok(self.body);
        }
        Err(anyhow!(
            "{what}: the server answered {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        ))
    }
}

impl Connection {
    /// Sends a request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Answer> {
        let response = self.start(method, path, accept, body).await?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the answer to {path}"))?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// Sends a request and returns as soon as the answer's head arrives (for watches).
    pub async fn start(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<Bytes>,
    ) -> anyhow::Result<Response<Incoming>> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "volplane")
            .header(header::USER_AGENT, "volplane-bench/api");
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .context("building a request")?;
        let response = match &mut self.sender {
            Sender::Http1(sender) => {
                sender
                    .ready()
                    .await
                    .context("the connection to the API server closed")?;
                sender.send_request(request).await
            }
            Sender::Http2(sender) => {
                sender
                    .ready()
                    .await
                    .context("the connection to the API server closed")?;
                sender.send_request(request).await
            }
        };
        response.with_context(|| format!("request {path}"))
    }

    /// Another handle on the same HTTP/2 connection (its requests are concurrent streams);
    /// `None` for an HTTP/1.1 connection.
    pub fn stream(&self) -> Option<Connection> {
        match &self.sender {
            Sender::Http1(_) => None,
            Sender::Http2(sender) => Some(Connection {
                sender: Sender::Http2(sender.clone()),
                authorization: self.authorization.clone(),
            }),
        }
    }
}

/// `GET /readyz` on a fresh connection; true on a 200. Connection errors are `Ok(false)` (the
/// server is not up yet); the attempt gives up after `timeout`.
pub async fn ready(cluster: &Cluster, timeout: Duration) -> bool {
    let attempt = async {
        let mut connection = cluster.connect().await?;
        let answer = connection.send(Method::GET, "/readyz", None, None).await?;
        anyhow::Ok(answer.status == StatusCode::OK)
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Ok(true)))
}
