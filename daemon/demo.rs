//! `fluxd demo`: the whole product in one command, with no accounts and no network. It starts
//! fluxd with the in-process sandbox, connects HubSpot and Jobber through the real OAuth flow,
//! creates the "HubSpot contacts → Jobber clients" mapping, runs its first sync with a progress
//! bar, points the sandbox HubSpot app's webhooks at fluxd (as a person would in HubSpot's
//! developer portal) so changes sync in real time, prints what happened and where to look
//! next, and keeps serving until Ctrl-C.

use std::future::Future;
use std::io::IsTerminal;

use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::config::Config;
use crate::daemon::{self, Listeners};
use crate::pb;

/// Errors of the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
    #[error("fluxd did not start: {0}")]
    Start(String),
    #[error("{step}: {status}")]
    Rpc { step: &'static str, status: tonic::Status },
    #[error("{step}: {reason}")]
    Step { step: &'static str, reason: String },
}

/// The demo mapping, in the file format users write.
pub const DEMO_MAPPING: &str = r#"
name: HubSpot contacts → Jobber clients
source: { connection: SOURCE, object: contacts }
target: { connection: TARGET, object: clients }
direction: source_to_target
fieldPairs:
  - { sourceField: "firstname,lastname", targetField: firstName, transform: "concatenate|split_name(part=first)", required: true }
  - { sourceField: "firstname,lastname", targetField: lastName, transform: "concatenate|split_name(part=last)" }
  - { sourceField: email, targetField: email, transform: "trim|lowercase" }
  - { sourceField: phone, targetField: phone, transform: phone_e164 }
  - { sourceField: "address,city", targetField: billingAddress.street1, transform: 'concatenate(sep=", ")' }
  - { sourceField: city, targetField: billingAddress.city }
  - { sourceField: state, targetField: billingAddress.province }
  - { sourceField: zip, targetField: billingAddress.postalCode }
  - { sourceField: company, targetField: companyName }
matchKey: email
schedule: 15m
defaultRegion: US
"#;

struct Session {
    channel: Channel,
    token: MetadataValue<tonic::metadata::Ascii>,
}

impl Session {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.token.clone());
        request
    }
}

/// Runs the demo on `listeners` until `shutdown` resolves.
pub async fn run(
    listeners: Listeners,
    mut config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DemoError> {
    config.sandbox = true;
    let data_dir = config.data_dir.clone();
    let running = daemon::start(listeners, config).await?;
    let session = connect(running.grpc_addr, &data_dir).await?;
    let sandbox = running.sandbox_url.clone().unwrap_or_default();
    tokio::pin!(shutdown);
    tokio::select! {
        driven = drive(&session, &data_dir, &sandbox, running.http_addr) => {
            if let Err(error) = driven {
                eprintln!("demo failed: {error}");
            }
        }
        () = &mut shutdown => return Ok(running.serve_until(std::future::ready(())).await?),
    }
    Ok(running.serve_until(shutdown).await?)
}

async fn connect(grpc: std::net::SocketAddr, data_dir: &std::path::Path) -> Result<Session, DemoError> {
    let token = std::fs::read_to_string(data_dir.join(crate::auth::bootstrap::ADMIN_TOKEN_FILE))
        .map_err(|e| DemoError::Start(e.to_string()))?;
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .map_err(|e| DemoError::Start(e.to_string()))?
        .connect()
        .await
        .map_err(|e| DemoError::Start(e.to_string()))?;
    let token = format!("Bearer {}", token.trim())
        .parse()
        .map_err(|_| DemoError::Start("admin token is not ASCII".into()))?;
    Ok(Session { channel, token })
}

async fn connect_provider(session: &Session, provider: pb::Provider) -> Result<pb::Connection, DemoError> {
    let mut client = pb::connection_service_client::ConnectionServiceClient::new(session.channel.clone());
    let started = client
        .create_connection(session.request(pb::CreateConnectionRequest {
            provider: provider.into(),
            scopes: Vec::new(),
            return_to_console: false,
        }))
        .await
        .map_err(|status| DemoError::Rpc {
            step: "starting the authorization",
            status,
        })?
        .into_inner();
    // The sandbox's consent page approves at once and redirects to fluxd's callback.
    let page = reqwest::get(&started.authorize_url)
        .await
        .map_err(|e| DemoError::Step {
            step: "following the authorize URL",
            reason: e.to_string(),
        })?;
    if !page.status().is_success() {
        return Err(DemoError::Step {
            step: "authorizing",
            reason: page.text().await.unwrap_or_default(),
        });
    }
    client
        .wait_connection(session.request(pb::WaitConnectionRequest {
            state: started.state,
            timeout_seconds: 30,
        }))
        .await
        .map(tonic::Response::into_inner)
        .map_err(|status| DemoError::Rpc {
            step: "waiting for the connection",
            status,
        })
}

/// Sets the sandbox HubSpot app's webhook target URL to fluxd's HubSpot app URL; returns it.
async fn subscribe_hubspot(session: &Session, sandbox: &str, connection: &str) -> Result<String, DemoError> {
    let mut client = pb::connection_service_client::ConnectionServiceClient::new(session.channel.clone());
    let webhooks = client
        .get_connection_webhooks(session.request(pb::GetConnectionWebhooksRequest {
            id: connection.to_owned(),
            subscribe: false,
        }))
        .await
        .map_err(|status| DemoError::Rpc {
            step: "reading HubSpot's webhook URL",
            status,
        })?
        .into_inner();
    let settings = serde_json::json!({ "targetUrl": webhooks.app_url });
    let answer = reqwest::Client::new()
        .put(format!("{sandbox}/_control/hubspot/webhooks"))
        .json(&settings)
        .send()
        .await
        .map_err(|e| DemoError::Step {
            step: "setting the HubSpot app's webhook URL",
            reason: e.to_string(),
        })?;
    if !answer.status().is_success() {
        return Err(DemoError::Step {
            step: "setting the HubSpot app's webhook URL",
            reason: answer.text().await.unwrap_or_default(),
        });
    }
    Ok(webhooks.app_url)
}

async fn drive(
    session: &Session,
    data_dir: &std::path::Path,
    sandbox: &str,
    http: std::net::SocketAddr,
) -> Result<(), DemoError> {
    println!("FluxCascade demo: fluxd is running with sandbox providers (no accounts, no network).");
    println!("Its log is in {}.\n", data_dir.join("fluxd.log").display());
    let hubspot = connect_provider(session, pb::Provider::Hubspot).await?;
    println!("  connected HubSpot  {}  ({})", hubspot.account_name, hubspot.id);
    let jobber = connect_provider(session, pb::Provider::Jobber).await?;
    println!("  connected Jobber   {}  ({})", jobber.account_name, jobber.id);

    let text = DEMO_MAPPING
        .replace("SOURCE", &hubspot.id)
        .replace("TARGET", &jobber.id);
    let spec = crate::mappings::spec::parse_file(&text).map_err(|e| DemoError::Step {
        step: "reading the demo mapping",
        reason: e.to_string(),
    })?;
    let mut mappings = pb::mapping_service_client::MappingServiceClient::new(session.channel.clone());
    let replaced = remove_previous_mapping(session, &mut mappings, &spec.name).await?;
    let mapping = mappings
        .create_mapping(session.request(pb::CreateMappingRequest {
            spec: Some(crate::mappings::wire::spec_to_pb(&spec)),
            inactive: false,
        }))
        .await
        .map_err(|status| DemoError::Rpc {
            step: "creating the mapping",
            status,
        })?
        .into_inner();
    let made = if replaced {
        "replaced mapping"
    } else {
        "created mapping "
    };
    println!("  {made}   {}  ({})\n", spec.name, mapping.id);

    let mut syncs = pb::sync_service_client::SyncServiceClient::new(session.channel.clone());
    let job = syncs
        .run_sync(session.request(pb::RunSyncRequest {
            mapping_id: mapping.id.clone(),
            full: false,
            confirm: true,
        }))
        .await
        .map_err(|status| DemoError::Rpc {
            step: "starting the sync",
            status,
        })?
        .into_inner();
    let job = watch(&mut syncs, session, &job.id).await?;
    let stats = job.stats.unwrap_or_default();
    let status = pb::SyncStatus::try_from(job.status)
        .unwrap_or(pb::SyncStatus::Unspecified)
        .as_str_name()
        .trim_start_matches("SYNC_STATUS_")
        .to_lowercase();
    println!(
        "sync {} {status}: fetched {}, created {}, updated {}, unchanged {}, failed {}\n",
        job.id, stats.fetched, stats.created, stats.updated, stats.unchanged, stats.failed
    );
    let app_url = subscribe_hubspot(session, sandbox, &hubspot.id).await?;
    let fluxctl = fluxctl_command(data_dir);
    println!("Real-time sync: the sandbox's HubSpot sends its webhooks to {app_url}.");
    println!("Change a contact there, and its Jobber client follows within a second:");
    println!(
        "  curl -X PATCH {sandbox}/_control/hubspot/records/contacts/1001 -H 'content-type: application/json' -d '{{\"firstname\": \"Grace\"}}'"
    );
    println!("  {fluxctl} sync list      # a sync with trigger webhook\n");
    println!("Where to look next (fluxd keeps running; Ctrl-C stops it):");
    println!("  {fluxctl} sync list");
    println!("  {fluxctl} sync get {}", job.id);
    println!("  {fluxctl} mapping get {} -o json", mapping.id);
    println!("  {fluxctl} mapping preview {} --limit 3", mapping.id);
    println!("  {fluxctl} sync run {} --wait      # again: nothing to do", mapping.id);
    println!("  {fluxctl} connection list");
    println!(
        "  the web console: http://{http}/ (sign in with the token in {})",
        data_dir.join(crate::auth::bootstrap::ADMIN_TOKEN_FILE).display()
    );
    Ok(())
}

/// Deletes the mapping an earlier demo made in this data dir, if any: the sandbox starts with
/// fresh records each run, so its links and history describe records that no longer exist.
/// (The connections are reused: connecting the same account again reconnects it.)
async fn remove_previous_mapping(
    session: &Session,
    mappings: &mut pb::mapping_service_client::MappingServiceClient<Channel>,
    name: &str,
) -> Result<bool, DemoError> {
    let listed = mappings
        .list_mappings(session.request(pb::ListMappingsRequest {
            page_size: 1000,
            ..Default::default()
        }))
        .await
        .map_err(|status| DemoError::Rpc {
            step: "listing mappings",
            status,
        })?
        .into_inner();
    let mut replaced = false;
    for previous in listed
        .mappings
        .into_iter()
        .filter(|m| m.spec.as_ref().is_some_and(|spec| spec.name == name))
    {
        mappings
            .delete_mapping(session.request(pb::DeleteMappingRequest { id: previous.id }))
            .await
            .map_err(|status| DemoError::Rpc {
                step: "removing the previous demo's mapping",
                status,
            })?;
        replaced = true;
    }
    Ok(replaced)
}

/// How to run fluxctl against this demo, as a shell command: the fluxctl built next to this
/// fluxd (relative to the working directory when it is below it), else the one on `PATH`.
fn fluxctl_command(data_dir: &std::path::Path) -> String {
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(format!("fluxctl{}", std::env::consts::EXE_SUFFIX)))
        .filter(|path| path.is_file());
    let program = match beside {
        Some(path) => {
            let relative = std::env::current_dir()
                .ok()
                .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| std::path::Path::new(".").join(p)));
            relative.unwrap_or(path).display().to_string()
        }
        None => "fluxctl".to_owned(),
    };
    format!(
        "{} --data-dir {}",
        shell_word(&program),
        shell_word(&data_dir.display().to_string())
    )
}

/// `word` quoted for a POSIX shell when it needs to be.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

async fn watch(
    syncs: &mut pb::sync_service_client::SyncServiceClient<Channel>,
    session: &Session,
    job_id: &str,
) -> Result<pb::SyncJob, DemoError> {
    use tokio_stream::StreamExt;
    let mut stream = syncs
        .watch_sync(session.request(pb::WatchSyncRequest { id: job_id.to_owned() }))
        .await
        .map_err(|status| DemoError::Rpc {
            step: "watching the sync",
            status,
        })?
        .into_inner();
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| indicatif::ProgressBar::new_spinner().with_message("starting"));
    if let Some(bar) = &bar {
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    let counting = indicatif::ProgressStyle::with_template("  {msg:8} [{bar:30}] {pos}/{len} contacts")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut last = None;
    while let Some(job) = stream.next().await {
        let job = job.map_err(|status| DemoError::Rpc {
            step: "watching the sync",
            status,
        })?;
        if let Some(bar) = &bar {
            let fetched = job.stats.unwrap_or_default().fetched;
            match pb::SyncPhase::try_from(job.phase).unwrap_or(pb::SyncPhase::Unspecified) {
                // Until records flow, there is nothing to count: a spinner says what it waits on.
                pb::SyncPhase::Queued => bar.set_message("queued"),
                pb::SyncPhase::Matching => bar.set_message("matching existing Jobber clients"),
                _ if job.total_estimate.max(fetched) == 0 => bar.set_message("listing"),
                _ => {
                    bar.set_style(counting.clone());
                    bar.set_message("syncing");
                    bar.set_length(job.total_estimate.max(fetched));
                    bar.set_position(fetched);
                }
            }
            bar.tick();
        }
        last = Some(job);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    last.ok_or(DemoError::Step {
        step: "watching the sync",
        reason: "no news of the job".into(),
    })
}
