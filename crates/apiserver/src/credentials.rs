//! Credentials of an API server: a CA, a serving certificate signed by it, the admin bearer
//! token, and the kubeconfig that ties them together — all kept under the data directory.
//!
//! The CA and token are made once and kept; the serving certificate is made anew on every start
//! so that it names the address the server listens on.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Failures to make or load credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Reading or writing a file under the data directory failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Making or parsing a key or certificate failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// What a running API server needs: the TLS configuration and the token to accept.
pub struct Credentials {
    pub tls: Arc<rustls::ServerConfig>,
    pub token: String,
    pub kubeconfig_path: PathBuf,
}

fn read(path: &Path) -> Result<Option<String>, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a file atomically (write to a temporary name, fsync, rename), mode 0600.
fn write(path: &Path, contents: &str) -> Result<(), CredentialsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| CredentialsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Loads the CA and token from `dir`, making them on first start, makes a serving certificate
/// for `listen`, and (re)writes `dir/kubeconfig`.
pub fn ensure(dir: &Path, listen: SocketAddr) -> Result<Credentials, CredentialsError> {
    std::fs::create_dir_all(dir).map_err(|source| CredentialsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let (ca_pem, ca_key_pem) = ensure_ca(dir)?;
    let token = match read(&dir.join("token"))? {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let token = random_token();
            write(&dir.join("token"), &token)?;
            token
        }
    };
    let (cert_pem, key_pem) = serving_certificate(&ca_key_pem, listen)?;
    let tls = tls_config(&cert_pem, &ca_pem, &key_pem)?;
    let kubeconfig_path = dir.join("kubeconfig");
    write(
        &kubeconfig_path,
        &kubeconfig(&server_url(listen), &ca_pem, &token),
    )?;
    Ok(Credentials {
        tls,
        token,
        kubeconfig_path,
    })
}

fn ensure_ca(dir: &Path) -> Result<(String, String), CredentialsError> {
    if let (Some(cert), Some(key)) = (read(&dir.join("ca.crt"))?, read(&dir.join("ca.key"))?) {
        return Ok((cert, key));
    }
    let key = KeyPair::generate()?;
    let cert = ca_params()?.self_signed(&key)?;
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    write(&dir.join("ca.key"), &key_pem)?;
    write(&dir.join("ca.crt"), &cert_pem)?;
    Ok((cert_pem, key_pem))
}

/// The CA's parameters. They are the same on every start, so an issuer rebuilt from them and the
/// kept CA key signs certificates that chain to the kept CA certificate.
fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "volplane-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn serving_certificate(
    ca_key_pem: &str,
    listen: SocketAddr,
) -> Result<(String, String), CredentialsError> {
    let issuer = Issuer::new(ca_params()?, KeyPair::from_pem(ca_key_pem)?);
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "kubernetes.default.svc".to_string(),
    ];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "volplane-apiserver");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn tls_config(
    cert_pem: &str,
    ca_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, CredentialsError> {
    let chain: Vec<_> = rustls_pemfile::certs(&mut format!("{cert_pem}{ca_pem}").as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|source| CredentialsError::Io {
            path: PathBuf::from("<serving certificate>"),
            source,
        })?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|source| CredentialsError::Io {
            path: PathBuf::from("<serving key>"),
            source,
        })?
        .ok_or(rustls::Error::General("no private key in PEM".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL clients use: the listen address, with an unspecified IP replaced by loopback.
pub fn server_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, listen.port()))
}

fn kubeconfig(server: &str, ca_pem: &str, token: &str) -> String {
    let ca = STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: volplane\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: admin\n  user:\n    token: {token}\ncontexts:\n- name: volplane\n  context:\n    cluster: volplane\n    user: admin\n    namespace: default\ncurrent-context: volplane\npreferences: {{}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_makes_credentials_and_later_starts_keep_ca_and_token() {
        let dir = tempfile::tempdir().unwrap();
        let listen: SocketAddr = "127.0.0.1:6443".parse().unwrap();
        let first = ensure(dir.path(), listen).unwrap();
        let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
        let second = ensure(dir.path(), listen).unwrap();
        assert_eq!(first.token, second.token);
        assert_eq!(
            ca,
            std::fs::read_to_string(dir.path().join("ca.crt")).unwrap()
        );
        let kubeconfig = std::fs::read_to_string(&second.kubeconfig_path).unwrap();
        assert!(kubeconfig.contains("server: https://127.0.0.1:6443"));
        assert!(kubeconfig.contains(&format!("token: {}", first.token)));
    }

    #[test]
    fn unspecified_listen_address_is_reached_on_loopback() {
        assert_eq!(
            server_url("0.0.0.0:7000".parse().unwrap()),
            "https://127.0.0.1:7000"
        );
    }
}
