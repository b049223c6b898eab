//! Storage format 2 against a naive model: any interleaving of appends, upserts, deletes,
//! merges of a side branch and OPTIMIZE reads back exactly what a map of labels holds;
//! every diff between consecutive versions names exactly the groups whose labels changed;
//! and the content hash (commit root) depends only on the content — a dataset loaded in
//! one append with the final labels has the same root.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use quiver_core::{Catalog, DatasetOptions, Snapshot, VersionSpec};

use crate::common::{batch, rows, schema};

type Model = BTreeMap<(String, i64), (String, f64)>;

#[derive(Debug, Clone)]
enum Op {
    /// Upsert labels (group, label, class index).
    Upsert(Vec<(u8, u8, u8)>),
    /// Delete labels (group, label).
    Delete(Vec<(u8, u8)>),
    /// Delete whole groups.
    DeleteGroups(Vec<u8>),
    /// Fold the deltas of main (`true`: FULL, every touched chunk rewritten).
    Optimize(bool),
    /// Branch from main, upsert on the branch (groups < 128) and on main (groups >= 128,
    /// disjoint), then merge the branch into main.
    SideMerge(Vec<(u8, u8, u8)>, Vec<(u8, u8, u8)>),
}

const CLASSES: [&str; 4] = ["car", "cat", "dog", "owl"];

fn sample(g: u8) -> String {
    format!("img-{g:08}")
}

fn op() -> impl Strategy<Value = Op> {
    let label = (0u8..=255, 0u8..4, 0u8..4);
    prop_oneof![
        4 => proptest::collection::vec(label.clone(), 1..40).prop_map(Op::Upsert),
        2 => proptest::collection::vec((0u8..=255, 0u8..4), 1..10).prop_map(Op::Delete),
        1 => proptest::collection::vec(0u8..=255, 1..6).prop_map(Op::DeleteGroups),
        2 => any::<bool>().prop_map(Op::Optimize),
        1 => (
            proptest::collection::vec((0u8..128, 0u8..4, 0u8..4), 1..10),
            proptest::collection::vec((128u8..=255, 0u8..4, 0u8..4), 1..10)
        ).prop_map(|(a, b)| Op::SideMerge(a, b)),
    ]
}

fn upsert_batch(labels: &[(u8, u8, u8)]) -> arrow::array::RecordBatch {
    // last write of a key wins within one batch: keep one row per key
    let mut by_key: BTreeMap<(u8, u8), u8> = BTreeMap::new();
    for (g, l, c) in labels {
        by_key.insert((*g, *l), *c);
    }
    let names: Vec<(String, i64, &str, f64)> = by_key
        .iter()
        .map(|((g, l), c)| (sample(*g), *l as i64, CLASSES[*c as usize], *c as f64 / 4.0))
        .collect();
    batch(
        &names
            .iter()
            .map(|(s, l, c, v)| (s.as_str(), *l, *c, *v))
            .collect::<Vec<_>>(),
    )
}

fn apply_upsert(m: &mut Model, labels: &[(u8, u8, u8)]) {
    for (g, l, c) in labels {
        m.insert(
            (sample(*g), *l as i64),
            (CLASSES[*c as usize].to_string(), *c as f64 / 4.0),
        );
    }
}

/// Delete whole groups from main, and from the model.
async fn delete_groups(
    ds: &quiver_core::Dataset,
    model: &mut Model,
    groups: impl Iterator<Item = u8>,
) {
    let names: BTreeSet<String> = groups.map(sample).collect();
    let b = batch(
        &names
            .iter()
            .map(|s| (s.as_str(), 0, "x", 0.0))
            .collect::<Vec<_>>(),
    );
    ds.delete("main", &b.project(&[0]).unwrap(), "delete groups")
        .await
        .unwrap();
    model.retain(|(s, _), _| !names.contains(s));
}

fn groups_of(m: &Model) -> BTreeMap<String, Vec<(i64, String, f64)>> {
    let mut out: BTreeMap<String, Vec<(i64, String, f64)>> = BTreeMap::new();
    for ((s, l), (c, v)) in m {
        out.entry(s.clone()).or_default().push((*l, c.clone(), *v));
    }
    out
}

/// The groups (sample ids) a diff from `a` to `b` names.
async fn diff_keys(a: &Snapshot, b: &Snapshot) -> BTreeSet<String> {
    a.diff(b)
        .await
        .unwrap()
        .into_iter()
        .map(|c| String::from_utf8(c.key).unwrap())
        .collect()
}

async fn check(snap: &Snapshot, m: &Model) {
    let got = rows(snap).await;
    let want: Vec<(String, i64, Option<String>, Option<f64>)> = m
        .iter()
        .map(|((s, l), (c, v))| (s.clone(), *l, Some(c.clone()), Some(*v)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(snap.num_rows().await.unwrap(), m.len() as u64);
}

async fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let opts = DatasetOptions {
        chunk_groups: 8,
        ..DatasetOptions::default()
    };
    let ds = cat
        .create_dataset("labels", schema(), opts.clone())
        .await
        .unwrap();
    let mut model = Model::new();
    let mut prev = ds.head("main").await.unwrap();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Upsert(ls) => {
                ds.upsert("main", &[upsert_batch(ls)], "upsert")
                    .await
                    .unwrap();
                apply_upsert(&mut model, ls);
            }
            Op::Delete(keys) => {
                let names: Vec<(String, i64)> =
                    keys.iter().map(|(g, l)| (sample(*g), *l as i64)).collect();
                let b = batch(
                    &names
                        .iter()
                        .map(|(s, l)| (s.as_str(), *l, "x", 0.0))
                        .collect::<Vec<_>>(),
                );
                let keys_only = b.project(&[0, 1]).unwrap();
                ds.delete("main", &keys_only, "delete").await.unwrap();
                for k in names {
                    model.remove(&k);
                }
            }
            Op::DeleteGroups(gs) => {
                delete_groups(&ds, &mut model, gs.iter().copied()).await;
            }
            Op::Optimize(full) => {
                let before = ds.head("main").await.unwrap();
                ds.optimize_with("main", *full).await.unwrap();
                let after = ds.head("main").await.unwrap();
                // same commit, same content
                assert_eq!(before.commit().id, after.commit().id);
                assert_eq!(before.root(), after.root());
            }
            Op::SideMerge(side, ours) => {
                let b = format!("side{i}");
                ds.create_branch(&b, &VersionSpec::main()).await.unwrap();
                ds.upsert(&b, &[upsert_batch(side)], "side").await.unwrap();
                ds.upsert("main", &[upsert_batch(ours)], "ours")
                    .await
                    .unwrap();
                let r = ds
                    .merge(&VersionSpec::Branch(b.clone()), "main", None, "test")
                    .await
                    .unwrap();
                assert_eq!(r.conflicts, 0, "{op:?}");
                apply_upsert(&mut model, ours);
                apply_upsert(&mut model, side);
            }
        }
        let head = ds.head("main").await.unwrap();
        check(&head, &model).await;
        // the diff from the previous head names exactly the groups that changed
        let before: BTreeMap<String, Vec<(i64, String, f64)>> = {
            let mut m = Model::new();
            for (s, l, c, v) in rows(&prev).await {
                m.insert((s, l), (c.unwrap_or_default(), v.unwrap_or_default()));
            }
            groups_of(&m)
        };
        let after = groups_of(&model);
        let mut want: BTreeSet<String> = BTreeSet::new();
        for k in before.keys().chain(after.keys()) {
            if before.get(k) != after.get(k) {
                want.insert(k.clone());
            }
        }
        let got = diff_keys(&prev, &head).await;
        assert_eq!(got, want, "diff after {op:?}");
        prev = head;
    }
    // history independence: the same labels loaded at once have the same root
    let fresh = cat.create_dataset("fresh", schema(), opts).await.unwrap();
    if !model.is_empty() {
        let all: Vec<(String, i64, String, f64)> = model
            .iter()
            .map(|((s, l), (c, v))| (s.clone(), *l, c.clone(), *v))
            .collect();
        let b = batch(
            &all.iter()
                .map(|(s, l, c, v)| (s.as_str(), *l, c.as_str(), *v))
                .collect::<Vec<_>>(),
        );
        fresh.append("main", &[b], "load").await.unwrap();
    }
    let a = ds.head("main").await.unwrap();
    let b = fresh.head("main").await.unwrap();
    assert_eq!(a.root(), b.root(), "content hash depends on history");
    assert!(a.diff(&b).await.unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn interleavings_match_a_naive_model(ops in proptest::collection::vec(op(), 1..14)) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(ops));
    }
}

/// A dataset written by storage format 1 is never misread: opening it, fsck and gc refuse
/// with a message saying how to move it, and nothing in the catalog changes.
#[tokio::test]
async fn format_1_datasets_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap();
    let cat = Catalog::open(url).await.unwrap();
    let ds = cat
        .create_dataset("old", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[upsert_batch(&[(1, 1, 1), (2, 0, 3)])], "load")
        .await
        .unwrap();
    // turn it into what a format-1 build left behind
    let path = "datasets/old/dataset.json";
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&cat.store().get_file(path).await.unwrap()).unwrap();
    cfg["format_version"] = serde_json::json!(1);
    cat.store()
        .put_file(path, bytes::Bytes::from(serde_json::to_vec(&cfg).unwrap()))
        .await
        .unwrap();
    let cat = Catalog::open(url).await.unwrap();
    let before = cat.store().list("").await.unwrap();
    let err = cat.dataset("old").await.unwrap_err();
    assert!(
        matches!(
            err,
            quiver_core::CoreError::UnsupportedFormat { found: 1, .. }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("format 1") && msg.contains("quiver export parquet"),
        "{msg}"
    );
    let fsck = cat
        .fsck(quiver_core::FsckOptions::default())
        .await
        .unwrap_err();
    assert!(fsck.to_string().contains("format 1"), "{fsck}");
    let gc = cat
        .gc(&quiver_core::VacuumOptions {
            retain: std::time::Duration::ZERO,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(gc.to_string().contains("format 1"), "{gc}");
    assert_eq!(cat.store().list("").await.unwrap(), before);
}

/// Past 64 deltas a commit folds them in the background: the head ends with a short
/// layout, the same commit and the same rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_commits_are_optimized_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    let mut model = Model::new();
    for i in 0..70u8 {
        let edit = [(i, 0u8, i % 4), (i / 2, 1, (i + 1) % 4)];
        ds.upsert("main", &[upsert_batch(&edit)], "edit")
            .await
            .unwrap();
        apply_upsert(&mut model, &edit);
    }
    let head = ds.head("main").await.unwrap();
    let mut folded = false;
    for _ in 0..200 {
        let snap = ds.head("main").await.unwrap();
        assert_eq!(snap.commit().id, head.commit().id);
        if snap.view().await.unwrap().deltas.len() < quiver_core::write::AUTO_OPTIMIZE_DELTAS {
            folded = true;
            check(&snap, &model).await;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    if !folded {
        let r = ds.optimize("main").await;
        panic!("the head still has 64 or more deltas; an OPTIMIZE now gives {r:?}");
    }
    check(&head, &model).await;
}

/// OPTIMIZE over more rows than one push batch (64k): the rows read back are the same
/// before and after, in every chunk, with groups that straddle read and push batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optimize_of_a_large_run_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append("main", &[crate::common::synthetic(30_000, 3, 0.0)], "load")
        .await
        .unwrap();
    let loaded = ds.head("main").await.unwrap();
    // scattered edits, new groups between existing ones, deleted labels
    let mut rows = Vec::new();
    for g in (0..30_000).step_by(97) {
        rows.push((format!("s{g:07}"), 1i64, "edited", 0.5));
        rows.push((format!("s{g:07}x"), 0i64, "new", 0.25));
    }
    let b = batch(
        &rows
            .iter()
            .map(|(s, l, c, v)| (s.as_str(), *l, *c, *v))
            .collect::<Vec<_>>(),
    );
    ds.upsert("main", &[b], "edits").await.unwrap();
    let gone = batch(&[("s0000005", 2, "x", 0.0), ("s0029999", 0, "x", 0.0)]);
    ds.delete("main", &gone.project(&[0, 1]).unwrap(), "delete")
        .await
        .unwrap();
    let before = ds.head("main").await.unwrap();
    let want = crate::common::rows(&before).await;
    // scattered edits (one group in 97 and a new one beside it): one merged delta, the
    // chunks kept
    let r = ds.optimize("main").await.unwrap();
    assert_eq!(r.deltas_folded, 2);
    // 310 edited groups, 310 new ones, 2 with a label deleted: most in the merged delta,
    // a few in small chunks that the edits made dense (rewritten)
    let touched = 2 * 30_000_usize.div_ceil(97) + 2;
    assert!(r.chunks_rewritten * 20 < r.chunks, "{r:?}");
    assert!(r.delta_groups * 10 > touched as u64 * 9, "{r:?}");
    assert!(r.delta_groups <= touched as u64, "{r:?}");
    assert!(r.rows_written < 4 * 1024, "{r:?}");
    let after = ds.head("main").await.unwrap();
    assert_eq!(after.commit().id, before.commit().id);
    assert_eq!(after.view().await.unwrap().deltas.len(), 1);
    assert_eq!(crate::common::rows(&after).await, want);
    assert_eq!(after.num_rows().await.unwrap(), want.len() as u64);
    // the original version and the head differ by exactly the edits, across the fold
    assert_eq!(loaded.diff(&after).await.unwrap().len(), touched);
    // the merged delta kept the commits' copies of the old rows: the diff reads the old
    // rows of the groups it holds from its change pack, and they are the loaded rows
    let located = loaded.diff_located(&after).await.unwrap();
    let view = after.view().await.unwrap();
    let change_pack = view.deltas[0].pack.expect("merged delta pack");
    let from_copy: Vec<_> = located
        .iter()
        .filter(|c| c.old_at.is_some_and(|o| o.leaf == change_pack))
        .collect();
    let with_old = located.iter().filter(|c| c.old_at.is_some()).count();
    assert!(
        from_copy.len() * 10 > with_old * 9,
        "{} of {with_old} old states from the copy",
        from_copy.len()
    );
    let keys: std::collections::BTreeSet<Vec<u8>> =
        from_copy.iter().map(|c| c.change.key.clone()).collect();
    let copied = loaded
        .read_at(from_copy.iter().filter_map(|c| c.old_rows()))
        .await
        .unwrap();
    assert_eq!(copied, loaded.read_groups(&keys).await.unwrap());
    // FULL folds the merged delta into the base. One group in 97 is touched and a chunk
    // holds 64, so about two chunks in three own a touched key: the untouched chunks
    // between them (of the same pack) are rewritten with them, one read of the pack
    // rather than one per touched chunk
    let chunks_before = after.view().await.unwrap().base.chunks.len() as u64;
    let r = ds.optimize_with("main", true).await.unwrap();
    assert!(
        r.chunks_rewritten * 10 >= chunks_before * 9,
        "{r:?} of {chunks_before}"
    );
    assert_eq!(r.deltas_folded, 1);
    assert!(r.rows_written > 64 * 1024, "{r:?}");
    assert_eq!(r.delta_groups, 0);
    let after = ds.head("main").await.unwrap();
    assert_eq!(after.commit().id, before.commit().id);
    assert!(after.view().await.unwrap().deltas.is_empty());
    assert_eq!(crate::common::rows(&after).await, want);
    assert_eq!(after.num_rows().await.unwrap(), want.len() as u64);
    assert_eq!(loaded.diff(&after).await.unwrap().len(), touched);
}

/// A group deleted and then written again exactly as an earlier version had it reads back
/// (its state equals an older one, so nothing may be mistaken for a stale copy).
#[tokio::test]
async fn a_group_restored_to_an_earlier_state_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let ds = cat
        .create_dataset("labels", schema(), DatasetOptions::default())
        .await
        .unwrap();
    ds.append(
        "main",
        &[batch(&[("a", 1, "cat", 0.9), ("b", 1, "dog", 0.8)])],
        "load",
    )
    .await
    .unwrap();
    let x = batch(&[("z", 1, "x", 0.5)]);
    ds.append("main", std::slice::from_ref(&x), "z")
        .await
        .unwrap();
    ds.upsert("main", &[batch(&[("z", 1, "x", 0.75)])], "edit z")
        .await
        .unwrap();
    ds.delete("main", &x.project(&[0]).unwrap(), "drop z")
        .await
        .unwrap();
    ds.append("main", &[x], "z again").await.unwrap();
    let got: Vec<String> = rows(&ds.head("main").await.unwrap())
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(got, ["a", "b", "z"]);
}

/// A dataset with small chunks (8 groups) loaded with 200 groups of 3 labels, as one
/// base: (its directory, catalog, dataset, model).
async fn loaded_for_folds() -> (tempfile::TempDir, Catalog, quiver_core::Dataset, Model) {
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().to_str().unwrap()).await.unwrap();
    let opts = DatasetOptions {
        chunk_groups: 8,
        ..DatasetOptions::default()
    };
    let ds = cat.create_dataset("labels", schema(), opts).await.unwrap();
    let load: Vec<(u8, u8, u8)> = (0u8..200)
        .flat_map(|g| (0u8..3).map(move |l| (g, l, (g + l) % 4)))
        .collect();
    ds.append("main", &[upsert_batch(&load)], "load")
        .await
        .unwrap();
    let mut model = Model::new();
    apply_upsert(&mut model, &load);
    (dir, cat, ds, model)
}

/// A commit keeps the view of the version it wrote: a diff against that version and a read
/// of it in the same process read neither its layout nor its delta object back (shown by
/// removing both right after the commit), name exactly the edited groups, and give the
/// model's rows. The next commit on it builds on the kept view too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_keeps_the_view_it_wrote() {
    let (dir, _cat, ds, mut model) = loaded_for_folds().await;
    let objects = |kind: &str| -> BTreeSet<std::path::PathBuf> {
        let root = dir.path().join("objects").join(kind);
        let mut out = BTreeSet::new();
        for fan in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(fan.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.insert(f.path());
            }
        }
        out
    };
    let before = ds.head("main").await.unwrap();
    let (layouts, deltas) = (objects("layout"), objects("delta"));
    let edit = [(5, 1, 3), (77, 0, 2), (190, 2, 1)];
    ds.upsert("main", &[upsert_batch(&edit)], "edit")
        .await
        .unwrap();
    apply_upsert(&mut model, &edit);
    let written: Vec<std::path::PathBuf> = objects("layout")
        .difference(&layouts)
        .chain(objects("delta").difference(&deltas))
        .cloned()
        .collect();
    assert_eq!(written.len(), 2, "one layout and one delta: {written:?}");
    for p in &written {
        std::fs::remove_file(p).unwrap();
    }
    let head = ds.head("main").await.unwrap();
    let keys = diff_keys(&before, &head).await;
    let want: BTreeSet<String> = [5u8, 77, 190].into_iter().map(sample).collect();
    assert_eq!(keys, want);
    check(&head, &model).await;
    let more = [(6, 0, 1)];
    ds.upsert("main", &[upsert_batch(&more)], "more")
        .await
        .unwrap();
    apply_upsert(&mut model, &more);
    check(&ds.head("main").await.unwrap(), &model).await;
}

/// The folds a version's layout links back through (none: its base is not an OPTIMIZE's).
async fn fold_links(cat: &Catalog, snap: &Snapshot) -> Vec<quiver_core::storage::format::FoldLink> {
    let id = snap.commit().id.to_hex();
    let ptr = cat
        .store()
        .get_file(&format!("datasets/labels/layouts/{id}"))
        .await
        .unwrap();
    let h = quiver_tree::Hash::from_hex(std::str::from_utf8(&ptr).unwrap().trim()).unwrap();
    let b = cat.store().get_object("layout", &h).await.unwrap();
    quiver_core::storage::Layout::decode(&b, "layout")
        .unwrap()
        .folds
}

/// A group's rows as the model holds them.
type Group = Vec<(i64, String, f64)>;

fn group_rows(b: &arrow::array::RecordBatch) -> Group {
    use arrow::array::AsArray;
    let l = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
    let c = b.column(2).as_string::<i32>();
    let v = b.column(3).as_primitive::<arrow::datatypes::Float64Type>();
    (0..b.num_rows())
        .map(|i| (l.value(i), c.value(i).to_string(), v.value(i)))
        .collect()
}

/// Diffs between versions on different bases that OPTIMIZE made from one another (and
/// from a common base, on two branches) go through the folds' records: every pair of
/// versions names exactly the groups the model says changed, and the rows read at the
/// positions the diff gives (old in the first version, new in the second) are the
/// model's, also where a fold's record points into a base no version of the pair is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffs_across_folds_match_the_model() {
    let (dir, cat, ds, mut model) = loaded_for_folds().await;
    let dense = |groups: std::ops::Range<u8>, c: u8| -> Vec<(u8, u8, u8)> {
        groups.map(|g| (g, (g % 3), c)).collect()
    };
    let mut versions: Vec<(String, Model)> = Vec::new();
    let record = |v: &mut Vec<(String, Model)>, snap: &Snapshot, m: &Model| {
        v.push((snap.commit().id.to_hex(), m.clone()))
    };
    record(&mut versions, &ds.head("main").await.unwrap(), &model);

    let mut edit = dense(0..30, 1);
    edit.extend([(150, 0, 3), (151, 7, 2)]);
    ds.upsert("main", &[upsert_batch(&edit)], "dense and scattered")
        .await
        .unwrap();
    apply_upsert(&mut model, &edit);
    record(&mut versions, &ds.head("main").await.unwrap(), &model);

    delete_groups(&ds, &mut model, 10u8..14).await;
    let added = [(210, 0, 1), (211, 1, 2)];
    ds.upsert("main", &[upsert_batch(&added)], "add")
        .await
        .unwrap();
    apply_upsert(&mut model, &added);
    record(&mut versions, &ds.head("main").await.unwrap(), &model);

    // fold 1 (rewrites the dense chunks, keeps the scattered edits in a merged delta)
    let r = ds.optimize_with("main", false).await.unwrap();
    assert!(r.chunks_rewritten > 0, "{r:?}");
    let mut edit = dense(20..60, 2);
    edit.push((180, 1, 0));
    ds.upsert("main", &[upsert_batch(&edit)], "second dense")
        .await
        .unwrap();
    apply_upsert(&mut model, &edit);
    record(&mut versions, &ds.head("main").await.unwrap(), &model);
    // fold 2 (FULL): a base two folds away from the load's
    ds.optimize_with("main", true).await.unwrap();
    let edit = [(3, 0, 0), (199, 2, 1), (20, 1, 3)];
    ds.upsert("main", &[upsert_batch(&edit)], "after")
        .await
        .unwrap();
    apply_upsert(&mut model, &edit);
    let head = ds.head("main").await.unwrap();
    record(&mut versions, &head, &model);
    assert_eq!(fold_links(&cat, &head).await.len(), 2);

    // a branch from a version the folds left on the load's base (the folded head is
    // re-pointed, earlier commits are not), folded on its own: a sibling of main's bases
    let (fork, fork_model) = versions[1].clone();
    ds.create_branch("side", &VersionSpec::Version(fork))
        .await
        .unwrap();
    let mut side = fork_model;
    let edit = dense(100..140, 3);
    ds.upsert("side", &[upsert_batch(&edit)], "side dense")
        .await
        .unwrap();
    apply_upsert(&mut side, &edit);
    ds.optimize_with("side", false).await.unwrap();
    let edit = [(0, 0, 2), (25, 2, 0)];
    ds.upsert("side", &[upsert_batch(&edit)], "side after")
        .await
        .unwrap();
    apply_upsert(&mut side, &edit);
    let side_head = ds.head("side").await.unwrap();
    record(&mut versions, &side_head, &side);
    assert_eq!(fold_links(&cat, &side_head).await.len(), 1);

    // gc keeps the fold records of live layouts (reachable, not orphans); it collects
    // the layouts the folds replaced
    let r = cat
        .gc(&quiver_core::VacuumOptions {
            retain: std::time::Duration::ZERO,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(r.layouts.count > 0, "{r:?}");
    for snap in [&head, &side_head] {
        for link in fold_links(&cat, snap).await {
            cat.store()
                .get_object("delta", &link.changes)
                .await
                .unwrap();
        }
    }
    let f = cat.fsck(quiver_core::FsckOptions::default()).await.unwrap();
    assert!(f.is_clean() && f.orphans.is_empty(), "{f:?}");

    // through the fold records, then (records gone) comparing the bases' chunks
    every_pair_matches(dir.path(), &versions).await;
    for snap in [&head, &side_head] {
        for link in fold_links(&cat, snap).await {
            let hex = link.changes.to_hex();
            let _ = std::fs::remove_file(
                dir.path()
                    .join(format!("objects/delta/{}/{hex}", &hex[..2])),
            );
        }
    }
    every_pair_matches(dir.path(), &versions).await;
}

/// Every pair of `versions` diffs to the groups their models differ in, with the models'
/// rows at the positions given (a fresh catalog: cold caches).
async fn every_pair_matches(dir: &std::path::Path, versions: &[(String, Model)]) {
    let cat = Catalog::open(dir.to_str().unwrap()).await.unwrap();
    let ds = cat.dataset("labels").await.unwrap();
    for (ia, (a, ma)) in versions.iter().enumerate() {
        for (ib, (b, mb)) in versions.iter().enumerate() {
            let sa = ds.checkout(&VersionSpec::Version(a.clone())).await.unwrap();
            let sb = ds.checkout(&VersionSpec::Version(b.clone())).await.unwrap();
            let (ga, gb) = (groups_of(ma), groups_of(mb));
            let want: BTreeSet<&String> = ga
                .keys()
                .chain(gb.keys())
                .filter(|k| ga.get(*k) != gb.get(*k))
                .collect();
            let changes = sa.diff_located(&sb).await.unwrap();
            let keys: Vec<String> = changes
                .iter()
                .map(|c| String::from_utf8(c.change.key.clone()).unwrap())
                .collect();
            assert_eq!(
                keys.iter().collect::<BTreeSet<_>>(),
                want,
                "versions {ia} -> {ib}"
            );
            let old = sa
                .read_at(changes.iter().filter_map(|c| c.old_rows()))
                .await
                .unwrap();
            let new = sb
                .read_at(changes.iter().filter_map(|c| c.new_rows()))
                .await
                .unwrap();
            for (c, k) in changes.iter().zip(&keys) {
                let got = |m: &BTreeMap<Vec<u8>, arrow::array::RecordBatch>| {
                    m.get(&c.change.key).map(group_rows)
                };
                assert_eq!(got(&old), ga.get(k).cloned(), "old {k}: {ia} -> {ib}");
                assert_eq!(got(&new), gb.get(k).cloned(), "new {k}: {ia} -> {ib}");
            }
        }
    }
}

/// A branch made before main's folds merges into main after them: the merge base is on
/// the load's base, main on a base two folds away (the diffs go through the fold records),
/// and the result holds both sides' edits; a label both sides changed differently is a
/// conflict, as without the folds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_across_folds_take_both_sides() {
    let (_dir, cat, ds, mut model) = loaded_for_folds().await;
    ds.create_branch("side", &VersionSpec::main())
        .await
        .unwrap();

    // main: dense edits folded twice, with scattered edits between
    let ours1: Vec<(u8, u8, u8)> = (0u8..40).map(|g| (g, 0, 1)).collect();
    ds.upsert("main", &[upsert_batch(&ours1)], "ours 1")
        .await
        .unwrap();
    ds.optimize_with("main", false).await.unwrap();
    let ours2: Vec<(u8, u8, u8)> = (60u8..100)
        .map(|g| (g, 1, 2))
        .chain([(150, 2, 3)])
        .collect();
    ds.upsert("main", &[upsert_batch(&ours2)], "ours 2")
        .await
        .unwrap();
    ds.optimize_with("main", true).await.unwrap();
    apply_upsert(&mut model, &ours1);
    apply_upsert(&mut model, &ours2);
    assert_eq!(
        fold_links(&cat, &ds.head("main").await.unwrap())
            .await
            .len(),
        2
    );

    // side: other groups, and other labels of groups main changed
    let theirs: Vec<(u8, u8, u8)> = (120u8..140)
        .map(|g| (g, 0, 3))
        .chain([(5, 2, 0), (70, 0, 0)])
        .collect();
    ds.upsert("side", &[upsert_batch(&theirs)], "theirs")
        .await
        .unwrap();
    apply_upsert(&mut model, &theirs);
    let r = ds
        .merge(&VersionSpec::Branch("side".into()), "main", None, "merge")
        .await
        .unwrap();
    assert_eq!(r.conflicts, 0, "{r:?}");
    check(&ds.head("main").await.unwrap(), &model).await;

    // the same label changed on both sides, differently: a conflict
    ds.create_branch("side2", &VersionSpec::Version(r.head.to_hex()))
        .await
        .unwrap();
    ds.upsert("main", &[upsert_batch(&[(30, 1, 1), (31, 1, 1)])], "ours 3")
        .await
        .unwrap();
    ds.optimize_with("main", true).await.unwrap();
    ds.upsert("side2", &[upsert_batch(&[(30, 1, 2)])], "theirs 2")
        .await
        .unwrap();
    let r = ds
        .merge(
            &VersionSpec::Branch("side2".into()),
            "main",
            None,
            "merge 2",
        )
        .await
        .unwrap();
    assert_eq!(r.conflicts, 1, "{r:?}");
}

/// A layout keeps the 8 nearest fold links: nine folds after the load, the head links 8
/// bases back, and its diff against the load (beyond the links) still names exactly the
/// groups that changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fold_links_stop_at_eight_and_older_diffs_still_match() {
    let (_dir, cat, ds, mut model) = loaded_for_folds().await;
    let load = ds.head("main").await.unwrap();
    let before = groups_of(&model);
    for i in 0u8..9 {
        let edit: Vec<(u8, u8, u8)> = (i * 20..i * 20 + 12).map(|g| (g, 0, i % 4)).collect();
        ds.upsert("main", &[upsert_batch(&edit)], "dense")
            .await
            .unwrap();
        apply_upsert(&mut model, &edit);
        ds.optimize_with("main", true).await.unwrap();
    }
    let head = ds.head("main").await.unwrap();
    assert_eq!(
        fold_links(&cat, &head).await.len(),
        quiver_core::storage::format::MAX_FOLD_LINKS
    );
    check(&head, &model).await;
    let after = groups_of(&model);
    let want: BTreeSet<Vec<u8>> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone().into_bytes())
        .collect();
    let got: BTreeSet<Vec<u8>> = load
        .diff(&head)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(got, want);
}
