//! Quiver's own commands on the wire: a protobuf `Any` like every Flight SQL command, whose
//! type URL names the Quiver message (`type.googleapis.com/quiver.v1.ReadCommand`, …) and
//! whose value is that message as a JSON object. A descriptor or ticket is decoded once, as
//! an `Any`, and dispatched on its type URL: Flight SQL's own commands to the Flight SQL
//! handlers, Quiver's to [`crate::service`] through the Flight SQL service's fallback hooks.
//!
//! | message | where | JSON fields |
//! |---|---|---|
//! | `ReadCommand` | GetFlightInfo descriptor | [`crate::read::ReadCommand`] |
//! | `SqlCommand` | GetFlightInfo / GetSchema descriptor | `{"sql"}` |
//! | `PutCommand` | DoPut descriptor | `{"dataset", "branch"?, "message"?, "mode"?, "predictions"?}` |
//! | `ShardTicket` | DoGet ticket (made by GetFlightInfo of a `ReadCommand`) | [`crate::read::ShardTicket`] |

use arrow_flight::sql::Any;
use prost::Message;

use crate::error::{FlightError, Result};

/// The type URL prefix of every Quiver message.
pub const TYPE_PREFIX: &str = "type.googleapis.com/quiver.v1.";

/// A Quiver message kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A trainer read (GetFlightInfo).
    Read,
    /// A SQL statement (GetFlightInfo, GetSchema).
    Sql,
    /// A write of record batches (DoPut).
    Put,
    /// One shard of a trainer read (DoGet).
    Shard,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Read, Kind::Sql, Kind::Put, Kind::Shard];

    /// The message name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Read => "ReadCommand",
            Kind::Sql => "SqlCommand",
            Kind::Put => "PutCommand",
            Kind::Shard => "ShardTicket",
        }
    }

    /// The message's type URL.
    pub fn type_url(self) -> String {
        format!("{TYPE_PREFIX}{}", self.name())
    }
}

/// The bytes of a Quiver message of `kind` with the JSON `json`.
pub fn encode(kind: Kind, json: &[u8]) -> Vec<u8> {
    Any {
        type_url: kind.type_url(),
        value: bytes::Bytes::copy_from_slice(json),
    }
    .encode_to_vec()
}

/// The Quiver message in `any`: None when it is not a Quiver message (a Flight SQL one);
/// an error for a Quiver type URL this server does not know.
pub fn decode(any: &Any) -> Result<Option<(Kind, &[u8])>> {
    let Some(name) = any.type_url.strip_prefix(TYPE_PREFIX) else {
        return Ok(None);
    };
    match Kind::ALL.into_iter().find(|k| k.name() == name) {
        Some(k) => Ok(Some((k, &any.value))),
        None => Err(FlightError::InvalidArgument(format!(
            "unknown Quiver message '{}' (this server reads {})",
            any.type_url,
            Kind::ALL.map(|k| k.name()).join(", ")
        ))),
    }
}

/// The `Any` a descriptor or ticket holds, with a clear error when it holds none.
pub fn any_of(what: &str, b: &[u8]) -> Result<Any> {
    Any::decode(b).map_err(|e| {
        FlightError::InvalidArgument(format!(
            "{what} is not a Flight SQL or Quiver command (a protobuf Any): {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiver_messages_round_trip_and_flight_sql_passes_through() {
        for k in Kind::ALL {
            let b = encode(k, br#"{"sql":"SELECT 1"}"#);
            let any = any_of("descriptor", &b).expect("any");
            assert_eq!(
                decode(&any).expect("known"),
                Some((k, &br#"{"sql":"SELECT 1"}"#[..]))
            );
        }
        let sql = arrow_flight::sql::CommandStatementQuery {
            query: "SELECT 1".into(),
            transaction_id: None,
        };
        use arrow_flight::sql::ProstMessageExt;
        assert_eq!(decode(&sql.as_any()).expect("not ours"), None);
        let unknown = Any {
            type_url: format!("{TYPE_PREFIX}Nope"),
            value: Default::default(),
        };
        let e = decode(&unknown).expect_err("unknown");
        assert!(e.to_string().contains("ReadCommand"), "{e}");
        // JSON is not an Any
        assert!(any_of("descriptor", br#"{"dataset":"demo"}"#).is_err());
    }
}
