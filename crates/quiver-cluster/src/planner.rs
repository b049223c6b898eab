//! The query planner of a session connected to a cluster ([`ClusterPlanner`]).
//!
//! What runs where:
//! - a query that reads a Quiver dataset (any version: `ds`, `"ds@ref"`, `AS OF`) is sent
//!   to the Ballista scheduler, which plans it and runs its stages on the executors;
//! - the rows of every other table it reads (system tables, `quiver_diff`,
//!   `quiver_conflicts`, `quiver_history`, the lineage functions, VALUES lists) are
//!   computed first by this process — the Quiver front end, which resolved the versions —
//!   and travel inside the plan as [`InlineTable`]s;
//! - a query that reads no dataset (`SELECT 1`, `information_schema`, a system table
//!   alone) runs here, as on one machine.
//!
//! Writes never reach the cluster: statements that change a dataset run in the front
//! end's write path; only the reads of an `INSERT … SELECT` or `UPDATE … FROM` can.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use datafusion::catalog::Session;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNode;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::provider_as_source;
use datafusion::datasource::source_as_provider;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::{Expr, LogicalPlan, TableScan};
use datafusion::physical_plan::{collect, ExecutionPlan};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use quiver_sql::QuiverTableProvider;

use crate::inline::InlineTable;
use crate::ready::{registered_executors, wait_for_executors};

/// Sends queries over Quiver datasets to a Ballista scheduler; plans the rest here.
pub struct ClusterPlanner {
    remote: Arc<dyn QueryPlanner + Send + Sync>,
    local: DefaultPhysicalPlanner,
    /// The scheduler's address, asked for its executors before a plan is sent.
    scheduler: String,
    /// How long a query waits for a first executor to register.
    executor_wait: Duration,
}

impl std::fmt::Debug for ClusterPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPlanner").finish_non_exhaustive()
    }
}

impl ClusterPlanner {
    /// A planner that sends distributed plans through `remote` (Ballista's planner for
    /// the scheduler at `scheduler`). Before a plan is sent, the scheduler must answer and
    /// have an executor, or get one within `executor_wait`: a plan sent to a scheduler with
    /// no executor would wait in its queue for ever.
    pub fn new(
        remote: Arc<dyn QueryPlanner + Send + Sync>,
        scheduler: &str,
        executor_wait: Duration,
    ) -> Self {
        ClusterPlanner {
            remote,
            local: DefaultPhysicalPlanner::default(),
            scheduler: scheduler.to_string(),
            executor_wait,
        }
    }

    /// Send `plan` to the scheduler, once it has an executor.
    async fn remote_plan(
        &self,
        plan: &LogicalPlan,
        state: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let external = |e: crate::ClusterError| DataFusionError::External(Box::new(e));
        // a scheduler that does not answer fails the query now; one that answers with no
        // executor gets `executor_wait` to see one register
        if registered_executors(&self.scheduler)
            .await
            .map_err(external)?
            == 0
        {
            wait_for_executors(&self.scheduler, 1, self.executor_wait)
                .await
                .map_err(external)?;
        }
        self.remote.create_physical_plan(plan, state).await
    }
}

/// What the tables a plan reads are.
#[derive(Default)]
struct Reads {
    datasets: usize,
    /// Other providers, by address (one entry per distinct provider).
    others: HashMap<usize, Arc<dyn TableProvider>>,
    /// Statements that are not queries (DDL, DML, COPY, EXPLAIN, …), or queries that
    /// call a function only the front end has (`quiver_asset` reads the catalog's assets).
    local_only: bool,
}

/// Functions evaluated only by the front end.
const LOCAL_FUNCTIONS: &[&str] = &["quiver_asset"];

fn provider_key(p: &Arc<dyn TableProvider>) -> usize {
    Arc::as_ptr(p) as *const () as usize
}

fn reads(plan: &LogicalPlan) -> DfResult<Reads> {
    let mut r = Reads::default();
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(TableScan { source, .. }) => {
                let p = source_as_provider(source)?;
                if p.is::<QuiverTableProvider>() {
                    r.datasets += 1;
                } else if !p.is::<InlineTable>() {
                    r.others.insert(provider_key(&p), p);
                }
            }
            LogicalPlan::Dml(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::DescribeTable(_)
            | LogicalPlan::RecursiveQuery(_) => r.local_only = true,
            _ => {}
        }
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    if LOCAL_FUNCTIONS.contains(&f.name()) {
                        r.local_only = true;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(r)
}

#[async_trait::async_trait]
impl QueryPlanner for ClusterPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        state: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let r = reads(plan)?;
        if r.datasets == 0 || r.local_only {
            return self.local.create_physical_plan(plan, state).await;
        }
        if r.others.is_empty() {
            return self.remote_plan(plan, state).await;
        }
        // compute the other tables here and send their rows with the plan
        let mut inline: HashMap<usize, Arc<dyn TableProvider>> = HashMap::new();
        for (key, p) in r.others {
            let exec = p.scan(state, None, &[], None).await?;
            let batches = collect(exec, state.task_ctx()).await?;
            inline.insert(key, Arc::new(InlineTable::new(p.schema(), batches)));
        }
        let plan = plan
            .clone()
            .transform_up_with_subqueries(|node| match node {
                LogicalPlan::TableScan(scan) => {
                    let key = provider_key(&source_as_provider(&scan.source)?);
                    match inline.get(&key) {
                        Some(t) => Ok(Transformed::yes(LogicalPlan::TableScan(TableScan {
                            source: provider_as_source(t.clone()),
                            ..scan
                        }))),
                        None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
                    }
                }
                other => Ok(Transformed::no(other)),
            })?
            .data;
        self.remote_plan(&plan, state).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::DFSchema;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::logical_expr::EmptyRelation;
    use datafusion::physical_plan::empty::EmptyExec;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Stands for Ballista's planner: counts the plans it is given.
    #[derive(Debug, Default)]
    struct Remote(AtomicUsize);

    #[async_trait::async_trait]
    impl QueryPlanner for Remote {
        async fn create_physical_plan(
            &self,
            _plan: &LogicalPlan,
            _state: &dyn Session,
        ) -> DfResult<Arc<dyn ExecutionPlan>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Arc::new(EmptyExec::new(Arc::new(
                datafusion::arrow::datatypes::Schema::empty(),
            ))))
        }
    }

    /// A loopback server answering every request with the `/readyz` body `body`.
    async fn scheduler_saying(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf).await;
                let status = if body.starts_with("ready") {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        addr
    }

    /// A plan goes to the scheduler only when it has an executor: with none, the query
    /// fails after the wait, naming the scheduler; with nothing listening, at once.
    #[tokio::test]
    async fn plans_reach_a_scheduler_only_with_an_executor() {
        let state = SessionStateBuilder::new().build();
        let plan = LogicalPlan::EmptyRelation(EmptyRelation {
            produce_one_row: false,
            schema: Arc::new(DFSchema::empty()),
        });
        let wait = Duration::from_millis(300);

        let ready = scheduler_saying("ready: 1 executors registered\n").await;
        let remote = Arc::new(Remote::default());
        let p = ClusterPlanner::new(remote.clone(), &ready, wait);
        p.remote_plan(&plan, &state).await.expect("sent");
        assert_eq!(remote.0.load(Ordering::SeqCst), 1);

        let empty = scheduler_saying("not ready: 0/1 executors registered\n").await;
        let remote = Arc::new(Remote::default());
        let p = ClusterPlanner::new(remote.clone(), &empty, wait);
        let err = p
            .remote_plan(&plan, &state)
            .await
            .expect_err("no executor")
            .to_string();
        assert!(
            err.contains(&empty) && err.contains("0 executor(s) registered"),
            "{err}"
        );
        assert_eq!(remote.0.load(Ordering::SeqCst), 0);

        let nobody = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").to_string()
        };
        let p = ClusterPlanner::new(remote.clone(), &nobody, Duration::from_secs(60));
        let start = std::time::Instant::now();
        let err = p
            .remote_plan(&plan, &state)
            .await
            .expect_err("nothing listens")
            .to_string();
        assert!(
            err.contains("cannot reach") && err.contains(&nobody),
            "{err}"
        );
        assert!(start.elapsed() < Duration::from_secs(30), "failed at once");
        assert_eq!(remote.0.load(Ordering::SeqCst), 0);
    }
}
