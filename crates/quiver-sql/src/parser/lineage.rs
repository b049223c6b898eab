//! Lineage: training runs and models.
//!
//! ```text
//! CREATE RUN 'run' ON ds [AS OF <ref>]
//! CREATE MODEL 'model' FROM RUN 'run' [MESSAGE 'm']
//! INSERT INTO quiver.predictions [(columns)] query     (typed from DataFusion's INSERT)
//! ```

use super::cursor::Cursor;
use super::Statement;
use crate::error::Result;

/// `CREATE RUN` or `CREATE MODEL` (the cursor is on `CREATE`).
pub(super) fn parse_lineage(c: &mut Cursor) -> Result<Statement> {
    c.expect("CREATE")?;
    if c.eat("RUN") {
        let run_id = c.name("a run id")?;
        c.expect("ON")?;
        let dataset = c.name("a dataset name")?;
        let at = c.opt_as_of()?;
        return Ok(Statement::CreateRun {
            run_id,
            dataset,
            at,
        });
    }
    c.expect("MODEL")?;
    let model = c.name("a model name")?;
    c.expect("FROM")?;
    c.expect("RUN")?;
    let run_id = c.name("a run id")?;
    let message = c.opt_message()?;
    Ok(Statement::CreateModel {
        model,
        run_id,
        message,
    })
}
