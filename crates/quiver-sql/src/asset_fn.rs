//! `quiver_asset(image_hash)`: the bytes of an asset (image, mask) from the catalog's
//! content-addressed asset store, so a query or a Flight stream can carry images with
//! their labels. Each hash is verified on read; an unknown or malformed hash is an error
//! naming it, an erased asset an error saying when, by whom and why it was erased. A NULL
//! hash, and the `'<erased>'` of an erased label, give NULL.

use std::hash::{Hash as StdHash, Hasher};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BinaryBuilder};
use arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::async_udf::{AsyncScalarUDF, AsyncScalarUDFImpl};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use quiver_core::{Catalog, Hash};

use crate::error::{df_err, SqlError};

/// The `quiver_asset` function of one catalog.
#[derive(Debug)]
pub struct AssetFunction {
    catalog: Catalog,
    signature: Signature,
}

impl PartialEq for AssetFunction {
    fn eq(&self, other: &Self) -> bool {
        self.catalog.store().url() == other.catalog.store().url()
    }
}
impl Eq for AssetFunction {}
impl StdHash for AssetFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.catalog.store().url().hash(state)
    }
}

/// The registered form of `quiver_asset` for `catalog`.
pub fn asset_udf(catalog: Catalog) -> ScalarUDF {
    let f = AssetFunction {
        catalog,
        signature: Signature::string(1, Volatility::Stable),
    };
    AsyncScalarUDF::new(Arc::new(f)).into_scalar_udf()
}

impl ScalarUDFImpl for AssetFunction {
    fn name(&self) -> &str {
        "quiver_asset"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Binary)
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        exec_err!("quiver_asset is evaluated asynchronously")
    }
}

#[async_trait::async_trait]
impl AsyncScalarUDFImpl for AssetFunction {
    fn ideal_batch_size(&self) -> Option<usize> {
        Some(256)
    }

    async fn invoke_async_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let Some(arg) = args.args.first() else {
            return exec_err!("quiver_asset takes one argument: an asset hash");
        };
        let arr: ArrayRef = arg.to_array(args.number_rows)?;
        let strings = arrow::compute::cast(&arr, &DataType::Utf8)?;
        let strings = strings
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .ok_or_else(|| {
                df_err(SqlError::Unsupported(
                    "quiver_asset needs a string hash".into(),
                ))
            })?;
        let assets = self.catalog.assets();
        let mut out = BinaryBuilder::new();
        for i in 0..strings.len() {
            if strings.is_null(i) {
                out.append_null();
                continue;
            }
            let s = strings.value(i);
            if s == quiver_core::erase::ERASED_TEXT {
                out.append_null();
                continue;
            }
            let Some(h) = Hash::from_hex(s) else {
                return exec_err!("quiver_asset: '{s}' is not an asset hash (64 hex characters)");
            };
            let bytes = assets
                .get(&h)
                .await
                .map_err(|e| df_err(SqlError::Core(e)))?;
            out.append_value(&bytes);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `length`/`char_length`/`character_length` and `octet_length` that also take bytes, as
/// PostgreSQL's do for `bytea`: `length(quiver_asset(image_hash))` is the size of the
/// image. Strings go to DataFusion's own function unchanged; binary arguments give their
/// byte count.
#[derive(Debug, PartialEq, Eq, StdHash)]
pub struct BinaryAwareLength {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

/// The length functions, binary-aware: DataFusion's `character_length` (with its aliases)
/// and `octet_length`, each wrapped.
pub fn length_udfs() -> Vec<ScalarUDF> {
    [
        datafusion::functions::unicode::character_length(),
        datafusion::functions::string::octet_length(),
    ]
    .into_iter()
    .map(|inner| {
        ScalarUDF::new_from_impl(BinaryAwareLength {
            inner,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

fn is_binary(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_)
    )
}

impl ScalarUDFImpl for BinaryAwareLength {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        let [t] = arg_types else {
            return exec_err!("{} takes one argument", self.inner.name());
        };
        Ok(vec![match t {
            t if is_binary(t) => t.clone(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => t.clone(),
            _ => DataType::Utf8,
        }])
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args {
            [DataType::LargeBinary] => Ok(DataType::Int64),
            [t] if is_binary(t) => Ok(DataType::Int32),
            _ => self.inner.return_type(args),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let binary = args.args.first().is_some_and(|a| is_binary(&a.data_type()));
        if !binary {
            return self.inner.invoke_with_args(args);
        }
        let scalar = matches!(args.args.first(), Some(ColumnarValue::Scalar(_)));
        let arr = args.args[0].to_array(args.number_rows)?;
        let arr = match arr.data_type() {
            DataType::BinaryView | DataType::FixedSizeBinary(_) => {
                arrow::compute::cast(&arr, &DataType::Binary)?
            }
            _ => arr,
        };
        let out = arrow::compute::kernels::length::length(&arr)?;
        if scalar {
            return Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&out, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(out))
    }
}
