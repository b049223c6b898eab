//! Statements that only make sense in a session, refused over Flight SQL.
//!
//! The server keeps no state between calls (any replica answers any call, a restart loses
//! nothing): every statement runs in a session of its own. `USE BRANCH`, `BEGIN` /
//! `START TRANSACTION`, `COMMIT` and `ROLLBACK` would therefore answer OK and be forgotten
//! by the next statement — a BI tool would then write to main. They are refused instead,
//! with what to write in their place: the branch named in each statement
//! (`"ds@branch:b"`, `ds AS OF BRANCH 'b'`), one prepared statement bound to many rows of
//! parameters (one commit), bulk ingest or DoPut, `COMMIT MERGE ON ds`.

use quiver_sql::parser::Statement;

use crate::error::{FlightError, Result};

/// How to write several changes as one commit without a transaction.
const ONE_COMMIT: &str = "bind many rows of parameters to one prepared INSERT, UPDATE or \
     DELETE (executemany: one commit), or upload the rows with bulk ingest or DoPut (one commit)";

/// Refuse `st` when it would need state carried to the next statement.
pub(crate) fn refuse_session_statement(st: &Statement) -> Result<()> {
    let why = "Flight SQL keeps no session between statements (every statement runs on its \
               own, on any server)";
    let msg = match st {
        Statement::UseBranch { dataset, branch } => {
            let table = format!(
                "\"{}\"",
                format!("{dataset}@branch:{branch}").replace('"', "\"\"")
            );
            let literal = branch.replace('\'', "''");
            format!(
                "USE BRANCH is not carried to the next statement: {why}. Name the branch in \
                 each statement instead: SELECT … FROM {table} (or {dataset} AS OF BRANCH \
                 '{literal}'), INSERT INTO {table} …, UPDATE {table} SET …, DELETE FROM {table} …"
            )
        }
        Statement::Begin => format!(
            "BEGIN is not supported over Flight SQL: {why}, and each statement commits by \
             itself. For several changes in one commit, {ONE_COMMIT}"
        ),
        Statement::Commit { .. } => format!(
            "COMMIT has no transaction to end over Flight SQL: {why}, and each statement \
             commits by itself. To commit a merge whose conflicts are resolved write \
             COMMIT MERGE ON ds; for several changes in one commit, {ONE_COMMIT}"
        ),
        Statement::Rollback => format!(
            "ROLLBACK has no transaction to undo over Flight SQL: {why}, and each statement \
             commits by itself (REVERT '<commit id>' ON ds undoes a commit)"
        ),
        _ => return Ok(()),
    };
    Err(FlightError::InvalidArgument(msg))
}
