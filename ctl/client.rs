//! Connecting to fluxd: address and token resolution, and a bearer-token interceptor.

use std::path::PathBuf;

use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// Where and as whom to connect.
pub struct Target {
    pub addr: Option<String>,
    pub token: Option<String>,
    pub data_dir: PathBuf,
    pub tls: TlsFiles,
}

/// TLS material for an `https://` address.
#[derive(Default)]
pub struct TlsFiles {
    pub ca_cert: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    fn read(path: &std::path::Path) -> Result<Vec<u8>, ClientError> {
        std::fs::read(path).map_err(|error| ClientError::Usage(format!("cannot read {}: {error}", path.display())))
    }

    /// The client TLS settings.
    fn config(&self) -> Result<tonic::transport::ClientTlsConfig, ClientError> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_cert {
            Some(path) => config.ca_certificate(Certificate::from_pem(Self::read(path)?)),
            None => config.with_webpki_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            config = config.identity(Identity::from_pem(Self::read(cert)?, Self::read(key)?));
        }
        Ok(config)
    }
}

/// Errors before or while talking to fluxd.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no API token: pass --token, set FLUXCTL_TOKEN, or point --data-dir at fluxd's data dir (no {0})")]
    NoToken(String),
    #[error("invalid address {addr:?}: {error}")]
    BadAddress { addr: String, error: String },
    #[error("cannot connect to fluxd at {addr}: {error} (is fluxd running?)")]
    Connect { addr: String, error: String },
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Rpc(#[from] Status),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("sync {job_id} ended {status} (fluxctl sync errors {job_id} lists the records)")]
    JobEnded { job_id: String, status: String },
    #[error(
        "interrupted: sync {0} goes on in fluxd (`fluxctl sync watch {0}` follows it again, `fluxctl sync cancel {0}` stops it)"
    )]
    Detached(String),
}

impl ClientError {
    /// The process exit status for this error: 1 for errors, 3 for a sync that ended
    /// `partial`, 4 `failed`, 5 `cancelled`, 130 for a watch interrupted with Ctrl-C (clap's
    /// usage errors exit 2).
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::JobEnded { status, .. } => match status.as_str() {
                "partial" => 3,
                "failed" => 4,
                _ => 5,
            },
            ClientError::Detached(_) => 130,
            _ => 1,
        }
    }
}

fn code_name(code: tonic::Code) -> String {
    let name = format!("{code:?}");
    // `Unauthenticated` → `unauthenticated`, `InvalidArgument` → `invalid argument`.
    name.chars().enumerate().fold(String::new(), |mut out, (i, c)| {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.extend(c.to_lowercase());
        out
    })
}

/// `error` with its causes, which say what "transport error" was (refused, TLS, …).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Adds `authorization: Bearer <token>` to every call (none for calls that carry their own
/// credential, such as accepting an invitation).
#[derive(Clone)]
pub struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// An authenticated channel.
pub type AuthChannel = tonic::service::interceptor::InterceptedService<Channel, BearerToken>;

impl Target {
    fn address(&self) -> String {
        if let Some(addr) = &self.addr {
            return if addr.contains("://") {
                addr.clone()
            } else {
                format!("http://{addr}")
            };
        }
        let endpoints = std::fs::read_to_string(self.data_dir.join("endpoints.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        let grpc = endpoints
            .as_ref()
            .and_then(|json| json.get("grpc").and_then(|g| g.as_str()).map(str::to_owned));
        let tls = endpoints.as_ref().is_some_and(|json| json["grpcTls"] == true);
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{}", grpc.unwrap_or_else(|| "127.0.0.1:50051".into()))
    }

    fn bearer(&self) -> Result<BearerToken, ClientError> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => {
                let path = self.data_dir.join("admin.token");
                std::fs::read_to_string(&path).map_err(|_| ClientError::NoToken(path.display().to_string()))?
            }
        };
        let value = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| ClientError::Usage("the API token contains characters not allowed in a header".into()))?;
        Ok(BearerToken(Some(value)))
    }

    /// Connects and returns an authenticated channel.
    pub async fn connect(&self) -> Result<AuthChannel, ClientError> {
        let bearer = self.bearer()?;
        self.connect_as(bearer).await
    }

    /// Connects without an API token.
    pub async fn connect_anonymous(&self) -> Result<AuthChannel, ClientError> {
        self.connect_as(BearerToken(None)).await
    }

    async fn connect_as(&self, bearer: BearerToken) -> Result<AuthChannel, ClientError> {
        let addr = self.address();
        let mut endpoint = Endpoint::from_shared(addr.clone())
            .map_err(|error| ClientError::BadAddress {
                addr: addr.clone(),
                error: error.to_string(),
            })?
            .connect_timeout(std::time::Duration::from_secs(5));
        if addr.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls.config()?)
                .map_err(|error| ClientError::BadAddress {
                    addr: addr.clone(),
                    error: error.to_string(),
                })?;
        }
        let channel = endpoint.connect().await.map_err(|error| ClientError::Connect {
            addr,
            error: with_causes(&error),
        })?;
        Ok(tonic::service::interceptor::InterceptedService::new(channel, bearer))
    }
}
