//! The sync engine: runs one job's passes. Each page flows fetch → map → match/link → batched
//! writes → one checkpoint transaction (links, match index, outcomes, retries, the cursor, the
//! job's stats and the record events), so memory stays bounded and a killed job resumes from
//! its last page without duplicating records.

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::changes::{Change, RecordChange};
use super::intents;
use super::links::{self, LinkRecord};
use super::matching;
use super::plan::{Mapped, Plan, changed_fields, hash};
use super::records::{
    ConflictRecord, CursorRecord, Flow, OutcomeRecord, RetryRecord, SyncJobRecord, SyncPhase, conflicts_prefix,
};
use super::retention;
use crate::connections::ConnectionRecord;
use crate::connectors::{Connector, ConnectorError, Fields, ListQuery, RemoteRecord};
use crate::events::{EventType, emit_all};
use crate::mappings::MappingRecord;
use crate::mappings::spec::{Direction, MatchingMode};
use crate::mappings::validate::effective_match_key;
use crate::store::{Reader, Store, StoreError, Tx};

/// Records per listed page.
pub const PAGE_SIZE: usize = 200;
/// Changes closer together than this count as simultaneous; the source side wins them.
pub const CLOCK_SKEW_MARGIN: Duration = Duration::from_secs(2);
/// Failed records are retried on this many later runs, then left for a person to look at.
pub const RETRY_CAP: u32 = 3;

/// How far before a pass's start the next pass re-reads: records changed while a pass was
/// paging (which offset- or unsorted listings can miss) and late index updates are listed again;
/// unchanged ones cost only a hash comparison.
pub const RELIST_MARGIN_MS: i64 = 5 * 60 * 1000;

/// The watermark after a finished pass: the newest change seen, but never later than the
/// pass's start minus [`RELIST_MARGIN_MS`].
fn finished_watermark(cursor: &CursorRecord) -> Option<i64> {
    match (cursor.pass_max_ms, cursor.pass_started_ms) {
        (Some(max), Some(started)) => Some(max.min(started - RELIST_MARGIN_MS)),
        (max, _) => max,
    }
}

/// Why a reported change of a record is not synced: deletions and merges are never
/// propagated, and a changed record that cannot be read again was deleted since.
fn not_propagated(provider: crate::providers::Provider, change: &Change, found: bool) -> Option<String> {
    match change {
        Change::Deleted => Some(format!("deleted in {provider}; deletes are not propagated")),
        Change::Merged { into } => Some(format!("merged into {into} in {provider}; merges are not propagated")),
        Change::Changed if !found => Some(format!(
            "no longer in {provider} (deleted since the change); deletes are not propagated"
        )),
        Change::Changed => None,
    }
}

/// Errors that fail a whole job.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cancelled")]
    Cancelled,
    /// In a cluster: this node can no longer count on the organization's lease; the job stops
    /// and resumes wherever the organization runs.
    #[error("this node no longer holds the organization's lease")]
    LeaseLost,
    /// The job ended, or another took its place, before this node started it.
    #[error("the job ended before it started here")]
    AlreadyEnded,
    #[error("the first sync needs confirmation")]
    NotConfirmed,
    #[error("{0}")]
    Mapping(String),
}

impl From<matching::MatchError> for EngineError {
    fn from(error: matching::MatchError) -> Self {
        match error {
            matching::MatchError::Connector(e) => EngineError::Connector(e),
            matching::MatchError::Store(e) => EngineError::Store(e),
        }
    }
}

/// Everything a job needs.
pub struct Job<'a> {
    pub store: &'a Store,
    pub job: &'a mut SyncJobRecord,
    pub mapping: &'a MappingRecord,
    pub plan: &'a Plan,
    pub source: (&'a ConnectionRecord, &'a Connector),
    pub target: (&'a ConnectionRecord, &'a Connector),
    pub cancel: &'a CancellationToken,
    /// The job was interrupted (crash, restart) and runs again: writes of its last, unrecorded
    /// page may exist, so the match index is rebuilt to find them instead of duplicating them.
    pub resumed: bool,
    /// Called after each checkpoint with the job's current state.
    pub progress: &'a (dyn Fn(&SyncJobRecord) + Send + Sync),
    /// Links (by source id) whose conflict this job recorded: the other pass resolving the
    /// same conflict does not record it again.
    pub conflicts_seen: HashSet<String>,
}

/// What happened to one record, collected per page.
pub(super) enum Step {
    Unchanged,
    /// Only the link changes: fields this side emptied (not written: the pair does not
    /// overwrite with empty) are recorded as synced.
    Relink(LinkRecord),
    Skipped(String),
    /// Left out by the filter and never linked: counted, not recorded.
    Filtered,
    Failed(String),
    Create(Mapped),
    Update(Update),
}

/// An update of a linked or matched record.
pub(super) struct Update {
    pub(super) to_id: String,
    /// The values to write.
    pub(super) values: Fields,
    pub(super) link: Option<LinkRecord>,
    /// The record was found through the match index and this mapping had sent its create
    /// before a crash: it is counted and announced as created.
    pub(super) ours: bool,
    /// What a partial write settles; `None`: every field of the flow (the write carries all
    /// of them).
    pub(super) settled: Option<Settled>,
    pub(super) warnings: Vec<String>,
}

/// What a partial write of a linked record settles: the fields whose link entries become this
/// side's values, and the written side's other values both sides already agree on, so the
/// echo covers what the record holds after the write, not only what was written.
pub(super) struct Settled {
    pub(super) fields: Vec<String>,
    pub(super) agreed: Fields,
    /// The other side's values recorded as synced without a write (the opposite flow's
    /// fields): changes a won conflict overrules though this side cannot write its value.
    pub(super) seen: Fields,
}

/// Pending writes and bookkeeping of one page.
#[derive(Default)]
struct PageWork {
    /// Records whose create intent this page's checkpoint forgets.
    intents: Vec<String>,
    links: Vec<LinkRecord>,
    matched: Vec<(String, String)>,
    /// Skipped, failed and warned records (keys given at the checkpoint).
    outcomes: Vec<OutcomeRecord>,
    conflicts: Vec<ConflictRecord>,
    succeeded: Vec<String>,
    /// Records whose values were written to the other side (not only relinked).
    written: Vec<String>,
    events: Vec<(EventType, serde_json::Value)>,
}

impl PageWork {
    fn outcome(&mut self, flow: Flow, record_id: &str, linked_id: Option<String>, failed: bool, message: String) {
        self.outcomes.push(OutcomeRecord {
            key: String::new(),
            flow,
            record_id: record_id.to_owned(),
            linked_id,
            failed,
            warning: false,
            message,
        });
    }
}

impl<'a> Job<'a> {
    fn flows(&self) -> &'static [Flow] {
        match self.mapping.spec.direction {
            Direction::SourceToTarget => &[Flow::Forward],
            Direction::TargetToSource => &[Flow::Backward],
            Direction::Bidirectional => &[Flow::Forward, Flow::Backward],
        }
    }

    /// (read side, written side) of `flow`: connection, connector, object.
    #[allow(clippy::type_complexity)]
    pub(super) fn sides(
        &self,
        flow: Flow,
    ) -> (
        (&'a ConnectionRecord, &'a Connector, &'a str),
        (&'a ConnectionRecord, &'a Connector, &'a str),
    ) {
        let mapping: &'a MappingRecord = self.mapping;
        let source = (self.source.0, self.source.1, mapping.spec.source.object.as_str());
        let target = (self.target.0, self.target.1, mapping.spec.target.object.as_str());
        match flow {
            Flow::Forward => (source, target),
            Flow::Backward => (target, source),
        }
    }

    /// The field matched on the written side, and the field carrying the same value in the
    /// mapped values `flow` produces (the same name: mapped values use written-side names).
    fn match_field(&self, flow: Flow) -> Option<String> {
        let key = effective_match_key(&self.mapping.spec, self.target.0.provider)?;
        match flow {
            Flow::Forward => Some(key),
            Flow::Backward => {
                let pair = self
                    .mapping
                    .spec
                    .field_pairs
                    .iter()
                    .find(|p| p.target_field.trim() == key)?;
                match pair.source_fields().as_slice() {
                    [single] => Some((*single).to_owned()),
                    _ => None,
                }
            }
        }
    }

    /// Runs every pass of the job.
    pub async fn run(&mut self) -> Result<(), EngineError> {
        for flow in self.flows() {
            self.pass(*flow).await?;
        }
        Ok(())
    }

    fn cursor_key(&self, flow: Flow) -> String {
        format!("{}/{}", self.mapping.id, flow.as_str())
    }

    async fn pass(&mut self, flow: Flow) -> Result<(), EngineError> {
        let key = self.cursor_key(flow);
        let mut cursor = self
            .store
            .read(|rx| rx.get::<CursorRecord>(&key))?
            .unwrap_or_else(|| CursorRecord {
                key: key.clone(),
                ..Default::default()
            });
        let filter_key = self.plan.filter_key(flow);
        if self.job.full {
            cursor = CursorRecord {
                key: key.clone(),
                ..Default::default()
            };
        } else if cursor.filter != filter_key && (cursor.watermark_ms.is_some() || cursor.page_cursor.is_some()) {
            // The filter changed: every record is listed again (records it now admits may not
            // have changed since the watermark), with the new filter's query.
            tracing::info!(mapping_id = %self.mapping.id, flow = flow.as_str(), "filter changed; listing every record again");
            cursor = CursorRecord {
                key: key.clone(),
                match_index_built: cursor.match_index_built,
                ..Default::default()
            };
        }
        cursor.filter = filter_key.to_owned();
        let (read, _) = self.sides(flow);
        let match_field = self.match_field(flow);
        self.ensure_match_index(flow, &mut cursor, match_field.as_deref())
            .await?;
        if cursor.page_cursor.is_none() {
            cursor.pass_since_ms = cursor.watermark_ms;
            cursor.pass_max_ms = cursor.watermark_ms;
            cursor.pass_started_ms = Some(jiff::Timestamp::now().as_millisecond());
        }
        let fields: Vec<String> = self.plan.read_fields(flow).to_vec();
        let since = cursor
            .pass_since_ms
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok());
        // A full listing asks the provider for filtered records; an incremental one lists every
        // change, so linked records edited out of the filter are seen (and skipped).
        let base = ListQuery {
            object: read.2,
            since,
            cursor: None,
            limit: PAGE_SIZE,
            fields: &fields,
            filter: if since.is_none() { self.plan.filter(flow) } else { None },
        };
        let saved = ListQuery {
            cursor: cursor.page_cursor.as_deref(),
            ..base
        };
        let mut page = match read.1.list_changed(&saved).await {
            // A saved provider cursor can expire (Salesforce query locators do): list the pass
            // again from its start; records already written are recognised by their links.
            Err(ConnectorError::Http {
                status: 400..=499,
                message,
                ..
            }) if saved.cursor.is_some() => {
                tracing::info!(mapping_id = %self.mapping.id, %message, "saved page cursor refused; listing the pass again");
                read.1.list_changed(&base).await?
            }
            result => result?,
        };
        loop {
            if self.cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            if let Some(total) = page.total {
                self.job.total_estimate = Some(self.job.total_estimate.unwrap_or(0).max(total));
            }
            self.job.stats.fetched += page.records.len() as u64;
            let max = page.records.iter().map(|r| r.modified_at.as_millisecond()).max();
            cursor.pass_max_ms = cursor.pass_max_ms.max(max);
            // The next page is fetched while this one is written; only this one is checkpointed,
            // and it is checkpointed even when fetching the next one failed.
            let (work, next) = match page.next.as_deref() {
                Some(next_cursor) => {
                    let next_query = ListQuery {
                        cursor: Some(next_cursor),
                        ..base
                    };
                    let (work, next) = tokio::join!(
                        self.process(flow, &page.records, match_field.as_deref()),
                        read.1.list_changed(&next_query)
                    );
                    (work?, Some(next))
                }
                None => (self.process(flow, &page.records, match_field.as_deref()).await?, None),
            };
            cursor.page_cursor = page.next.clone();
            if page.next.is_none() {
                cursor.watermark_ms = match (base.filter, cursor.pass_started_ms) {
                    // A filtered listing saw every record the filter admits, however old: the
                    // next pass starts from this one's start, not from the newest record seen.
                    (Some(_), Some(started)) => Some(started - RELIST_MARGIN_MS),
                    _ => finished_watermark(&cursor),
                };
            }
            self.checkpoint(flow, work, Some(&cursor)).await?;
            let next = next.transpose()?;
            match next {
                Some(next) => page = next,
                None => break,
            }
        }
        self.retry_failed(flow, match_field.as_deref()).await
    }

    /// Builds the match index of the side `flow` writes when it is missing, or when this job
    /// resumes one that may have written records without recording their links.
    async fn ensure_match_index(
        &mut self,
        flow: Flow,
        cursor: &mut CursorRecord,
        match_field: Option<&str>,
    ) -> Result<(), EngineError> {
        if self.mapping.spec.matching_mode == MatchingMode::CreateOnly || (cursor.match_index_built && !self.resumed) {
            return Ok(());
        }
        let (_, written) = self.sides(flow);
        self.enter(SyncPhase::Matching);
        if let Some(field) = match_field {
            let indexed = matching::build(self.store, written.1, &self.mapping.id, flow, written.2, field).await?;
            tracing::info!(mapping_id = %self.mapping.id, flow = flow.as_str(), indexed, "match index built");
        }
        cursor.match_index_built = true;
        let built = cursor.clone();
        self.store.write(move |tx| tx.put(&built)).await?;
        self.enter(SyncPhase::Syncing);
        Ok(())
    }

    /// Moves the job to `phase` and tells its watchers.
    fn enter(&mut self, phase: SyncPhase) {
        if self.job.phase != Some(phase) {
            self.job.phase = Some(phase);
            (self.progress)(self.job);
        }
    }

    /// A record-level job: reads the records `changes` name again (provider webhooks are thin
    /// and may be stale) and syncs them like a pass would, without touching the cursors;
    /// deletions and merges are recorded as skipped, never propagated. Returns, for each record
    /// written, how long after the provider's change the write landed (ms).
    pub async fn run_changes(&mut self, changes: &[RecordChange]) -> Result<Vec<i64>, EngineError> {
        let mut lags = Vec::new();
        for flow in self.flows() {
            let flow = *flow;
            let mine: Vec<&RecordChange> = changes.iter().filter(|c| c.flow == flow).collect();
            if mine.is_empty() {
                continue;
            }
            let key = self.cursor_key(flow);
            let mut cursor = self
                .store
                .read(|rx| rx.get::<CursorRecord>(&key))?
                .unwrap_or_else(|| CursorRecord {
                    key: key.clone(),
                    ..Default::default()
                });
            let match_field = self.match_field(flow);
            self.ensure_match_index(flow, &mut cursor, match_field.as_deref())
                .await?;
            let (read, _) = self.sides(flow);
            let fields = self.plan.read_fields(flow).to_vec();
            for chunk in mine.chunks(read.1.read_batch_size()) {
                if self.cancel.is_cancelled() {
                    return Err(EngineError::Cancelled);
                }
                let ids: Vec<String> = chunk
                    .iter()
                    .filter(|c| c.change == Change::Changed)
                    .map(|c| c.record_id.clone())
                    .collect();
                let records = if ids.is_empty() {
                    Vec::new()
                } else {
                    read.1.get_many(read.2, &ids, &fields).await?
                };
                self.job.stats.fetched += records.len() as u64;
                let mut work = self.process(flow, &records, match_field.as_deref()).await?;
                for change in chunk {
                    let found = records.iter().any(|r| r.id == change.record_id);
                    let Some(reason) = not_propagated(read.0.provider, &change.change, found) else {
                        continue;
                    };
                    tracing::info!(mapping_id = %self.mapping.id, record_id = %change.record_id, %reason, "change not propagated");
                    self.job.stats.skipped += 1;
                    work.outcome(flow, &change.record_id, None, false, reason);
                }
                let written = work.written.clone();
                self.checkpoint(flow, work, None).await?;
                let now = self.store.clock().now_ms();
                lags.extend(
                    chunk
                        .iter()
                        .filter(|c| written.contains(&c.record_id))
                        .map(|c| now - c.occurred_at_ms),
                );
            }
        }
        Ok(lags)
    }

    /// Records that failed on earlier runs and were not tried by this job: read and try again.
    async fn retry_failed(&mut self, flow: Flow, match_field: Option<&str>) -> Result<(), EngineError> {
        let prefix = format!("{}/{}/", self.mapping.id, flow.as_str());
        let keys = self
            .store
            .read(|rx| rx.keys_with_prefix(crate::store::RETRIES, &prefix, 1000))?;
        if keys.is_empty() {
            return Ok(());
        }
        self.enter(SyncPhase::Retrying);
        let (read, _) = self.sides(flow);
        let fields = self.plan.read_fields(flow).to_vec();
        let mut records = Vec::new();
        for key in keys {
            let Some(retry) = self.store.read(|rx| rx.get::<RetryRecord>(&key))? else {
                continue;
            };
            if retry.attempts >= RETRY_CAP {
                // Given up on: forget it, so the scan stays short; a later change to the record
                // lists it again.
                self.store
                    .write(move |tx| tx.remove::<RetryRecord>(&key).map(|_| ()))
                    .await?;
                continue;
            }
            if retry.last_job == self.job.id {
                continue;
            }
            match read.1.get(read.2, &retry.record_id, &fields).await? {
                Some(record) => records.push(record),
                None => {
                    self.store
                        .write(move |tx| tx.remove::<RetryRecord>(&key).map(|_| ()))
                        .await?
                }
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        self.job.stats.fetched += records.len() as u64;
        let work = self.process(flow, &records, match_field).await?;
        self.checkpoint(flow, work, None).await
    }

    /// Decides and performs the writes of one page.
    async fn process(
        &mut self,
        flow: Flow,
        records: &[RemoteRecord],
        match_field: Option<&str>,
    ) -> Result<PageWork, EngineError> {
        let mut work = PageWork::default();
        let mut creates: Vec<(&RemoteRecord, Mapped)> = Vec::new();
        let mut updates: Vec<(&RemoteRecord, Update)> = Vec::new();
        let mut claimed: HashSet<String> = HashSet::new();
        let mapping_id = &self.mapping.id;
        let found: Vec<Option<LinkRecord>> = self.store.read(|rx| {
            records
                .iter()
                .map(|r| links::find(rx, mapping_id, flow, &r.id))
                .collect::<Result<_, _>>()
        })?;
        for (record, link) in records.iter().zip(found) {
            let (step, conflict) = self.decide(flow, record, link, match_field, &mut claimed).await?;
            if let Some(conflict) = conflict
                && self.conflicts_seen.insert(conflict.source_id.clone())
            {
                self.job.stats.conflicts += 1;
                work.conflicts.push(conflict);
            }
            match step {
                Step::Unchanged => {
                    self.job.stats.unchanged += 1;
                    work.succeeded.push(record.id.clone());
                }
                Step::Relink(link) => {
                    self.job.stats.unchanged += 1;
                    work.links.push(link);
                    work.succeeded.push(record.id.clone());
                }
                Step::Filtered => {
                    self.job.stats.filtered += 1;
                    work.succeeded.push(record.id.clone());
                }
                Step::Skipped(reason) => {
                    self.job.stats.skipped += 1;
                    work.outcome(flow, &record.id, None, false, reason);
                }
                Step::Failed(reason) => self.fail(&mut work, flow, &record.id, None, reason),
                Step::Create(mapped) => creates.push((record, mapped)),
                Step::Update(update) => {
                    if update.ours {
                        work.intents.push(record.id.clone());
                    }
                    updates.push((record, update));
                }
            }
        }
        let (_, written) = self.sides(flow);
        let connector = written.1;
        for chunk in creates.chunks(connector.batch_size()) {
            let inputs: Vec<Fields> = chunk.iter().map(|(_, mapped)| mapped.values.clone()).collect();
            // Noted durably before the provider hears of them; forgotten at the checkpoint.
            let ids: Vec<String> = chunk.iter().map(|(record, _)| record.id.clone()).collect();
            let (mapping_id, job_id, noted) = (self.mapping.id.clone(), self.job.id.clone(), ids.clone());
            self.store
                .write(move |tx| intents::note(tx, &mapping_id, flow, &job_id, &noted))
                .await?;
            work.intents.extend(ids);
            if !self.store.lease_fresh() {
                return Err(EngineError::LeaseLost);
            }
            let results = connector.create(written.2, &inputs).await?;
            for ((record, mapped), result) in chunk.iter().zip(results) {
                match result {
                    Ok(new_id) => {
                        self.job.stats.created += 1;
                        if let Some(value) = match_field.and_then(|f| mapped.values.get(f)) {
                            work.matched.push((value.clone(), new_id.clone()));
                        }
                        // The new record holds the written values and nothing else.
                        let created = Settled {
                            fields: mapped.values.keys().cloned().collect(),
                            agreed: self
                                .plan
                                .written_fields(flow)
                                .iter()
                                .filter(|field| !mapped.values.contains_key(*field))
                                .map(|field| (field.clone(), String::new()))
                                .collect(),
                            seen: Fields::new(),
                        };
                        work.links.push(self.link_after_write(
                            flow,
                            &record.id,
                            &new_id,
                            &mapped.values,
                            None,
                            Some(&created),
                        ));
                        work.succeeded.push(record.id.clone());
                        work.written.push(record.id.clone());
                        work.events.push((
                            EventType::RecordCreated,
                            self.record_event(flow, &record.id, &new_id, None),
                        ));
                        self.warn(&mut work, flow, &record.id, &new_id, &mapped.warnings);
                    }
                    Err(message) => self.fail(&mut work, flow, &record.id, None, message),
                }
            }
        }
        for chunk in updates.chunks(connector.batch_size()) {
            let inputs: Vec<(String, Fields)> = chunk
                .iter()
                .map(|(_, update)| (update.to_id.clone(), update.values.clone()))
                .collect();
            if !self.store.lease_fresh() {
                return Err(EngineError::LeaseLost);
            }
            let results = connector.update(written.2, &inputs).await?;
            for ((record, update), result) in chunk.iter().zip(results) {
                match result {
                    Ok(_) => {
                        let event = if update.ours {
                            self.job.stats.created += 1;
                            EventType::RecordCreated
                        } else {
                            self.job.stats.updated += 1;
                            EventType::RecordUpdated
                        };
                        work.links.push(self.link_after_write(
                            flow,
                            &record.id,
                            &update.to_id,
                            &update.values,
                            update.link.as_ref(),
                            update.settled.as_ref(),
                        ));
                        work.succeeded.push(record.id.clone());
                        work.written.push(record.id.clone());
                        work.events
                            .push((event, self.record_event(flow, &record.id, &update.to_id, None)));
                        self.warn(&mut work, flow, &record.id, &update.to_id, &update.warnings);
                    }
                    Err(message) => self.fail(&mut work, flow, &record.id, Some(update.to_id.clone()), message),
                }
            }
        }
        Ok(work)
    }

    fn fail(&mut self, work: &mut PageWork, flow: Flow, record_id: &str, linked: Option<String>, reason: String) {
        self.job.stats.failed += 1;
        work.events.push((
            EventType::RecordError,
            self.record_event(flow, record_id, linked.as_deref().unwrap_or_default(), Some(&reason)),
        ));
        work.outcome(flow, record_id, linked, true, reason);
    }

    /// Records the warnings of a record written without some optional fields.
    fn warn(&mut self, work: &mut PageWork, flow: Flow, record_id: &str, written_id: &str, warnings: &[String]) {
        if warnings.is_empty() {
            return;
        }
        self.job.stats.warnings += 1;
        tracing::info!(mapping_id = %self.mapping.id, record_id, warnings = %warnings.join("; "), "record written without optional fields");
        work.outcomes.push(OutcomeRecord {
            key: String::new(),
            flow,
            record_id: record_id.to_owned(),
            linked_id: Some(written_id.to_owned()),
            failed: false,
            warning: true,
            message: warnings.join("; "),
        });
    }

    async fn decide(
        &self,
        flow: Flow,
        record: &RemoteRecord,
        link: Option<LinkRecord>,
        match_field: Option<&str>,
        claimed: &mut HashSet<String>,
    ) -> Result<(Step, Option<ConflictRecord>), EngineError> {
        if !self.plan.admits(flow, &record.fields) {
            if link.is_none() {
                return Ok((Step::Filtered, None));
            }
            tracing::info!(mapping_id = %self.mapping.id, record_id = %record.id, "linked record no longer matches the filter; not written");
            return Ok((
                Step::Skipped("no longer matches the mapping's filter; its link is kept, nothing is written".into()),
                None,
            ));
        }
        let mapped = match self.plan.map(flow, &record.fields) {
            Ok(mapped) => mapped,
            Err(error) => return Ok((Step::Failed(error.0), None)),
        };
        if let Some(link) = link {
            let (to_id, last, synced) = link.written_side(flow);
            let names = self.plan.written_fields(flow);
            let changed = if link.is_legacy() {
                if hash(&mapped.values) == last {
                    return Ok((Step::Unchanged, None));
                }
                names.to_vec()
            } else {
                changed_fields(names, &mapped.values, synced)
            };
            if changed.is_empty() {
                return Ok((Step::Unchanged, None));
            }
            if self.mapping.spec.direction == Direction::Bidirectional {
                return self.reconcile(flow, record, link, mapped, changed).await;
            }
            return Ok((
                Step::Update(Update {
                    to_id: to_id.to_owned(),
                    values: mapped.values,
                    link: Some(link),
                    ours: false,
                    settled: None,
                    warnings: mapped.warnings,
                }),
                None,
            ));
        }
        if self.mapping.spec.matching_mode != MatchingMode::CreateOnly {
            let key_value = match_field.and_then(|f| mapped.values.get(f));
            let found = match key_value {
                Some(value) => self
                    .store
                    .read(|rx| matching::lookup(rx, &self.mapping.id, flow, value))?,
                None => None,
            };
            if let Some(existing) = found {
                let already = match flow {
                    Flow::Forward => self
                        .store
                        .read(|rx| links::target_linked(rx, &self.mapping.id, &existing))?,
                    Flow::Backward => self
                        .store
                        .read(|rx| rx.get::<LinkRecord>(&format!("{}/s/{existing}", self.mapping.id)))?
                        .map(|l| l.target_id),
                };
                if already.is_some() || !claimed.insert(existing.clone()) {
                    return Ok((
                        Step::Skipped(format!(
                            "{} {:?} matches record {existing}, which is already linked to another record (duplicate match key)",
                            match_field.unwrap_or_default(),
                            key_value.map(String::as_str).unwrap_or_default()
                        )),
                        None,
                    ));
                }
                let ours = self
                    .store
                    .read(|rx| intents::noted(rx, &self.mapping.id, flow, &record.id))?;
                return Ok((
                    Step::Update(Update {
                        to_id: existing,
                        values: mapped.values,
                        link: None,
                        ours,
                        settled: None,
                        warnings: mapped.warnings,
                    }),
                    None,
                ));
            }
            if self.mapping.spec.matching_mode == MatchingMode::MatchOnly {
                return Ok((
                    Step::Skipped(format!(
                        "no record matches {} = {:?} and the mapping only matches",
                        match_field.unwrap_or("the match key"),
                        key_value.map(String::as_str).unwrap_or_default()
                    )),
                    None,
                ));
            }
        }
        if mapped.values.values().all(String::is_empty) {
            return Ok((Step::Skipped("no mapped field has a value".into()), None));
        }
        Ok((Step::Create(mapped), None))
    }

    fn record_event(&self, flow: Flow, read_id: &str, written_id: &str, error: Option<&str>) -> serde_json::Value {
        let (read, written) = self.sides(flow);
        let mut data = serde_json::json!({
            "jobId": self.job.id,
            "mappingId": self.mapping.id,
            "direction": flow.as_str(),
            "sourceProvider": read.0.provider,
            "sourceObject": read.2,
            "sourceId": read_id,
            "targetProvider": written.0.provider,
            "targetObject": written.2,
        });
        if !written_id.is_empty() {
            data["targetId"] = written_id.into();
        }
        if let Some(error) = error {
            data["error"] = error.into();
        }
        data
    }

    /// One transaction: links, match index entries, outcomes, retries, the cursor (of a
    /// pass's page), the job, events.
    async fn checkpoint(
        &mut self,
        flow: Flow,
        work: PageWork,
        cursor: Option<&CursorRecord>,
    ) -> Result<(), EngineError> {
        let mapping_id = self.mapping.id.clone();
        let job = self.job.clone();
        let cursor = cursor.cloned();
        self.store
            .write(move |tx: &mut Tx<'_>| {
                for link in &work.links {
                    links::save(tx, &mapping_id, link)?;
                }
                intents::forget(tx, &mapping_id, flow, &work.intents)?;
                for (value, id) in &work.matched {
                    matching::add(tx, &mapping_id, flow, value, id)?;
                }
                // Every skipped or failed record has one outcome number, and the stats already
                // count this page's: the ones numbered before are the rest (no scan of the job's
                // outcomes). Past the retention cap they are counted, not stored.
                let stats = &job.stats;
                let existing =
                    (stats.skipped + stats.failed + stats.warnings).saturating_sub(work.outcomes.len() as u64);
                for (index, outcome) in work.outcomes.into_iter().enumerate() {
                    let number = existing + index as u64;
                    if outcome.failed {
                        let key = format!("{mapping_id}/{}/{}", outcome.flow.as_str(), outcome.record_id);
                        let attempts = tx.get::<RetryRecord>(&key)?.map_or(0, |r| r.attempts);
                        tx.put(&RetryRecord {
                            key,
                            record_id: outcome.record_id.clone(),
                            attempts: attempts + 1,
                            last_error: outcome.message.clone(),
                            last_job: job.id.clone(),
                        })?;
                    }
                    if retention::keeps_outcome(number) {
                        tx.put(&OutcomeRecord {
                            key: format!("{}/{:010}", job.id, number),
                            ..outcome
                        })?;
                    }
                }
                let existing = stats.conflicts.saturating_sub(work.conflicts.len() as u64);
                for (index, conflict) in work.conflicts.into_iter().enumerate() {
                    let number = existing + index as u64;
                    if retention::keeps_outcome(number) {
                        tx.put(&ConflictRecord {
                            key: format!("{}{:010}", conflicts_prefix(&job.id), number),
                            ..conflict
                        })?;
                    }
                }
                for record_id in &work.succeeded {
                    tx.remove_key(
                        crate::store::RETRIES,
                        &format!("{mapping_id}/{}/{record_id}", flow.as_str()),
                    )?;
                }
                if let Some(cursor) = &cursor {
                    tx.put(cursor)?;
                }
                tx.put(&job)?;
                emit_all(tx, &job.org_id, work.events)?;
                Ok::<_, StoreError>(())
            })
            .await?;
        (self.progress)(self.job);
        Ok(())
    }
}
