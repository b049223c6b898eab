//! Executes `BEGIN`, `COMMIT` (of a transaction, or of the merges this session left pending)
//! and `ROLLBACK`.

use super::*;

impl QuiverContext {
    /// Run one statement of this family.
    pub(super) async fn exec_txn(&self, st: Statement) -> Result<Vec<RecordBatch>> {
        let sh = &self.shared;
        match st {
            Statement::Begin => {
                let mut t = self.txn.lock().await;
                if t.is_some() {
                    return Err(SqlError::Transaction(
                        "a transaction is already open (COMMIT or ROLLBACK it first)".into(),
                    ));
                }
                *t = Some(Txn::default());
                Ok(vec![])
            }
            Statement::Commit { message } => {
                let txn = self.txn.lock().await.take();
                let Some(txn) = txn else {
                    // no transaction: COMMIT finishes this session's pending merges
                    let pending: Vec<(String, String)> = sh
                        .merges
                        .lock()
                        .map(|m| m.iter().cloned().collect())
                        .unwrap_or_default();
                    if pending.is_empty() {
                        return Err(SqlError::Transaction("COMMIT without BEGIN".into()));
                    }
                    let mut rows = Vec::new();
                    for (d, target) in pending {
                        let ds = sh.dataset(&d).await?;
                        rows.push(
                            crate::merge_sql::commit(
                                &ds,
                                &target,
                                message.as_deref(),
                                &self.opts.author(),
                            )
                            .await?,
                        );
                        if let Ok(mut m) = sh.merges.lock() {
                            m.remove(&(d, target));
                        }
                    }
                    return Ok(vec![crate::merge_sql::commits_row(&rows)?]);
                };
                let msg = message.unwrap_or_else(|| "commit".into());
                let mut out = Vec::new();
                for ((ds, branch), mut w) in txn.writes {
                    let c = w.commit(&msg).await?;
                    out.push((ds, branch, c.id.to_hex()));
                }
                let schema = Arc::new(Schema::new(vec![
                    Field::new("dataset", DataType::Utf8, false),
                    Field::new("branch", DataType::Utf8, false),
                    Field::new("commit_id", DataType::Utf8, false),
                ]));
                let col = |f: fn(&(String, String, String)) -> String| -> ArrayRef {
                    Arc::new(StringArray::from(out.iter().map(f).collect::<Vec<_>>()))
                };
                let b = RecordBatch::try_new(
                    schema,
                    vec![
                        col(|r| r.0.clone()),
                        col(|r| r.1.clone()),
                        col(|r| r.2.clone()),
                    ],
                )
                .map_err(DataFusionError::from)?;
                Ok(vec![b])
            }
            Statement::Rollback => {
                if self.txn.lock().await.take().is_none() {
                    return Err(SqlError::Transaction("ROLLBACK without BEGIN".into()));
                }
                Ok(vec![])
            }
            other => Err(misrouted(&other)),
        }
    }
}
