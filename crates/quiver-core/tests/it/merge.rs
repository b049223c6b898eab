use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use quiver_core::{Catalog, CoreError, DatasetOptions, MergeKind, Resolution, VersionSpec};

use crate::common::*;

type Row = (Option<String>, Option<f64>);
type Table = BTreeMap<(String, i64), Row>;

fn table(rows: Vec<(String, i64, Option<String>, Option<f64>)>) -> Table {
    rows.into_iter().map(|r| ((r.0, r.1), (r.2, r.3))).collect()
}

async fn content(ds: &quiver_core::Dataset, branch: &str) -> Table {
    table(rows(&ds.head(branch).await.unwrap()).await)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Random edits on a branch: inserts, updates and deletes of labels and whole groups.
async fn random_edits(
    ds: &quiver_core::Dataset,
    branch: &str,
    rng: &mut Rng,
    groups: u64,
    tag: &str,
) {
    let mut txn = ds.begin(branch).await.unwrap();
    let mut ups: BTreeMap<(String, i64), (String, f64)> = BTreeMap::new();
    for _ in 0..(3 + rng.next() % 12) {
        let g = format!("g{:03}", rng.next() % groups);
        let l = (rng.next() % 4) as i64;
        match rng.next() % 4 {
            0 => {
                // delete one label
                ups.remove(&(g.clone(), l));
                let keys = arrow::array::RecordBatch::try_new(
                    std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
                        arrow::datatypes::Field::new(
                            "sample_id",
                            arrow::datatypes::DataType::Utf8,
                            false,
                        ),
                        arrow::datatypes::Field::new(
                            "label_id",
                            arrow::datatypes::DataType::Int64,
                            false,
                        ),
                    ])),
                    vec![
                        std::sync::Arc::new(arrow::array::StringArray::from(vec![g.clone()])),
                        std::sync::Arc::new(arrow::array::Int64Array::from(vec![l])),
                    ],
                )
                .unwrap();
                txn.delete(&keys).await.unwrap();
            }
            _ => {
                // shared vocabulary so both sides sometimes make the same change
                let class = ["car", "dog", tag][(rng.next() % 3) as usize].to_string();
                ups.insert((g.clone(), l), (class, (rng.next() % 3) as f64));
            }
        }
        if !ups.is_empty() && rng.next().is_multiple_of(3) {
            let rows: Vec<(&str, i64, &str, f64)> = ups
                .iter()
                .map(|((g, l), (c, s))| (g.as_str(), *l, c.as_str(), *s))
                .collect();
            txn.upsert(&batch(&rows)).await.unwrap();
            ups.clear();
        }
    }
    if !ups.is_empty() {
        let rows: Vec<(&str, i64, &str, f64)> = ups
            .iter()
            .map(|((g, l), (c, s))| (g.as_str(), *l, c.as_str(), *s))
            .collect();
        txn.upsert(&batch(&rows)).await.unwrap();
    }
    txn.commit(&format!("edits on {branch}")).await.unwrap();
}

/// Naive label-level three-way merge over full tables: (merged-with-ours-on-conflict, conflicts).
fn naive(base: &Table, ours: &Table, theirs: &Table) -> (Table, BTreeSet<(String, i64)>) {
    let keys: BTreeSet<&(String, i64)> = base
        .keys()
        .chain(ours.keys())
        .chain(theirs.keys())
        .collect();
    let mut out = Table::new();
    let mut conflicts = BTreeSet::new();
    for k in keys {
        let (b, o, t) = (base.get(k), ours.get(k), theirs.get(k));
        let pick = if o == t || t == b {
            o
        } else if o == b {
            t
        } else {
            conflicts.insert(k.clone());
            o
        };
        if let Some(v) = pick {
            out.insert(k.clone(), v.clone());
        }
    }
    (out, conflicts)
}

async fn merge_case(seed: u64) {
    let cat = Catalog::open("memory://").await.unwrap();
    let opts = DatasetOptions {
        leaf_target: 4,
        ..Default::default()
    };
    let ds = cat.create_dataset("labels", schema(), opts).await.unwrap();
    let mut rng = Rng(seed);
    let groups = 20 + rng.next() % 40;
    let mut init = Vec::new();
    for g in 0..groups {
        for l in 0..(1 + rng.next() % 3) as i64 {
            init.push((format!("g{g:03}"), l, "base".to_string(), 0.0));
        }
    }
    let r: Vec<(&str, i64, &str, f64)> = init
        .iter()
        .map(|x| (x.0.as_str(), x.1, x.2.as_str(), x.3))
        .collect();
    ds.append("main", &[batch(&r)], "base").await.unwrap();
    ds.create_branch("theirs", &VersionSpec::main())
        .await
        .unwrap();
    let base = content(&ds, "main").await;
    random_edits(&ds, "main", &mut rng, groups + 3, "ours").await;
    random_edits(&ds, "theirs", &mut rng, groups + 3, "theirs").await;
    let (ours, theirs) = (content(&ds, "main").await, content(&ds, "theirs").await);
    let (expected, expected_conflicts) = naive(&base, &ours, &theirs);
    let head_before = ds.branch_head("main").await.unwrap().commit.id;

    // the preview predicts the merge and writes nothing
    let theirs_spec = VersionSpec::Branch("theirs".into());
    let preview = ds.merge_preview(&theirs_spec, "main").await.unwrap();
    assert!(
        ds.pending_merge("main").await.unwrap().is_none(),
        "seed {seed}"
    );
    assert_eq!(
        ds.branch_head("main").await.unwrap().commit.id,
        head_before,
        "seed {seed}"
    );
    let preview_conflicts: BTreeSet<(String, i64)> = preview
        .conflicts
        .iter()
        .map(|c| {
            (
                String::from_utf8(c.group.clone()).unwrap(),
                i64::from_be_bytes(c.label.clone().try_into().unwrap()) ^ i64::MIN,
            )
        })
        .collect();
    assert_eq!(preview_conflicts, expected_conflicts, "seed {seed}");
    if expected_conflicts.is_empty() {
        let added = expected.keys().filter(|k| !ours.contains_key(*k)).count() as u64;
        let removed = ours.keys().filter(|k| !expected.contains_key(*k)).count() as u64;
        let modified = expected
            .iter()
            .filter(|(k, v)| ours.get(*k).is_some_and(|o| o != *v))
            .count() as u64;
        assert_eq!(
            (
                preview.labels_added,
                preview.labels_removed,
                preview.labels_modified
            ),
            (added, removed, modified),
            "seed {seed}: {preview:?}"
        );
    }

    let report = ds
        .merge(
            &VersionSpec::Branch("theirs".into()),
            "main",
            None,
            "tester",
        )
        .await
        .unwrap();
    assert_eq!(preview.kind, report.kind, "seed {seed}");
    assert_eq!(preview.groups_changed, report.groups_changed, "seed {seed}");
    if expected_conflicts.is_empty() {
        assert!(
            matches!(report.kind, MergeKind::Merged | MergeKind::UpToDate),
            "seed {seed}: {report:?}"
        );
        assert_eq!(content(&ds, "main").await, expected, "seed {seed}");
        if report.kind == MergeKind::Merged {
            let c = report.commit.unwrap();
            assert_eq!(c.parents.len(), 2);
            // the summary counts label changes relative to our side (first parent)
            let s = &c.data.summary;
            let added = expected.keys().filter(|k| !ours.contains_key(*k)).count();
            let removed = ours.keys().filter(|k| !expected.contains_key(*k)).count();
            let modified = expected
                .iter()
                .filter(|(k, v)| ours.get(*k).is_some_and(|o| o != *v))
                .count();
            assert_eq!(
                (s.labels_added, s.labels_removed, s.labels_modified),
                (added as u64, removed as u64, modified as u64),
                "seed {seed}: summary {s:?}"
            );
        }
    } else {
        assert_eq!(report.kind, MergeKind::Conflicts, "seed {seed}");
        assert_eq!(
            ds.branch_head("main").await.unwrap().commit.id,
            head_before,
            "no commit on conflicts"
        );
        let got: BTreeSet<(String, i64)> = ds
            .conflicts("main")
            .await
            .unwrap()
            .iter()
            .map(|c| {
                (
                    String::from_utf8(c.group.clone()).unwrap(),
                    i64::from_be_bytes(c.label.clone().try_into().unwrap()) ^ i64::MIN,
                )
            })
            .collect();
        assert_eq!(got, expected_conflicts, "seed {seed}");
        // resolve with ours: content = naive merge taking ours on conflicts
        ds.resolve_conflicts("main", Resolution::Ours, None)
            .await
            .unwrap();
        let c = ds.commit_merge("main", None, "tester").await.unwrap();
        assert_eq!(c.parents.len(), 2);
        assert_eq!(content(&ds, "main").await, expected, "seed {seed}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn merge_equals_naive_three_way_merge(seed in any::<u64>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(merge_case(seed));
    }
}

#[tokio::test]
async fn fast_forward_up_to_date_and_label_level_merge() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append(
        "main",
        &[batch(&[
            ("img1", 1, "car", 0.1),
            ("img1", 2, "dog", 0.2),
            ("img2", 1, "cat", 0.3),
        ])],
        "base",
    )
    .await
    .unwrap();
    ds.create_branch("relabel", &VersionSpec::main())
        .await
        .unwrap();
    let c = ds
        .upsert(
            "relabel",
            &[batch(&[("img1", 1, "truck", 0.9)])],
            "relabel car",
        )
        .await
        .unwrap();
    // main is an ancestor: fast-forward, no new commit
    let r = ds
        .merge(&VersionSpec::Branch("relabel".into()), "main", None, "t")
        .await
        .unwrap();
    assert_eq!(r.kind, MergeKind::FastForward);
    assert_eq!(ds.branch_head("main").await.unwrap().commit.id, c.id);
    let r = ds
        .merge(&VersionSpec::Branch("relabel".into()), "main", None, "t")
        .await
        .unwrap();
    assert_eq!(r.kind, MergeKind::UpToDate);

    // two curators edit different labels of the same image: no conflict
    ds.upsert(
        "relabel",
        &[batch(&[("img1", 2, "wolf", 0.5)])],
        "curator A",
    )
    .await
    .unwrap();
    ds.upsert("main", &[batch(&[("img1", 1, "bus", 0.7)])], "curator B")
        .await
        .unwrap();
    let r = ds
        .merge(
            &VersionSpec::Branch("relabel".into()),
            "main",
            Some("merge curators"),
            "t",
        )
        .await
        .unwrap();
    assert_eq!(r.kind, MergeKind::Merged);
    assert_eq!(r.groups_label_merged, 1);
    let t = content(&ds, "main").await;
    assert_eq!(t[&("img1".to_string(), 1)].0.as_deref(), Some("bus"));
    assert_eq!(t[&("img1".to_string(), 2)].0.as_deref(), Some("wolf"));
    assert_eq!(r.commit.unwrap().data.message, "merge curators");
}

#[tokio::test]
async fn conflicts_are_surfaced_resolved_and_aborted() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append(
        "main",
        &[batch(&[("img1", 1, "car", 0.1), ("img2", 1, "cat", 0.3)])],
        "base",
    )
    .await
    .unwrap();
    ds.create_tag("v1", &VersionSpec::main()).await.unwrap();
    ds.create_branch("b", &VersionSpec::main()).await.unwrap();
    ds.upsert(
        "b",
        &[batch(&[
            ("img1", 1, "truck", 0.9),
            ("img2", 1, "lion", 0.3),
        ])],
        "b",
    )
    .await
    .unwrap();
    ds.upsert(
        "main",
        &[batch(&[("img1", 1, "bus", 0.7), ("img2", 1, "tiger", 0.3)])],
        "main",
    )
    .await
    .unwrap();
    let head = ds.branch_head("main").await.unwrap().commit.id;
    let r = ds
        .merge(&VersionSpec::Branch("b".into()), "main", None, "t")
        .await
        .unwrap();
    assert_eq!((r.kind, r.conflicts), (MergeKind::Conflicts, 2));
    assert_eq!(ds.branch_head("main").await.unwrap().commit.id, head);
    // the conflict table has base/ours/theirs columns
    let table = ds
        .conflicts_table(&ds.conflicts("main").await.unwrap())
        .unwrap();
    assert_eq!(table.num_rows(), 2);
    assert!(table.schema().field_with_name("theirs_class").is_ok());
    assert!(table.schema().field_with_name("base_score").is_ok());
    // a second merge while one is pending is refused
    let e = ds
        .merge(&VersionSpec::Branch("b".into()), "main", None, "t")
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::MergePending { .. }), "{e}");
    // committing with conflicts left is refused
    let e = ds.commit_merge("main", None, "t").await.unwrap_err();
    assert!(
        matches!(e, CoreError::UnresolvedConflicts { count: 2, .. }),
        "{e}"
    );
    // resolve one with theirs, the other with ours
    let only: BTreeSet<(Vec<u8>, Vec<u8>)> = [(
        b"img1".to_vec(),
        ((1i64 as u64) ^ (1u64 << 63)).to_be_bytes().to_vec(),
    )]
    .into();
    assert_eq!(
        ds.resolve_conflicts("main", Resolution::Theirs, Some(&only))
            .await
            .unwrap(),
        1
    );
    assert_eq!(ds.conflicts("main").await.unwrap().len(), 1);
    ds.resolve_conflicts("main", Resolution::Ours, None)
        .await
        .unwrap();
    let c = ds
        .commit_merge("main", Some("resolved"), "t")
        .await
        .unwrap();
    assert_eq!(c.parents.len(), 2);
    let t = content(&ds, "main").await;
    assert_eq!(t[&("img1".to_string(), 1)].0.as_deref(), Some("truck"));
    assert_eq!(t[&("img2".to_string(), 1)].0.as_deref(), Some("tiger"));
    assert!(matches!(
        ds.abort_merge("main").await.unwrap_err(),
        CoreError::NoPendingMerge { .. }
    ));

    // abort drops a pending merge and leaves the branch as it was
    ds.create_branch("c", &VersionSpec::Tag("v1".into()))
        .await
        .unwrap();
    ds.upsert("c", &[batch(&[("img2", 1, "puma", 0.3)])], "c")
        .await
        .unwrap();
    let head = ds.branch_head("main").await.unwrap().commit.id;
    let r = ds
        .merge(&VersionSpec::Branch("c".into()), "main", None, "t")
        .await
        .unwrap();
    assert_eq!(r.kind, MergeKind::Conflicts);
    ds.abort_merge("main").await.unwrap();
    assert!(ds.pending_merge("main").await.unwrap().is_none());
    assert_eq!(ds.branch_head("main").await.unwrap().commit.id, head);

    // merging a tag into a branch: v1 is an ancestor of main, so up to date
    let r = ds
        .merge(&VersionSpec::Tag("v1".into()), "main", None, "t")
        .await
        .unwrap();
    assert_eq!(r.kind, MergeKind::UpToDate);
    let e = ds
        .merge(&VersionSpec::Tag("nope".into()), "main", None, "t")
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::TagNotFound { .. }));
}

#[tokio::test]
async fn conflicts_resolved_by_writing_the_wanted_rows() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append(
        "main",
        &[batch(&[("img1", 1, "car", 0.1), ("img2", 1, "cat", 0.3)])],
        "base",
    )
    .await
    .unwrap();
    ds.create_branch("b", &VersionSpec::main()).await.unwrap();
    ds.upsert(
        "b",
        &[batch(&[
            ("img1", 1, "truck", 0.9),
            ("img2", 1, "lion", 0.3),
        ])],
        "b",
    )
    .await
    .unwrap();
    ds.upsert(
        "main",
        &[batch(&[
            ("img1", 1, "bus", 0.7),
            ("img2", 1, "tiger", 0.3),
            ("img3", 1, "new", 0.5),
        ])],
        "main",
    )
    .await
    .unwrap();
    let r = ds
        .merge(&VersionSpec::Branch("b".into()), "main", None, "t")
        .await
        .unwrap();
    assert_eq!(r.conflicts, 2);
    // the curator writes the wanted row for img1 on the target branch
    ds.upsert("main", &[batch(&[("img1", 1, "minibus", 0.8)])], "fix img1")
        .await
        .unwrap();
    let left = ds.conflicts("main").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].group, b"img2".to_vec());
    ds.resolve_conflicts("main", Resolution::Theirs, None)
        .await
        .unwrap();
    let c = ds.commit_merge("main", None, "t").await.unwrap();
    assert_eq!(c.parents.len(), 2);
    let t = content(&ds, "main").await;
    assert_eq!(t[&("img1".to_string(), 1)].0.as_deref(), Some("minibus"));
    assert_eq!(t[&("img2".to_string(), 1)].0.as_deref(), Some("lion"));
    assert_eq!(t[&("img3".to_string(), 1)].0.as_deref(), Some("new"));
}

/// The merge base is a common ancestor that no other common ancestor descends from; of a
/// criss-cross's two such ancestors the newer one, whichever side asks. Along one line of
/// history it is the older commit itself.
#[tokio::test]
async fn merge_base_of_a_line_and_of_a_criss_cross() {
    let (_, ds) = new_dataset("memory://").await;
    let c0 = ds
        .append("main", &[batch(&[("img1", 1, "car", 0.1)])], "base")
        .await
        .unwrap();
    let mut line = vec![c0.clone()];
    for i in 0..12 {
        let c = ds
            .upsert("main", &[batch(&[("img1", 1, "car", i as f64)])], "edit")
            .await
            .unwrap();
        line.push(c);
    }
    let tip = line.last().unwrap().clone();
    for old in [&line[0], &line[5], &line[11]] {
        let b = ds.merge_base(&tip, old).await.unwrap().unwrap();
        assert_eq!(b.id, old.id);
        let b = ds.merge_base(old, &tip).await.unwrap().unwrap();
        assert_eq!(b.id, old.id);
    }
    ds.create_branch("x", &VersionSpec::main()).await.unwrap();
    let x1 = ds
        .upsert("x", &[batch(&[("img2", 1, "dog", 0.2)])], "x1")
        .await
        .unwrap();
    let m1 = ds
        .upsert("main", &[batch(&[("img3", 1, "cat", 0.3)])], "m1")
        .await
        .unwrap();
    assert_eq!(ds.merge_base(&x1, &m1).await.unwrap().unwrap().id, tip.id);
    // criss-cross: x into main, and main's m1 into x
    let mm = ds
        .merge(&VersionSpec::Branch("x".into()), "main", None, "t")
        .await
        .unwrap()
        .commit
        .unwrap();
    let mx = ds
        .merge(&VersionSpec::Version(m1.id.to_hex()), "x", None, "t")
        .await
        .unwrap()
        .commit
        .unwrap();
    let a = ds.merge_base(&mm, &mx).await.unwrap().unwrap();
    let b = ds.merge_base(&mx, &mm).await.unwrap().unwrap();
    assert_eq!(a.id, b.id, "the same base whichever side asks");
    let newest = [&x1, &m1]
        .into_iter()
        .max_by(|p, q| {
            p.data
                .timestamp
                .cmp(&q.data.timestamp)
                .then(q.id.cmp(&p.id))
        })
        .unwrap();
    assert_eq!(a.id, newest.id);
}
