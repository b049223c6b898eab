//! GetXdbcTypeInfo: the SQL types a Quiver table column can be declared with (`CREATE
//! TABLE`, `CREATE DATASET`), as JDBC/ODBC-style metadata for drivers and BI tools.
//!
//! Each entry is a type name DataFusion's SQL planner accepts in a column definition and
//! maps to the Arrow type a dataset stores; the list is checked against the planner by a
//! test, so it claims no type that `CREATE TABLE` refuses.

use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};

use crate::error::{FlightError, Result};

/// SQL type name, XDBC type, column size, literal quote, numeric radix.
type TypeRow = (
    &'static str,
    XdbcDataType,
    Option<i32>,
    Option<&'static str>,
    Option<i32>,
);

/// Every type a column can be declared with.
const TYPES: &[TypeRow] = &[
    ("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None, None),
    (
        "TINYINT",
        XdbcDataType::XdbcTinyint,
        Some(3),
        None,
        Some(10),
    ),
    (
        "SMALLINT",
        XdbcDataType::XdbcSmallint,
        Some(5),
        None,
        Some(10),
    ),
    (
        "INTEGER",
        XdbcDataType::XdbcInteger,
        Some(10),
        None,
        Some(10),
    ),
    ("BIGINT", XdbcDataType::XdbcBigint, Some(19), None, Some(10)),
    ("REAL", XdbcDataType::XdbcReal, Some(24), None, Some(2)),
    ("DOUBLE", XdbcDataType::XdbcDouble, Some(53), None, Some(2)),
    (
        "DECIMAL",
        XdbcDataType::XdbcDecimal,
        Some(38),
        None,
        Some(10),
    ),
    ("VARCHAR", XdbcDataType::XdbcVarchar, None, Some("'"), None),
    ("BYTEA", XdbcDataType::XdbcVarbinary, None, None, None),
    ("DATE", XdbcDataType::XdbcDate, Some(10), Some("'"), None),
    (
        "TIMESTAMP",
        XdbcDataType::XdbcTimestamp,
        Some(26),
        Some("'"),
        None,
    ),
];

/// The type names of [`TYPES`] (for the test that plans them).
pub fn type_names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().map(|t| t.0)
}

/// The GetXdbcTypeInfo data of this server.
pub fn type_info() -> Result<XdbcTypeInfoData> {
    let mut b = XdbcTypeInfoDataBuilder::new();
    for &(name, data_type, column_size, quote, radix) in TYPES {
        let (sql_data_type, datetime_subcode) = match data_type {
            XdbcDataType::XdbcDate => (
                XdbcDataType::XdbcDatetime,
                // XDBC_SUBCODE_DATE is an alias of 1, which prost names after YEAR
                Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
            ),
            XdbcDataType::XdbcTimestamp => (
                XdbcDataType::XdbcDatetime,
                Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
            ),
            other => (other, None),
        };
        let numeric = radix.is_some();
        b.append(XdbcTypeInfo {
            type_name: name.into(),
            data_type,
            column_size,
            literal_prefix: quote.map(str::to_string),
            literal_suffix: quote.map(str::to_string),
            create_params: (name == "DECIMAL").then(|| vec!["precision".into(), "scale".into()]),
            nullable: Nullable::NullabilityNullable,
            case_sensitive: name == "VARCHAR",
            searchable: if name == "VARCHAR" {
                Searchable::Full
            } else {
                Searchable::Basic
            },
            unsigned_attribute: numeric.then_some(false),
            fixed_prec_scale: name == "DECIMAL",
            auto_increment: numeric.then_some(false),
            local_type_name: Some(name.into()),
            minimum_scale: (name == "DECIMAL").then_some(0),
            maximum_scale: (name == "DECIMAL").then_some(38),
            sql_data_type,
            datetime_subcode,
            num_prec_radix: radix,
            interval_precision: None,
        });
    }
    b.build().map_err(FlightError::from)
}
