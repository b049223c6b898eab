//! Canonical encodings of label data: order-preserving key bytes, the version-independent
//! group hash, and per-group column statistics.
//!
//! The group hash is blake3 over, in order: the tag `quiver-group-v1`, then for each column
//! of the dataset schema its name and a type tag, then each row (sorted by label key) as a
//! sequence of values. A value is `0x00` for null, or `0x01` followed by: integers widened
//! to i64 (signed) or u64 (unsigned) little-endian; floats as f64 bits little-endian with NaN
//! canonicalised; booleans one byte; strings and binaries a u64 LE length then the bytes;
//! dates/timestamps/durations as their i64 physical value (the unit is in the type tag);
//! any other type as the UTF-8 display string, length-prefixed.

use arrow::array::{Array, ArrayRef, AsArray};
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

fn type_tag(dt: &DataType) -> String {
    dt.to_string()
}

/// Computes group hashes over row ranges of one (sorted) record batch.
pub struct GroupHasher<'a> {
    columns: Vec<(&'a str, &'a ArrayRef)>,
    header: Vec<u8>,
}

impl<'a> GroupHasher<'a> {
    /// Prepare a hasher for `columns` (name, array) in schema order.
    pub fn new(columns: Vec<(&'a str, &'a ArrayRef)>) -> Self {
        let mut header = b"quiver-group-v1".to_vec();
        for (name, arr) in &columns {
            put_bytes(&mut header, name.as_bytes());
            put_bytes(&mut header, type_tag(arr.data_type()).as_bytes());
        }
        GroupHasher { columns, header }
    }

    /// Hash rows `start..start+len` (already sorted by label key).
    pub fn hash(&self, start: usize, len: usize) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(&self.header);
        let mut buf = Vec::with_capacity(256);
        for row in start..start + len {
            buf.clear();
            for (_, arr) in &self.columns {
                encode_value(&mut buf, arr.as_ref(), row);
            }
            h.update(&buf);
        }
        Hash(*h.finalize().as_bytes())
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
    buf.extend_from_slice(b);
}

fn encode_value(buf: &mut Vec<u8>, array: &dyn Array, row: usize) {
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
    macro_rules! float {
        ($v:expr) => {{
            let v: f64 = $v;
            let bits = if v.is_nan() {
                f64::NAN.to_bits()
            } else {
                v.to_bits()
            };
            buf.extend_from_slice(&bits.to_le_bytes())
        }};
    }
    match array.data_type() {
        DataType::Boolean => buf.push(array.as_boolean().value(row) as u8),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => uint!(UInt8Type),
        DataType::UInt16 => uint!(UInt16Type),
        DataType::UInt32 => uint!(UInt32Type),
        DataType::UInt64 => uint!(UInt64Type),
        DataType::Float32 => float!(array.as_primitive::<Float32Type>().value(row) as f64),
        DataType::Float64 => float!(array.as_primitive::<Float64Type>().value(row)),
        DataType::Date32 => int!(Date32Type),
        DataType::Date64 => int!(Date64Type),
        DataType::Timestamp(TimeUnit::Second, _) => int!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => int!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => int!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => int!(TimestampNanosecondType),
        DataType::Utf8 => put_bytes(buf, array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => put_bytes(buf, array.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => put_bytes(buf, array.as_string_view().value(row).as_bytes()),
        DataType::Binary => put_bytes(buf, array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => put_bytes(buf, array.as_binary::<i64>().value(row)),
        _ => {
            let s = arrow::util::display::array_value_to_string(array, row).unwrap_or_default();
            put_bytes(buf, s.as_bytes())
        }
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
pub fn column_stats(array: &dyn Array, start: usize, len: usize) -> ColumnStats {
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
    use arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

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
}
