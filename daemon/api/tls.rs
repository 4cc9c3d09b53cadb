//! TLS for the gRPC listener (`[grpc] tls_cert_file`, `tls_key_file`, and `client_ca_file` for
//! mutual TLS), read and checked at start so a bad file stops fluxd before it serves.

use std::path::Path;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::GrpcConfig;

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("grpc.{0}: set tls_cert_file and tls_key_file together")]
    Incomplete(&'static str),
    #[error("grpc.{key}: cannot read {path}: {error}")]
    Read {
        key: &'static str,
        path: String,
        error: std::io::Error,
    },
    #[error("grpc.{key}: {path} holds no PEM block")]
    NotPem { key: &'static str, path: String },
}

fn read_pem(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|error| TlsError::Read {
        key,
        path: path.display().to_string(),
        error,
    })?;
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Err(TlsError::NotPem {
            key,
            path: path.display().to_string(),
        });
    }
    Ok(bytes)
}

/// The server TLS settings of `config`, if TLS is on.
pub fn server_config(config: &GrpcConfig) -> Result<Option<ServerTlsConfig>, TlsError> {
    let (cert, key) = match (&config.tls_cert_file, &config.tls_key_file) {
        (None, None) if config.client_ca_file.is_some() => return Err(TlsError::Incomplete("client_ca_file")),
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(TlsError::Incomplete("tls_key_file")),
        (None, Some(_)) => return Err(TlsError::Incomplete("tls_cert_file")),
        (Some(cert), Some(key)) => (cert, key),
    };
    let identity = Identity::from_pem(read_pem("tls_cert_file", cert)?, read_pem("tls_key_file", key)?);
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &config.client_ca_file {
        tls = tls.client_ca_root(Certificate::from_pem(read_pem("client_ca_file", ca)?));
    }
    Ok(Some(tls))
}
