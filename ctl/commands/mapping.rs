//! `fluxctl mapping …`: define how records flow between two connections.

use clap::Subcommand;
use fluxcascade::mappings::spec::{self, Direction, FieldPair, MappingSpec, MatchingMode, ObjectRef};
use fluxcascade::mappings::wire::{mapping_json, spec_from_pb, spec_to_pb};
use fluxcascade::pb::{self, mapping_service_client::MappingServiceClient};

use crate::client::{ClientError, Target};
use crate::output::{self, Format};

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
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DirectionArg {
    SourceToTarget,
    TargetToSource,
    Bidirectional,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    MatchThenCreate,
    CreateOnly,
    MatchOnly,
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
    /// List mappings.
    List,
    /// Show a mapping (with -o json: the file shape plus id, so it round-trips).
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
    })
}

impl SpecArgs {
    /// The spec from the file, or from flags over `base` (or nothing).
    fn into_spec(self, base: Option<MappingSpec>) -> Result<MappingSpec, ClientError> {
        if let Some(path) = &self.file {
            let text =
                std::fs::read_to_string(path).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
            return spec::parse_file(&text).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())));
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
        spec.match_key = self.match_key.or(spec.match_key);
        spec.schedule = self.schedule.or(spec.schedule);
        spec.default_region = self.default_region.or(spec.default_region);
        Ok(spec)
    }
}

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
        MappingCommand::List => {
            let mappings = client
                .list_mappings(pb::ListMappingsRequest {})
                .await?
                .into_inner()
                .mappings;
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
        MappingCommand::Fields { connection, object } => {
            let fields = client
                .list_fields(pb::ListFieldsRequest {
                    connection_id: connection,
                    object,
                })
                .await?
                .into_inner()
                .fields;
            let rows: Vec<serde_json::Value> = fields
                .iter()
                .map(|f| serde_json::json!({ "name": f.name, "label": f.label, "type": f.r#type, "required": f.required, "read_only": f.read_only }))
                .collect();
            output::print(
                format,
                &serde_json::Value::Array(rows),
                &["name", "label", "type", "required", "read_only"],
            );
        }
        MappingCommand::Preview { id, limit } => {
            let records = client
                .preview_mapping(pb::PreviewMappingRequest { id, limit })
                .await?
                .into_inner()
                .records;
            let rows: Vec<serde_json::Value> = records
                .iter()
                .map(|r| serde_json::json!({ "source_id": r.source_id, "values": r.values, "errors": r.errors }))
                .collect();
            output::print(
                format,
                &serde_json::Value::Array(rows),
                &["source_id", "values", "errors"],
            );
        }
    }
    Ok(())
}
