//! Results in the layout Flight clients get ([`crate::server::wire_schema`]): string and
//! binary views flattened into plain arrays, in the tasks that run the plan's partitions.
//!
//! A full scan of the 13-column label table spent about a fifth of the server's CPU in
//! arrow's view cast (a builder append per value, a `memcpy` call per string), all of it on
//! the one task that feeds the response. [`flatten_views`] copies the short strings that
//! views hold inline (≤ 12 bytes: sample ids, classes, reviewers) with one fixed-size move
//! each, and [`wire_stream`] converts each partition's batches in that partition's own task,
//! so the conversion runs on every core beside the scan instead of after it. A plain read
//! (scan, filter, projection) runs with [`READ_BATCH_ROWS`] rows per batch: a client pays
//! per message, and a numeric projection of 10M labels through ADBC took 12-16% less time.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, GenericByteArray, GenericByteViewArray};
use arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    BinaryType, BinaryViewType, ByteArrayType, ByteViewType, DataType, SchemaRef, StringViewType,
    Utf8Type,
};
use arrow::error::ArrowError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::{
    RecordBatchReceiverStreamBuilder, RecordBatchStreamAdapter,
};
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion::prelude::DataFrame;
use futures::StreamExt;

use crate::error::Result;

/// Batches in flight per partition between its task and the response.
const PER_PARTITION: usize = 2;

/// The values of views as one contiguous buffer with offsets (null slots empty).
fn flatten_views(
    views: &[u128],
    buffers: &[Buffer],
    nulls: Option<&NullBuffer>,
) -> std::result::Result<(OffsetBuffer<i32>, Buffer), ArrowError> {
    let total: usize = views.iter().map(|v| *v as u32 as usize).sum();
    if i32::try_from(total).is_err() {
        return Err(ArrowError::ComputeError(format!(
            "a column of {total} bytes of strings does not fit one Utf8 array"
        )));
    }
    // 12 bytes of slack: inline values are copied as 12 bytes, then cut to their length
    let mut values: Vec<u8> = Vec::with_capacity(total + 12);
    let mut offsets: Vec<i32> = Vec::with_capacity(views.len() + 1);
    offsets.push(0);
    for (i, &v) in views.iter().enumerate() {
        if nulls.is_some_and(|n| n.is_null(i)) {
            offsets.push(values.len() as i32);
            continue;
        }
        let len = v as u32 as usize;
        if len <= 12 {
            let at = values.len();
            values.extend_from_slice(&v.to_le_bytes()[4..16]);
            values.truncate(at + len);
        } else {
            let buffer = (v >> 64) as u32 as usize;
            let offset = (v >> 96) as u32 as usize;
            let bytes = buffers
                .get(buffer)
                .and_then(|b| b.as_slice().get(offset..offset + len))
                .ok_or_else(|| {
                    ArrowError::ComputeError(format!(
                        "a view names bytes {offset}..{} of data buffer {buffer}, which the \
                         array does not hold",
                        offset + len
                    ))
                })?;
            values.extend_from_slice(bytes);
        }
        offsets.push(values.len() as i32);
    }
    Ok((
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(values),
    ))
}

/// `column` flattened from views of `V` into a plain array of `O`, when it is one.
fn flattened<V: ByteViewType, O: ByteArrayType<Offset = i32>>(
    column: &ArrayRef,
) -> Option<std::result::Result<ArrayRef, ArrowError>> {
    let a = column.as_any().downcast_ref::<GenericByteViewArray<V>>()?;
    Some(
        flatten_views(a.views(), a.data_buffers(), a.nulls()).and_then(|(offsets, values)| {
            let flat = GenericByteArray::<O>::try_new(offsets, values, a.nulls().cloned())?;
            Ok(Arc::new(flat) as ArrayRef)
        }),
    )
}

/// `column` in the wire type `to`: views flattened ([`flatten_views`]), anything else
/// through arrow's cast.
pub(crate) fn to_wire_array(
    column: &ArrayRef,
    to: &DataType,
) -> std::result::Result<ArrayRef, ArrowError> {
    let flat = match (column.data_type(), to) {
        (DataType::Utf8View, DataType::Utf8) => flattened::<StringViewType, Utf8Type>(column),
        (DataType::BinaryView, DataType::Binary) => flattened::<BinaryViewType, BinaryType>(column),
        _ => None,
    };
    flat.unwrap_or_else(|| arrow::compute::cast(column, to))
}

/// Rows per batch of a plain read sent to a client (as trainer reads use): fewer, larger
/// Flight messages. Plans that aggregate, sort or join keep the session's batch size, which
/// their operators are tuned for.
const READ_BATCH_ROWS: usize = 65_536;

/// Whether `plan` only scans, filters and projects (its batches go to the client as read).
fn plain_read(plan: &LogicalPlan) -> bool {
    matches!(
        plan,
        LogicalPlan::TableScan(_)
            | LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::SubqueryAlias(_)
    ) && plan.inputs().into_iter().all(plain_read)
}

/// `df` with [`READ_BATCH_ROWS`] rows per batch when it is a plain read and its session
/// has DataFusion's default batch size (an operator's setting is kept).
fn with_read_batches(df: DataFrame) -> DataFrame {
    if !plain_read(df.logical_plan()) {
        return df;
    }
    let (mut state, plan) = df.into_parts();
    let default = datafusion::prelude::SessionConfig::new().batch_size();
    if state.config().batch_size() == default {
        let config = state.config().clone().with_batch_size(READ_BATCH_ROWS);
        *state.config_mut() = config;
    }
    DataFrame::new(state, plan)
}

/// Run `df` with its partitions' batches converted to `wire` in the partitions' own tasks,
/// merged in the order they come (a plan with one partition, e.g. one that sorts, keeps its
/// order). Dropping the stream stops every task.
pub(crate) async fn wire_stream(
    df: DataFrame,
    wire: SchemaRef,
) -> Result<SendableRecordBatchStream> {
    let df = with_read_batches(df);
    let ctx = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    let partitions = plan.output_partitioning().partition_count();
    if partitions <= 1 {
        let stream = datafusion::physical_plan::execute_stream(plan, ctx)?;
        let w = wire.clone();
        let converted =
            stream.map(move |b| b.and_then(|b| crate::server::to_wire(b, &w).map_err(Into::into)));
        return Ok(Box::pin(RecordBatchStreamAdapter::new(wire, converted)));
    }
    let mut builder =
        RecordBatchReceiverStreamBuilder::new(wire.clone(), PER_PARTITION * partitions);
    for i in 0..partitions {
        let (tx, plan, ctx, wire) = (builder.tx(), plan.clone(), ctx.clone(), wire.clone());
        builder.spawn(async move {
            let mut stream = plan.execute(i, ctx)?;
            while let Some(b) = stream.next().await {
                let b = b.and_then(|b| crate::server::to_wire(b, &wire).map_err(Into::into));
                let failed = b.is_err();
                if tx.send(b).await.is_err() || failed {
                    break; // the response is gone, or this error ends it
                }
            }
            Ok(())
        });
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::{BinaryViewArray, StringArray, StringViewArray};

    /// Views of every shape (inline, exactly 12 bytes, long, empty, null, sliced) come out
    /// as the same values as arrow's own cast gives.
    #[test]
    fn views_flatten_like_arrows_cast() {
        let values: Vec<Option<&str>> = vec![
            Some("img-00000001"),
            Some(""),
            None,
            Some("a considerably longer string than twelve bytes"),
            Some("cat"),
            Some("traffic light"),
            None,
            Some("ünïcødé-ok"),
            Some("twelve bytes"),
        ];
        let views = StringViewArray::from(values.clone());
        for a in [views.clone(), views.slice(1, 6), views.slice(3, 0)] {
            let col: ArrayRef = Arc::new(a);
            let ours = to_wire_array(&col, &DataType::Utf8).unwrap();
            let theirs = arrow::compute::cast(&col, &DataType::Utf8).unwrap();
            assert_eq!(ours.as_ref(), theirs.as_ref());
            ours.to_data().validate_full().unwrap();
        }
        let bin: Vec<Option<&[u8]>> = vec![Some(b"\x00\x01"), None, Some(&[7u8; 40]), Some(b"")];
        let col: ArrayRef = Arc::new(BinaryViewArray::from(bin));
        let ours = to_wire_array(&col, &DataType::Binary).unwrap();
        let theirs = arrow::compute::cast(&col, &DataType::Binary).unwrap();
        assert_eq!(ours.as_ref(), theirs.as_ref());
    }

    /// Plain reads (scan, filter, projection, alias) get large batches; plans that
    /// aggregate, sort, limit or join keep the session's; a session whose batch size was
    /// set keeps it.
    #[tokio::test]
    async fn plain_reads_get_large_batches() {
        use datafusion::prelude::{SessionConfig, SessionContext};
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (a INT, b VARCHAR) AS VALUES (1, 'x'), (2, 'y')")
            .await
            .unwrap();
        let batch_of = |df: DataFrame| {
            with_read_batches(df)
                .task_ctx()
                .session_config()
                .batch_size()
        };
        let default = SessionConfig::new().batch_size();
        for q in [
            "SELECT * FROM t",
            "SELECT a FROM t WHERE b = 'x'",
            "SELECT s.a FROM (SELECT a, b FROM t) AS s WHERE s.a > 1",
        ] {
            assert_eq!(batch_of(ctx.sql(q).await.unwrap()), READ_BATCH_ROWS, "{q}");
        }
        for q in [
            "SELECT b, count(*) FROM t GROUP BY b",
            "SELECT * FROM t ORDER BY a",
            "SELECT * FROM t LIMIT 1",
            "SELECT x.a FROM t x JOIN t y ON x.a = y.a",
        ] {
            assert_eq!(batch_of(ctx.sql(q).await.unwrap()), default, "{q}");
        }
        let set = SessionContext::new_with_config(SessionConfig::new().with_batch_size(100));
        set.sql("CREATE TABLE t (a INT) AS VALUES (1)")
            .await
            .unwrap();
        assert_eq!(batch_of(set.sql("SELECT * FROM t").await.unwrap()), 100);
    }

    /// A plan of several partitions: every partition's rows arrive, converted to the wire
    /// layout; an error while a partition runs ends the stream with that error.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partitions_arrive_converted_and_errors_end_the_stream() {
        use arrow::array::{Int64Array, RecordBatch};
        use arrow::datatypes::{Field, Schema};
        use datafusion::datasource::MemTable;
        use datafusion::prelude::{SessionConfig, SessionContext};
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("s", DataType::Utf8View, true),
        ]));
        let part = |from: i64, n: i64| {
            let ids: Vec<i64> = (from..from + n).collect();
            let s: Vec<Option<String>> = ids.iter().map(|i| Some(format!("v{i}"))).collect();
            let b = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringViewArray::from(s)),
                ],
            )
            .unwrap();
            vec![b]
        };
        let table = MemTable::try_new(schema.clone(), vec![part(0, 100), part(100, 50)]).unwrap();
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        ctx.register_table("t", Arc::new(table)).unwrap();

        let df = ctx.sql("SELECT id, s FROM t").await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        assert_eq!(plan.output_partitioning().partition_count(), 2);
        let wire: SchemaRef = Arc::new(crate::server::wire_schema(df.schema().as_arrow()));
        let batches: Vec<_> = wire_stream(df, wire.clone())
            .await
            .unwrap()
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        let mut ids = Vec::new();
        for b in &batches {
            assert_eq!(b.schema().field(1).data_type(), &DataType::Utf8);
            let id = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            let s = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            for i in 0..b.num_rows() {
                assert_eq!(s.value(i), format!("v{}", id.value(i)));
                ids.push(id.value(i));
            }
        }
        ids.sort();
        assert_eq!(ids, (0..150).collect::<Vec<_>>());

        // `s` is no number: the cast fails while the partitions run
        let df = ctx
            .sql("SELECT CAST(s AS BIGINT) AS n FROM t")
            .await
            .unwrap();
        let wire: SchemaRef = Arc::new(crate::server::wire_schema(df.schema().as_arrow()));
        let items: Vec<_> = wire_stream(df, wire).await.unwrap().collect().await;
        let err = items
            .iter()
            .find_map(|r| r.as_ref().err())
            .expect("an error");
        assert!(err.to_string().contains("v"), "{err}");
    }

    /// A null slot whose view still names bytes (some kernels leave them) is empty.
    #[test]
    fn null_slots_are_empty_whatever_their_view_says() {
        let a = StringViewArray::from(vec![Some("a long value, longer than twelve"), Some("x")]);
        let nulls = NullBuffer::from(vec![false, true]);
        let a = StringViewArray::try_new(a.views().clone(), a.data_buffers().to_vec(), Some(nulls))
            .unwrap();
        let col: ArrayRef = Arc::new(a);
        let out = to_wire_array(&col, &DataType::Utf8).unwrap();
        let s = out.as_any().downcast_ref::<StringArray>().unwrap();
        assert!(s.is_null(0));
        assert_eq!(s.value_length(0), 0);
        assert_eq!(s.value(1), "x");
    }
}
