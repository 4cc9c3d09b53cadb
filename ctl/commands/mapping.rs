//! `fluxctl mapping …`: define how records flow between two connections.

use clap::Subcommand;
use fluxcascade::mappings::spec::{self, ConflictPolicy, Direction, FieldPair, MappingSpec, MatchingMode, ObjectRef};
use fluxcascade::mappings::wire::{mapping_json, spec_from_pb, spec_to_pb};
use fluxcascade::pb::{self, mapping_service_client::MappingServiceClient};

use crate::client::{ClientError, Target};
use crate::output::{self, Format};
use crate::pages::{self, PageArgs};

#[derive(clap::Args)]
pub struct SpecArgs {
    /// A YAML or JSON mapping file (keys: name, source, target, direction, fieldPairs, matchKey, schedule, …).
    #[arg(short = 'f', long = "file")]
    file: Option<std::path::PathBuf>,
    #[arg(long)]
    name: Option<String>,
    /// Source as CONNECTION:OBJECT, e.g. conn_…:contacts.
    #[arg(long)]
    source: Option<String>,
    /// Target as CONNECTION:OBJECT.
    #[arg(long)]
    target: Option<String>,
    #[arg(long, value_enum)]
    direction: Option<DirectionArg>,
    /// A field pair SOURCE=TARGET[:TRANSFORM], repeatable, e.g. --pair 'email=email:trim|lowercase'.
    #[arg(long = "pair")]
    pairs: Vec<String>,
    #[arg(long)]
    match_key: Option<String>,
    /// Interval like 15m, or a cron expression (optionally 'TZ=Europe/Paris 0 9 * * *').
    #[arg(long)]
    schedule: Option<String>,
    #[arg(long, value_enum)]
    matching_mode: Option<ModeArg>,
    /// Region for phone numbers without a country code, e.g. US.
    #[arg(long)]
    default_region: Option<String>,
    /// Who wins fields both sides changed in a bidirectional mapping (filters, per-pair
    /// directions and policies: write them in a mapping file).
    #[arg(long, value_enum)]
    conflict_policy: Option<PolicyArg>,
}

/// The values outputs print (`source_to_target`), kebab-case accepted too.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DirectionArg {
    #[value(name = "source_to_target", alias = "source-to-target")]
    SourceToTarget,
    #[value(name = "target_to_source", alias = "target-to-source")]
    TargetToSource,
    Bidirectional,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    #[value(name = "match_then_create", alias = "match-then-create")]
    MatchThenCreate,
    #[value(name = "create_only", alias = "create-only")]
    CreateOnly,
    #[value(name = "match_only", alias = "match-only")]
    MatchOnly,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PolicyArg {
    #[value(name = "newest_wins", alias = "newest-wins")]
    Newest,
    #[value(name = "source_wins", alias = "source-wins")]
    Source,
    #[value(name = "target_wins", alias = "target-wins")]
    Target,
}

#[derive(Subcommand)]
pub enum MappingCommand {
    /// Create a mapping from a file (-f) or flags; prints it with its id.
    Create {
        #[command(flatten)]
        spec: SpecArgs,
        /// Create it paused.
        #[arg(long)]
        inactive: bool,
    },
    /// Create the mapping a file describes, or update it when it exists (by the file's `id`,
    /// else by name): applying the same file twice changes nothing the second time.
    Apply {
        /// A mapping file, or the output of `mapping get -o json`.
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
    },
    /// List mappings.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a mapping (with -o json: the file shape plus id; `mapping apply -f` takes it back).
    Get { id: String },
    /// Replace a mapping's definition: from a file, or flags over the current one.
    Update {
        id: String,
        #[command(flatten)]
        spec: SpecArgs,
    },
    /// Delete a mapping and its sync state.
    Delete { id: String },
    /// Resume a paused mapping's schedule.
    Activate { id: String },
    /// Pause a mapping's schedule.
    Deactivate { id: String },
    /// List an object's fields as the provider reports them.
    Fields {
        #[arg(long)]
        connection: String,
        #[arg(long)]
        object: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show what a sync would write for a few source records; writes nothing.
    Preview {
        id: String,
        #[arg(long, default_value_t = 5)]
        limit: u32,
    },
}

fn object_ref(text: &str, flag: &str) -> Result<ObjectRef, ClientError> {
    let (connection, object) = text
        .split_once(':')
        .ok_or_else(|| ClientError::Usage(format!("--{flag}: expected CONNECTION:OBJECT, got {text:?}")))?;
    Ok(ObjectRef {
        connection: connection.to_owned(),
        object: object.to_owned(),
    })
}

fn pair(text: &str) -> Result<FieldPair, ClientError> {
    let (source, rest) = text
        .split_once('=')
        .ok_or_else(|| ClientError::Usage(format!("--pair: expected SOURCE=TARGET[:TRANSFORM], got {text:?}")))?;
    let (target, transform) = match rest.split_once(':') {
        Some((target, transform)) => (target, Some(transform.to_owned())),
        None => (rest, None),
    };
    Ok(FieldPair {
        source_field: source.to_owned(),
        target_field: target.to_owned(),
        transform,
        required: false,
        reverse_transform: None,
        overwrite_with_empty: false,
        direction: None,
        conflict_policy: None,
        on_error: None,
    })
}

/// A mapping file: its spec, and the `id` and `active` of a file `mapping get -o json` wrote.
struct MappingFile {
    spec: MappingSpec,
    id: Option<String>,
    active: Option<bool>,
}

fn read_file(path: &std::path::Path) -> Result<MappingFile, ClientError> {
    let usage = |e: &dyn std::fmt::Display| ClientError::Usage(format!("{}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| usage(&e))?;
    let spec = spec::parse_file(&text).map_err(|e| usage(&e))?;
    let value: serde_json::Value = serde_yaml_ng::from_str(&text).map_err(|e| usage(&e))?;
    Ok(MappingFile {
        spec,
        id: value["id"].as_str().map(str::to_owned),
        active: value["active"].as_bool(),
    })
}

impl SpecArgs {
    /// The spec from the file, or from flags over `base` (or nothing).
    fn into_spec(self, base: Option<MappingSpec>) -> Result<MappingSpec, ClientError> {
        if let Some(path) = &self.file {
            let file = read_file(path)?;
            if let (Some(id), None) = (&file.id, &base) {
                return Err(ClientError::Usage(format!(
                    "{} describes mapping {id} (it has an id): `fluxctl mapping apply -f` updates it; remove the id to create a copy",
                    path.display()
                )));
            }
            return Ok(file.spec);
        }
        let mut spec = match base {
            Some(spec) => spec,
            None => MappingSpec {
                name: self.name.clone().ok_or_else(|| {
                    ClientError::Usage("give -f FILE or --name, --source, --target and --pair".into())
                })?,
                source: object_ref(self.source.as_deref().unwrap_or_default(), "source")?,
                target: object_ref(self.target.as_deref().unwrap_or_default(), "target")?,
                direction: Direction::default(),
                field_pairs: Vec::new(),
                match_key: None,
                schedule: None,
                matching_mode: MatchingMode::default(),
                default_region: None,
                filter: None,
                target_filter: None,
                conflict_policy: ConflictPolicy::default(),
            },
        };
        if let Some(name) = self.name {
            spec.name = name;
        }
        if let Some(source) = &self.source {
            spec.source = object_ref(source, "source")?;
        }
        if let Some(target) = &self.target {
            spec.target = object_ref(target, "target")?;
        }
        if let Some(direction) = self.direction {
            spec.direction = match direction {
                DirectionArg::SourceToTarget => Direction::SourceToTarget,
                DirectionArg::TargetToSource => Direction::TargetToSource,
                DirectionArg::Bidirectional => Direction::Bidirectional,
            };
        }
        if !self.pairs.is_empty() {
            spec.field_pairs = self.pairs.iter().map(|p| pair(p)).collect::<Result<_, _>>()?;
        }
        if let Some(mode) = self.matching_mode {
            spec.matching_mode = match mode {
                ModeArg::MatchThenCreate => MatchingMode::MatchThenCreate,
                ModeArg::CreateOnly => MatchingMode::CreateOnly,
                ModeArg::MatchOnly => MatchingMode::MatchOnly,
            };
        }
        if let Some(policy) = self.conflict_policy {
            spec.conflict_policy = match policy {
                PolicyArg::Newest => ConflictPolicy::NewestWins,
                PolicyArg::Source => ConflictPolicy::SourceWins,
                PolicyArg::Target => ConflictPolicy::TargetWins,
            };
        }
        spec.match_key = self.match_key.or(spec.match_key);
        spec.schedule = self.schedule.or(spec.schedule);
        spec.default_region = self.default_region.or(spec.default_region);
        Ok(spec)
    }
}

/// Creates or updates the mapping `file` describes; returns it and what was done.
async fn apply(client: &mut Client, file: MappingFile) -> Result<(pb::Mapping, &'static str), ClientError> {
    let by_id = match &file.id {
        Some(id) => match client.get_mapping(pb::GetMappingRequest { id: id.clone() }).await {
            Ok(found) => Some(found.into_inner()),
            Err(status) if status.code() == tonic::Code::NotFound => None,
            Err(status) => return Err(status.into()),
        },
        None => None,
    };
    let existing = match by_id {
        Some(mapping) => Some(mapping),
        None => {
            let all = pages::collect(PageArgs { limit: None, all: true }, |page_token, page_size| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_mappings(pb::ListMappingsRequest { page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((page.mappings, page.next_page_token))
                }
            })
            .await?;
            let mut named: Vec<pb::Mapping> = all
                .into_iter()
                .filter(|m| m.spec.as_ref().is_some_and(|s| s.name == file.spec.name))
                .collect();
            if named.len() > 1 {
                return Err(ClientError::Usage(format!(
                    "{} mappings are named {:?}; give the file the `id` of the one to update",
                    named.len(),
                    file.spec.name
                )));
            }
            named.pop()
        }
    };
    let Some(current) = existing else {
        let created = client
            .create_mapping(pb::CreateMappingRequest {
                spec: Some(spec_to_pb(&file.spec)),
                inactive: file.active == Some(false),
            })
            .await?
            .into_inner();
        return Ok((created, "created"));
    };
    let mut mapping = current.clone();
    let mut action = "unchanged";
    let current_spec = current
        .spec
        .as_ref()
        .map(spec_from_pb)
        .transpose()
        .map_err(ClientError::Usage)?;
    if current_spec.as_ref() != Some(&file.spec) {
        mapping = client
            .update_mapping(pb::UpdateMappingRequest {
                id: current.id.clone(),
                spec: Some(spec_to_pb(&file.spec)),
            })
            .await?
            .into_inner();
        action = "updated";
    }
    match file.active {
        Some(true) if !mapping.active => {
            mapping = client
                .activate_mapping(pb::ActivateMappingRequest { id: mapping.id.clone() })
                .await?
                .into_inner();
            action = "updated";
        }
        Some(false) if mapping.active => {
            mapping = client
                .deactivate_mapping(pb::DeactivateMappingRequest { id: mapping.id.clone() })
                .await?
                .into_inner();
            action = "updated";
        }
        _ => {}
    }
    Ok((mapping, action))
}

type Client = MappingServiceClient<crate::client::AuthChannel>;

const COLUMNS: &[&str] = &[
    "id",
    "name",
    "direction",
    "active",
    "source.object",
    "target.object",
    "schedule",
    "nextRunAt",
];

fn print_mapping(format: Format, mapping: &pb::Mapping) -> Result<(), ClientError> {
    let value = mapping_json(mapping).map_err(ClientError::Usage)?;
    match format {
        Format::Json => output::print(format, &value, &[]),
        Format::Table => {
            let summary = serde_json::json!({
                "id": value["id"], "name": value["name"], "direction": value["direction"], "active": value["active"],
                "source": format!("{}:{}", value["source"]["connection"].as_str().unwrap_or_default(), value["source"]["object"].as_str().unwrap_or_default()),
                "target": format!("{}:{}", value["target"]["connection"].as_str().unwrap_or_default(), value["target"]["object"].as_str().unwrap_or_default()),
                "fieldPairs": value["fieldPairs"].as_array().map_or(0, Vec::len), "matchKey": value["matchKey"],
                "schedule": value["schedule"], "nextRunAt": value["nextRunAt"],
            });
            output::print(format, &summary, &[]);
        }
    }
    Ok(())
}

pub async fn run(command: MappingCommand, target: &Target, format: Format) -> Result<(), ClientError> {
    let mut client = MappingServiceClient::new(target.connect().await?);
    match command {
        MappingCommand::Create { spec, inactive } => {
            let spec = spec.into_spec(None)?;
            let mapping = client
                .create_mapping(pb::CreateMappingRequest {
                    spec: Some(spec_to_pb(&spec)),
                    inactive,
                })
                .await?
                .into_inner();
            print_mapping(format, &mapping)?;
        }
        MappingCommand::Apply { file } => {
            let file = read_file(&file)?;
            let (mapping, action) = apply(&mut client, file).await?;
            eprintln!("mapping {} {action}", mapping.id);
            print_mapping(format, &mapping)?;
        }
        MappingCommand::List { page } => {
            let mappings = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_mappings(pb::ListMappingsRequest { page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((page.mappings, page.next_page_token))
                }
            })
            .await?;
            let rows: Vec<serde_json::Value> = mappings
                .iter()
                .map(mapping_json)
                .collect::<Result<_, _>>()
                .map_err(ClientError::Usage)?;
            output::print(format, &serde_json::Value::Array(rows), COLUMNS);
        }
        MappingCommand::Get { id } => {
            let mapping = client.get_mapping(pb::GetMappingRequest { id }).await?.into_inner();
            print_mapping(format, &mapping)?;
        }
        MappingCommand::Update { id, spec } => {
            let current = client
                .get_mapping(pb::GetMappingRequest { id: id.clone() })
                .await?
                .into_inner();
            let base = current
                .spec
                .as_ref()
                .map(spec_from_pb)
                .transpose()
                .map_err(ClientError::Usage)?;
            let spec = spec.into_spec(base)?;
            let mapping = client
                .update_mapping(pb::UpdateMappingRequest {
                    id,
                    spec: Some(spec_to_pb(&spec)),
                })
                .await?
                .into_inner();
            print_mapping(format, &mapping)?;
        }
        MappingCommand::Delete { id } => {
            client
                .delete_mapping(pb::DeleteMappingRequest { id: id.clone() })
                .await?;
            output::print(format, &serde_json::json!({ "deleted": id }), &[]);
        }
        MappingCommand::Activate { id } => {
            let mapping = client
                .activate_mapping(pb::ActivateMappingRequest { id })
                .await?
                .into_inner();
            print_mapping(format, &mapping)?;
        }
        MappingCommand::Deactivate { id } => {
            let mapping = client
                .deactivate_mapping(pb::DeactivateMappingRequest { id })
                .await?
                .into_inner();
            print_mapping(format, &mapping)?;
        }
        MappingCommand::Fields {
            connection,
            object,
            page,
        } => {
            let fields = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                let request = pb::ListFieldsRequest {
                    connection_id: connection.clone(),
                    object: object.clone(),
                    page_size,
                    page_token,
                };
                async move {
                    let page = client.list_fields(request).await?.into_inner();
                    Ok((page.fields, page.next_page_token))
                }
            })
            .await?;
            let rows: Vec<serde_json::Value> = fields
                .iter()
                .map(|f| serde_json::json!({ "name": f.name, "label": f.label, "type": f.r#type, "required": f.required, "readOnly": f.read_only }))
                .collect();
            output::print(
                format,
                &serde_json::Value::Array(rows),
                &["name", "label", "type", "required", "readOnly"],
            );
        }
        MappingCommand::Preview { id, limit } => {
            let records = client
                .preview_mapping(pb::PreviewMappingRequest { id, limit, spec: None })
                .await?
                .into_inner()
                .records;
            let rows: Vec<serde_json::Value> = records
                .iter()
                .map(|r| serde_json::json!({ "sourceId": r.source_id, "values": r.values, "errors": r.errors }))
                .collect();
            output::print(
                format,
                &serde_json::Value::Array(rows),
                &["sourceId", "values", "errors"],
            );
        }
    }
    Ok(())
}
