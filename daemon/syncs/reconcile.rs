//! Two-way writes of linked records: what the other side changed since the last sync is
//! told from what this side changed, field by field; fields both changed are conflicts won per
//! their pair's policy; and the link records, after a write, what each side now holds (our own
//! echo included, so reading it back writes nothing).

use super::engine::{CLOCK_SKEW_MARGIN, EngineError, Job, Settled, Step, Update};
use super::links::LinkRecord;
use super::plan::{Mapped, changed_fields, hash, project, value_hash};
use super::records::{ConflictRecord, FieldConflict, Flow, SideName};
use crate::connectors::{Fields, RemoteRecord};
use crate::mappings::spec::ConflictPolicy;

impl Job<'_> {
    /// A linked record of a bidirectional mapping changed on this side: reads the other side
    /// and writes only what this side changed. A field the other side changed too since the
    /// last sync is a conflict, won per its pair's policy: `newest_wins` by modification time
    /// (beyond the clock-skew margin; the source on a tie), `source_wins`, `target_wins`; a
    /// one-way pair's reading side always wins. Fields the other side alone changed are left
    /// for its own pass to carry over.
    pub(super) async fn reconcile(
        &self,
        flow: Flow,
        record: &RemoteRecord,
        link: LinkRecord,
        mapped: Mapped,
        changed: Vec<String>,
    ) -> Result<(Step, Option<ConflictRecord>), EngineError> {
        let (_, written) = self.sides(flow);
        let (to_id, _, _) = link.written_side(flow);
        let written_fields = self.plan.written_fields(flow);
        let opposite = flow.opposite();
        let Some(other) = written
            .1
            .get(written.2, to_id, self.plan.reconcile_fields(flow))
            .await?
        else {
            tracing::info!(mapping_id = %self.mapping.id, record_id = %record.id, linked = to_id, "linked record was deleted on the other side; deletes are not propagated");
            return Ok((
                Step::Skipped(format!("linked record {to_id} was deleted; deletes are not propagated")),
                None,
            ));
        };
        let current = project(&other.fields, written_fields);
        let legacy = link.is_legacy();
        // What the other side changed since the last sync is what the opposite pass would
        // write from it: its mapped values against that pass's hashes, in the same space. A
        // record outside the opposite pass's filter is never carried back: its changes do not
        // compete with this side's.
        let (other_mapped, _) = self.plan.map_all(opposite, &other.fields);
        let carried_back = self.plan.admits(opposite, &other.fields);
        let other_changes: Vec<String> = match (carried_back, legacy) {
            (false, _) => Vec::new(),
            (true, false) => changed_fields(
                self.plan.written_fields(opposite),
                &other_mapped,
                link.read_side_values(flow),
            ),
            (true, true) if hash(&other_mapped) != link.read_side_hash(flow) => {
                self.plan.written_fields(opposite).to_vec()
            }
            (true, true) => Vec::new(),
        };
        let other_changed = |field: &str| {
            self.plan
                .counterparts(flow, field)
                .iter()
                .any(|counterpart| other_changes.contains(counterpart))
        };
        // Fields of the written record feeding a change its own pass has yet to carry back.
        let pending: Vec<&String> = other_changes
            .iter()
            .flat_map(|changed| self.plan.inputs(opposite, changed))
            .collect();
        let margin = jiff::SignedDuration::try_from(CLOCK_SKEW_MARGIN).unwrap_or_default();
        let this_newer = other.modified_at <= record.modified_at + margin
            && (flow == Flow::Forward || record.modified_at > other.modified_at + margin);
        let (this_side, other_side) = match flow {
            Flow::Forward => (SideName::Source, SideName::Target),
            Flow::Backward => (SideName::Target, SideName::Source),
        };
        let mut settled = Vec::new();
        let mut conflicts = Vec::new();
        // Won fields this side has no value for (it does not write emptiness): the other side's
        // competing value, in the opposite flow's terms, is recorded as seen, not carried back.
        let mut seen = Fields::new();
        for field in &changed {
            let this_value = mapped.values.get(field);
            let other_value = current.get(field);
            // A one-way pair (no policy) always takes this side: there is nothing to decide.
            let conflicting = other_changed(field) && value_hash(this_value) != value_hash(other_value);
            let Some(policy) = self.plan.policy(flow, field).filter(|_| conflicting) else {
                settled.push(field.clone());
                continue;
            };
            let this_wins = match policy {
                ConflictPolicy::SourceWins => flow == Flow::Forward,
                ConflictPolicy::TargetWins => flow == Flow::Backward,
                ConflictPolicy::NewestWins => this_newer,
            };
            if this_wins {
                settled.push(field.clone());
                // The parts of one value (a split name) go together, so the other side gets
                // this side's whole value, not a mix.
                for sibling in self.plan.siblings(flow, field) {
                    if !settled.contains(&sibling) && mapped.values.contains_key(&sibling) {
                        settled.push(sibling);
                    }
                }
                if this_value.is_none() {
                    for counterpart in self.plan.counterparts(flow, field) {
                        let value = other_mapped.get(counterpart).cloned().unwrap_or_default();
                        seen.insert(counterpart.clone(), value);
                    }
                }
            }
            let (this_text, other_text) = (
                this_value.cloned().unwrap_or_default(),
                other_value.cloned().unwrap_or_default(),
            );
            let (source_value, target_value) = match flow {
                Flow::Forward => (this_text, other_text),
                Flow::Backward => (other_text, this_text),
            };
            conflicts.push(FieldConflict {
                field: field.clone(),
                source_value,
                target_value,
                policy,
                winner: if this_wins { this_side } else { other_side },
            });
        }
        let conflict = (!conflicts.is_empty()).then(|| {
            let (source_at, target_at) = match flow {
                Flow::Forward => (record.modified_at, other.modified_at),
                Flow::Backward => (other.modified_at, record.modified_at),
            };
            let (source_id, target_id) = match flow {
                Flow::Forward => (record.id.clone(), to_id.to_owned()),
                Flow::Backward => (to_id.to_owned(), record.id.clone()),
            };
            tracing::info!(
                mapping_id = %self.mapping.id,
                %source_id,
                %target_id,
                source_modified = %source_at,
                target_modified = %target_at,
                fields = %serde_json::to_string(&conflicts).unwrap_or_default(),
                "conflict: both sides changed since the last sync"
            );
            ConflictRecord {
                key: String::new(),
                flow,
                source_id,
                target_id,
                source_modified_at: source_at.to_string(),
                target_modified_at: target_at.to_string(),
                fields: conflicts,
            }
        });
        let values: Fields = mapped
            .values
            .iter()
            .filter(|(field, _)| settled.contains(field))
            .map(|(field, value)| (field.clone(), value.clone()))
            .collect();
        if settled.is_empty() {
            let reason = format!(
                "conflict: {to_id} changed on the other side too; its values were kept (see `fluxctl sync conflicts`)"
            );
            return Ok((Step::Skipped(reason), conflict));
        }
        // What the written record holds, besides this write, that both sides agree on (an empty
        // field as empty): the echo is what the opposite pass will read from it.
        let agreed: Fields = written_fields
            .iter()
            .filter(|field| !settled.contains(field) && !pending.contains(field))
            .map(|field| (field.clone(), current.get(field).cloned().unwrap_or_default()))
            .collect();
        let settled = (!legacy).then_some(Settled {
            fields: settled,
            agreed,
            seen,
        });
        if values.is_empty() {
            // Only emptied fields, which this pair does not write: recorded as synced.
            let relinked = self.link_after_write(flow, &record.id, to_id, &values, Some(&link), settled.as_ref());
            return Ok((Step::Relink(relinked), conflict));
        }
        let to_id = to_id.to_owned();
        Ok((
            Step::Update(Update {
                to_id,
                values,
                settled,
                link: Some(link),
                ours: false,
                warnings: mapped.warnings,
            }),
            conflict,
        ))
    }

    /// The link after writing `values` in `flow`: the written side's entries for the settled
    /// fields (all of them when `None`), and the other side's fields the written record now
    /// determines, so reading our own write back is recognised as an echo.
    pub(super) fn link_after_write(
        &self,
        flow: Flow,
        read_id: &str,
        written_id: &str,
        values: &Fields,
        previous: Option<&LinkRecord>,
        settled: Option<&Settled>,
    ) -> LinkRecord {
        let mut link = previous.cloned().unwrap_or_default();
        let (source_id, target_id) = match flow {
            Flow::Forward => (read_id, written_id),
            Flow::Backward => (written_id, read_id),
        };
        link.source_id = source_id.to_owned();
        link.target_id = target_id.to_owned();
        link.source_hash.clear();
        link.target_hash.clear();
        let (this_side, other_side) = match flow {
            Flow::Forward => (&mut link.target_values, &mut link.source_values),
            Flow::Backward => (&mut link.source_values, &mut link.target_values),
        };
        let (settled_fields, mut written): (Vec<String>, Fields) = match settled {
            Some(settled) => (settled.fields.clone(), settled.agreed.clone()),
            None => {
                this_side.clear();
                (values.keys().cloned().collect(), Fields::new())
            }
        };
        for field in &settled_fields {
            match value_hash(values.get(field)) {
                Some(digest) => {
                    this_side.insert(field.clone(), digest);
                }
                None => {
                    this_side.remove(field);
                }
            }
            if let Some(value) = values.get(field) {
                written.insert(field.clone(), value.clone());
            }
        }
        let seen = settled.map(|s| s.seen.clone()).unwrap_or_default();
        for (field, value) in self.plan.echo(flow, &written).into_iter().chain(seen) {
            match value_hash(Some(&value)) {
                Some(digest) => other_side.insert(field, digest),
                None => other_side.remove(&field),
            };
        }
        link
    }
}
