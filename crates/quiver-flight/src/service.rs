//! The gRPC service: the Flight SQL service, with Quiver's own commands (trainer reads,
//! DoPut writes, DoAction versioning) as typed messages ([`crate::command`]).
//!
//! Every descriptor and ticket is a protobuf `Any`, dispatched on its type URL: Flight SQL's
//! commands to the Flight SQL handlers, Quiver's (`type.googleapis.com/quiver.v1.…`) through
//! the Flight SQL service's fallback hooks (GetFlightInfo, DoGet) or here (DoPut, GetSchema:
//! arrow-flight's Flight SQL dispatch has no GetSchema, and DoPut's Flight SQL commands are
//! answered here too).

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError as ArrowFlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use quiver_core::{RunRecord, VersionSpec};
use quiver_sql::ShardSpec;
use serde::Deserialize;
use serde_json::{json, Value};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::Caller;
use crate::command::{self, Kind};
use crate::doget::{FrameEncoder, MAX_MESSAGE_BODY};
use crate::error::{FlightError, Result};
use crate::read::{
    parse_commit, plan_selection, resolve_ref, shard_sizes, ReadCommand, ShardTicket,
    ENDPOINT_OVERHEAD,
};
use crate::server::{
    rows_stream, status, stream_df, wire_schema, FlightDataStream, QuiverFlightSql, StatementOutput,
};

type BoxStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send + 'static>>;

/// The Flight service (`FlightServiceServer::new(QuiverFlight::new(...))`).
#[derive(Clone)]
pub struct QuiverFlight {
    sql: QuiverFlightSql,
}

/// A DoGet response streaming `df` in the wire schema: without copies, or through
/// arrow-flight's encoder for schemas [`FrameEncoder`] leaves to it.
async fn df_response(
    df: datafusion::prelude::DataFrame,
) -> Result<http::Response<tonic::body::Body>> {
    let wire: SchemaRef = Arc::new(wire_schema(df.schema().as_arrow()));
    let Some(encoder) = FrameEncoder::new(wire.clone(), MAX_MESSAGE_BODY)? else {
        return Ok(crate::doget::encoded_response(stream_df(df).await?));
    };
    let batches = crate::wire::wire_stream(df, wire)
        .await?
        .map(|b| b.map_err(status))
        .boxed();
    Ok(crate::doget::response(encoder, batches))
}

fn parse_json<T: for<'de> Deserialize<'de>>(what: &str, b: &[u8]) -> Result<T> {
    serde_json::from_slice(b)
        .map_err(|e| FlightError::InvalidArgument(format!("{what} is not valid: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlCommand {
    sql: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutCommand {
    #[serde(default)]
    dataset: String,
    /// Upload predictions of this model instead of labels.
    #[serde(default)]
    predictions: Option<String>,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

fn str_field<'a>(v: &'a Value, key: &str, action: &str) -> Result<&'a str> {
    v.get(key).and_then(Value::as_str).ok_or_else(|| {
        FlightError::InvalidArgument(format!("action '{action}' needs a string field '{key}'"))
    })
}

fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The Quiver actions offered through DoAction (type, description).
pub const ACTIONS: [(&str, &str); 14] = [
    (
        "quiver.register_model",
        "Register a model trained by a recorded run. Body {\"model\", \"run_id\", \"message\"?}. Result: the model record.",
    ),
    ("quiver.datasets", "List datasets. Body {}. Result: JSON list of names."),
    (
        "quiver.create_branch",
        "Create a branch. Body {\"dataset\", \"name\", \"from\"?: ref}. Result {\"name\", \"commit\"}.",
    ),
    (
        "quiver.delete_branch",
        "Delete a branch. Body {\"dataset\", \"name\"}. Result {\"deleted\"}.",
    ),
    (
        "quiver.create_tag",
        "Create a tag. Body {\"dataset\", \"name\", \"at\"?: ref}. Result {\"name\", \"commit\"}.",
    ),
    (
        "quiver.delete_tag",
        "Delete a tag. Body {\"dataset\", \"name\"}. Result {\"deleted\"}.",
    ),
    (
        "quiver.rename_branch",
        "Rename a branch (not main). Body {\"dataset\", \"name\", \"to\"}. Result {\"name\", \"commit\"}.",
    ),
    (
        "quiver.rename_tag",
        "Rename a tag. Body {\"dataset\", \"name\", \"to\"}. Result {\"name\", \"commit\"}.",
    ),
    (
        "quiver.drop_dataset",
        "Drop a dataset (its data stays until gc). Body {\"dataset\"}. Result {\"dropped\"}.",
    ),
    (
        "quiver.commits",
        "History of a branch. Body {\"dataset\", \"branch\"?, \"limit\"?}. Result: list of commits.",
    ),
    (
        "quiver.merge",
        "Merge a ref into a branch. Body {\"dataset\", \"source\", \"target\"?, \"message\"?}. Result: merge summary.",
    ),
    (
        "quiver.metadata",
        "Dataset and column metadata (not versioned). Body {\"dataset\"}. Result {\"dataset\": {key: value}, \"columns\": {column: {key: value}}}.",
    ),
    (
        "quiver.set_metadata",
        "Set or remove metadata (no commit). Body {\"dataset\", \"column\"?, \"set\"?: {key: value}, \"unset\"?: [key]}. Result: the metadata, as quiver.metadata.",
    ),
    (
        "quiver.erase_asset",
        "Erase an asset (its bytes go, a tombstone says when, by whom and why). Body {\"hash\", \"reason\"?}. Result: the tombstone.",
    ),
];

impl QuiverFlight {
    /// Wrap a Flight SQL service.
    pub fn new(sql: QuiverFlightSql) -> Self {
        QuiverFlight { sql }
    }

    /// Check a read's shard count and the size of the FlightInfo it makes (one ticket per
    /// shard, each repeating columns and filter) against the server's limits, before any
    /// planning.
    fn check_read(&self, cmd: &ReadCommand) -> Result<u32> {
        let limits = &self.sql.inner.limits;
        let shards = cmd.shards.unwrap_or(1);
        if shards == 0 {
            return Err(FlightError::InvalidArgument(
                "'shards' must be at least 1".into(),
            ));
        }
        if shards > limits.max_shards {
            return Err(FlightError::Limit {
                what: format!("a read of {shards} shards"),
                limit: format!("{} shards", limits.max_shards),
                flag: "--max-shards",
            });
        }
        if let Some(f) = &cmd.filter {
            limits.check_statement("a filter", f)?;
        }
        let ticket = ShardTicket {
            v: 1,
            dataset: cmd.dataset.clone(),
            commit: "0".repeat(64),
            columns: cmd.columns.clone(),
            filter: cmd.filter.clone(),
            shard: shards,
            shards,
            seed: cmd.seed,
        };
        let per_ticket = serde_json::to_vec(&ticket)
            .map_err(|e| FlightError::InvalidArgument(e.to_string()))?
            .len()
            + Kind::Shard.type_url().len()
            + ENDPOINT_OVERHEAD;
        let total = per_ticket.saturating_mul(shards as usize);
        if total > limits.max_flight_info_bytes {
            return Err(FlightError::Limit {
                what: format!(
                    "a read of {shards} shards with tickets of {per_ticket} bytes ({total} bytes \
                     of endpoints)"
                ),
                limit: format!("{} bytes", limits.max_flight_info_bytes),
                flag: "--max-flight-info-bytes",
            });
        }
        Ok(shards)
    }

    async fn read_info(
        &self,
        caller: &Caller,
        cmd: ReadCommand,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo> {
        let shards = self.check_read(&cmd)?;
        let cat = &self.sql.inner.catalog;
        let ds = cat.dataset(&cmd.dataset).await?;
        let reference = cmd
            .reference
            .clone()
            .unwrap_or_else(|| quiver_core::DEFAULT_BRANCH.to_string());
        let commit = resolve_ref(&ds, &reference).await?;
        let commit_hex = commit.id.to_hex();
        let sel = plan_selection(
            &ds,
            commit.clone(),
            self.sql.inner.packs.clone(),
            cmd.columns.as_deref(),
            cmd.filter.as_deref(),
            None,
            &self.sql.inner.limits.sql(),
        )
        .await?;
        let schema = crate::server::wire_schema(sel.df.schema().as_arrow());
        let sizes = shard_sizes(&sel, shards, cmd.seed).await?;
        if let Some(run_id) = &cmd.run_id {
            cat.record_run(&RunRecord {
                run_id: run_id.clone(),
                dataset: cmd.dataset.clone(),
                reference: reference.clone(),
                commit: commit_hex.clone(),
                shards,
                columns: cmd.columns.clone().unwrap_or_default(),
                filter: cmd.filter.clone(),
                author: caller.name.clone(),
                recorded_at: chrono::Utc::now(),
            })
            .await?;
        }
        let mut endpoints = Vec::with_capacity(shards as usize);
        for shard in 0..shards {
            let ticket = ShardTicket {
                v: 1,
                dataset: cmd.dataset.clone(),
                commit: commit_hex.clone(),
                columns: cmd.columns.clone(),
                filter: cmd.filter.clone(),
                shard,
                shards,
                seed: cmd.seed,
            };
            let meta = json!({"commit": commit_hex, "shard": shard, "shards": shards,
                              "rows": sizes[shard as usize].0});
            let json = serde_json::to_vec(&ticket)
                .map_err(|e| FlightError::InvalidArgument(e.to_string()))?;
            let mut endpoint = FlightEndpoint::new()
                .with_ticket(Ticket::new(command::encode(Kind::Shard, &json)))
                .with_app_metadata(meta.to_string().into_bytes());
            // tickets are stateless: any server of this catalog reads any shard
            let replicas = &self.sql.inner.replicas;
            if !replicas.is_empty() {
                endpoint = endpoint.with_location(&replicas[shard as usize % replicas.len()]);
            }
            endpoints.push(endpoint);
        }
        let rows: u64 = sizes.iter().map(|s| s.0).sum();
        let bytes: u64 = sizes.iter().map(|s| s.1).sum();
        let meta = json!({"dataset": cmd.dataset, "ref": reference, "commit": commit_hex,
                          "exact_rows": cmd.filter.is_none()});
        Ok(FlightInfo::new()
            .try_with_schema(&schema)?
            .with_endpoints(endpoints)
            .with_descriptor(descriptor)
            .with_total_records(rows as i64)
            .with_total_bytes(bytes as i64)
            .with_ordered(false)
            .with_app_metadata(meta.to_string().into_bytes()))
    }

    /// Plan the read of one shard ticket.
    async fn shard_df(&self, t: ShardTicket) -> Result<datafusion::prelude::DataFrame> {
        if t.v != 1 {
            return Err(FlightError::InvalidArgument(format!(
                "ticket version {} is not supported (this server reads version 1)",
                t.v
            )));
        }
        if t.shards == 0 || t.shards > self.sql.inner.limits.max_shards || t.shard >= t.shards {
            return Err(FlightError::InvalidArgument(format!(
                "ticket names shard {} of {}",
                t.shard, t.shards
            )));
        }
        let ds = self.sql.inner.catalog.dataset(&t.dataset).await?;
        let id = parse_commit(&t.dataset, &t.commit)?;
        let commit = ds.commit(&id).await?;
        let sel = plan_selection(
            &ds,
            commit,
            self.sql.inner.packs.clone(),
            t.columns.as_deref(),
            t.filter.as_deref(),
            Some(ShardSpec {
                index: t.shard,
                count: t.shards,
                seed: t.seed,
            }),
            &self.sql.inner.limits.sql(),
        )
        .await?;
        Ok(sel.df)
    }

    /// DoGet as a response whose bodies are the batches' own buffers (see
    /// [`crate::doget`]): trainer tickets, Flight SQL statement and prepared-statement
    /// tickets; `None` for the rest (metadata queries), which the service answers.
    pub(crate) async fn direct_get(
        &self,
        metadata: tonic::metadata::MetadataMap,
        caller: Option<Caller>,
        t: &[u8],
    ) -> std::result::Result<Option<http::Response<tonic::body::Body>>, Status> {
        use arrow_flight::sql::{Any, Command};
        use prost::Message;
        let mut extensions = tonic::Extensions::new();
        if let Some(c) = caller {
            extensions.insert(c);
        }
        let request = Request::from_parts(metadata, extensions, ());
        let Ok(any) = Any::decode(t) else {
            return Ok(None);
        };
        let df = if command::decode(&any).map_err(status)?.is_some() {
            self.sql.caller(&request)?;
            self.quiver_ticket(&any).await.map_err(status)?
        } else {
            let Ok(command) = Command::try_from(any) else {
                return Ok(None);
            };
            match command {
                Command::TicketStatementQuery(q) => {
                    let caller = self.sql.caller(&request)?;
                    match self
                        .sql
                        .statement_result(&caller, &q)
                        .await
                        .map_err(status)?
                    {
                        StatementOutput::Plan(df) => df,
                        StatementOutput::Rows(schema, batches) => {
                            return Ok(Some(crate::doget::encoded_response(rows_stream(
                                schema, batches,
                            ))));
                        }
                    }
                }
                Command::CommandPreparedStatementQuery(q) => {
                    let caller = self.sql.caller(&request)?;
                    self.sql
                        .prepared_result(&caller, &q)
                        .await
                        .map_err(status)?
                }
                _ => return Ok(None),
            }
        };
        df_response(df).await.map(Some).map_err(status)
    }

    /// GetFlightInfo of a Quiver message (the Flight SQL service's fallback).
    pub(crate) async fn quiver_info(
        &self,
        caller: &Caller,
        any: &arrow_flight::sql::Any,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo> {
        match command::decode(any)? {
            Some((Kind::Sql, json)) => {
                let c: SqlCommand = parse_json("SqlCommand", json)?;
                let (schema, ticket) = self.sql.plan_statement(caller, &c.sql, None).await?;
                self.sql.statement_info(&schema, &ticket, descriptor)
            }
            Some((Kind::Read, json)) => {
                let c: ReadCommand = parse_json("ReadCommand", json)?;
                self.read_info(caller, c, descriptor).await
            }
            Some((k, _)) => Err(FlightError::InvalidArgument(format!(
                "GetFlightInfo takes a ReadCommand or SqlCommand descriptor, not a {}",
                k.name()
            ))),
            None => Err(FlightError::InvalidArgument(format!(
                "GetFlightInfo of {} is not supported",
                any.type_url
            ))),
        }
    }

    /// What a Quiver ticket reads (the Flight SQL service's DoGet fallback).
    pub(crate) async fn quiver_ticket(
        &self,
        any: &arrow_flight::sql::Any,
    ) -> Result<datafusion::prelude::DataFrame> {
        match command::decode(any)? {
            Some((Kind::Shard, json)) => {
                self.sql
                    .inner
                    .limits
                    .check_statement("a ticket", &String::from_utf8_lossy(json))?;
                let ticket: ShardTicket = parse_json("ShardTicket", json)?;
                self.shard_df(ticket).await
            }
            _ => Err(FlightError::InvalidArgument(format!(
                "DoGet of {} is not supported (a ticket comes from GetFlightInfo)",
                any.type_url
            ))),
        }
    }

    async fn put_predictions(
        &self,
        caller: &Caller,
        model: &str,
        stream: FlightDataStream,
    ) -> Result<Value> {
        caller.require_write(&format!("writing predictions of model '{model}'"))?;
        let batches: Vec<RecordBatch> =
            FlightRecordBatchStream::new_from_flight_data(stream.map_err(ArrowFlightError::from))
                .try_collect()
                .await
                .map_err(|e| FlightError::Upload {
                    what: "uploaded batches",
                    source: e,
                })?;
        let Some(first) = batches.first() else {
            return Err(FlightError::InvalidArgument(format!(
                "no predictions uploaded for model '{model}'"
            )));
        };
        let all = arrow::compute::concat_batches(&first.schema(), &batches)?;
        let rec = self
            .sql
            .inner
            .catalog
            .write_predictions(model, &all, &caller.name)
            .await?;
        Ok(json!({"model": model, "batch_id": rec.batch_id, "rows": rec.rows}))
    }

    async fn put(
        &self,
        caller: &Caller,
        cmd: PutCommand,
        stream: FlightDataStream,
    ) -> Result<Value> {
        if let Some(model) = &cmd.predictions {
            return self.put_predictions(caller, model, stream).await;
        }
        if cmd.dataset.is_empty() {
            return Err(FlightError::InvalidArgument(
                "DoPut descriptor needs 'dataset' (labels) or 'predictions' (a model name)".into(),
            ));
        }
        let branch = cmd
            .branch
            .unwrap_or_else(|| quiver_core::DEFAULT_BRANCH.to_string());
        caller.require_write(&format!(
            "writing to branch '{branch}' of dataset '{}'",
            cmd.dataset
        ))?;
        let append = match cmd.mode.as_deref().unwrap_or("upsert") {
            "upsert" => false,
            "append" => true,
            other => {
                return Err(FlightError::InvalidArgument(format!(
                    "mode '{other}' is not supported (use 'upsert' or 'append')"
                )))
            }
        };
        let ds = self
            .sql
            .inner
            .catalog
            .dataset(&cmd.dataset)
            .await?
            .with_author(&caller.name);
        let target = ds.schema();
        let mut txn = ds.begin(&branch).await?;
        let mut input =
            FlightRecordBatchStream::new_from_flight_data(stream.map_err(ArrowFlightError::from));
        let mut rows = 0u64;
        while let Some(batch) = input.try_next().await.map_err(|e| FlightError::Upload {
            what: "uploaded batches",
            source: e,
        })? {
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = conform(&cmd.dataset, &target, &batch)?;
            rows += batch.num_rows() as u64;
            if append {
                txn.append(&batch).await?;
            } else {
                txn.upsert(&batch).await?;
            }
        }
        if rows == 0 {
            return Err(FlightError::InvalidArgument(format!(
                "nothing to write to dataset '{}': the upload had no rows",
                cmd.dataset
            )));
        }
        let message = cmd
            .message
            .unwrap_or_else(|| format!("write of {rows} labels over Flight"));
        let c = txn.commit(&message).await?;
        Ok(json!({"commit": c.id.to_hex(), "rows": rows, "branch": branch}))
    }

    async fn action(&self, caller: &Caller, kind: &str, body: &[u8]) -> Result<Value> {
        let v: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            parse_json(&format!("body of action '{kind}'"), body)?
        };
        let cat = &self.sql.inner.catalog;
        // every change an action makes is the caller's: ref-log entries and commits
        let dataset = |name: &str| {
            let name = name.to_string();
            async move { Ok::<_, FlightError>(cat.dataset(&name).await?.with_author(&caller.name)) }
        };
        let spec_of = |r: Option<&str>| -> VersionSpec {
            match r {
                None => VersionSpec::main(),
                Some(r) => VersionSpec::Version(r.to_string()),
            }
        };
        match kind {
            "quiver.datasets" => Ok(json!(cat.list_datasets().await?)),
            "quiver.register_model" => {
                let model = str_field(&v, "model", kind)?;
                let run_id = str_field(&v, "run_id", kind)?;
                caller.require_write(&format!("registering model '{model}'"))?;
                let rec = quiver_core::ModelRecord {
                    model: model.into(),
                    run_id: run_id.into(),
                    author: caller.name.clone(),
                    registered_at: chrono::Utc::now(),
                    message: opt_str(&v, "message").unwrap_or_default().into(),
                };
                cat.register_model(&rec).await?;
                Ok(json!({"model": rec.model, "run_id": rec.run_id,
                          "registered_at": rec.registered_at.to_rfc3339()}))
            }
            "quiver.create_branch" => {
                let ds = dataset(str_field(&v, "dataset", kind)?).await?;
                let name = str_field(&v, "name", kind)?;
                caller.require_write(&format!("creating branch '{name}'"))?;
                let from = match opt_str(&v, "from") {
                    Some(r) => spec_of(Some(&resolve_ref(&ds, r).await?.id.to_hex())),
                    None => spec_of(None),
                };
                let r = ds.create_branch(name, &from).await?;
                Ok(json!({"name": r.name, "commit": r.commit.to_hex()}))
            }
            "quiver.delete_branch" => {
                let ds = dataset(str_field(&v, "dataset", kind)?).await?;
                let name = str_field(&v, "name", kind)?;
                caller.require_write(&format!("deleting branch '{name}'"))?;
                ds.delete_branch(name).await?;
                Ok(json!({"deleted": name}))
            }
            "quiver.create_tag" => {
                let ds = dataset(str_field(&v, "dataset", kind)?).await?;
                let name = str_field(&v, "name", kind)?;
                caller.require_write(&format!("creating tag '{name}'"))?;
                let at = match opt_str(&v, "at") {
                    Some(r) => spec_of(Some(&resolve_ref(&ds, r).await?.id.to_hex())),
                    None => spec_of(None),
                };
                let r = ds.create_tag(name, &at).await?;
                Ok(json!({"name": r.name, "commit": r.commit.to_hex()}))
            }
            "quiver.delete_tag" => {
                let ds = dataset(str_field(&v, "dataset", kind)?).await?;
                let name = str_field(&v, "name", kind)?;
                caller.require_write(&format!("deleting tag '{name}'"))?;
                ds.delete_tag(name).await?;
                Ok(json!({"deleted": name}))
            }
            "quiver.rename_branch" | "quiver.rename_tag" => {
                let ds = dataset(str_field(&v, "dataset", kind)?).await?;
                let name = str_field(&v, "name", kind)?;
                let to = str_field(&v, "to", kind)?;
                let r = if kind == "quiver.rename_branch" {
                    caller.require_write(&format!("renaming branch '{name}'"))?;
                    ds.rename_branch(name, to).await?
                } else {
                    caller.require_write(&format!("renaming tag '{name}'"))?;
                    ds.rename_tag(name, to).await?
                };
                Ok(json!({"name": r.name, "commit": r.commit.to_hex()}))
            }
            "quiver.metadata" | "quiver.set_metadata" => {
                let ds = dataset(str_field(&v, "dataset", kind)?).await?;
                if kind == "quiver.set_metadata" {
                    caller
                        .require_write(&format!("changing metadata of dataset '{}'", ds.name()))?;
                    let column = opt_str(&v, "column");
                    let mut changes: Vec<(String, Option<Value>)> = Vec::new();
                    if let Some(set) = v.get("set") {
                        let Some(obj) = set.as_object() else {
                            return Err(FlightError::InvalidArgument(format!(
                                "{kind}: \"set\" must be an object of key: value"
                            )));
                        };
                        changes.extend(obj.iter().map(|(k, x)| (k.clone(), Some(x.clone()))));
                    }
                    if let Some(unset) = v.get("unset") {
                        let Some(keys) = unset.as_array() else {
                            return Err(FlightError::InvalidArgument(format!(
                                "{kind}: \"unset\" must be a list of keys"
                            )));
                        };
                        for k in keys {
                            let Some(k) = k.as_str() else {
                                return Err(FlightError::InvalidArgument(format!(
                                    "{kind}: every key in \"unset\" is a string"
                                )));
                            };
                            changes.push((k.to_string(), None));
                        }
                    }
                    for (k, x) in changes {
                        match column {
                            None => ds.set_metadata(&k, x).await?,
                            Some(c) => ds.set_column_metadata(c, &k, x).await?,
                        }
                    }
                }
                let mut columns = serde_json::Map::new();
                for f in ds.schema().fields() {
                    let m = ds.column_metadata(f.name()).await?;
                    if !m.is_empty() {
                        columns.insert(f.name().clone(), json!(m));
                    }
                }
                Ok(json!({"dataset": ds.metadata().await?, "columns": columns}))
            }
            "quiver.drop_dataset" => {
                let name = str_field(&v, "dataset", kind)?;
                caller.require_write(&format!("dropping dataset '{name}'"))?;
                cat.drop_dataset(name).await?;
                Ok(json!({"dropped": name}))
            }
            "quiver.commits" => {
                let ds = dataset(str_field(&v, "dataset", kind)?).await?;
                let branch = opt_str(&v, "branch").unwrap_or(quiver_core::DEFAULT_BRANCH);
                let limit = v.get("limit").and_then(Value::as_u64).unwrap_or(u64::MAX);
                let list: Vec<Value> = ds
                    .history(branch)
                    .await?
                    .into_iter()
                    .take(limit.min(usize::MAX as u64) as usize)
                    .map(|c| {
                        json!({
                            "id": c.id.to_hex(),
                            "parents": c.parents.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
                            "message": c.data.message,
                            "author": c.data.author,
                            "timestamp": c.data.timestamp.to_rfc3339(),
                            "operation": c.data.summary.operation,
                        })
                    })
                    .collect();
                Ok(Value::Array(list))
            }
            "quiver.merge" => {
                let ds = dataset(str_field(&v, "dataset", kind)?).await?;
                let source = str_field(&v, "source", kind)?;
                let target = opt_str(&v, "target").unwrap_or(quiver_core::DEFAULT_BRANCH);
                caller.require_write(&format!("merging into branch '{target}'"))?;
                let from = resolve_ref(&ds, source).await?;
                let r = ds
                    .merge(
                        &VersionSpec::Version(from.id.to_hex()),
                        target,
                        opt_str(&v, "message"),
                        &caller.name,
                    )
                    .await?;
                Ok(json!({
                    "kind": r.kind.as_str(),
                    "head": r.head.to_hex(),
                    "commit": r.commit.as_ref().map(|c| c.id.to_hex()),
                    "groups_changed": r.groups_changed,
                    "groups_label_merged": r.groups_label_merged,
                    "conflicts": r.conflicts,
                }))
            }
            "quiver.erase_asset" => {
                let hex = str_field(&v, "hash", kind)?;
                let h = quiver_core::Hash::from_hex(hex).ok_or_else(|| {
                    FlightError::InvalidArgument(format!(
                        "action '{kind}': '{hex}' is not an asset hash (64 hex characters)"
                    ))
                })?;
                caller.require_write(&format!("erasing asset {hex}"))?;
                let reason = opt_str(&v, "reason").unwrap_or_default();
                let t = cat.assets().erase(&h, reason, &caller.name).await?;
                Ok(json!({"hash": t.hash, "erased_at": t.time.to_rfc3339(),
                          "author": t.author, "reason": t.reason, "size": t.size}))
            }
            other => Err(FlightError::InvalidArgument(format!(
                "unknown action '{other}' (actions: {})",
                ACTIONS.iter().map(|a| a.0).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// Conform an uploaded batch to the dataset's schema by [`quiver_core::conform`]'s upload
/// rules: columns by name, missing nullable columns as nulls, lossless casts.
pub(crate) fn conform(
    dataset: &str,
    target: &arrow::datatypes::SchemaRef,
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    quiver_core::conform(dataset, target, batch, quiver_core::ConformRules::UPLOAD).map_err(|e| {
        match e {
            // a column the upload has and the dataset lacks is a bad upload, not a lookup
            quiver_core::CoreError::ColumnNotFound { column, .. } => FlightError::InvalidArgument(
                format!("column '{column}' is not a column of dataset '{dataset}'"),
            ),
            other => other.into(),
        }
    })
}

#[tonic::async_trait]
impl FlightService for QuiverFlight {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;
    type DoExchangeStream = BoxStream<FlightData>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> std::result::Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.sql, request).await
    }

    async fn list_flights(
        &self,
        request: Request<Criteria>,
    ) -> std::result::Result<Response<Self::ListFlightsStream>, Status> {
        FlightService::list_flights(&self.sql, request).await
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        // Quiver messages reach `QuiverFlightSql::get_flight_info_fallback`
        command::any_of("descriptor", &request.get_ref().cmd).map_err(status)?;
        FlightService::get_flight_info(&self.sql, request).await
    }

    async fn poll_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<PollInfo>, Status> {
        FlightService::poll_flight_info(&self.sql, request).await
    }

    async fn get_schema(
        &self,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<SchemaResult>, Status> {
        use arrow_flight::sql::Command;
        let caller = self.sql.caller(&request)?;
        let any = command::any_of("descriptor", &request.get_ref().cmd).map_err(status)?;
        let schema = if let Some(kind) = command::decode(&any).map_err(status)? {
            if kind.0 != Kind::Sql {
                return Err(Status::invalid_argument(
                    "GetSchema takes a Flight SQL command or a Quiver SqlCommand; a \
                     ReadCommand's schema comes with its FlightInfo",
                ));
            }
            let c: SqlCommand = parse_json("SqlCommand", kind.1).map_err(status)?;
            self.sql
                .statement_schema(&caller, &c.sql)
                .await
                .map_err(status)?
        } else {
            let command = Command::try_from(any)
                .map_err(|e| Status::invalid_argument(format!("descriptor: {e}")))?;
            match &command {
                Command::CommandStatementQuery(q) => self
                    .sql
                    .statement_schema(&caller, &q.query)
                    .await
                    .map_err(status)?,
                Command::CommandPreparedStatementQuery(p) => self
                    .sql
                    .prepared_schema(&caller, &p.prepared_statement_handle)
                    .await
                    .map_err(status)?,
                other => match self.sql.metadata_schema(other) {
                    Some(s) => s.as_ref().clone(),
                    None => {
                        return Err(Status::unimplemented(format!(
                            "GetSchema of {} is not supported",
                            other.type_url()
                        )))
                    }
                },
            }
        };
        let opts = arrow::ipc::writer::IpcWriteOptions::default();
        let result: SchemaResult = arrow_flight::SchemaAsIpc::new(&schema, &opts)
            .try_into()
            .map_err(|e: arrow::error::ArrowError| status(FlightError::from(e)))?;
        Ok(Response::new(result))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<Self::DoGetStream>, Status> {
        // Quiver tickets reach `QuiverFlightSql::do_get_fallback`
        command::any_of("ticket", &request.get_ref().ticket).map_err(status)?;
        FlightService::do_get(&self.sql, request).await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<Response<Self::DoPutStream>, Status> {
        use arrow_flight::sql::{Command, DoPutUpdateResult};
        use prost::Message;
        let caller = self.sql.caller(&request)?;
        let mut stream = request.into_inner();
        let first = stream.message().await?.ok_or_else(|| {
            Status::invalid_argument("DoPut stream is empty: send a flight descriptor first")
        })?;
        let cmd = first
            .flight_descriptor
            .as_ref()
            .map(|d| d.cmd.clone())
            .ok_or_else(|| {
                Status::invalid_argument(
                    "DoPut needs a flight descriptor with a command in its first message",
                )
            })?;
        // the whole stream again, first message included
        let data: FlightDataStream =
            Box::pin(futures::stream::once(async move { Ok(first) }).chain(stream));
        let any = command::any_of("DoPut descriptor", &cmd).map_err(status)?;
        let body: Vec<u8> = if let Some(kind) = command::decode(&any).map_err(status)? {
            if kind.0 != Kind::Put {
                return Err(Status::invalid_argument(format!(
                    "DoPut takes a Flight SQL command or a Quiver PutCommand, not a {}",
                    kind.0.name()
                )));
            }
            let c: PutCommand = parse_json("PutCommand", kind.1).map_err(status)?;
            let result = self.put(&caller, c, data).await.map_err(status)?;
            result.to_string().into_bytes()
        } else {
            let command = Command::try_from(any)
                .map_err(|e| Status::invalid_argument(format!("DoPut descriptor: {e}")))?;
            match command {
                Command::CommandStatementUpdate(c) => {
                    let n = self
                        .sql
                        .put_statement_update(&caller, c)
                        .await
                        .map_err(status)?;
                    DoPutUpdateResult { record_count: n }.encode_to_vec()
                }
                Command::CommandPreparedStatementQuery(c) => self
                    .sql
                    .put_prepared_query(&caller, c, data)
                    .await
                    .map_err(status)?
                    .encode_to_vec(),
                Command::CommandStatementIngest(c) => {
                    let n = self.sql.ingest(&caller, c, data).await.map_err(status)?;
                    DoPutUpdateResult { record_count: n }.encode_to_vec()
                }
                Command::CommandPreparedStatementUpdate(c) => {
                    let n = self
                        .sql
                        .put_prepared_update(&caller, c, data)
                        .await
                        .map_err(status)?;
                    DoPutUpdateResult { record_count: n }.encode_to_vec()
                }
                other => {
                    return Err(Status::unimplemented(format!(
                        "DoPut of {} is not supported (write with a PutCommand or INSERT)",
                        other.type_url()
                    )))
                }
            }
        };
        let out = PutResult {
            app_metadata: body.into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter(vec![Ok(
            out,
        )]))))
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> std::result::Result<Response<Self::DoExchangeStream>, Status> {
        FlightService::do_exchange(&self.sql, request).await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> std::result::Result<Response<Self::DoActionStream>, Status> {
        if !request.get_ref().r#type.starts_with("quiver.") {
            return FlightService::do_action(&self.sql, request).await;
        }
        let caller = self.sql.caller(&request)?;
        let a = request.into_inner();
        let v = self
            .action(&caller, &a.r#type, &a.body)
            .await
            .map_err(status)?;
        let out = arrow_flight::Result {
            body: v.to_string().into_bytes().into(),
        };
        Ok(Response::new(Box::pin(futures::stream::iter(vec![Ok(
            out,
        )]))))
    }

    async fn list_actions(
        &self,
        request: Request<Empty>,
    ) -> std::result::Result<Response<Self::ListActionsStream>, Status> {
        let sql_actions: Vec<std::result::Result<ActionType, Status>> =
            FlightService::list_actions(&self.sql, request)
                .await?
                .into_inner()
                .collect::<Vec<_>>()
                .await;
        let mut all = sql_actions;
        all.extend(ACTIONS.iter().map(|(t, d)| {
            Ok(ActionType {
                r#type: t.to_string(),
                description: d.to_string(),
            })
        }));
        Ok(Response::new(Box::pin(futures::stream::iter(all))))
    }
}
