//! The Flight SQL service (statements, prepared statements, metadata) plus Quiver's own JSON
//! commands for trainers and for clients that do not speak SQL.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError as ArrowFlightError;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::FlightSqlService;
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, ProstMessageExt, SqlInfo,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::common::ScalarValue;
use datafusion::prelude::{DataFrame, SessionConfig};
use futures::{Stream, TryStreamExt};
use prost::Message;
use quiver_core::Catalog;
use quiver_sql::parser::parse_statement_with;
use quiver_sql::provider::PackInfoCache;
use quiver_sql::{QuiverContext, VersionPins};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::{Caller, Tokens};
use crate::error::{FlightError, Result};
use crate::handle::{
    batches_from_b64, batches_to_b64, pins_from_wire, pins_to_wire, PreparedHandle, StatementTicket,
};
use crate::like::LikePattern;
use crate::limits::ServerLimits;

/// Incoming Flight data (DoPut).
pub(crate) type FlightDataStream =
    Pin<Box<dyn Stream<Item = std::result::Result<arrow_flight::FlightData, Status>> + Send>>;

pub(crate) type DoGetStream =
    Pin<Box<dyn Stream<Item = std::result::Result<arrow_flight::FlightData, Status>> + Send>>;

/// Most rows of parameters bound to a prepared query (each row plans the query once).
pub const MAX_QUERY_PARAMETER_ROWS: usize = 1_000;
/// Most rows of parameters bound to a prepared update (one commit for all of them).
pub const MAX_UPDATE_PARAMETER_ROWS: usize = 100_000;

pub(crate) struct Inner {
    pub(crate) catalog: Catalog,
    pub(crate) tokens: Tokens,
    pub(crate) packs: PackInfoCache,
    pub(crate) limits: ServerLimits,
    /// What GetSqlInfo says to read-write callers.
    sql_info: SqlInfoData,
    /// What GetSqlInfo says to read-only callers: nothing they may change.
    sql_info_read_only: SqlInfoData,
    xdbc: arrow_flight::sql::metadata::XdbcTypeInfoData,
    /// One DataFusion runtime for every session: one memory pool, one spill directory.
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    /// Applied to every session's DataFusion state.
    state_hook: Option<quiver_sql::StateHook>,
    /// Servers trainer reads spread their shards over (see [`crate::ServeOptions`]).
    pub(crate) replicas: Vec<String>,
    /// Plans of statements' FlightInfo kept for the DoGet of their tickets.
    plans: crate::plans::PlanCache,
}

/// The Flight SQL service over a catalog.
#[derive(Clone)]
pub struct QuiverFlightSql {
    pub(crate) inner: Arc<Inner>,
}

/// What GetSqlInfo claims: exactly what works for a caller with (`read_only`) or without
/// write rights. Table DDL (CREATE/DROP TABLE) and bulk ingest (create / append / replace,
/// one commit each, no Flight SQL transactions) are writes.
fn sql_info(read_only: bool) -> Result<SqlInfoData> {
    let writes = !read_only;
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Quiver");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, read_only);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    // BEGIN … COMMIT is SQL; Flight SQL's BeginTransaction/EndTransaction actions are not
    b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(SqlInfo::SqlSearchStringEscape, crate::like::ESCAPE_STR);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, writes);
    b.append(SqlInfo::FlightSqlServerBulkIngestion, writes);
    b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    b.build().map_err(FlightError::from)
}

/// Rewrite JDBC/ODBC-style `?` placeholders into DataFusion's `$1, $2, …` (outside string
/// literals and quoted identifiers).
pub fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' => {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                }
                _ => out.push(c),
            },
        }
    }
    out
}

/// Rows of parameters from the batches bound to a statement (None for no rows).
fn param_rows(batches: &[RecordBatch]) -> Result<Option<Vec<Vec<ScalarValue>>>> {
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    if total == 0 {
        return Ok(None);
    }
    if total > MAX_UPDATE_PARAMETER_ROWS {
        return Err(FlightError::InvalidArgument(format!(
            "{total} rows of parameters; this server binds at most {MAX_UPDATE_PARAMETER_ROWS}"
        )));
    }
    let mut rows = Vec::with_capacity(total);
    for b in batches {
        for r in 0..b.num_rows() {
            let row = b
                .columns()
                .iter()
                .map(|c| ScalarValue::try_from_array(c, r))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            rows.push(row);
        }
    }
    Ok(Some(rows))
}

/// Rows of parameters carried by a ticket or handle (base64 Arrow IPC).
fn params_of(b64: Option<&str>) -> Result<Option<Vec<Vec<ScalarValue>>>> {
    match b64 {
        None => Ok(None),
        Some(s) => param_rows(&batches_from_b64("parameters", s)?.1),
    }
}

pub(crate) fn status(e: impl Into<FlightError>) -> Status {
    Status::from(e.into())
}

/// The schema Flight clients get: SQL reads strings and binaries as views (the fastest
/// layout inside the engine), but many clients lack kernels for views (pyarrow cannot `take`
/// or sort them), so results go out as plain `Utf8` / `Binary`.
pub(crate) fn wire_schema(schema: &Schema) -> Schema {
    let fields: Vec<arrow::datatypes::FieldRef> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8View => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8)),
            DataType::BinaryView => Arc::new(f.as_ref().clone().with_data_type(DataType::Binary)),
            _ => f.clone(),
        })
        .collect();
    Schema::new_with_metadata(fields, schema.metadata().clone())
}

/// A batch in the [`wire_schema`] layout (views cast to plain arrays; others untouched).
pub(crate) fn to_wire(
    batch: RecordBatch,
    wire: &SchemaRef,
) -> std::result::Result<RecordBatch, ArrowError> {
    if batch.schema().fields() == wire.fields() {
        return Ok(batch);
    }
    let cols = batch
        .columns()
        .iter()
        .zip(wire.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                crate::wire::to_wire_array(c, f.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(wire.clone(), cols)
}

/// Stream a DataFrame as Flight data (in the [`wire_schema`] layout).
pub(crate) async fn stream_df(df: DataFrame) -> Result<DoGetStream> {
    let schema: SchemaRef = Arc::new(wire_schema(df.schema().as_arrow()));
    let batches = crate::wire::wire_stream(df, schema.clone())
        .await?
        .map_err(|e| ArrowFlightError::ExternalError(Box::new(e)));
    let enc = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches)
        .map_err(Status::from);
    Ok(Box::pin(enc))
}

/// What a statement ticket reads: a plan to run, or the rows a write returned.
pub(crate) enum StatementOutput {
    /// A reading statement, planned.
    Plan(DataFrame),
    /// The result rows of a statement that wrote (in the wire layout already).
    Rows(SchemaRef, Vec<RecordBatch>),
}

/// Stream rows already in the wire layout as Flight data.
pub(crate) fn rows_stream(schema: SchemaRef, batches: Vec<RecordBatch>) -> DoGetStream {
    let enc = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::iter(batches.into_iter().map(Ok)))
        .map_err(Status::from);
    Box::pin(enc)
}

pub(crate) fn batches_stream(schema: SchemaRef, batch: RecordBatch) -> DoGetStream {
    let enc = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move { Ok(batch) }))
        .map_err(Status::from);
    Box::pin(enc)
}

/// A one-batch DoGet response (metadata results).
fn respond<E: Into<FlightError>>(
    schema: SchemaRef,
    batch: std::result::Result<RecordBatch, E>,
) -> std::result::Result<Response<DoGetStream>, Status> {
    Ok(Response::new(batches_stream(
        schema,
        batch.map_err(status)?,
    )))
}

fn df_schema(df: &DataFrame) -> Schema {
    wire_schema(df.schema().as_arrow())
}

/// A parsed optional `LIKE` filter of a metadata call.
fn like_filter(p: Option<&str>) -> Result<Option<LikePattern>> {
    p.map(LikePattern::parse).transpose()
}

/// The local directory of a catalog URL (`file:///x`, `/x`), for [`crate::error::hide_root`].
fn local_root(url: &str) -> Option<&str> {
    match url.strip_prefix("file://") {
        Some(p) => Some(p),
        None if url.starts_with('/') => Some(url),
        None => None,
    }
}

impl QuiverFlightSql {
    /// A service over `catalog`, with `tokens` (empty: no authentication) and the default
    /// [`ServerLimits`].
    pub fn new(catalog: Catalog, tokens: Tokens) -> Result<Self> {
        Self::with_limits(catalog, tokens, ServerLimits::default())
    }

    /// A service over `catalog`, with `tokens` and `limits`.
    pub fn with_limits(catalog: Catalog, tokens: Tokens, limits: ServerLimits) -> Result<Self> {
        // callers see catalog-relative names, never where the catalog lives
        let url = catalog.store().url().to_string();
        crate::error::hide_root(&url);
        if let Some(root) = local_root(&url) {
            crate::error::hide_root(root);
        }
        let runtime = quiver_sql::options::runtime_with_memory_limit(limits.memory_limit_bytes)?;
        // merges through any call (SQL, the quiver.merge action) run the branches' checks
        quiver_sql::checks::install(&catalog);
        Ok(QuiverFlightSql {
            inner: Arc::new(Inner {
                catalog,
                tokens,
                packs: PackInfoCache::default(),
                limits,
                sql_info: sql_info(false)?,
                sql_info_read_only: sql_info(true)?,
                xdbc: crate::xdbc::type_info()?,
                runtime,
                state_hook: None,
                replicas: Vec::new(),
                plans: Default::default(),
            }),
        })
    }

    /// Trainer reads name these servers as their shards' locations, shard `i` on
    /// `replicas[i % n]`. Call before the service is shared.
    pub fn with_replicas(mut self, replicas: Vec<String>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.replicas = replicas;
        }
        self
    }

    /// Sessions made by this service pass their DataFusion state through `hook` (e.g. to
    /// run queries on a cluster). Call before the service is shared.
    pub fn with_state_hook(mut self, hook: quiver_sql::StateHook) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.state_hook = Some(hook);
        }
        self
    }

    /// A SQL session for `caller`: read-only for read-only tokens (every write statement
    /// is refused by the session itself, whatever the server checked before), the caller's
    /// name as commit author, the server's shared memory pool.
    pub(crate) async fn session(&self, caller: &Caller) -> Result<QuiverContext> {
        let opts = quiver_sql::SessionOptions {
            read_only: caller.role == crate::auth::Role::ReadOnly,
            author: Some(caller.name.clone()),
            runtime: Some(self.inner.runtime.clone()),
            limits: self.inner.limits.sql(),
            state_hook: self.inner.state_hook.clone(),
        };
        Ok(
            QuiverContext::with_options(self.inner.catalog.clone(), SessionConfig::new(), opts)
                .await?,
        )
    }

    /// Who calls: the caller [`crate::auth::AuthLayer`] admitted (in the request's
    /// extensions), or — for a service embedded without the layer — the caller of the
    /// request's token.
    pub(crate) fn caller<T>(&self, req: &Request<T>) -> std::result::Result<Caller, Status> {
        if let Some(c) = req.extensions().get::<Caller>() {
            return Ok(c.clone());
        }
        self.inner.tokens.caller(req.metadata()).map_err(status)
    }

    /// Check a statement before anything runs: its size, that it parses, and the number of
    /// rows of parameters bound to it.
    fn admit(
        &self,
        sql: &str,
        rows: Option<&Vec<Vec<ScalarValue>>>,
    ) -> Result<quiver_sql::parser::Statement> {
        self.inner.limits.check_statement("a statement", sql)?;
        let st = parse_statement_with(sql, &self.inner.limits.sql())?;
        crate::session::refuse_session_statement(&st)?;
        if let Some(rows) = rows {
            let max = if st.is_query() {
                MAX_QUERY_PARAMETER_ROWS
            } else {
                MAX_UPDATE_PARAMETER_ROWS
            };
            if rows.len() > max {
                return Err(FlightError::InvalidArgument(format!(
                    "{} rows of parameters; this server binds at most {max} to a {}",
                    rows.len(),
                    if st.is_query() { "query" } else { "statement" }
                )));
            }
        }
        Ok(st)
    }

    /// Plan (queries) or run (everything else) a parsed statement in `ctx`.
    async fn plan_in(
        ctx: &QuiverContext,
        sql: &str,
        st: quiver_sql::parser::Statement,
        rows: Option<Vec<Vec<ScalarValue>>>,
    ) -> Result<DataFrame> {
        // the statement authorized by the caller is the one that runs
        Ok(match rows {
            Some(rows) => ctx.sql_df_with_params(sql, rows).await?,
            None => ctx.statement_df(st).await?,
        })
    }

    /// Plan (queries) or run (everything else) one statement for `caller`.
    pub(crate) async fn run_statement(
        &self,
        caller: &Caller,
        sql: &str,
        params: Option<Vec<Vec<ScalarValue>>>,
    ) -> Result<DataFrame> {
        let st = self.admit(sql, params.as_ref())?;
        if st.is_write() {
            caller.require_write(&format!("a {} statement", st.kind()))?;
        }
        let ctx = self.session(caller).await?;
        Self::plan_in(&ctx, sql, st, params).await
    }

    /// GetFlightInfo of a statement (with rows of parameters as base64 Arrow IPC): its
    /// result schema and the ticket that reads it ([`crate::handle`]). A statement that
    /// writes runs now, once, and its ticket carries its result rows; a query is planned
    /// and its ticket carries the commit of every dataset table it reads; other reading
    /// statements (SHOW, DIFF, …) run now to learn their schema and again at DoGet.
    pub(crate) async fn plan_statement(
        &self,
        caller: &Caller,
        sql: &str,
        params: Option<String>,
    ) -> Result<(Schema, StatementTicket)> {
        let rows = params_of(params.as_deref())?;
        let st = self.admit(sql, rows.as_ref())?;
        let ctx = self.session(caller).await?;
        if st.is_write() {
            caller.require_write(&format!("a {} statement", st.kind()))?;
            let df = Self::plan_in(&ctx, sql, st, rows).await?;
            let schema: SchemaRef = Arc::new(df_schema(&df));
            let batches = df
                .collect()
                .await?
                .into_iter()
                .map(|b| to_wire(b, &schema))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let (ipc, truncated) = self.inline_rows(&schema, batches)?;
            return Ok((
                schema.as_ref().clone(),
                StatementTicket::Rows { ipc, truncated },
            ));
        }
        let pins = Arc::new(VersionPins::default());
        if st.is_query() {
            ctx.pin_versions(pins.clone())?;
        }
        let df = Self::plan_in(&ctx, sql, st, rows).await?;
        let ticket = StatementTicket::Read {
            sql: sql.to_string(),
            params,
            pins: pins_to_wire(pins.to_vec()),
        };
        let schema = df_schema(&df);
        // the DoGet of this ticket on this server takes the plan instead of making it again
        self.inner.plans.put(caller, &ticket.encode()?, df);
        Ok((schema, ticket))
    }

    /// The result rows of a statement that wrote, for its ticket ([`fit_rows`] in half of
    /// `--max-flight-info-bytes`).
    fn inline_rows(
        &self,
        schema: &SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<(String, Option<(u64, u64)>)> {
        fit_rows(
            schema,
            &batches,
            self.inner.limits.max_flight_info_bytes / 2,
        )
    }

    /// The result schema of `sql` for GetSchema, without running anything that writes: a
    /// query is planned; a reading Quiver statement (SHOW, DIFF, …) runs; a statement that
    /// writes is refused (its result exists only once it runs).
    pub(crate) async fn statement_schema(&self, caller: &Caller, sql: &str) -> Result<Schema> {
        let st = self.admit(sql, None)?;
        if st.is_write() {
            return Err(FlightError::InvalidArgument(format!(
                "GetSchema of a {} statement: a statement that writes has a result only once \
                 it runs",
                st.kind()
            )));
        }
        let df = self.session(caller).await?.statement_df(st).await?;
        Ok(df_schema(&df))
    }

    /// The schema of a prepared statement's result (GetSchema).
    pub(crate) async fn prepared_schema(&self, caller: &Caller, handle: &[u8]) -> Result<Schema> {
        let h = PreparedHandle::decode(handle)?;
        self.statement_schema(caller, &h.sql).await
    }

    /// The schema of a metadata command's result (GetSchema), None for other commands.
    pub(crate) fn metadata_schema(
        &self,
        command: &arrow_flight::sql::Command,
    ) -> Option<SchemaRef> {
        use arrow_flight::sql::Command as C;
        Some(match command {
            C::CommandGetCatalogs(q) => (*q).into_builder().schema(),
            C::CommandGetDbSchemas(q) => q.clone().into_builder().schema(),
            C::CommandGetTables(q) => q.clone().into_builder().schema(),
            C::CommandGetTableTypes(q) => (*q).into_builder().schema(),
            C::CommandGetSqlInfo(q) => q.clone().into_builder(&self.inner.sql_info).schema(),
            C::CommandGetXdbcTypeInfo(q) => (*q).into_builder(&self.inner.xdbc).schema(),
            _ => return None,
        })
    }

    /// What a statement ticket reads (DoGet), for `caller`: the rows a write left in it,
    /// or its reading statement planned again, pinned to the commits it was planned on.
    pub(crate) async fn statement_result(
        &self,
        caller: &Caller,
        ticket: &TicketStatementQuery,
    ) -> Result<StatementOutput> {
        if let Some(df) = self.inner.plans.take(caller, &ticket.statement_handle) {
            return Ok(StatementOutput::Plan(df));
        }
        match StatementTicket::decode(&ticket.statement_handle)? {
            // the rows a write returned, already in the wire layout: sent as they are,
            // without a query engine session to stream them
            StatementTicket::Rows { ipc, .. } => {
                let (schema, batches) = batches_from_b64("statement ticket", &ipc)?;
                Ok(StatementOutput::Rows(schema, batches))
            }
            StatementTicket::Read { sql, params, pins } => {
                let pins = pins_from_wire(&pins)?;
                Ok(StatementOutput::Plan(
                    self.replan(caller, &sql, params.as_deref(), pins).await?,
                ))
            }
        }
    }

    /// A reading statement planned again for `caller` (DoGet), its dataset tables pinned to
    /// `pins`. A statement that writes is refused, whoever asks: it ran once already.
    async fn replan(
        &self,
        caller: &Caller,
        sql: &str,
        params: Option<&str>,
        pins: Vec<(String, quiver_core::Hash)>,
    ) -> Result<DataFrame> {
        let rows = params_of(params)?;
        let st = self.admit(sql, rows.as_ref())?;
        if st.is_write() {
            return Err(FlightError::InvalidArgument(format!(
                "a ticket only reads: a {} statement runs once, when its FlightInfo is made or \
                 with DoPut, never from a ticket",
                st.kind()
            )));
        }
        let ctx = self.session(caller).await?;
        if st.is_query() {
            ctx.pin_versions(Arc::new(VersionPins::new(pins)))?;
        }
        Self::plan_in(&ctx, sql, st, rows).await
    }

    /// DoGet of a prepared statement's own command (no FlightInfo first): its reading
    /// statement planned now.
    pub(crate) async fn prepared_result(
        &self,
        caller: &Caller,
        cmd: &CommandPreparedStatementQuery,
    ) -> Result<DataFrame> {
        let h = PreparedHandle::decode(&cmd.prepared_statement_handle)?;
        self.replan(caller, &h.sql, h.params.as_deref(), Vec::new())
            .await
    }

    /// GetFlightInfo of a prepared statement: as [`Self::plan_statement`].
    pub(crate) async fn prepared_info(
        &self,
        caller: &Caller,
        cmd: &CommandPreparedStatementQuery,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo> {
        let h = PreparedHandle::decode(&cmd.prepared_statement_handle)?;
        let (schema, ticket) = self.plan_statement(caller, &h.sql, h.params).await?;
        self.statement_info(&schema, &ticket, descriptor)
    }

    /// A FlightInfo with one endpoint whose ticket is `ticket` (its `app_metadata` says when
    /// the rows a write returned were cut to fit).
    pub(crate) fn statement_info(
        &self,
        schema: &Schema,
        ticket: &StatementTicket,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo> {
        let bytes = ticket.encode()?;
        let truncated = match ticket {
            StatementTicket::Rows { truncated, .. } => *truncated,
            StatementTicket::Read { .. } => None,
        };
        let max = self.inner.limits.max_flight_info_bytes;
        if bytes.len() > max {
            return Err(FlightError::Limit {
                what: format!("a statement ticket of {} bytes", bytes.len()),
                limit: format!("{max} bytes"),
                flag: "--max-flight-info-bytes",
            });
        }
        let ticket = TicketStatementQuery {
            statement_handle: bytes.into(),
        };
        let endpoint =
            FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(schema)?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor)
            .with_total_bytes(-1);
        Ok(match truncated {
            Some((carried, returned)) => info.with_total_records(carried as i64).with_app_metadata(
                serde_json::json!({
                    "truncated": true,
                    "rows_carried": carried,
                    "rows_returned": returned,
                    "note": "the statement ran and its write is done; its result is larger \
                             than half of --max-flight-info-bytes, so only its first rows \
                             are returned",
                })
                .to_string()
                .into_bytes(),
            ),
            _ => info.with_total_records(-1),
        })
    }

    /// The batches of parameters a DoPut binds (None when it sends no rows).
    async fn read_params(
        stream: FlightDataStream,
    ) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
        // a message that carries only the descriptor (arrow-rs's execute_update sends one,
        // its parameters having been bound before) holds no IPC message: skip it
        let stream = stream.try_filter(|d| futures::future::ready(!d.data_header.is_empty()));
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                stream.map_err(ArrowFlightError::from),
            )
            .try_collect()
            .await
            .map_err(|source| FlightError::Upload {
                what: "parameters",
                source,
            })?;
        let total: usize = batches.iter().map(|b| b.num_rows()).sum();
        if total == 0 {
            return Ok(None);
        }
        if total > MAX_UPDATE_PARAMETER_ROWS {
            return Err(FlightError::InvalidArgument(format!(
                "{total} rows of parameters; this server binds at most \
                 {MAX_UPDATE_PARAMETER_ROWS}"
            )));
        }
        Ok(batches.first().map(|b| b.schema()).map(|s| (s, batches)))
    }

    /// DoPut `CommandStatementUpdate`: run a statement, return the affected rows.
    pub(crate) async fn put_statement_update(
        &self,
        caller: &Caller,
        cmd: CommandStatementUpdate,
    ) -> Result<i64> {
        let df = self.run_statement(caller, &cmd.query, None).await?;
        update_count(df).await
    }

    /// DoPut `CommandPreparedStatementQuery`: bind parameters to a prepared query. The
    /// answer is a new handle that carries them (the caller uses it from then on).
    pub(crate) async fn put_prepared_query(
        &self,
        _caller: &Caller,
        cmd: CommandPreparedStatementQuery,
        stream: FlightDataStream,
    ) -> Result<DoPutPreparedStatementResult> {
        let mut h = PreparedHandle::decode(&cmd.prepared_statement_handle)?;
        h.params = match Self::read_params(stream).await? {
            Some((schema, batches)) => Some(batches_to_b64(&schema, &batches)?),
            None => None,
        };
        let bytes = h.encode()?;
        let max = self.inner.limits.max_flight_info_bytes;
        if bytes.len() > max {
            return Err(FlightError::Limit {
                what: format!(
                    "a prepared statement with its parameters in {} bytes",
                    bytes.len()
                ),
                limit: format!("{max} bytes"),
                flag: "--max-flight-info-bytes",
            });
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(bytes.into()),
        })
    }

    /// DoPut `CommandPreparedStatementUpdate`: run a prepared statement.
    pub(crate) async fn put_prepared_update(
        &self,
        caller: &Caller,
        cmd: CommandPreparedStatementUpdate,
        stream: FlightDataStream,
    ) -> Result<i64> {
        let h = PreparedHandle::decode(&cmd.prepared_statement_handle)?;
        // parameters sent with the update (ADBC), else those bound before (arrow-rs)
        let params = match Self::read_params(stream).await? {
            Some((_, batches)) => param_rows(&batches)?,
            None => params_of(h.params.as_deref())?,
        };
        let df = self.run_statement(caller, &h.sql, params).await?;
        update_count(df).await
    }
    async fn table_rows(
        &self,
        include_schema: bool,
    ) -> Result<Vec<(String, String, String, Schema)>> {
        let cat = &self.inner.catalog;
        let mut rows = Vec::new();
        for name in cat.list_datasets().await? {
            let ds = match cat.dataset(&name).await {
                Ok(ds) => ds,
                Err(quiver_core::CoreError::DatasetNotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            // the columns `SELECT *` gives: a keyless table's implicit key stays hidden
            let ds_schema = ds.schema();
            let schema = Schema::new_with_metadata(
                ds_schema
                    .fields()
                    .iter()
                    .filter(|f| !quiver_sql::column_names::is_implicit_key(f.name()))
                    .cloned()
                    .collect::<Vec<_>>(),
                ds_schema.metadata().clone(),
            );
            rows.push((
                "public".into(),
                name.clone(),
                "TABLE".into(),
                schema.clone(),
            ));
            for b in ds.branches().await? {
                rows.push((
                    "public".into(),
                    format!("{name}@{}", b.name),
                    "VIEW".into(),
                    schema.clone(),
                ));
            }
            for t in ds.tags().await? {
                rows.push((
                    "public".into(),
                    format!("{name}@{}", t.name),
                    "VIEW".into(),
                    schema.clone(),
                ));
            }
        }
        for t in quiver_sql::system::SYSTEM_TABLES {
            let schema = if include_schema {
                match quiver_sql::system::system_table(cat, t).await? {
                    Some(b) => b.schema().as_ref().clone(),
                    None => Schema::empty(),
                }
            } else {
                Schema::empty()
            };
            rows.push((
                "quiver".into(),
                t.to_string(),
                "SYSTEM TABLE".into(),
                schema,
            ));
        }
        Ok(rows)
    }
}

fn one_endpoint_info<M: ProstMessageExt>(
    cmd: &M,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> std::result::Result<Response<FlightInfo>, Status> {
    let ticket = Ticket::new(cmd.as_any().encode_to_vec());
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| status(FlightError::from(e)))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

#[tonic::async_trait]
impl FlightSqlService for QuiverFlightSql {
    type FlightService = QuiverFlightSql;

    /// Basic auth with the token as password, or a bearer header: answers with the bearer
    /// header to use on later calls.
    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> std::result::Result<
        Response<
            Pin<Box<dyn Stream<Item = std::result::Result<HandshakeResponse, Status>> + Send>>,
        >,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let token = if let Some(b64) = header.strip_prefix("Basic ") {
            crate::auth::basic_password(b64).map_err(status)?
        } else if let Some(t) = header.strip_prefix("Bearer ") {
            t.trim().to_string()
        } else {
            String::new()
        };
        if self.inner.tokens.enabled() && self.inner.tokens.lookup(&token).is_none() {
            return Err(Status::unauthenticated(
                "handshake refused: unknown token (send Basic auth with the token as password)",
            ));
        }
        let result = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into_bytes().into(),
        };
        let mut resp: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::iter(vec![Ok(result)])));
        if let Ok(v) = format!("Bearer {token}").parse() {
            resp.metadata_mut().insert("authorization", v);
        }
        Ok(resp)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let (schema, ticket) = self
            .plan_statement(&caller, &query.query, None)
            .await
            .map_err(status)?;
        let info = self
            .statement_info(&schema, &ticket, request.into_inner())
            .map_err(status)?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let info = self
            .prepared_info(&caller, &cmd, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(info))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let schema = query.into_builder().schema();
        one_endpoint_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let schema = query.clone().into_builder().schema();
        one_endpoint_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let schema = query.clone().into_builder().schema();
        one_endpoint_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let schema = query.into_builder().schema();
        one_endpoint_info(&query, &schema, request.into_inner())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let schema = query.into_builder(&self.inner.xdbc).schema();
        one_endpoint_info(&query, &schema, request.into_inner())
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        self.caller(&request)?;
        let b = query.into_builder(&self.inner.xdbc);
        respond(b.schema(), b.build())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let schema = query.clone().into_builder(&self.inner.sql_info).schema();
        one_endpoint_info(&query, &schema, request.into_inner())
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let out = self
            .statement_result(&caller, &ticket)
            .await
            .map_err(status)?;
        Ok(Response::new(match out {
            StatementOutput::Plan(df) => stream_df(df).await.map_err(status)?,
            StatementOutput::Rows(schema, batches) => rows_stream(schema, batches),
        }))
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let df = self.prepared_result(&caller, &cmd).await.map_err(status)?;
        Ok(Response::new(stream_df(df).await.map_err(status)?))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        self.caller(&request)?;
        let mut b = query.into_builder();
        b.append("datafusion");
        respond(b.schema(), b.build())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        self.caller(&request)?;
        // the builder filters with arrow's LIKE kernel; bound the pattern first
        like_filter(query.db_schema_filter_pattern.as_deref()).map_err(status)?;
        let mut b = query.into_builder();
        b.append("datafusion", "public");
        b.append("datafusion", "quiver");
        respond(b.schema(), b.build())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        self.caller(&request)?;
        let include_schema = query.include_schema;
        let catalog_ok = query
            .catalog
            .as_deref()
            .map(|c| c.is_empty() || c == "datafusion")
            .unwrap_or(true);
        let schema_pat = like_filter(query.db_schema_filter_pattern.as_deref()).map_err(status)?;
        let table_pat = like_filter(query.table_name_filter_pattern.as_deref()).map_err(status)?;
        let types: Vec<String> = query.table_types.clone();
        let mut b = query.into_builder();
        if catalog_ok {
            for (schema_name, table, kind, schema) in
                self.table_rows(include_schema).await.map_err(status)?
            {
                if !crate::like::filter(schema_pat.as_ref(), &schema_name)
                    || !crate::like::filter(table_pat.as_ref(), &table)
                    || (!types.is_empty() && !types.iter().any(|t| t == &kind))
                {
                    continue;
                }
                b.append("datafusion", &schema_name, &table, &kind, &schema)
                    .map_err(status)?;
            }
        }
        respond(b.schema(), b.build())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        self.caller(&request)?;
        let mut b = query.into_builder();
        for t in ["SYSTEM TABLE", "TABLE", "VIEW"] {
            b.append(t);
        }
        respond(b.schema(), b.build())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let info = match caller.role {
            crate::auth::Role::ReadWrite => &self.inner.sql_info,
            crate::auth::Role::ReadOnly => &self.inner.sql_info_read_only,
        };
        let b = query.into_builder(info);
        respond(b.schema(), b.build())
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> std::result::Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.caller(&request)?;
        self.inner
            .limits
            .check_statement("a statement", &query.query)
            .map_err(status)?;
        let sql = number_placeholders(&query.query);
        let st = parse_statement_with(&sql, &self.inner.limits.sql()).map_err(status)?;
        crate::session::refuse_session_statement(&st).map_err(status)?;
        if st.is_write() {
            caller
                .require_write("preparing a writing statement")
                .map_err(status)?;
        }
        let (dataset_schema, parameter_schema) = if st.is_query() {
            let ctx = self.session(&caller).await.map_err(status)?;
            let df = ctx.sql_df(&sql).await.map_err(status)?;
            let types = df.logical_plan().get_parameter_types().map_err(status)?;
            let mut names: Vec<(usize, String)> = types
                .keys()
                .map(|k| {
                    (
                        k.trim_start_matches('$').parse().unwrap_or(usize::MAX),
                        k.clone(),
                    )
                })
                .collect();
            names.sort();
            let fields: Vec<arrow::datatypes::Field> = names
                .iter()
                .map(|(_, k)| {
                    let dt = types
                        .get(k)
                        .cloned()
                        .flatten()
                        .unwrap_or(arrow::datatypes::DataType::Utf8);
                    arrow::datatypes::Field::new(k, dt, true)
                })
                .collect();
            (df_schema(&df), Schema::new(fields))
        } else {
            (Schema::empty(), Schema::empty())
        };
        // the handle is the statement itself: nothing is kept on the server
        let handle = PreparedHandle { sql, params: None }
            .encode()
            .map_err(status)?;
        let opts = IpcWriteOptions::default();
        let enc = |s: &Schema| -> std::result::Result<bytes::Bytes, Status> {
            let IpcMessage(b) = SchemaAsIpc::new(s, &opts)
                .try_into()
                .map_err(|e: arrow::error::ArrowError| status(FlightError::from(e)))?;
            Ok(b)
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: enc(&dataset_schema)?,
            parameter_schema: enc(&parameter_schema)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> std::result::Result<(), Status> {
        // a handle holds its statement: closing it frees nothing on the server
        self.caller(&request)?;
        PreparedHandle::decode(&query.prepared_statement_handle).map_err(status)?;
        Ok(())
    }

    /// Quiver's GetFlightInfo messages (`ReadCommand`, `SqlCommand`: [`crate::command`]).
    async fn get_flight_info_fallback(
        &self,
        cmd: arrow_flight::sql::Command,
        request: Request<FlightDescriptor>,
    ) -> std::result::Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let any = cmd.into_any();
        let info = crate::service::QuiverFlight::new(self.clone())
            .quiver_info(&caller, &any, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(info))
    }

    /// Quiver's tickets (`ShardTicket`: [`crate::command`]).
    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: arrow_flight::sql::Any,
    ) -> std::result::Result<Response<DoGetStream>, Status> {
        self.caller(&request)?;
        let df = crate::service::QuiverFlight::new(self.clone())
            .quiver_ticket(&message)
            .await
            .map_err(status)?;
        Ok(Response::new(stream_df(df).await.map_err(status)?))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// The affected-row count of a DML result (`count` column), else 0.
async fn update_count(df: DataFrame) -> Result<i64> {
    let batches = df.collect().await?;
    for b in &batches {
        if let Some(c) = b.column_by_name("count") {
            if let Some(a) = c.as_any().downcast_ref::<arrow::array::UInt64Array>() {
                if !a.is_empty() {
                    return Ok(a.value(0) as i64);
                }
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::number_placeholders;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            number_placeholders("SELECT '?' , \"a?\" FROM t WHERE a = ? AND b > ?"),
            "SELECT '?' , \"a?\" FROM t WHERE a = $1 AND b > $2"
        );
    }
}

/// All of `batches` as base64 Arrow IPC when that fits in `max` bytes, else the first rows
/// that do, with (rows carried, rows returned). For the result of a statement that wrote:
/// its write is done either way, and failing the call would tell a client that retries to
/// write twice, so the FlightInfo says the result was cut instead.
fn fit_rows(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    max: usize,
) -> Result<(String, Option<(u64, u64)>)> {
    let all = arrow::compute::concat_batches(schema, batches)?;
    let total = all.num_rows();
    let mut n = total;
    loop {
        let s = batches_to_b64(schema, &[all.slice(0, n)])?;
        if s.len() <= max || n == 0 {
            let cut = (n < total).then_some((n as u64, total as u64));
            return Ok((s, cut));
        }
        n /= 2;
    }
}

#[cfg(test)]
mod fit_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_that_do_not_fit_are_cut_and_counted() {
        let schema: SchemaRef = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("k", arrow::datatypes::DataType::Int64, false),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(arrow::array::Int64Array::from_iter_values(
                0..1000,
            ))],
        )
        .unwrap();
        let (_, cut) = fit_rows(&schema, std::slice::from_ref(&b), 1 << 20).unwrap();
        assert_eq!(cut, None);
        let (ipc, cut) = fit_rows(&schema, std::slice::from_ref(&b), 2000).unwrap();
        let (carried, returned) = cut.unwrap();
        assert_eq!(returned, 1000);
        assert!(carried < 1000 && carried > 0, "{carried}");
        assert!(ipc.len() <= 2000);
    }
}
