//! Stateless statement tickets and prepared-statement handles: everything the server needs
//! to answer a later call travels with the call, so any server on the same catalog — this
//! one after a restart, or another replica — answers it, and nothing is kept in memory.
//!
//! Byte layout of both: a 4-byte magic (`QVT1` for a ticket, `QVP1` for a handle), then a
//! JSON object.
//!
//! - A **ticket** ([`StatementTicket`], inside Flight SQL's `TicketStatementQuery`) is either
//!   a reading statement with its parameters and the commit id every dataset table of the
//!   statement resolved to when `GetFlightInfo` planned it (`DoGet` plans it again pinned to
//!   those commits: [`quiver_sql::VersionPins`]), or the result rows of a statement that
//!   wrote (it ran once, at `GetFlightInfo`; `DoGet` only sends those rows back).
//! - A **prepared-statement handle** ([`PreparedHandle`]) is the statement text with the
//!   rows of parameters bound to it (binding answers with a new handle, as Flight SQL's
//!   `DoPutPreparedStatementResult` allows); closing it frees nothing.
//!
//! Neither is signed, because neither lets a caller do more than it could by sending the
//! statement itself: `DoGet` parses the statement again, refuses one that writes, and plans
//! it in a session of the caller's own token (a read-only token gets a read-only session);
//! pins name commits, which `AS OF VERSION` reaches anyway; the rows of a write's result
//! are only echoed back to whoever presents them. Garbage is `INVALID_ARGUMENT`.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use quiver_core::Hash;
use serde::{Deserialize, Serialize};

use crate::error::{FlightError, Result};

const TICKET_MAGIC: &[u8; 4] = b"QVT1";
const HANDLE_MAGIC: &[u8; 4] = b"QVP1";

/// What a statement ticket holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StatementTicket {
    /// A statement that only reads, planned again by `DoGet`.
    Read {
        /// The statement (placeholders numbered `$1, $2, …`).
        sql: String,
        /// Rows of parameters, as an Arrow IPC stream in base64.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        params: Option<String>,
        /// Table name as planned → commit id (hex) it read.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pins: Vec<(String, String)>,
    },
    /// The result rows of a statement that ran when its FlightInfo was made, as an Arrow
    /// IPC stream in base64.
    Rows {
        ipc: String,
        /// When the result was cut to fit the ticket: (rows carried, rows the statement
        /// returned). The FlightInfo says so in its `app_metadata`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        truncated: Option<(u64, u64)>,
    },
}

/// What a prepared-statement handle holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreparedHandle {
    /// The statement (placeholders numbered `$1, $2, …`).
    pub sql: String,
    /// Bound rows of parameters, as an Arrow IPC stream in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
}

fn encode_json<T: Serialize>(magic: &[u8; 4], v: &T) -> Result<Vec<u8>> {
    let mut out = magic.to_vec();
    serde_json::to_writer(&mut out, v)
        .map_err(|e| FlightError::InvalidArgument(format!("cannot encode: {e}")))?;
    Ok(out)
}

fn decode_json<T: for<'de> Deserialize<'de>>(magic: &[u8; 4], what: &str, b: &[u8]) -> Result<T> {
    let body = b.strip_prefix(magic.as_slice()).ok_or_else(|| {
        FlightError::InvalidArgument(format!(
            "{what} was not made by this server (or by a Quiver version that reads it)"
        ))
    })?;
    serde_json::from_slice(body)
        .map_err(|e| FlightError::InvalidArgument(format!("{what} is damaged: {e}")))
}

impl StatementTicket {
    /// The ticket's bytes (`TicketStatementQuery.statement_handle`).
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_json(TICKET_MAGIC, self)
    }

    /// A ticket from bytes a caller sent.
    pub fn decode(b: &[u8]) -> Result<Self> {
        decode_json(TICKET_MAGIC, "statement ticket", b)
    }
}

impl PreparedHandle {
    /// The handle's bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        encode_json(HANDLE_MAGIC, self)
    }

    /// A handle from bytes a caller sent.
    pub fn decode(b: &[u8]) -> Result<Self> {
        decode_json(HANDLE_MAGIC, "prepared statement handle", b)
    }
}

/// Pins as they travel: (table name, commit hex).
pub fn pins_to_wire(pins: Vec<(String, Hash)>) -> Vec<(String, String)> {
    pins.into_iter().map(|(n, h)| (n, h.to_hex())).collect()
}

/// Pins from a ticket.
pub fn pins_from_wire(pins: &[(String, String)]) -> Result<Vec<(String, Hash)>> {
    pins.iter()
        .map(|(n, h)| {
            Hash::from_hex(h).map(|h| (n.clone(), h)).ok_or_else(|| {
                FlightError::InvalidArgument(format!(
                    "statement ticket pins table '{n}' to '{h}', which is not a commit id"
                ))
            })
        })
        .collect()
}

/// Batches (all of `schema`) as base64 of an Arrow IPC stream.
pub fn batches_to_b64(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    let mut buf = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut buf, schema)?;
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    Ok(STANDARD.encode(buf))
}

/// Batches from base64 of an Arrow IPC stream (`what` names it in errors).
pub fn batches_from_b64(what: &str, s: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let bad = |e: String| FlightError::InvalidArgument(format!("{what} is damaged: {e}"));
    let bytes = STANDARD.decode(s).map_err(|e| bad(e.to_string()))?;
    let reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(|e| bad(e.to_string()))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    Ok((schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn tickets_and_handles_round_trip() {
        let t = StatementTicket::Read {
            sql: "SELECT * FROM ds WHERE a = $1".into(),
            params: None,
            pins: vec![("ds".into(), "ab".repeat(32))],
        };
        assert_eq!(
            StatementTicket::decode(&t.encode().expect("ok")).expect("ok"),
            t
        );
        let h = PreparedHandle {
            sql: "SELECT 1".into(),
            params: Some("x".into()),
        };
        assert_eq!(
            PreparedHandle::decode(&h.encode().expect("ok")).expect("ok"),
            h
        );
        // a handle is not a ticket
        assert!(StatementTicket::decode(&h.encode().expect("ok")).is_err());
    }

    #[test]
    fn garbage_is_invalid_argument() {
        for b in [
            &b""[..],
            b"QVT1",
            b"QVT1{",
            b"QVT1{\"kind\":\"rows\",\"ipc\":\"!!\"}",
            b"\x0a\x02ab",
            b"QVT1{\"kind\":\"read\",\"sql\":\"x\",\"extra\":1}",
        ] {
            let e = StatementTicket::decode(b)
                .and_then(|t| match t {
                    StatementTicket::Rows { ipc, .. } => batches_from_b64("rows", &ipc).map(|_| ()),
                    StatementTicket::Read { .. } => Err(FlightError::InvalidArgument("x".into())),
                })
                .expect_err("garbage");
            assert_eq!(tonic::Status::from(e).code(), tonic::Code::InvalidArgument);
        }
        let e = pins_from_wire(&[("ds".into(), "zz".into())]).expect_err("bad hex");
        assert!(e.to_string().contains("not a commit id"), "{e}");
        let e = batches_from_b64("params", &STANDARD.encode(b"not arrow")).expect_err("ipc");
        assert_eq!(tonic::Status::from(e).code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn batches_round_trip_through_base64() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef,
                Arc::new(StringArray::from(vec![Some("x"), None])),
            ],
        )
        .expect("ok");
        let s = batches_to_b64(&schema, std::slice::from_ref(&b)).expect("ok");
        let (got_schema, got) = batches_from_b64("rows", &s).expect("ok");
        assert_eq!(got_schema, schema);
        assert_eq!(got, vec![b]);
        let empty = batches_to_b64(&schema, &[]).expect("ok");
        assert_eq!(batches_from_b64("rows", &empty).expect("ok").1.len(), 0);
    }
}
