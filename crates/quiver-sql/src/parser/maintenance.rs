//! Storage maintenance of a dataset.
//!
//! ```text
//! VACUUM ds [RETAIN n DAYS | HOURS] [DRY RUN]
//! OPTIMIZE ds [ON BRANCH b] [FULL]
//! ```

use super::cursor::Cursor;
use super::Statement;
use crate::error::{Result, SqlError};

/// Longest retention VACUUM accepts: 100 years, in hours.
const MAX_RETAIN_HOURS: u64 = 100 * 365 * 24;

/// `VACUUM` or `OPTIMIZE` (the cursor is on the first word).
pub(super) fn parse_maintenance(c: &mut Cursor) -> Result<Statement> {
    if c.eat("OPTIMIZE") {
        let dataset = c.name("a dataset name")?;
        let branch = if c.eat("ON") {
            c.expect("BRANCH")?;
            Some(c.name("a branch name")?)
        } else {
            None
        };
        let full = c.eat("FULL");
        return Ok(Statement::Optimize {
            dataset,
            branch,
            full,
        });
    }
    c.expect("VACUUM")?;
    let dataset = c.name("a dataset name")?;
    let mut retain_hours = None;
    if c.eat("RETAIN") {
        let n: u64 = c.number("VACUUM: expected a whole number of DAYS or HOURS after RETAIN")?;
        let per = if c.eat("DAYS") || c.eat("DAY") {
            24
        } else if c.eat("HOURS") || c.eat("HOUR") {
            1
        } else {
            return Err(c.error("VACUUM: expected DAYS or HOURS"));
        };
        retain_hours = Some(
            n.checked_mul(per)
                .filter(|h| *h <= MAX_RETAIN_HOURS)
                .ok_or_else(|| SqlError::Parse(format!("VACUUM: retention of {n} is too long")))?,
        );
    }
    let dry_run = if c.eat("DRY") {
        c.expect("RUN")?;
        true
    } else {
        false
    };
    Ok(Statement::Vacuum {
        dataset,
        retain_hours,
        dry_run,
    })
}
