//! Property test of the DML path: a random script of INSERT / UPDATE / DELETE statements
//! run on a Quiver branch leaves the same rows, and reports the same affected-row counts,
//! as plain DataFusion computes for the same script on an in-memory table. The DIFF from
//! the start of the script to its end equals the naive difference of the two row sets.
//!
//! The oracle runs INSERT through DataFusion's `MemTable::insert_into`, but UPDATE and
//! DELETE as queries that rebuild the table (`CREATE OR REPLACE TABLE t AS SELECT …`):
//! DataFusion 55's own `DELETE` on a `MemTable` deletes every row when the optimizer folds
//! the predicate to false (`WHERE a IN ('x') AND a IN ('y')` deleted 20 rows of 20; the
//! filter is gone from the plan `delete_from` receives; apache/datafusion#24654), so its
//! DML is no oracle.
//!
//! Keys are strings as in the demo dataset (`img-00000001`), so the string-key paths
//! (views read by SQL, stored as `Utf8`) are the ones exercised.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::{Array, RecordBatch, UInt64Array};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use proptest::prelude::*;
use quiver_core::Catalog;
use quiver_sql::context::QuiverContext;

const CLASSES: [&str; 4] = ["car", "cat", "dog", "owl"];

#[derive(Debug, Clone)]
enum Pred {
    Sample(u8),
    Samples(Vec<u8>),
    Class(u8),
    ScoreAbove(u8),
    ScoreNull,
    LabelBelow(u8),
    And(Box<Pred>, Box<Pred>),
}

impl Pred {
    fn sql(&self) -> String {
        match self {
            Pred::Sample(g) => format!("sample_id = '{}'", sample(*g)),
            Pred::Samples(gs) => format!(
                "sample_id IN ({})",
                gs.iter()
                    .map(|g| format!("'{}'", sample(*g)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Pred::Class(c) => format!("class = '{}'", CLASSES[*c as usize % 4]),
            Pred::ScoreAbove(s) => format!("score > {}", *s as f64 / 10.0),
            Pred::ScoreNull => "score IS NULL".into(),
            Pred::LabelBelow(l) => format!("label_id < {l}"),
            Pred::And(a, b) => format!("({}) AND ({})", a.sql(), b.sql()),
        }
    }
}

#[derive(Debug, Clone)]
enum Set {
    Class(u8),
    ScorePlus(u8),
    ScoreNull,
    ClassUpper,
}

impl Set {
    fn sql(&self) -> String {
        match self {
            Set::Class(c) => format!("class = '{}'", CLASSES[*c as usize % 4]),
            Set::ScorePlus(d) => format!("score = score + {}", *d as f64 / 10.0),
            Set::ScoreNull => "score = NULL".into(),
            Set::ClassUpper => "class = upper(class)".into(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Labels (group, label, class, score / 10, score given).
    Insert(Vec<(u8, u8, u8, u8, bool)>),
    Update(Set, Option<Pred>),
    Delete(Pred),
}

fn sample(g: u8) -> String {
    format!("img-{g:08}")
}

fn pred() -> impl Strategy<Value = Pred> {
    let leaf = prop_oneof![
        (0u8..24).prop_map(Pred::Sample),
        proptest::collection::vec(0u8..24, 1..4).prop_map(Pred::Samples),
        (0u8..4).prop_map(Pred::Class),
        (0u8..10).prop_map(Pred::ScoreAbove),
        Just(Pred::ScoreNull),
        (0u8..4).prop_map(Pred::LabelBelow),
    ];
    leaf.prop_recursive(1, 4, 2, |inner| {
        (inner.clone(), inner).prop_map(|(a, b)| Pred::And(Box::new(a), Box::new(b)))
    })
}

fn op() -> impl Strategy<Value = Op> {
    let set = prop_oneof![
        (0u8..4).prop_map(Set::Class),
        (1u8..5).prop_map(Set::ScorePlus),
        Just(Set::ScoreNull),
        Just(Set::ClassUpper),
    ];
    prop_oneof![
        3 => proptest::collection::vec((0u8..24, 0u8..4, 0u8..4, 0u8..10, any::<bool>()), 1..8)
            .prop_map(Op::Insert),
        2 => (set, proptest::option::of(pred())).prop_map(|(s, p)| Op::Update(s, p)),
        2 => pred().prop_map(Op::Delete),
    ]
}

const CREATE: &str = "CREATE TABLE t (sample_id VARCHAR NOT NULL, label_id BIGINT NOT NULL, class VARCHAR, score DOUBLE)";
const SELECT: &str = "SELECT sample_id, label_id, class, score FROM t ORDER BY sample_id, label_id";

fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let opts = FormatOptions::default();
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .zip(&fmts)
                    .map(|(c, f)| {
                        if c.is_null(r) {
                            "NULL".to_string()
                        } else {
                            f.value(r).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    out
}

fn count(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .filter(|b| b.num_columns() == 1 && b.num_rows() == 1)
        .filter_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .map(|a| a.value(0))
        })
        .sum()
}

/// One statement of a script: the SQL Quiver runs, and how the oracle runs it (the
/// statements that change its table, and a query counting the affected rows, if not the
/// statement's own count).
struct Step {
    sql: String,
    oracle: Vec<String>,
    affected: Option<String>,
}

/// The statements of a script; inserts leave out keys the table already has (Quiver
/// refuses a duplicate key, a MemTable would keep both rows).
fn statements(ops: &[Op], keys: &mut BTreeSet<(u8, u8)>) -> Vec<Step> {
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Insert(rows) => {
                let mut values = Vec::new();
                for (g, l, c, s, given) in rows {
                    if !keys.insert((*g, *l)) {
                        continue;
                    }
                    let score = if *given {
                        format!("{}", *s as f64 / 10.0)
                    } else {
                        "NULL".into()
                    };
                    values.push(format!(
                        "('{}', {l}, '{}', {score})",
                        sample(*g),
                        CLASSES[*c as usize % 4]
                    ));
                }
                if !values.is_empty() {
                    let sql = format!("INSERT INTO t VALUES {}", values.join(", "));
                    out.push(Step {
                        oracle: vec![sql.clone()],
                        sql,
                        affected: None,
                    });
                }
            }
            Op::Update(set, p) => {
                let cond = p.as_ref().map_or("true".to_string(), |p| p.sql());
                let (col, value) = set
                    .sql()
                    .split_once(" = ")
                    .map(|(c, v)| (c.to_string(), v.to_string()))
                    .unwrap();
                let cols = ["sample_id", "label_id", "class", "score"]
                    .iter()
                    .map(|c| {
                        if *c == col {
                            format!("CASE WHEN ({cond}) IS TRUE THEN {value} ELSE {c} END AS {c}")
                        } else {
                            c.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                out.push(Step {
                    sql: format!(
                        "UPDATE t SET {}{}",
                        set.sql(),
                        p.as_ref()
                            .map(|p| format!(" WHERE {}", p.sql()))
                            .unwrap_or_default()
                    ),
                    oracle: vec![format!("CREATE OR REPLACE TABLE t AS SELECT {cols} FROM t")],
                    affected: Some(format!("SELECT count(*) FROM t WHERE ({cond}) IS TRUE")),
                });
            }
            Op::Delete(p) => out.push(Step {
                sql: format!("DELETE FROM t WHERE {}", p.sql()),
                oracle: vec![format!(
                    "CREATE OR REPLACE TABLE t AS SELECT * FROM t WHERE ({}) IS NOT TRUE",
                    p.sql()
                )],
                affected: Some(format!(
                    "SELECT count(*) FROM t WHERE ({}) IS TRUE",
                    p.sql()
                )),
            }),
        }
    }
    out
}

/// Run a step on the oracle; returns the affected rows.
async fn oracle(df: &SessionContext, step: &Step) -> u64 {
    let mut n = match &step.affected {
        Some(q) => {
            let b = df.sql(q).await.unwrap().collect().await.unwrap();
            b[0].column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap()
                .value(0) as u64
        }
        None => 0,
    };
    for st in &step.oracle {
        let out = df
            .sql(st)
            .await
            .unwrap_or_else(|e| panic!("datafusion: {st}: {e}"))
            .collect()
            .await
            .unwrap();
        if step.affected.is_none() {
            n += count(&out);
        }
    }
    n
}

/// Rows keyed by (sample, label).
fn by_key(rows: &[Vec<String>]) -> BTreeMap<(String, String), Vec<String>> {
    rows.iter()
        .map(|r| ((r[0].clone(), r[1].clone()), r.clone()))
        .collect()
}

async fn run(start: Vec<Op>, script: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let q = QuiverContext::new(cat).await.unwrap();
    let dataset = CREATE.replacen("CREATE TABLE", "CREATE DATASET", 1);
    q.sql(&format!("{dataset} KEY (sample_id, label_id)"))
        .await
        .unwrap();
    let df = SessionContext::new();
    df.sql(CREATE).await.unwrap().collect().await.unwrap();

    let mut keys = BTreeSet::new();
    // the starting rows, then a tag to diff from
    for step in statements(&start, &mut keys) {
        q.sql(&step.sql).await.unwrap();
        oracle(&df, &step).await;
    }
    q.sql("CREATE TAG 'start' ON t").await.unwrap();
    let before = rows(&q.sql(SELECT).await.unwrap());

    // deletes free keys for later inserts: track what the table holds after each statement
    for op in script {
        for step in statements(std::slice::from_ref(&op), &mut keys) {
            let st = &step.sql;
            let got = q
                .sql(st)
                .await
                .unwrap_or_else(|e| panic!("quiver: {st}: {e}"));
            let want = oracle(&df, &step).await;
            assert_eq!(count(&got), want, "affected rows of {st}");
            let (a, b) = (
                rows(&q.sql(SELECT).await.unwrap()),
                rows(&df.sql(SELECT).await.unwrap().collect().await.unwrap()),
            );
            assert_eq!(a, b, "rows after {st}");
            keys = a
                .iter()
                .map(|r| {
                    let g: u8 = r[0]["img-".len()..].parse().unwrap();
                    (g, r[1].parse().unwrap())
                })
                .collect();
        }
    }

    // DIFF start..main equals the naive difference
    let after = rows(&q.sql(SELECT).await.unwrap());
    let (b, a) = (by_key(&before), by_key(&after));
    let mut want: Vec<Vec<String>> = Vec::new();
    for k in b.keys().chain(a.keys()).collect::<BTreeSet<_>>() {
        let change = match (b.get(k), a.get(k)) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            (Some(x), Some(y)) if x != y => "modified",
            _ => continue,
        };
        want.push(vec![k.0.clone(), k.1.clone(), change.to_string()]);
    }
    let got = rows(
        &q.sql(
            "SELECT sample_id, label_id, change FROM quiver_diff('t', 'start', 'main') \
             ORDER BY sample_id, label_id",
        )
        .await
        .unwrap(),
    );
    assert_eq!(got, want, "DIFF start..main");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20, .. ProptestConfig::default() })]
    #[test]
    fn dml_scripts_match_plain_datafusion(
        start in proptest::collection::vec(op(), 1..4),
        script in proptest::collection::vec(op(), 1..10),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(start, script));
    }
}
