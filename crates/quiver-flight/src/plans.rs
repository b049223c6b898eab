//! Plans made for a statement's FlightInfo, kept for the DoGet of its ticket.
//!
//! A client reads a statement with GetFlightInfo and then DoGet of the ticket it got. The
//! ticket carries the statement and the commits its plan read ([`crate::handle`]), so DoGet
//! can plan it again anywhere; this cache only spares the server that made the plan from
//! making it twice (a SQL session and a plan: about a millisecond, a fifth of a small
//! statement through ADBC). An entry is taken by the first DoGet of the same ticket bytes
//! from the same caller (name and role), and dropped unused after [`TTL`] or when
//! [`ENTRIES`] newer ones are kept. A miss plans again, so nothing depends on a hit.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use datafusion::prelude::DataFrame;

use crate::auth::{Caller, Role};

/// Plans kept at most (the oldest goes first).
pub(crate) const ENTRIES: usize = 32;
/// How long an untaken plan is kept.
pub(crate) const TTL: Duration = Duration::from_secs(30);

#[derive(PartialEq, Eq)]
struct Key {
    role: Role,
    name: String,
    ticket: Vec<u8>,
}

impl Key {
    fn new(caller: &Caller, ticket: &[u8]) -> Self {
        Key {
            role: caller.role,
            name: caller.name.clone(),
            ticket: ticket.to_vec(),
        }
    }
}

struct Entry {
    key: Key,
    made: Instant,
    df: DataFrame,
}

/// Plans waiting for the DoGet of their ticket.
#[derive(Default)]
pub(crate) struct PlanCache {
    entries: Mutex<VecDeque<Entry>>,
}

impl PlanCache {
    /// Keep `df`, planned for `caller`, for the DoGet of `ticket`.
    pub(crate) fn put(&self, caller: &Caller, ticket: &[u8], df: DataFrame) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        entries.retain(|e| now.duration_since(e.made) < TTL);
        while entries.len() >= ENTRIES {
            entries.pop_front();
        }
        entries.push_back(Entry {
            key: Key::new(caller, ticket),
            made: now,
            df,
        });
    }

    /// The plan kept for `caller`'s DoGet of `ticket`, removed from the cache.
    pub(crate) fn take(&self, caller: &Caller, ticket: &[u8]) -> Option<DataFrame> {
        let mut entries = self.entries.lock().ok()?;
        let now = Instant::now();
        entries.retain(|e| now.duration_since(e.made) < TTL);
        let key = Key::new(caller, ticket);
        let at = entries.iter().position(|e| e.key == key)?;
        entries.remove(at).map(|e| e.df)
    }

    /// Plans kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    fn df() -> DataFrame {
        SessionContext::new()
            .read_empty()
            .expect("an empty DataFrame")
    }

    fn caller(name: &str, role: Role) -> Caller {
        Caller {
            role,
            name: name.to_string(),
        }
    }

    #[test]
    fn a_plan_is_taken_once_by_its_caller_and_ticket() {
        let c = PlanCache::default();
        let rw = caller("ana", Role::ReadWrite);
        c.put(&rw, b"t1", df());
        // another ticket, another caller's name or role: no plan
        assert!(c.take(&rw, b"t2").is_none());
        assert!(c.take(&caller("bo", Role::ReadWrite), b"t1").is_none());
        assert!(c.take(&caller("ana", Role::ReadOnly), b"t1").is_none());
        assert!(c.take(&rw, b"t1").is_some());
        // taken: a second DoGet of the ticket plans again
        assert!(c.take(&rw, b"t1").is_none());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn the_oldest_plans_go_first_past_the_bound() {
        let c = PlanCache::default();
        let rw = caller("ana", Role::ReadWrite);
        for i in 0..ENTRIES + 3 {
            c.put(&rw, format!("t{i}").as_bytes(), df());
        }
        assert_eq!(c.len(), ENTRIES);
        for i in 0..3 {
            assert!(c.take(&rw, format!("t{i}").as_bytes()).is_none());
        }
        assert!(c
            .take(&rw, format!("t{}", ENTRIES + 2).as_bytes())
            .is_some());
        assert!(c.take(&rw, b"t3").is_some());
    }
}
