//! `fluxctl status` and `fluxctl version`.

use fluxcascade::pb::{self, system_service_client::SystemServiceClient};

use crate::client::{ClientError, Target};
use crate::output::{self, Format};
use crate::views;

pub async fn status(target: &Target, format: Format) -> Result<(), ClientError> {
    let mut client = SystemServiceClient::new(target.connect().await?);
    let status = client.get_status(pb::GetStatusRequest {}).await?.into_inner();
    output::print(format, &views::status(&status), &[]);
    Ok(())
}

pub async fn version(target: &Target, format: Format) -> Result<(), ClientError> {
    let mut client = SystemServiceClient::new(target.connect().await?);
    let version = client.get_version(pb::GetVersionRequest {}).await?.into_inner();
    let value = serde_json::json!({
        "clientVersion": env!("CARGO_PKG_VERSION"),
        "version": version.version,
        "apiVersion": version.api_version,
    });
    output::print(format, &value, &[]);
    Ok(())
}
