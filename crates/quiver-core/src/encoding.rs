//! Canonical encodings of label data: order-preserving key bytes, the version-independent
//! group hash, and per-group column statistics.
//!
//! Everything hashed here is defined by Quiver, not by arrow: no arrow `Display` string and
//! no arrow IPC bytes enter a hash, so an arrow upgrade cannot change a hash, and the same
//! values hash alike whatever physical layout (string views, dictionaries, run-end encoding,
//! large offsets) they arrive in. This comment is the specification of the format.
//!
//! # Notation
//!
//! `put_bytes(b)` = the length of `b` as u64 little-endian, then `b`. All integers are
//! little-endian. `u8`, `u32`, `u64`, `i64` are that many bytes.
//!
//! # Type tags (`type_tag`)
//!
//! A type tag names the *logical* type of a column. It is a byte string:
//!
//! ```text
//! tag := 0x00                         Null
//!      | 0x01                         Boolean
//!      | 0x02 | 0x03 | 0x04 | 0x05    Int8 | Int16 | Int32 | Int64
//!      | 0x06 | 0x07 | 0x08 | 0x09    UInt8 | UInt16 | UInt32 | UInt64
//!      | 0x0A | 0x0B | 0x0C           Float16 | Float32 | Float64
//!      | 0x10                         string: Utf8, LargeUtf8, Utf8View (one tag)
//!      | 0x11                         binary: Binary, LargeBinary, BinaryView (one tag)
//!      | 0x12 width:u32               FixedSizeBinary(width)
//!      | 0x20                         Date32 (days)
//!      | 0x21                         Date64 (milliseconds)
//!      | 0x22 unit tz                 Timestamp(unit, tz)
//!      | 0x23 unit                    Time32(unit), Time64(unit) (the unit decides the width)
//!      | 0x24 unit                    Duration(unit)
//!      | 0x25 interval                Interval(interval)
//!      | 0x30 precision:u8 scale:i8   decimal: Decimal32/64/128/256(precision, scale) (one tag)
//!      | 0x40 tag(item)               list: List, LargeList, ListView, LargeListView (one tag)
//!      | 0x41 size:u32 tag(item)      FixedSizeList(item, size)
//!      | 0x42 n:u32 (put_bytes(name) tag(type)){n}            Struct, fields in order
//!      | 0x43 tag(key) tag(value)     Map
//!      | 0x44 n:u32 (id:i8 put_bytes(name) tag(type)){n}      Union (sparse or dense)
//!      | tag(value)                   Dictionary(_, value), RunEndEncoded(_, value):
//!                                     the tag of the value type (the encoding is invisible)
//! unit     := 0x00 second | 0x01 millisecond | 0x02 microsecond | 0x03 nanosecond
//! tz       := 0x00 (no time zone) | 0x01 put_bytes(time zone string, UTF-8, as given)
//! interval := 0x00 YearMonth | 0x01 DayTime | 0x02 MonthDayNano
//! ```
//!
//! Names of list items and map entries, nested nullability, field metadata, the map
//! `sorted` flag and the union mode are not part of a tag: they describe a layout, not the
//! values. Time zones are compared as strings (`UTC` and `+00:00` are different tags).
//!
//! # Values
//!
//! ```text
//! value := 0x00                        null (the Null type is always null)
//!        | 0x01 payload                non-null
//!        | 0x01 type_id:i8 value       Union: the type id, then the child's value
//!        | value of the referenced entry   Dictionary (a null key is 0x00),
//!                                          RunEndEncoded (the run's value)
//! payload:
//!   Boolean                 u8 0x00 or 0x01
//!   Int8/16/32/64           the value widened to i64, 8 bytes
//!   UInt8/16/32/64          the value widened to u64, 8 bytes
//!   Float16/32/64           the value widened to f64; every NaN replaced by the canonical
//!                           NaN 0x7FF8000000000000; the f64 bits, 8 bytes (-0.0 != 0.0)
//!   string, binary          put_bytes(the UTF-8 / raw bytes)
//!   FixedSizeBinary(w)      the w bytes (no length)
//!   Date32, Date64, Timestamp, Time32, Time64, Duration
//!                           the stored integer (in the type's unit) widened to i64
//!   Interval YearMonth      months as i64
//!   Interval DayTime        days as i64, milliseconds as i64
//!   Interval MonthDayNano   months as i64, days as i64, nanoseconds as i64
//!   decimal                 the unscaled integer sign-extended to 256 bits, 32 bytes
//!   list, Map               count:u64, then value(item) for each item
//!                           (for a Map each item is value(key) value(value))
//!   FixedSizeList(_, size)  value(item) for each of the size items (no count)
//!   Struct                  value(field) for each field, in order
//! ```
//!
//! A null struct, list or map is `0x00` alone (its children are not encoded). A byte `0xFF`
//! in place of a value or payload marks an array whose type [`check_hashable`] rejects (a
//! dictionary with a non-integer key, a `Time32` in microseconds, ...); arrow cannot build
//! such arrays, so it does not occur in practice. [`GroupHasher::try_new`] checks the
//! types; [`GroupHasher::new`] does not.
//!
//! # Group hash (`GroupHasher`)
//!
//! blake3 over, in order: the 15 ASCII bytes `quiver-group-v2` (no length prefix); for each
//! column of the dataset schema, in schema order, `put_bytes(name)` then
//! `put_bytes(tag(type))`; then for each row (sorted by label key), `value` of each column
//! in schema order. Row hashes (merge, diff) are the group hash of a one-row range.
//!
//! Version history: `quiver-group-v1` used arrow's `Display` of the type as the tag and the
//! `Display` string of the value for types not listed above; every v2 hash differs from
//! the v1 hash of the same rows.
//!
//! # Key bytes (`key_bytes`)
//!
//! Order-preserving (bytewise order of the encodings equals value order, checked by property
//! tests): Utf8, LargeUtf8, Utf8View and Binary are their bytes; Int8..Int64 are widened to
//! i64, reinterpreted as u64 with the sign bit flipped, 8 bytes big-endian; UInt8..UInt64
//! are widened to u64, 8 bytes big-endian. No other type can be a key.

use arrow::array::{
    Array, ArrayRef, AsArray, GenericListArray, GenericListViewArray, OffsetSizeTrait,
};
use arrow::datatypes::*;
use quiver_tree::{ColumnStats, Hash, StatValue};

/// Order-preserving byte encoding of one key value (group or label key).
///
/// Strings and binaries encode as their bytes; signed integers as big-endian i64 with the
/// sign bit flipped; unsigned as big-endian u64. Returns `None` for a null or an unsupported type.
pub fn key_bytes(array: &dyn Array, row: usize) -> Option<Vec<u8>> {
    if array.is_null(row) {
        return None;
    }
    macro_rules! signed {
        ($t:ty) => {{
            let v = array.as_primitive::<$t>().value(row) as i64;
            Some(((v as u64) ^ (1u64 << 63)).to_be_bytes().to_vec())
        }};
    }
    macro_rules! unsigned {
        ($t:ty) => {{
            let v = array.as_primitive::<$t>().value(row) as u64;
            Some(v.to_be_bytes().to_vec())
        }};
    }
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row).as_bytes().to_vec()),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row).as_bytes().to_vec()),
        DataType::Utf8View => Some(array.as_string_view().value(row).as_bytes().to_vec()),
        DataType::Binary => Some(array.as_binary::<i32>().value(row).to_vec()),
        DataType::Int8 => signed!(Int8Type),
        DataType::Int16 => signed!(Int16Type),
        DataType::Int32 => signed!(Int32Type),
        DataType::Int64 => signed!(Int64Type),
        DataType::UInt8 => unsigned!(UInt8Type),
        DataType::UInt16 => unsigned!(UInt16Type),
        DataType::UInt32 => unsigned!(UInt32Type),
        DataType::UInt64 => unsigned!(UInt64Type),
        _ => None,
    }
}

/// Whether a column type can be a group or label key.
/// The part of `dt` (itself or a nested type) that Parquet files cannot hold, if any:
/// month-day-nano intervals, unions and list views.
pub fn unstorable_type(dt: &DataType) -> Option<&DataType> {
    use arrow::datatypes::IntervalUnit;
    match dt {
        DataType::Interval(IntervalUnit::MonthDayNano)
        | DataType::Union(..)
        | DataType::ListView(_)
        | DataType::LargeListView(_) => Some(dt),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => unstorable_type(f.data_type()),
        DataType::Struct(fields) => fields.iter().find_map(|f| unstorable_type(f.data_type())),
        DataType::Dictionary(_, v) => unstorable_type(v),
        DataType::RunEndEncoded(_, v) => unstorable_type(v.data_type()),
        _ => None,
    }
}

pub fn is_key_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

/// Human-readable form of key bytes for error messages, given the key column type.
pub fn key_display(dt: &DataType, key: &[u8]) -> String {
    match dt {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            match <[u8; 8]>::try_from(key) {
                Ok(b) => ((u64::from_be_bytes(b) ^ (1u64 << 63)) as i64).to_string(),
                Err(_) => hex::encode(key),
            }
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            match <[u8; 8]>::try_from(key) {
                Ok(b) => u64::from_be_bytes(b).to_string(),
                Err(_) => hex::encode(key),
            }
        }
        DataType::Binary => hex::encode(key),
        _ => String::from_utf8_lossy(key).into_owned(),
    }
}

/// Prefix of the group hash stream (the group hash format version).
pub const GROUP_HASH_PREFIX: &[u8] = b"quiver-group-v2";

/// Value byte of an array whose type [`check_hashable`] rejects (never built by arrow).
const INVALID: u8 = 0xFF;

/// The Quiver type tag of `dt` (see the module documentation).
pub fn type_tag(dt: &DataType) -> Vec<u8> {
    let mut buf = Vec::with_capacity(8);
    put_type_tag(&mut buf, dt);
    buf
}

fn unit_code(u: &TimeUnit) -> u8 {
    match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

/// Key and value types of a map's entries (a struct of two fields).
fn map_key_value(entries: &Field) -> Option<(&DataType, &DataType)> {
    match entries.data_type() {
        DataType::Struct(fs) if fs.len() == 2 => Some((fs[0].data_type(), fs[1].data_type())),
        _ => None,
    }
}

fn put_type_tag(buf: &mut Vec<u8>, dt: &DataType) {
    use DataType::*;
    match dt {
        Null => buf.push(0x00),
        Boolean => buf.push(0x01),
        Int8 => buf.push(0x02),
        Int16 => buf.push(0x03),
        Int32 => buf.push(0x04),
        Int64 => buf.push(0x05),
        UInt8 => buf.push(0x06),
        UInt16 => buf.push(0x07),
        UInt32 => buf.push(0x08),
        UInt64 => buf.push(0x09),
        Float16 => buf.push(0x0A),
        Float32 => buf.push(0x0B),
        Float64 => buf.push(0x0C),
        Utf8 | LargeUtf8 | Utf8View => buf.push(0x10),
        Binary | LargeBinary | BinaryView => buf.push(0x11),
        FixedSizeBinary(w) => {
            buf.push(0x12);
            buf.extend_from_slice(&(*w as u32).to_le_bytes());
        }
        Date32 => buf.push(0x20),
        Date64 => buf.push(0x21),
        Timestamp(unit, tz) => {
            buf.push(0x22);
            buf.push(unit_code(unit));
            match tz {
                None => buf.push(0x00),
                Some(tz) => {
                    buf.push(0x01);
                    put_bytes(buf, tz.as_bytes());
                }
            }
        }
        Time32(unit) | Time64(unit) => {
            buf.push(0x23);
            buf.push(unit_code(unit));
        }
        Duration(unit) => {
            buf.push(0x24);
            buf.push(unit_code(unit));
        }
        Interval(iu) => {
            buf.push(0x25);
            buf.push(match iu {
                IntervalUnit::YearMonth => 0,
                IntervalUnit::DayTime => 1,
                IntervalUnit::MonthDayNano => 2,
            });
        }
        Decimal32(p, s) | Decimal64(p, s) | Decimal128(p, s) | Decimal256(p, s) => {
            buf.push(0x30);
            buf.push(*p);
            buf.push(*s as u8);
        }
        List(f) | LargeList(f) | ListView(f) | LargeListView(f) => {
            buf.push(0x40);
            put_type_tag(buf, f.data_type());
        }
        FixedSizeList(f, n) => {
            buf.push(0x41);
            buf.extend_from_slice(&(*n as u32).to_le_bytes());
            put_type_tag(buf, f.data_type());
        }
        Struct(fs) => {
            buf.push(0x42);
            buf.extend_from_slice(&(fs.len() as u32).to_le_bytes());
            for f in fs.iter() {
                put_bytes(buf, f.name().as_bytes());
                put_type_tag(buf, f.data_type());
            }
        }
        Map(entries, _sorted) => {
            buf.push(0x43);
            match map_key_value(entries) {
                Some((k, v)) => {
                    put_type_tag(buf, k);
                    put_type_tag(buf, v);
                }
                // not a valid map (check_hashable rejects it): tag the entries type
                None => put_type_tag(buf, entries.data_type()),
            }
        }
        Union(fs, _mode) => {
            buf.push(0x44);
            buf.extend_from_slice(&(fs.len() as u32).to_le_bytes());
            for (id, f) in fs.iter() {
                buf.push(id as u8);
                put_bytes(buf, f.name().as_bytes());
                put_type_tag(buf, f.data_type());
            }
        }
        Dictionary(_, v) => put_type_tag(buf, v),
        RunEndEncoded(_, v) => put_type_tag(buf, v.data_type()),
    }
}

/// Whether arrays of `dt` can be group-hashed: every type arrow can build an array of is;
/// the error names a malformed type (a dictionary with a non-integer key, run ends that are
/// not Int16/32/64, a `Time32` in micro- or nanoseconds, a negative width, a map whose
/// entries are not a struct of two fields), looking inside nested types.
pub fn check_hashable(dt: &DataType) -> Result<(), String> {
    use DataType::*;
    let bad = |why: &str| Err(format!("type {dt} cannot be hashed: {why}"));
    match dt {
        FixedSizeBinary(w) if *w < 0 => bad("negative width"),
        Time32(TimeUnit::Microsecond | TimeUnit::Nanosecond) => bad("Time32 must be s or ms"),
        Time64(TimeUnit::Second | TimeUnit::Millisecond) => bad("Time64 must be us or ns"),
        List(f) | LargeList(f) | ListView(f) | LargeListView(f) => check_hashable(f.data_type()),
        FixedSizeList(_, n) if *n < 0 => bad("negative size"),
        FixedSizeList(f, _) => check_hashable(f.data_type()),
        Struct(fs) => fs.iter().try_for_each(|f| check_hashable(f.data_type())),
        Union(fs, _) => fs
            .iter()
            .try_for_each(|(_, f)| check_hashable(f.data_type())),
        Map(entries, _) => match map_key_value(entries) {
            Some((k, v)) => check_hashable(k).and_then(|_| check_hashable(v)),
            None => bad("map entries must be a struct of two fields"),
        },
        Dictionary(k, _) if !k.is_dictionary_key_type() => bad("dictionary key not an integer"),
        Dictionary(_, v) => check_hashable(v),
        RunEndEncoded(r, _) if !r.data_type().is_run_ends_type() => bad("run ends not Int16/32/64"),
        RunEndEncoded(_, v) => check_hashable(v.data_type()),
        _ => Ok(()),
    }
}

/// Computes group hashes over row ranges of one (sorted) record batch.
pub struct GroupHasher<'a> {
    columns: Vec<(&'a str, &'a ArrayRef)>,
    /// The columns downcast once, in the same order: what [`GroupHasher::hash`] encodes.
    encoders: Vec<ColumnEncoder<'a>>,
    /// The header bytes (prefix, column names and type tags).
    header: Vec<u8>,
    /// The hasher state after the header (prefix, column names and type tags), cloned for
    /// each group instead of hashing the same header again.
    start: blake3::Hasher,
}

impl<'a> GroupHasher<'a> {
    /// A hasher over every column of `batch`, in its schema order.
    pub fn for_batch(batch: &'a arrow::array::RecordBatch) -> Self {
        let cols = batch
            .schema_ref()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| (f.name().as_str(), c))
            .collect();
        Self::new(cols)
    }

    /// Prepare a hasher for `columns` (name, array) in schema order. Every array arrow can
    /// build is hashable; [`GroupHasher::try_new`] also checks the types.
    pub fn new(columns: Vec<(&'a str, &'a ArrayRef)>) -> Self {
        let mut header = GROUP_HASH_PREFIX.to_vec();
        for (name, arr) in &columns {
            put_bytes(&mut header, name.as_bytes());
            put_bytes(&mut header, &type_tag(arr.data_type()));
        }
        let mut start = blake3::Hasher::new();
        start.update(&header);
        let encoders = columns
            .iter()
            .map(|&(_, a)| ColumnEncoder::new(a.as_ref()))
            .collect();
        GroupHasher {
            columns,
            encoders,
            header,
            start,
        }
    }

    /// [`GroupHasher::new`], after [`check_hashable`] of every column type.
    pub fn try_new(columns: Vec<(&'a str, &'a ArrayRef)>) -> Result<Self, String> {
        for (name, arr) in &columns {
            check_hashable(arr.data_type()).map_err(|e| format!("column '{name}': {e}"))?;
        }
        Ok(Self::new(columns))
    }

    /// Whether row `a` here and row `b` of `other` hash alike as one-row groups
    /// (`self.hash(a, 1) == other.hash(b, 1)`), decided on their encodings without hashing
    /// when both hashers have the same columns: a diff compares every label both versions
    /// hold this way. `scratch` is reused between calls.
    pub fn same_row(
        &self,
        a: usize,
        other: &GroupHasher<'_>,
        b: usize,
        scratch: &mut (Vec<u8>, Vec<u8>),
    ) -> bool {
        if self.header != other.header {
            return self.hash(a, 1) == other.hash(b, 1);
        }
        self.columns
            .iter()
            .zip(&other.columns)
            .all(|((_, p), (_, q))| same_value(p.as_ref(), a, q.as_ref(), b, scratch))
    }

    /// Hash rows `start..start+len` (already sorted by label key).
    pub fn hash(&self, start: usize, len: usize) -> Hash {
        self.hash_with(start, len, &mut Vec::with_capacity(256))
    }

    /// [`GroupHasher::hash`] with a buffer reused between calls (its contents are
    /// replaced). The rows' encodings are hashed in one update per buffer-full: blake3 is
    /// a stream, so the hash equals that of row-by-row updates.
    pub fn hash_with(&self, start: usize, len: usize, buf: &mut Vec<u8>) -> Hash {
        /// Encoded bytes collected before they are hashed.
        const FLUSH: usize = 16 * 1024;
        let mut h = self.start.clone();
        buf.clear();
        for row in start..start + len {
            for e in &self.encoders {
                e.encode(buf, row);
            }
            if buf.len() >= FLUSH {
                h.update(buf);
                buf.clear();
            }
        }
        h.update(buf);
        Hash(*h.finalize().as_bytes())
    }
}

/// One column of a [`GroupHasher`], downcast once per batch: the flat types of label data
/// (integers, floats, times, booleans, strings, binaries) encode straight from their
/// buffers; every other type goes through [`encode_value`]. Both give the same bytes (a
/// test compares them on every flat type, with nulls and sliced arrays).
struct ColumnEncoder<'a> {
    /// The validity of a flat column (`None` for [`Flat::Other`], which encodes its own).
    nulls: Option<&'a arrow::buffer::NullBuffer>,
    values: Flat<'a>,
}

/// The values of a [`ColumnEncoder`].
enum Flat<'a> {
    /// Integers encoded as i64 (signed types, dates, times, durations, timestamps).
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    /// Unsigned integers encoded as u64.
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    F32(&'a [f32]),
    F64(&'a [f64]),
    Bool(&'a arrow::buffer::BooleanBuffer),
    /// Utf8 and Binary: offsets and value bytes.
    Bytes32(&'a [i32], &'a [u8]),
    /// LargeUtf8 and LargeBinary.
    Bytes64(&'a [i64], &'a [u8]),
    Utf8View(&'a arrow::array::StringViewArray),
    BinaryView(&'a arrow::array::BinaryViewArray),
    Other(&'a dyn Array),
}

impl<'a> ColumnEncoder<'a> {
    fn new(array: &'a dyn Array) -> Self {
        use DataType::*;
        macro_rules! prim {
            ($v:ident, $t:ty) => {
                Flat::$v(array.as_primitive::<$t>().values())
            };
        }
        let values = match array.data_type() {
            Int8 => prim!(I8, Int8Type),
            Int16 => prim!(I16, Int16Type),
            Int32 => prim!(I32, Int32Type),
            Int64 => prim!(I64, Int64Type),
            UInt8 => prim!(U8, UInt8Type),
            UInt16 => prim!(U16, UInt16Type),
            UInt32 => prim!(U32, UInt32Type),
            UInt64 => prim!(U64, UInt64Type),
            Float32 => prim!(F32, Float32Type),
            Float64 => prim!(F64, Float64Type),
            Date32 => prim!(I32, Date32Type),
            Date64 => prim!(I64, Date64Type),
            Timestamp(TimeUnit::Second, _) => prim!(I64, TimestampSecondType),
            Timestamp(TimeUnit::Millisecond, _) => prim!(I64, TimestampMillisecondType),
            Timestamp(TimeUnit::Microsecond, _) => prim!(I64, TimestampMicrosecondType),
            Timestamp(TimeUnit::Nanosecond, _) => prim!(I64, TimestampNanosecondType),
            Time32(TimeUnit::Second) => prim!(I32, Time32SecondType),
            Time32(TimeUnit::Millisecond) => prim!(I32, Time32MillisecondType),
            Time64(TimeUnit::Microsecond) => prim!(I64, Time64MicrosecondType),
            Time64(TimeUnit::Nanosecond) => prim!(I64, Time64NanosecondType),
            Duration(TimeUnit::Second) => prim!(I64, DurationSecondType),
            Duration(TimeUnit::Millisecond) => prim!(I64, DurationMillisecondType),
            Duration(TimeUnit::Microsecond) => prim!(I64, DurationMicrosecondType),
            Duration(TimeUnit::Nanosecond) => prim!(I64, DurationNanosecondType),
            Interval(IntervalUnit::YearMonth) => prim!(I32, IntervalYearMonthType),
            Boolean => Flat::Bool(array.as_boolean().values()),
            Utf8 => {
                let a = array.as_string::<i32>();
                Flat::Bytes32(a.value_offsets(), a.value_data())
            }
            Binary => {
                let a = array.as_binary::<i32>();
                Flat::Bytes32(a.value_offsets(), a.value_data())
            }
            LargeUtf8 => {
                let a = array.as_string::<i64>();
                Flat::Bytes64(a.value_offsets(), a.value_data())
            }
            LargeBinary => {
                let a = array.as_binary::<i64>();
                Flat::Bytes64(a.value_offsets(), a.value_data())
            }
            Utf8View => Flat::Utf8View(array.as_string_view()),
            BinaryView => Flat::BinaryView(array.as_binary_view()),
            _ => Flat::Other(array),
        };
        let nulls = match values {
            Flat::Other(_) => None,
            _ => array.nulls(),
        };
        ColumnEncoder { nulls, values }
    }

    /// Append the encoding of row `row`, as [`encode_value`] does.
    #[inline]
    fn encode(&self, buf: &mut Vec<u8>, row: usize) {
        if let Flat::Other(a) = self.values {
            return encode_value(buf, a, row);
        }
        if self.nulls.is_some_and(|n| n.is_null(row)) {
            buf.push(0);
            return;
        }
        buf.push(1);
        let int = |buf: &mut Vec<u8>, v: i64| buf.extend_from_slice(&v.to_le_bytes());
        let uint = |buf: &mut Vec<u8>, v: u64| buf.extend_from_slice(&v.to_le_bytes());
        match self.values {
            Flat::I8(v) => int(buf, v[row] as i64),
            Flat::I16(v) => int(buf, v[row] as i64),
            Flat::I32(v) => int(buf, v[row] as i64),
            Flat::I64(v) => int(buf, v[row]),
            Flat::U8(v) => uint(buf, v[row] as u64),
            Flat::U16(v) => uint(buf, v[row] as u64),
            Flat::U32(v) => uint(buf, v[row] as u64),
            Flat::U64(v) => uint(buf, v[row]),
            Flat::F32(v) => put_f64(buf, v[row] as f64),
            Flat::F64(v) => put_f64(buf, v[row]),
            Flat::Bool(v) => buf.push(v.value(row) as u8),
            Flat::Bytes32(o, d) => put_bytes(buf, &d[o[row] as usize..o[row + 1] as usize]),
            Flat::Bytes64(o, d) => put_bytes(buf, &d[o[row] as usize..o[row + 1] as usize]),
            Flat::Utf8View(a) => put_bytes(buf, a.value(row).as_bytes()),
            Flat::BinaryView(a) => put_bytes(buf, a.value(row)),
            Flat::Other(_) => {}
        }
    }
}

/// The values array of a dictionary and the index its row `row` points at (`None`: not a
/// dictionary, or a key type arrow does not define).
fn dictionary_value(array: &dyn Array, row: usize) -> Option<(&ArrayRef, usize)> {
    use DataType::*;
    let Dictionary(k, _) = array.data_type() else {
        return None;
    };
    macro_rules! dict {
        ($t:ty) => {{
            let d = array.as_dictionary::<$t>();
            Some((d.values(), d.keys().value(row).as_usize()))
        }};
    }
    match k.as_ref() {
        Int8 => dict!(Int8Type),
        Int16 => dict!(Int16Type),
        Int32 => dict!(Int32Type),
        Int64 => dict!(Int64Type),
        UInt8 => dict!(UInt8Type),
        UInt16 => dict!(UInt16Type),
        UInt32 => dict!(UInt32Type),
        UInt64 => dict!(UInt64Type),
        _ => None,
    }
}

/// Whether `a[i]` and `b[j]` encode alike ([`encode_value`]): compared as values for the
/// types whose encoding is the value itself (integers, booleans, strings, binaries, dates
/// and times, and dictionaries of them), else on their encodings in `scratch`.
fn same_value(
    a: &dyn Array,
    i: usize,
    b: &dyn Array,
    j: usize,
    scratch: &mut (Vec<u8>, Vec<u8>),
) -> bool {
    use DataType::*;
    let encoded = |scratch: &mut (Vec<u8>, Vec<u8>)| {
        let (x, y) = scratch;
        x.clear();
        y.clear();
        encode_value(x, a, i);
        encode_value(y, b, j);
        x == y
    };
    if a.data_type() != b.data_type() {
        return encoded(scratch);
    }
    if let Dictionary(..) = a.data_type() {
        // a null key or a null value both encode as null: the general path
        if a.is_null(i) || b.is_null(j) {
            return encoded(scratch);
        }
        return match (dictionary_value(a, i), dictionary_value(b, j)) {
            (Some((va, ki)), Some((vb, kj))) => {
                same_value(va.as_ref(), ki, vb.as_ref(), kj, scratch)
            }
            _ => encoded(scratch),
        };
    }
    macro_rules! eq {
        (|$x:ident, $r:ident| $get:expr) => {{
            match (a.is_null(i), b.is_null(j)) {
                (true, true) => true,
                (false, false) => {
                    let ($x, $r) = (a, i);
                    let va = $get;
                    let ($x, $r) = (b, j);
                    va == $get
                }
                _ => false,
            }
        }};
    }
    macro_rules! prim {
        ($t:ty) => {
            eq!(|x, r| x.as_primitive::<$t>().value(r))
        };
    }
    match a.data_type() {
        Boolean => eq!(|x, r| x.as_boolean().value(r)),
        Int8 => prim!(Int8Type),
        Int16 => prim!(Int16Type),
        Int32 => prim!(Int32Type),
        Int64 => prim!(Int64Type),
        UInt8 => prim!(UInt8Type),
        UInt16 => prim!(UInt16Type),
        UInt32 => prim!(UInt32Type),
        UInt64 => prim!(UInt64Type),
        Date32 => prim!(Date32Type),
        Date64 => prim!(Date64Type),
        Timestamp(TimeUnit::Second, _) => prim!(TimestampSecondType),
        Timestamp(TimeUnit::Millisecond, _) => prim!(TimestampMillisecondType),
        Timestamp(TimeUnit::Microsecond, _) => prim!(TimestampMicrosecondType),
        Timestamp(TimeUnit::Nanosecond, _) => prim!(TimestampNanosecondType),
        Utf8 => eq!(|x, r| x.as_string::<i32>().value(r)),
        LargeUtf8 => eq!(|x, r| x.as_string::<i64>().value(r)),
        Utf8View => eq!(|x, r| x.as_string_view().value(r)),
        Binary => eq!(|x, r| x.as_binary::<i32>().value(r)),
        LargeBinary => eq!(|x, r| x.as_binary::<i64>().value(r)),
        BinaryView => eq!(|x, r| x.as_binary_view().value(r)),
        _ => encoded(scratch),
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
    buf.extend_from_slice(b);
}

fn put_f64(buf: &mut Vec<u8>, v: f64) {
    let bits = if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    };
    buf.extend_from_slice(&bits.to_le_bytes())
}

/// Append the canonical encoding of `array[row]` (see the module documentation).
fn encode_value(buf: &mut Vec<u8>, array: &dyn Array, row: usize) {
    use DataType::*;
    // Types whose value lives in a child array: encode the value they point at.
    match array.data_type() {
        Null => {
            buf.push(0);
            return;
        }
        Dictionary(..) => {
            if array.is_null(row) {
                buf.push(0);
                return;
            }
            match dictionary_value(array, row) {
                Some((values, k)) => encode_value(buf, values.as_ref(), k),
                None => buf.push(INVALID),
            }
            return;
        }
        RunEndEncoded(r, _) => {
            macro_rules! ree {
                ($t:ty) => {{
                    let a = array.as_run::<$t>();
                    encode_value(buf, a.values().as_ref(), a.get_physical_index(row))
                }};
            }
            match r.data_type() {
                Int16 => ree!(Int16Type),
                Int32 => ree!(Int32Type),
                Int64 => ree!(Int64Type),
                _ => buf.push(INVALID),
            }
            return;
        }
        Union(..) => {
            let u = array.as_union();
            let id = u.type_id(row);
            buf.push(1);
            buf.push(id as u8);
            encode_value(buf, u.child(id).as_ref(), u.value_offset(row));
            return;
        }
        _ => {}
    }
    if array.is_null(row) {
        buf.push(0);
        return;
    }
    buf.push(1);
    macro_rules! int {
        ($t:ty) => {
            buf.extend_from_slice(&(array.as_primitive::<$t>().value(row) as i64).to_le_bytes())
        };
    }
    macro_rules! uint {
        ($t:ty) => {
            buf.extend_from_slice(&(array.as_primitive::<$t>().value(row) as u64).to_le_bytes())
        };
    }
    macro_rules! decimal {
        ($t:ty) => {{
            let v = i256::from_i128(array.as_primitive::<$t>().value(row) as i128);
            buf.extend_from_slice(&v.to_le_bytes())
        }};
    }
    match array.data_type() {
        Boolean => buf.push(array.as_boolean().value(row) as u8),
        Int8 => int!(Int8Type),
        Int16 => int!(Int16Type),
        Int32 => int!(Int32Type),
        Int64 => int!(Int64Type),
        UInt8 => uint!(UInt8Type),
        UInt16 => uint!(UInt16Type),
        UInt32 => uint!(UInt32Type),
        UInt64 => uint!(UInt64Type),
        Float16 => put_f64(buf, array.as_primitive::<Float16Type>().value(row).to_f64()),
        Float32 => put_f64(buf, array.as_primitive::<Float32Type>().value(row) as f64),
        Float64 => put_f64(buf, array.as_primitive::<Float64Type>().value(row)),
        Utf8 => put_bytes(buf, array.as_string::<i32>().value(row).as_bytes()),
        LargeUtf8 => put_bytes(buf, array.as_string::<i64>().value(row).as_bytes()),
        Utf8View => put_bytes(buf, array.as_string_view().value(row).as_bytes()),
        Binary => put_bytes(buf, array.as_binary::<i32>().value(row)),
        LargeBinary => put_bytes(buf, array.as_binary::<i64>().value(row)),
        BinaryView => put_bytes(buf, array.as_binary_view().value(row)),
        FixedSizeBinary(_) => buf.extend_from_slice(array.as_fixed_size_binary().value(row)),
        Date32 => int!(Date32Type),
        Date64 => int!(Date64Type),
        Timestamp(TimeUnit::Second, _) => int!(TimestampSecondType),
        Timestamp(TimeUnit::Millisecond, _) => int!(TimestampMillisecondType),
        Timestamp(TimeUnit::Microsecond, _) => int!(TimestampMicrosecondType),
        Timestamp(TimeUnit::Nanosecond, _) => int!(TimestampNanosecondType),
        Time32(TimeUnit::Second) => int!(Time32SecondType),
        Time32(TimeUnit::Millisecond) => int!(Time32MillisecondType),
        Time64(TimeUnit::Microsecond) => int!(Time64MicrosecondType),
        Time64(TimeUnit::Nanosecond) => int!(Time64NanosecondType),
        Time32(_) | Time64(_) => buf.push(INVALID),
        Duration(TimeUnit::Second) => int!(DurationSecondType),
        Duration(TimeUnit::Millisecond) => int!(DurationMillisecondType),
        Duration(TimeUnit::Microsecond) => int!(DurationMicrosecondType),
        Duration(TimeUnit::Nanosecond) => int!(DurationNanosecondType),
        Interval(IntervalUnit::YearMonth) => int!(IntervalYearMonthType),
        Interval(IntervalUnit::DayTime) => {
            let v = array.as_primitive::<IntervalDayTimeType>().value(row);
            buf.extend_from_slice(&(v.days as i64).to_le_bytes());
            buf.extend_from_slice(&(v.milliseconds as i64).to_le_bytes());
        }
        Interval(IntervalUnit::MonthDayNano) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            buf.extend_from_slice(&(v.months as i64).to_le_bytes());
            buf.extend_from_slice(&(v.days as i64).to_le_bytes());
            buf.extend_from_slice(&v.nanoseconds.to_le_bytes());
        }
        Decimal32(..) => decimal!(Decimal32Type),
        Decimal64(..) => decimal!(Decimal64Type),
        Decimal128(..) => decimal!(Decimal128Type),
        Decimal256(..) => buf.extend_from_slice(
            &array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_le_bytes(),
        ),
        List(_) => encode_list(buf, array.as_list::<i32>(), row),
        LargeList(_) => encode_list(buf, array.as_list::<i64>(), row),
        ListView(_) => encode_list_view(buf, array.as_list_view::<i32>(), row),
        LargeListView(_) => encode_list_view(buf, array.as_list_view::<i64>(), row),
        FixedSizeList(_, n) => {
            let a = array.as_fixed_size_list();
            let start = a.value_offset(row) as usize;
            for i in start..start + (*n).max(0) as usize {
                encode_value(buf, a.values().as_ref(), i);
            }
        }
        Struct(_) => {
            for c in array.as_struct().columns() {
                encode_value(buf, c.as_ref(), row);
            }
        }
        Map(..) => {
            let m = array.as_map();
            let offs = m.value_offsets();
            let (start, end) = (offs[row] as usize, offs[row + 1] as usize);
            buf.extend_from_slice(&((end - start) as u64).to_le_bytes());
            for i in start..end {
                encode_value(buf, m.keys().as_ref(), i);
                encode_value(buf, m.values().as_ref(), i);
            }
        }
        // handled above (they encode the value of a child array)
        Null | Dictionary(..) | RunEndEncoded(..) | Union(..) => buf.push(INVALID),
    }
}

fn encode_list<O: OffsetSizeTrait>(buf: &mut Vec<u8>, a: &GenericListArray<O>, row: usize) {
    let offs = a.value_offsets();
    let (start, end) = (offs[row].as_usize(), offs[row + 1].as_usize());
    buf.extend_from_slice(&((end - start) as u64).to_le_bytes());
    for i in start..end {
        encode_value(buf, a.values().as_ref(), i);
    }
}

fn encode_list_view<O: OffsetSizeTrait>(
    buf: &mut Vec<u8>,
    a: &GenericListViewArray<O>,
    row: usize,
) {
    let start = a.value_offsets()[row].as_usize();
    let len = a.value_sizes()[row].as_usize();
    buf.extend_from_slice(&(len as u64).to_le_bytes());
    for i in start..start + len {
        encode_value(buf, a.values().as_ref(), i);
    }
}

/// Longest string kept exactly in statistics; longer strings give unknown min/max.
const MAX_STAT_STRING: usize = 32;

/// Whether statistics can be kept for a column of this type.
pub fn is_stats_type(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Float32
            | DataType::Float64
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

/// Statistics value of one cell (`None` for null, unsupported or over-long values).
pub fn stat_value(array: &dyn Array, row: usize) -> Option<StatValue> {
    if array.is_null(row) {
        return None;
    }
    macro_rules! int {
        ($t:ty) => {
            Some(StatValue::Int(array.as_primitive::<$t>().value(row) as i64))
        };
    }
    let s = |b: &[u8]| {
        if b.len() <= MAX_STAT_STRING {
            Some(StatValue::Bytes(b.to_vec()))
        } else {
            None
        }
    };
    match array.data_type() {
        DataType::Boolean => Some(StatValue::Bool(array.as_boolean().value(row))),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::Float32 => Some(StatValue::Float(
            array.as_primitive::<Float32Type>().value(row) as f64,
        )),
        DataType::Float64 => Some(StatValue::Float(
            array.as_primitive::<Float64Type>().value(row),
        )),
        DataType::Date32 => int!(Date32Type),
        DataType::Date64 => int!(Date64Type),
        DataType::Timestamp(TimeUnit::Second, _) => int!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => int!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => int!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => int!(TimestampNanosecondType),
        DataType::Utf8 => s(array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => s(array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => s(array.as_string_view().value(row).as_bytes()),
        _ => None,
    }
}

#[cfg(test)]
fn stat_lt(a: &StatValue, b: &StatValue) -> bool {
    match (a, b) {
        (StatValue::Bool(x), StatValue::Bool(y)) => x < y,
        (StatValue::Int(x), StatValue::Int(y)) => x < y,
        (StatValue::Float(x), StatValue::Float(y)) => x.total_cmp(y).is_lt(),
        (StatValue::Bytes(x), StatValue::Bytes(y)) => x < y,
        _ => false,
    }
}

/// Min/max/null statistics of `array` over rows `start..start+len`.
///
/// Finds the rows holding the minimum and maximum by comparing values in place and
/// materializes only those two (a chunk's statistics are taken on every import and fold).
pub fn column_stats(array: &dyn Array, start: usize, len: usize) -> ColumnStats {
    let mut st = ColumnStats::default();
    let rows = start..start + len;
    let nulls = array.logical_nulls();
    let valid = |row: usize| nulls.as_ref().is_none_or(|n| n.is_valid(row));
    st.null_count = rows.clone().filter(|&r| !valid(r)).count() as u64;
    // (row of the minimum, row of the maximum) under `lt`, over valid rows
    fn extremes<T>(
        rows: std::ops::Range<usize>,
        valid: impl Fn(usize) -> bool,
        get: impl Fn(usize) -> T,
        lt: impl Fn(&T, &T) -> bool,
    ) -> Option<(usize, usize)> {
        let mut best: Option<((usize, T), (usize, T))> = None;
        for row in rows.filter(|&r| valid(r)) {
            let v = get(row);
            best = Some(match best {
                None => ((row, get(row)), (row, v)),
                Some((lo, hi)) => {
                    let lo = if lt(&v, &lo.1) { (row, get(row)) } else { lo };
                    let hi = if lt(&hi.1, &v) { (row, v) } else { hi };
                    (lo, hi)
                }
            });
        }
        best.map(|(lo, hi)| (lo.0, hi.0))
    }
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            extremes(rows, valid, |r| a.value(r) as i64, |x, y| x < y)
        }};
    }
    macro_rules! strings {
        ($a:expr) => {{
            let a = $a;
            if rows
                .clone()
                .any(|r| valid(r) && a.value(r).len() > MAX_STAT_STRING)
            {
                return st; // too long to keep: unknown bounds
            }
            extremes(rows, valid, |r| a.value(r).as_bytes(), |x, y| x < y)
        }};
    }
    let found = match array.data_type() {
        DataType::Boolean => {
            let a = array.as_boolean();
            extremes(rows, valid, |r| a.value(r), |x, y| x < y)
        }
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            extremes(
                rows,
                valid,
                |r| a.value(r) as f64,
                |x, y| x.total_cmp(y).is_lt(),
            )
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            extremes(rows, valid, |r| a.value(r), |x, y| x.total_cmp(y).is_lt())
        }
        DataType::Date32 => ints!(Date32Type),
        DataType::Date64 => ints!(Date64Type),
        DataType::Timestamp(TimeUnit::Second, _) => ints!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => ints!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => ints!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => ints!(TimestampNanosecondType),
        DataType::Utf8 => strings!(array.as_string::<i32>()),
        DataType::LargeUtf8 => strings!(array.as_string::<i64>()),
        DataType::Utf8View => strings!(array.as_string_view()),
        // no statistics for other types: unknown bounds
        _ => None,
    };
    if let Some((lo, hi)) = found {
        st.min = stat_value(array, lo);
        st.max = stat_value(array, hi);
    }
    st
}

/// The statistics of the old row-by-row definition (kept as the test oracle).
#[cfg(test)]
fn column_stats_naive(array: &dyn Array, start: usize, len: usize) -> ColumnStats {
    let mut st = ColumnStats::default();
    let mut unknown = false;
    for row in start..start + len {
        if array.is_null(row) {
            st.null_count += 1;
            continue;
        }
        match stat_value(array, row) {
            None => unknown = true,
            Some(v) => {
                if st.min.as_ref().is_none_or(|m| stat_lt(&v, m)) {
                    st.min = Some(v.clone());
                }
                if st.max.as_ref().is_none_or(|m| stat_lt(m, &v)) {
                    st.max = Some(v);
                }
            }
        }
    }
    if unknown {
        st.min = None;
        st.max = None;
    }
    st
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::*;
    use arrow::compute::cast;
    use proptest::prelude::*;
    use std::sync::Arc;

    /// The group hash by its definition: every value through [`encode_value`], one
    /// blake3 update per row.
    fn hash_by_definition(columns: &[(&str, &ArrayRef)], start: usize, len: usize) -> Hash {
        let mut h = blake3::Hasher::new();
        let mut header = GROUP_HASH_PREFIX.to_vec();
        for (name, arr) in columns {
            put_bytes(&mut header, name.as_bytes());
            put_bytes(&mut header, &type_tag(arr.data_type()));
        }
        h.update(&header);
        for row in start..start + len {
            let mut buf = Vec::new();
            for (_, arr) in columns {
                encode_value(&mut buf, arr.as_ref(), row);
            }
            h.update(&buf);
        }
        Hash(*h.finalize().as_bytes())
    }

    proptest! {
        /// The downcast column encoders give the bytes of `encode_value` on every flat
        /// type, with nulls, on sliced arrays, and with groups that span the flush size.
        #[test]
        fn fast_column_encoders_hash_as_the_definition(
            ints in proptest::collection::vec(proptest::option::of(any::<i64>()), 1..60),
            floats in proptest::collection::vec(proptest::option::of(prop_oneof![
                Just(f64::NAN), Just(-0.0f64), Just(f64::INFINITY), -1e9f64..1e9
            ]), 1..60),
            strs in proptest::collection::vec(proptest::option::of("[a-z]{0,40}"), 1..60),
            bools in proptest::collection::vec(proptest::option::of(any::<bool>()), 1..60),
            from in 0usize..20,
            n in 0usize..60,
        ) {
            let len = ints.len().min(floats.len()).min(strs.len()).min(bools.len());
            let i64s = Int64Array::from(ints[..len].to_vec());
            let f64s = Float64Array::from(floats[..len].to_vec());
            let utf8 = StringArray::from(strs[..len].to_vec());
            let mut arrays: Vec<ArrayRef> = vec![
                Arc::new(i64s.clone()),
                Arc::new(f64s.clone()),
                Arc::new(utf8.clone()),
                Arc::new(BooleanArray::from(bools[..len].to_vec())),
            ];
            for dt in [DataType::Int8, DataType::Int16, DataType::Int32, DataType::UInt8,
                       DataType::UInt16, DataType::UInt32, DataType::UInt64] {
                let small = Int64Array::from_iter(i64s.iter().map(|v| v.map(|v| v % 100)));
                arrays.push(cast(&small, &dt).unwrap());
            }
            let i32s = Int32Array::from_iter(i64s.iter().map(|v| v.map(|v| v as i32)));
            arrays.push(Arc::new(i32s.reinterpret_cast::<Date32Type>()));
            arrays.push(Arc::new(i32s.reinterpret_cast::<Time32SecondType>()));
            arrays.push(Arc::new(i32s.reinterpret_cast::<Time32MillisecondType>()));
            arrays.push(Arc::new(i32s.reinterpret_cast::<IntervalYearMonthType>()));
            arrays.push(Arc::new(i64s.reinterpret_cast::<Date64Type>()));
            arrays.push(Arc::new(i64s.reinterpret_cast::<TimestampSecondType>()));
            arrays.push(Arc::new(
                i64s.reinterpret_cast::<TimestampMillisecondType>().with_timezone("UTC"),
            ));
            arrays.push(Arc::new(i64s.reinterpret_cast::<TimestampMicrosecondType>()));
            arrays.push(Arc::new(i64s.reinterpret_cast::<TimestampNanosecondType>()));
            arrays.push(Arc::new(i64s.reinterpret_cast::<Time64MicrosecondType>()));
            arrays.push(Arc::new(i64s.reinterpret_cast::<Time64NanosecondType>()));
            arrays.push(Arc::new(i64s.reinterpret_cast::<DurationSecondType>()));
            arrays.push(Arc::new(i64s.reinterpret_cast::<DurationMillisecondType>()));
            arrays.push(Arc::new(i64s.reinterpret_cast::<DurationMicrosecondType>()));
            arrays.push(Arc::new(i64s.reinterpret_cast::<DurationNanosecondType>()));
            arrays.push(cast(&f64s, &DataType::Float32).unwrap());
            for dt in [DataType::LargeUtf8, DataType::Utf8View, DataType::Binary,
                       DataType::LargeBinary, DataType::BinaryView,
                       DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))] {
                arrays.push(cast(&utf8, &dt).unwrap());
            }
            // sliced arrays: offsets into shared buffers and null bitmaps
            let from = from.min(len - 1);
            let arrays: Vec<ArrayRef> =
                arrays.iter().map(|a| a.slice(from, len - from)).collect();
            let names: Vec<String> = (0..arrays.len()).map(|i| format!("c{i}")).collect();
            let cols: Vec<(&str, &ArrayRef)> =
                names.iter().map(|s| s.as_str()).zip(arrays.iter()).collect();
            let h = GroupHasher::new(cols.clone());
            let n = n.min(len - from);
            let mut buf = Vec::new();
            for start in 0..(len - from - n).min(3) + 1 {
                prop_assert_eq!(h.hash_with(start, n, &mut buf), hash_by_definition(&cols, start, n));
                prop_assert_eq!(h.hash(start, n), hash_by_definition(&cols, start, n));
            }
        }

        #[test]
        fn column_stats_match_the_row_by_row_definition(
            ints in proptest::collection::vec(proptest::option::of(-50i64..50), 1..40),
            floats in proptest::collection::vec(proptest::option::of(-3.0f64..3.0), 1..40),
            strs in proptest::collection::vec(proptest::option::of("[a-c]{0,3}|[x]{30,36}"), 1..40),
            from in 0usize..10,
            n in 0usize..40,
        ) {
            let arrays: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(ints.clone())),
                Arc::new(Int32Array::from(ints.iter().map(|v| v.map(|x| x as i32)).collect::<Vec<_>>())),
                Arc::new(Float64Array::from(floats)),
                Arc::new(StringArray::from(strs.clone())),
                Arc::new(StringViewArray::from(strs.iter().map(|s| s.as_deref()).collect::<Vec<_>>())),
                Arc::new(BooleanArray::from(ints.iter().map(|v| v.map(|x| x > 0)).collect::<Vec<_>>())),
                Arc::new(UInt64Array::from(ints.iter().map(|v| v.map(|x| x as u64)).collect::<Vec<_>>())),
            ];
            for a in arrays {
                let from = from.min(a.len());
                let n = n.min(a.len() - from);
                prop_assert_eq!(column_stats(&a, from, n), column_stats_naive(&a, from, n));
            }
        }
    }

    proptest! {
        /// `same_row` says what comparing one-row group hashes says, on rows with nulls,
        /// signed zeros, NaN, strings (plain, views, a dictionary with a null value),
        /// booleans and integers of two widths, for hashers over the same columns and over
        /// columns that differ (other names: never alike).
        #[test]
        fn same_row_agrees_with_row_hashes(
            ints in proptest::collection::vec(proptest::option::of(-3i64..3), 2..12),
            floats in proptest::collection::vec(
                proptest::option::of(prop_oneof![Just(0.0f64), Just(-0.0), Just(f64::NAN), Just(1.5)]),
                2..12,
            ),
            strs in proptest::collection::vec(proptest::option::of("[ab]{0,2}"), 2..12),
            dict_keys in proptest::collection::vec(proptest::option::of(0i32..3), 2..12),
        ) {
            let n = ints.len().min(floats.len()).min(strs.len()).min(dict_keys.len());
            let strings = StringArray::from(strs[..n].to_vec());
            // a dictionary whose values hold a null too: a null key and a key to the null
            // value encode alike
            let dict = DictionaryArray::<Int32Type>::try_new(
                Int32Array::from(dict_keys[..n].to_vec()),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("b")])),
            )
            .expect("a dictionary");
            let cols: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(ints[..n].to_vec())),
                Arc::new(Float64Array::from(floats[..n].to_vec())),
                Arc::new(strings.clone()),
                cast(&strings, &DataType::Utf8View).expect("a view"),
                Arc::new(dict),
                Arc::new(BooleanArray::from(ints[..n].iter().map(|v| v.map(|x| x > 0)).collect::<Vec<_>>())),
                cast(&Int64Array::from(ints[..n].to_vec()), &DataType::Int32).expect("int32"),
            ];
            let named = |names: [&'static str; 7]| -> Vec<(&'static str, &ArrayRef)> {
                names.into_iter().zip(cols.iter()).collect()
            };
            let a = GroupHasher::new(named(["a", "b", "c", "d", "e", "f", "g"]));
            let same = GroupHasher::new(named(["a", "b", "c", "d", "e", "f", "g"]));
            let renamed = GroupHasher::new(named(["a", "b", "c", "d", "e", "f", "z"]));
            let mut scratch = (Vec::new(), Vec::new());
            for i in 0..n {
                for j in 0..n {
                    for other in [&same, &renamed] {
                        prop_assert_eq!(
                            a.same_row(i, other, j, &mut scratch),
                            a.hash(i, 1) == other.hash(j, 1)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn int_keys_sort_as_bytes() {
        let a = Int64Array::from(vec![-5, -1, 0, 3, i64::MAX, i64::MIN]);
        let mut ks: Vec<(Vec<u8>, i64)> = (0..a.len())
            .map(|i| (key_bytes(&a, i).unwrap(), a.value(i)))
            .collect();
        ks.sort();
        let vals: Vec<i64> = ks.iter().map(|k| k.1).collect();
        assert_eq!(vals, vec![i64::MIN, -5, -1, 0, 3, i64::MAX]);
        assert_eq!(key_display(&DataType::Int64, &ks[1].0), "-5");
    }

    #[test]
    fn group_hash_depends_on_content_and_names() {
        let a: ArrayRef = Arc::new(StringArray::from(vec!["x", "y"]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["x", "z"]));
        let h1 = GroupHasher::new(vec![("c", &a)]).hash(0, 2);
        let h2 = GroupHasher::new(vec![("c", &b)]).hash(0, 2);
        let h3 = GroupHasher::new(vec![("d", &a)]).hash(0, 2);
        let h4 = GroupHasher::new(vec![("c", &a)]).hash(0, 2);
        assert_ne!(h1, h2);
        assert_ne!(h1, h3);
        assert_eq!(h1, h4);
        // range hashing equals hashing a sliced batch
        let s: ArrayRef = Arc::new(StringArray::from(vec!["y"]));
        assert_eq!(
            GroupHasher::new(vec![("c", &a)]).hash(1, 1),
            GroupHasher::new(vec![("c", &s)]).hash(0, 1)
        );
    }

    /// Hash of all rows of `batch`, columns in schema order (what the writer does).
    fn batch_hash(batch: &RecordBatch) -> String {
        let schema = batch.schema();
        let cols: Vec<(&str, &ArrayRef)> = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| (f.name().as_str(), c))
            .collect();
        GroupHasher::try_new(cols)
            .unwrap()
            .hash(0, batch.num_rows())
            .to_hex()
    }

    /// One group of the demo schema (`crate::demo::schema`), sorted by label key, with
    /// literal values (nulls in the nullable columns of the pending label).
    fn demo_group() -> RecordBatch {
        let ts = |us: i64| Some(crate::demo::START_MICROS + us);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["img-00000042"; 3])),
            Arc::new(Int64Array::from(vec![0, 1, 2])),
            Arc::new(StringArray::from(vec![
                "6e3f0c9d2a1b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5";
                3
            ])),
            Arc::new(StringArray::from(vec!["person", "dog", "traffic light"])),
            Arc::new(Float32Array::from(vec![0.125, 0.5, 0.75])),
            Arc::new(Float32Array::from(vec![0.25, 0.0, 0.0625])),
            Arc::new(Float32Array::from(vec![0.5, 0.25, 0.01])),
            Arc::new(Float32Array::from(vec![0.375, 0.5, 0.2])),
            Arc::new(Float32Array::from(vec![Some(0.9375), None, Some(0.125)])),
            Arc::new(StringArray::from(vec!["approved", "pending", "rejected"])),
            Arc::new(StringArray::from(vec![
                Some("alice"),
                None,
                Some("mallory"),
            ])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![ts(3_600_000_000), None, ts(86_400_000_000)])
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec!["2.2"; 3])),
        ];
        RecordBatch::try_new(crate::demo::schema(), cols).unwrap()
    }

    /// A group with integer keys (Int64 group, UInt32 label) and a FixedSizeBinary(32)
    /// image hash, as in the benchmark tables.
    fn int_key_group() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("frame", DataType::Int64, false),
            Field::new("object", DataType::UInt32, false),
            Field::new("image_hash", DataType::FixedSizeBinary(32), false),
            Field::new("class_id", DataType::Int16, false),
            Field::new("confidence", DataType::Float64, true),
            Field::new("occluded", DataType::Boolean, true),
        ]));
        let hashes: Vec<[u8; 32]> = vec![[0xAB; 32], [0x01; 32], {
            let mut h = [0u8; 32];
            for (i, b) in h.iter_mut().enumerate() {
                *b = i as u8;
            }
            h
        }];
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![-7, -7, -7])),
            Arc::new(UInt32Array::from(vec![1, 2, 4_000_000_000])),
            Arc::new(
                FixedSizeBinaryArray::try_from_iter(hashes.iter().map(|h| h.as_slice())).unwrap(),
            ),
            Arc::new(Int16Array::from(vec![3, -1, 300])),
            Arc::new(Float64Array::from(vec![Some(0.5), None, Some(f64::NAN)])),
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ];
        RecordBatch::try_new(schema, cols).unwrap()
    }

    /// Golden: the group hash of a fixed demo group. A change here changes every stored
    /// group hash (bump `GROUP_HASH_PREFIX` and docs/FORMAT.md §7.2).
    #[test]
    fn golden_demo_group_hash() {
        let b = demo_group();
        assert_eq!(
            batch_hash(&b),
            "7b473ccc6092dae2d155cb9c79d121ac537b0aa7cb71e1d93415495d1e40373b"
        );
        assert_eq!(
            batch_hash(&b.slice(1, 1)),
            "ed29c0c8c5f2dfb5f6d0fee36522759738616ddb1bf620963b27306bfbcbfa5e"
        );
    }

    /// Golden: integer keys and a FixedSizeBinary column (NaN and nulls included).
    #[test]
    fn golden_int_key_group_hash() {
        assert_eq!(
            batch_hash(&int_key_group()),
            "7b0e9e86ac02a6f5694d7c9ce17af34f801d64e30747b3a79870cbfd7190208a"
        );
    }

    fn put(buf: &mut Vec<u8>, b: &[u8]) {
        buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
        buf.extend_from_slice(b);
    }

    /// The module documentation, followed by hand: the hashed stream of a small group.
    #[test]
    fn hash_stream_matches_the_spec() {
        let s: ArrayRef = Arc::new(StringArray::from(vec![Some("ab"), None]));
        let i: ArrayRef = Arc::new(Int8Array::from(vec![-2, 7]));
        let f: ArrayRef = Arc::new(Float32Array::from(vec![f32::NAN, 1.5]));
        let t: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![Some(5), None]).with_timezone("UTC"));
        let fsb: ArrayRef = Arc::new(
            FixedSizeBinaryArray::try_from_iter([[1u8, 2], [3, 4]].iter().map(|v| v.as_slice()))
                .unwrap(),
        );
        let d: ArrayRef = Arc::new(
            Decimal128Array::from(vec![-1i128, 12345])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        let l: ArrayRef = Arc::new(ListArray::from_iter_primitive::<UInt16Type, _, _>(vec![
            Some(vec![Some(9)]),
            Some(vec![]),
        ]));
        let cols = vec![
            ("s", &s),
            ("i", &i),
            ("f", &f),
            ("t", &t),
            ("b", &fsb),
            ("d", &d),
            ("l", &l),
        ];
        let got = GroupHasher::new(cols).hash(0, 2);

        let mut e = b"quiver-group-v2".to_vec();
        put(&mut e, b"s");
        put(&mut e, &[0x10]);
        put(&mut e, b"i");
        put(&mut e, &[0x02]);
        put(&mut e, b"f");
        put(&mut e, &[0x0B]);
        put(&mut e, b"t");
        put(
            &mut e,
            &[0x22, 0x01, 0x01, 3, 0, 0, 0, 0, 0, 0, 0, b'U', b'T', b'C'],
        );
        put(&mut e, b"b");
        put(&mut e, &[0x12, 2, 0, 0, 0]);
        put(&mut e, b"d");
        put(&mut e, &[0x30, 10, 2]);
        put(&mut e, b"l");
        put(&mut e, &[0x40, 0x07]);
        // row 0
        e.push(1);
        put(&mut e, b"ab");
        e.push(1);
        e.extend_from_slice(&(-2i64).to_le_bytes());
        e.push(1);
        e.extend_from_slice(&0x7FF8_0000_0000_0000u64.to_le_bytes());
        e.push(1);
        e.extend_from_slice(&5i64.to_le_bytes());
        e.extend_from_slice(&[1, 1, 2]);
        e.push(1);
        e.extend_from_slice(&[0xFF; 32]); // -1 as i256
        e.push(1);
        e.extend_from_slice(&1u64.to_le_bytes());
        e.push(1);
        e.extend_from_slice(&9u64.to_le_bytes());
        // row 1
        e.push(0);
        e.push(1);
        e.extend_from_slice(&7i64.to_le_bytes());
        e.push(1);
        e.extend_from_slice(&1.5f64.to_bits().to_le_bytes());
        e.push(0);
        e.extend_from_slice(&[1, 3, 4]);
        e.push(1);
        let mut d1 = [0u8; 32];
        d1[..8].copy_from_slice(&12345i64.to_le_bytes());
        e.extend_from_slice(&d1);
        e.push(1);
        e.extend_from_slice(&0u64.to_le_bytes());
        assert_eq!(got, Hash::of(&e));
    }

    /// The same values hash alike in every physical layout: string layouts, dictionaries
    /// and run-end encoding of strings, binary layouts, decimal and list widths.
    #[test]
    fn layouts_hash_alike() {
        let b = demo_group();
        let with = |conv: &dyn Fn(&ArrayRef) -> ArrayRef| {
            let schema = Arc::new(Schema::new(
                b.schema()
                    .fields()
                    .iter()
                    .zip(b.columns())
                    .map(|(f, c)| {
                        let dt = if f.data_type() == &DataType::Utf8 {
                            conv(c).data_type().clone()
                        } else {
                            f.data_type().clone()
                        };
                        Field::new(f.name(), dt, f.is_nullable())
                    })
                    .collect::<Vec<_>>(),
            ));
            let cols = b
                .columns()
                .iter()
                .map(|c| {
                    if c.data_type() == &DataType::Utf8 {
                        conv(c)
                    } else {
                        c.clone()
                    }
                })
                .collect();
            batch_hash(&RecordBatch::try_new(schema, cols).unwrap())
        };
        let plain = batch_hash(&b);
        let to = |dt: DataType| move |c: &ArrayRef| cast(c, &dt).unwrap();
        assert_eq!(with(&to(DataType::LargeUtf8)), plain);
        assert_eq!(with(&to(DataType::Utf8View)), plain);
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(with(&to(dict)), plain);
        let dict8 = DataType::Dictionary(Box::new(DataType::UInt8), Box::new(DataType::Utf8View));
        assert_eq!(with(&to(dict8)), plain);
        let ree = |c: &ArrayRef| -> ArrayRef {
            let s = c.as_string::<i32>();
            let mut bld = arrow::array::builder::StringRunBuilder::<Int32Type>::new();
            for v in s.iter() {
                bld.append_option(v);
            }
            Arc::new(bld.finish())
        };
        assert_eq!(with(&ree), plain);
        // a dictionary whose *values* hold the nulls hashes like a null string
        let dict_null_values = |c: &ArrayRef| -> ArrayRef {
            let s = c.as_string::<i32>();
            let mut vals: Vec<Option<&str>> = vec![None];
            let mut keys = Vec::new();
            for v in s.iter() {
                keys.push(vals.len() as i16);
                vals.push(v);
            }
            Arc::new(
                DictionaryArray::<Int16Type>::try_new(
                    Int16Array::from(keys),
                    Arc::new(StringArray::from(vals)),
                )
                .unwrap(),
            )
        };
        assert_eq!(with(&dict_null_values), plain);
        // and a changed value does change the hash in every layout
        let changed = |c: &ArrayRef| -> ArrayRef {
            let s = c.as_string::<i32>();
            Arc::new(StringArray::from_iter(
                s.iter().map(|v| v.map(|v| v.replace("dog", "cat"))),
            ))
        };
        assert_ne!(with(&changed), plain);

        let one = |a: ArrayRef| {
            let name = "c";
            GroupHasher::try_new(vec![(name, &a)])
                .unwrap()
                .hash(0, a.len())
        };
        let bin: ArrayRef = Arc::new(BinaryArray::from_opt_vec(vec![
            Some(b"\x00\xff".as_slice()),
            None,
            Some(b"".as_slice()),
        ]));
        for dt in [
            DataType::LargeBinary,
            DataType::BinaryView,
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Binary)),
        ] {
            assert_eq!(one(cast(&bin, &dt).unwrap()), one(bin.clone()), "{dt}");
        }
        let d128: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(-12345), None, Some(i128::MAX / 7)])
                .with_precision_and_scale(38, 4)
                .unwrap(),
        );
        assert_eq!(
            one(cast(&d128, &DataType::Decimal256(38, 4)).unwrap()),
            one(d128.clone())
        );
        let small: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(-5), None, Some(9)])
                .with_precision_and_scale(5, 1)
                .unwrap(),
        );
        for dt in [DataType::Decimal32(5, 1), DataType::Decimal64(5, 1)] {
            assert_eq!(one(cast(&small, &dt).unwrap()), one(small.clone()), "{dt}");
        }
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![]),
        ]));
        let large = DataType::LargeList(Arc::new(Field::new("element", DataType::Int32, true)));
        assert_eq!(one(cast(&list, &large).unwrap()), one(list.clone()));
        // the same rows as a list view, items out of order in the values array
        let view: ArrayRef = Arc::new(
            ListViewArray::try_new(
                Arc::new(Field::new_list_field(DataType::Int32, true)),
                vec![1, 0, 0].into(),
                vec![2, 0, 0].into(),
                Arc::new(Int32Array::from(vec![Some(7), Some(1), None])),
                Some(vec![true, false, true].into()),
            )
            .unwrap(),
        );
        assert_eq!(one(view.clone()), one(list.clone()));
        let large_view =
            DataType::LargeListView(Arc::new(Field::new_list_field(DataType::Int32, true)));
        assert_eq!(type_tag(&large_view), type_tag(list.data_type()));
        // sparse and dense unions of the same values
        let fields = UnionFields::try_new(
            vec![0, 3],
            vec![
                Field::new("i", DataType::Int32, true),
                Field::new("s", DataType::Utf8, true),
            ],
        )
        .unwrap();
        let sparse: ArrayRef = Arc::new(
            UnionArray::try_new(
                fields.clone(),
                vec![0, 3, 0].into(),
                None,
                vec![
                    Arc::new(Int32Array::from(vec![Some(4), None, None])) as ArrayRef,
                    Arc::new(StringArray::from(vec![None, Some("x"), None])),
                ],
            )
            .unwrap(),
        );
        let dense: ArrayRef = Arc::new(
            UnionArray::try_new(
                fields,
                vec![0, 3, 0].into(),
                Some(vec![0, 0, 1].into()),
                vec![
                    Arc::new(Int32Array::from(vec![Some(4), None])) as ArrayRef,
                    Arc::new(StringArray::from(vec![Some("x")])),
                ],
            )
            .unwrap(),
        );
        assert_eq!(one(dense), one(sparse));
        // map: key and value per entry, whatever the entries are called
        let map = |names: (&str, &str), vals: [i64; 2]| -> ArrayRef {
            let mut m = arrow::array::builder::MapBuilder::new(
                Some(arrow::array::builder::MapFieldNames {
                    entry: "entries".into(),
                    key: names.0.into(),
                    value: names.1.into(),
                }),
                StringBuilder::new(),
                Int64Builder::new(),
            );
            m.keys().append_value("a");
            m.values().append_value(vals[0]);
            m.keys().append_value("b");
            m.values().append_value(vals[1]);
            m.append(true).unwrap();
            m.append(false).unwrap();
            Arc::new(m.finish())
        };
        assert_eq!(
            one(map(("key", "value"), [1, 2])),
            one(map(("keys", "values"), [1, 2]))
        );
        assert_ne!(
            one(map(("key", "value"), [1, 2])),
            one(map(("key", "value"), [1, 3]))
        );
        // fixed-size lists: the items, no count
        let fsl: ArrayRef = Arc::new(FixedSizeListArray::from_iter_primitive::<Int8Type, _, _>(
            vec![Some(vec![Some(1), None]), None],
            2,
        ));
        let mut e = b"quiver-group-v2".to_vec();
        put(&mut e, b"c");
        put(&mut e, &[0x41, 2, 0, 0, 0, 0x02]);
        e.extend_from_slice(&[1, 1]);
        e.extend_from_slice(&1i64.to_le_bytes());
        e.extend_from_slice(&[0, 0]);
        assert_eq!(one(fsl), Hash::of(&e));
        // Utf8 and LargeUtf8 also give the same header, with or without nulls
        assert_eq!(type_tag(&DataType::Utf8), type_tag(&DataType::LargeUtf8));
        assert_eq!(type_tag(&DataType::Utf8), type_tag(&DataType::Utf8View));
    }

    fn all_types() -> Vec<DataType> {
        use DataType::*;
        let item = |dt: DataType| Arc::new(Field::new("item", dt, true));
        let mut v = vec![
            Null,
            Boolean,
            Int8,
            Int16,
            Int32,
            Int64,
            UInt8,
            UInt16,
            UInt32,
            UInt64,
            Float16,
            Float32,
            Float64,
            Utf8,
            Binary,
            FixedSizeBinary(32),
            FixedSizeBinary(16),
            Date32,
            Date64,
            Timestamp(TimeUnit::Second, None),
            Timestamp(TimeUnit::Millisecond, None),
            Timestamp(TimeUnit::Microsecond, None),
            Timestamp(TimeUnit::Nanosecond, None),
            Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Timestamp(TimeUnit::Microsecond, Some("Europe/Paris".into())),
            Time32(TimeUnit::Second),
            Time32(TimeUnit::Millisecond),
            Time64(TimeUnit::Microsecond),
            Time64(TimeUnit::Nanosecond),
            Duration(TimeUnit::Second),
            Duration(TimeUnit::Millisecond),
            Duration(TimeUnit::Microsecond),
            Duration(TimeUnit::Nanosecond),
            Interval(IntervalUnit::YearMonth),
            Interval(IntervalUnit::DayTime),
            Interval(IntervalUnit::MonthDayNano),
            Decimal128(10, 2),
            Decimal128(10, 3),
            Decimal256(50, 2),
            List(item(Int32)),
            List(item(Utf8)),
            FixedSizeList(item(Float32), 4),
            FixedSizeList(item(Float32), 2),
            Struct(Fields::from(vec![
                Field::new("x", Float32, true),
                Field::new("y", Float32, true),
            ])),
            Struct(Fields::from(vec![
                Field::new("y", Float32, true),
                Field::new("x", Float32, true),
            ])),
            Map(
                Arc::new(Field::new(
                    "entries",
                    Struct(Fields::from(vec![
                        Field::new("keys", Utf8, false),
                        Field::new("values", Int64, true),
                    ])),
                    false,
                )),
                false,
            ),
            Union(
                UnionFields::try_new(
                    vec![0, 1],
                    vec![Field::new("i", Int32, true), Field::new("s", Utf8, true)],
                )
                .unwrap(),
                UnionMode::Sparse,
            ),
        ];
        v.push(List(item(v[v.len() - 4].clone())));
        v
    }

    /// Distinct logical types get distinct tags, and arrays of every type hash (nulls,
    /// slices) without touching arrow's Display.
    #[test]
    fn every_type_has_a_distinct_tag_and_hashes() {
        let types = all_types();
        let mut seen = std::collections::BTreeMap::new();
        for dt in &types {
            assert_eq!(check_hashable(dt), Ok(()), "{dt}");
            if let Some(other) = seen.insert(type_tag(dt), dt.clone()) {
                panic!("{dt} and {other} share a tag");
            }
            let a = arrow::array::new_null_array(dt, 3);
            let h = GroupHasher::try_new(vec![("c", &a)]).unwrap();
            let _ = (h.hash(0, 3), h.hash(1, 2));
        }
        use DataType::*;
        let bad = [
            Dictionary(Box::new(Utf8), Box::new(Utf8)),
            Time32(TimeUnit::Microsecond),
            Time64(TimeUnit::Second),
            FixedSizeBinary(-1),
            List(Arc::new(Field::new_list_field(
                RunEndEncoded(
                    Arc::new(Field::new("run_ends", Int8, false)),
                    Arc::new(Field::new("values", Utf8, true)),
                ),
                true,
            ))),
        ];
        for dt in &bad {
            assert!(check_hashable(dt).is_err(), "{dt}");
        }
    }

    /// Non-null values of nested and temporal types: boundaries and nulls are encoded.
    #[test]
    fn nested_values_are_framed() {
        let one = |a: ArrayRef| GroupHasher::new(vec![("c", &a)]).hash(0, a.len()).to_hex();
        let l = |rows: Vec<Option<Vec<Option<i32>>>>| -> ArrayRef {
            Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(rows))
        };
        let a = one(l(vec![Some(vec![Some(1), Some(2)]), Some(vec![Some(3)])]));
        let b = one(l(vec![Some(vec![Some(1)]), Some(vec![Some(2), Some(3)])]));
        let c = one(l(vec![Some(vec![]), None]));
        let d = one(l(vec![None, Some(vec![])]));
        assert_ne!(a, b);
        assert_ne!(c, d);
        let st = |x: Vec<Option<f32>>, valid: Option<Vec<bool>>| -> ArrayRef {
            Arc::new(
                StructArray::try_new(
                    Fields::from(vec![Field::new("x", DataType::Float32, true)]),
                    vec![Arc::new(Float32Array::from(x)) as ArrayRef],
                    valid.map(Into::into),
                )
                .unwrap(),
            )
        };
        assert_ne!(
            one(st(vec![None, Some(1.0)], None)),
            one(st(vec![Some(0.0), Some(1.0)], Some(vec![false, true])))
        );
        // union: the type id is part of the value
        let fields = UnionFields::try_new(
            vec![0, 1],
            vec![
                Field::new("a", DataType::Int32, true),
                Field::new("b", DataType::Int32, true),
            ],
        )
        .unwrap();
        let u = |ids: Vec<i8>| -> ArrayRef {
            Arc::new(
                UnionArray::try_new(
                    fields.clone(),
                    ids.into(),
                    None,
                    vec![
                        Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef,
                        Arc::new(Int32Array::from(vec![1, 2])),
                    ],
                )
                .unwrap(),
            )
        };
        assert_ne!(one(u(vec![0, 1])), one(u(vec![0, 0])));
        // f16 and f32 widen to f64 (the tag tells them apart); NaNs are canonical
        let f: ArrayRef = Arc::new(Float64Array::from(vec![
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7FF0_0000_0000_0001),
        ]));
        let g: ArrayRef = Arc::new(Float64Array::from(vec![f64::NAN; 3]));
        assert_eq!(one(f), one(g));
        let f32s: ArrayRef = Arc::new(Float32Array::from(vec![0.5, f32::NAN]));
        let f16s = cast(&f32s, &DataType::Float16).unwrap();
        let mut e = b"quiver-group-v2".to_vec();
        put(&mut e, b"c");
        put(&mut e, &[0x0A]);
        for v in [0.5f64, f64::NAN] {
            e.push(1);
            e.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        assert_eq!(one(f16s), Hash::of(&e).to_hex());
    }

    /// Unknown layouts never fall back to Display: a Duration hashes its integer.
    #[test]
    fn durations_hash_their_integer() {
        let a: ArrayRef = Arc::new(DurationSecondArray::from(vec![60]));
        let mut e = b"quiver-group-v2".to_vec();
        put(&mut e, b"c");
        put(&mut e, &[0x24, 0x00]);
        e.push(1);
        e.extend_from_slice(&60i64.to_le_bytes());
        assert_eq!(GroupHasher::new(vec![("c", &a)]).hash(0, 1), Hash::of(&e));
    }

    fn key_cmp(a: ArrayRef) -> std::cmp::Ordering {
        key_bytes(a.as_ref(), 0)
            .unwrap()
            .cmp(&key_bytes(a.as_ref(), 1).unwrap())
    }

    macro_rules! order_prop {
        ($name:ident, $t:ty, $arr:ty) => {
            proptest! {
                #[test]
                fn $name(a in any::<$t>(), b in any::<$t>()) {
                    let arr: ArrayRef = Arc::new(<$arr>::from(vec![a, b]));
                    prop_assert!(is_key_type(arr.data_type()));
                    prop_assert_eq!(key_cmp(arr), a.cmp(&b));
                }
            }
        };
    }
    order_prop!(key_order_i8, i8, Int8Array);
    order_prop!(key_order_i16, i16, Int16Array);
    order_prop!(key_order_i32, i32, Int32Array);
    order_prop!(key_order_i64, i64, Int64Array);
    order_prop!(key_order_u8, u8, UInt8Array);
    order_prop!(key_order_u16, u16, UInt16Array);
    order_prop!(key_order_u32, u32, UInt32Array);
    order_prop!(key_order_u64, u64, UInt64Array);

    proptest! {
        #[test]
        fn key_order_strings(a in any::<String>(), b in any::<String>()) {
            let v = vec![a.as_str(), b.as_str()];
            for arr in [
                Arc::new(StringArray::from(v.clone())) as ArrayRef,
                Arc::new(LargeStringArray::from(v.clone())),
                Arc::new(StringViewArray::from(v.clone())),
            ] {
                prop_assert_eq!(key_cmp(arr), a.cmp(&b));
            }
        }

        #[test]
        fn key_order_binaries(
            a in proptest::collection::vec(any::<u8>(), 0..40),
            b in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let arr: ArrayRef = Arc::new(BinaryArray::from_vec(vec![&a, &b]));
            prop_assert_eq!(key_cmp(arr), a.cmp(&b));
        }

        #[test]
        fn key_order_near_values(a in any::<i64>(), d in -2i64..=2) {
            let b = a.saturating_add(d);
            let arr: ArrayRef = Arc::new(Int64Array::from(vec![a, b]));
            prop_assert_eq!(key_cmp(arr), a.cmp(&b));
        }

        /// Random strings (and nulls) hash alike as Utf8, LargeUtf8, Utf8View and
        /// dictionaries.
        #[test]
        fn string_layouts_hash_alike(
            v in proptest::collection::vec(proptest::option::of(".{0,20}"), 1..12)
        ) {
            let base: ArrayRef = Arc::new(StringArray::from(v.clone()));
            let h = |a: &ArrayRef| GroupHasher::new(vec![("c", a)]).hash(0, a.len());
            let want = h(&base);
            for dt in [
                DataType::LargeUtf8,
                DataType::Utf8View,
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::LargeUtf8)),
            ] {
                prop_assert_eq!(h(&cast(&base, &dt).unwrap()), want);
            }
        }
    }
}
