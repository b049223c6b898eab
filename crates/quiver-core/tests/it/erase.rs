//! Erasure (`Dataset::erase`): the erased labels are gone from every version (old commits,
//! branches, tags, OPTIMIZE's packs, before-image copies), every other row of every version
//! and every commit id, root and diff are unchanged, `fsck` is clean, a fresh catalog reads
//! the same, and later commits and OPTIMIZE keep the content hash exact.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::util::display::array_value_to_string;
use quiver_core::demo::{self, DemoLabels};
use quiver_core::encoding::{key_bytes, GroupHasher};
use quiver_core::erase::ERASED_TEXT;
use quiver_core::{
    Catalog, CoreError, Dataset, EraseKeys, FsckOptions, Hash, Snapshot, VersionSpec,
};

/// Rows of a version by (sample, label): every column as text.
type Table = BTreeMap<(String, i64), Vec<String>>;

/// A value as text (timestamps as their integer).
fn text(col: &dyn Array, r: usize) -> String {
    match col.data_type() {
        arrow::datatypes::DataType::Timestamp(..) => {
            let c = arrow::compute::cast(col, &arrow::datatypes::DataType::Int64).unwrap();
            array_value_to_string(&c, r).unwrap()
        }
        _ => array_value_to_string(col, r).unwrap(),
    }
}

fn add_rows(out: &mut Table, b: &RecordBatch) {
    let s = b.column(0).as_string::<i32>();
    let l = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
    for r in 0..b.num_rows() {
        let cols = (0..b.num_columns())
            .map(|c| text(b.column(c).as_ref(), r))
            .collect();
        out.insert((s.value(r).to_string(), l.value(r)), cols);
    }
}

async fn table(snap: &Snapshot) -> Table {
    let mut out = Table::new();
    for b in snap.scan(None).await.unwrap() {
        add_rows(&mut out, &b);
    }
    out
}

/// Rows of the samples `names`, label ids as in the demo (first `n` of each).
fn edits(seed: u64, rows: u64) -> Vec<RecordBatch> {
    DemoLabels::new(rows, seed).collect()
}

fn keys(samples: &[&str]) -> RecordBatch {
    RecordBatch::try_new(
        std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("sample_id", arrow::datatypes::DataType::Utf8, false),
        ])),
        vec![std::sync::Arc::new(StringArray::from(samples.to_vec()))],
    )
    .unwrap()
}

fn label_key(l: i64) -> Vec<u8> {
    key_bytes(&Int64Array::from(vec![l]), 0).unwrap()
}

fn erased(key: &(String, i64), targets: &(BTreeSet<String>, BTreeSet<(String, i64)>)) -> bool {
    targets.0.contains(&key.0) || targets.1.contains(key)
}

/// The values an erased demo row reads with (keys kept).
fn erased_row(key: &(String, i64)) -> Vec<String> {
    let e = ERASED_TEXT.to_string();
    vec![
        key.0.clone(),
        key.1.to_string(),
        e.clone(),
        e.clone(),
        "0.0".into(),
        "0.0".into(),
        "0.0".into(),
        "0.0".into(),
        String::new(),
        e.clone(),
        String::new(),
        String::new(),
        e,
    ]
}

/// Every commit reachable from the dataset's branches and tags.
async fn all_commits(ds: &Dataset) -> Vec<quiver_core::Commit> {
    let mut seen = BTreeMap::new();
    for r in ds
        .branches()
        .await
        .unwrap()
        .iter()
        .chain(&ds.tags().await.unwrap())
    {
        let head = ds.commit(&r.commit).await.unwrap();
        for c in ds.history_of(&head).await.unwrap() {
            seen.insert(c.id, c);
        }
    }
    seen.into_values().collect()
}

/// (key, old hash, new hash) of a diff.
async fn diff_of(a: &Snapshot, b: &Snapshot) -> Vec<(Vec<u8>, Option<Hash>, Option<Hash>)> {
    a.diff(b)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.key, c.old.map(|g| g.hash), c.new.map(|g| g.hash)))
        .collect()
}

/// The recorded hash of group `sample` in a version.
async fn group_hash(snap: &Snapshot, sample: &str) -> Hash {
    let k: BTreeSet<Vec<u8>> = [sample.as_bytes().to_vec()].into();
    snap.locate(&k).await.unwrap()[0].0.hash
}

#[tokio::test]
async fn erased_labels_are_gone_from_every_version_and_nothing_else_changes() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_string();
    let cat = Catalog::open(&url).await.unwrap();
    let ds = cat
        .create_dataset("demo", demo::schema(), demo::options())
        .await
        .unwrap();
    // history: a load, a tag, a branch with its own edits, edits on main (before-images of
    // replaced rows in change packs), a deleted sample (only in old versions), OPTIMIZE
    ds.append("main", &edits(1, 3000), "load").await.unwrap();
    ds.create_tag("v1", &VersionSpec::main()).await.unwrap();
    ds.create_branch("dev", &VersionSpec::main()).await.unwrap();
    ds.upsert("dev", &edits(3, 25), "dev edit").await.unwrap();
    ds.upsert("main", &edits(2, 40), "edit").await.unwrap();
    ds.delete("main", &keys(&["img-00000005"]), "drop a sample")
        .await
        .unwrap();
    ds.create_tag("v2", &VersionSpec::main()).await.unwrap();
    ds.upsert("main", &edits(4, 12), "edit again")
        .await
        .unwrap();
    ds.optimize_with("main", true).await.unwrap();

    let targets: (BTreeSet<String>, BTreeSet<(String, i64)>) = (
        ["img-00000003".to_string(), "img-00000005".to_string()].into(),
        [("img-00000002".to_string(), 0)].into(),
    );
    let commits = all_commits(&ds).await;
    assert!(commits.len() >= 6, "{} commits", commits.len());
    let mut before: BTreeMap<Hash, (Hash, Table)> = BTreeMap::new();
    for c in &commits {
        before.insert(c.id, (c.root, table(&ds.snapshot(c.clone())).await));
    }
    let refs_before = (ds.branches().await.unwrap(), ds.tags().await.unwrap());
    let snap = |spec: VersionSpec| {
        let ds = ds.clone();
        async move { ds.checkout(&spec).await.unwrap() }
    };
    let pairs = [
        (VersionSpec::Tag("v1".into()), VersionSpec::main()),
        (
            VersionSpec::Tag("v1".into()),
            VersionSpec::Branch("dev".into()),
        ),
        (VersionSpec::Branch("dev".into()), VersionSpec::main()),
        (VersionSpec::Tag("v2".into()), VersionSpec::main()),
    ];
    let mut diffs_before = Vec::new();
    for (a, b) in &pairs {
        diffs_before.push(diff_of(&snap(a.clone()).await, &snap(b.clone()).await).await);
    }
    let head = snap(VersionSpec::main()).await;
    let (o3, o2) = (
        group_hash(&head, "img-00000003").await,
        group_hash(&head, "img-00000002").await,
    );
    // the erased keys exist in some version, the deleted sample only in old ones
    assert!(before
        .values()
        .any(|(_, t)| t.keys().any(|k| k.0 == "img-00000005")));
    assert!(!table(&head).await.keys().any(|k| k.0 == "img-00000005"));

    let rows = EraseKeys::new(&ds)
        .unwrap()
        .group(b"img-00000003".to_vec())
        .group(b"img-00000005".to_vec())
        .label(b"img-00000002".to_vec(), label_key(0));
    let report = ds.erase(&rows, "privacy request #1").await.unwrap();
    assert!(report.packs_rewritten >= 2, "{report:?}");
    assert!(report.rows_erased >= report.labels_erased, "{report:?}");
    assert_eq!(report.versions as usize, commits.len(), "{report:?}");

    // every version: same commit, same root, erased rows erased, every other row unchanged
    let check = |cat: Catalog| {
        let before = before.clone();
        let targets = targets.clone();
        async move {
            let ds = cat.dataset("demo").await.unwrap();
            for (id, (root, rows)) in &before {
                let c = ds.commit(id).await.unwrap();
                assert_eq!(c.root, *root);
                let now = table(&ds.snapshot(c)).await;
                assert_eq!(
                    now.keys().collect::<Vec<_>>(),
                    rows.keys().collect::<Vec<_>>(),
                    "same labels in {id}"
                );
                for (k, v) in rows {
                    if erased(k, &targets) {
                        assert_eq!(now[k], erased_row(k), "{k:?} in {id}");
                    } else {
                        assert_eq!(&now[k], v, "{k:?} in {id}");
                    }
                }
            }
        }
    };
    check(cat.clone()).await;
    // a fresh catalog (no cached footers, sums or views of this process's catalog) reads
    // the same
    check(Catalog::open(&url).await.unwrap()).await;
    assert_eq!(
        (ds.branches().await.unwrap(), ds.tags().await.unwrap()),
        refs_before
    );
    for ((a, b), d) in pairs.iter().zip(&diffs_before) {
        assert_eq!(
            &diff_of(&snap(a.clone()).await, &snap(b.clone()).await).await,
            d,
            "diff {a} -> {b}"
        );
    }

    // no pack of the catalog holds an original value of an erased row, whoever names it
    for path in cat.store().list("objects/pack/").await.unwrap() {
        let bytes = cat.store().get_file(&path).await.unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let s = b.column(0).as_string::<i32>();
            let l = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
            let class = b.column(3).as_string::<i32>();
            for r in 0..b.num_rows() {
                let k = (s.value(r).to_string(), l.value(r));
                if erased(&k, &targets) {
                    assert_eq!(class.value(r), ERASED_TEXT, "{k:?} in {path}");
                    assert!(b.column(10).is_null(r), "{k:?} reviewer in {path}");
                }
            }
        }
    }

    // fsck: clean, the erased packs counted
    let f = cat.fsck(FsckOptions::default()).await.unwrap();
    assert!(f.is_clean(), "{:?}", f.problems);
    assert_eq!(f.erased_packs, report.packs_rewritten, "{f:?}");

    // the erasure is listed with its reason
    let listed = ds.erased_labels().await.unwrap();
    let labels: BTreeSet<(String, String)> = listed
        .iter()
        .map(|l| (l.group.clone(), l.label.clone()))
        .collect();
    assert!(
        labels.contains(&("img-00000002".into(), "0".into())),
        "{labels:?}"
    );
    assert!(
        !labels.contains(&("img-00000002".into(), "1".into())),
        "{labels:?}"
    );
    assert!(labels.iter().any(|l| l.0 == "img-00000005"));
    assert!(listed
        .iter()
        .all(|l| l.reason == "privacy request #1" && l.id == report.id));

    // erasing again changes nothing
    let again = ds.erase(&rows, "again").await.unwrap();
    assert_eq!(again.packs_rewritten, report.packs_rewritten, "{again:?}");
    assert_eq!(again.bytes_written, 0, "{again:?}");

    // a commit replacing an erased group: its before-image hash is the recorded one and the
    // content stays exact (root = old content - recorded hash + new group's hash)
    let head = snap(VersionSpec::main()).await;
    let mut content = head.view().await.unwrap().layout.content.clone();
    let mut edit = ds.begin("main").await.unwrap();
    let mut g2 = edit
        .group(&b"img-00000002".to_vec())
        .await
        .unwrap()
        .unwrap();
    let cls = StringArray::from(vec!["zebra"; g2.num_rows()]);
    let ci = g2.schema().index_of("class").unwrap();
    let mut cols = g2.columns().to_vec();
    cols[ci] = std::sync::Arc::new(cls);
    g2 = RecordBatch::try_new(g2.schema(), cols).unwrap();
    edit.upsert(&g2).await.unwrap();
    let c = edit.commit("relabel an erased group").await.unwrap();
    let after = ds.snapshot(c.clone());
    let d = diff_of(&head, &after).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1, Some(o2), "the replaced group's recorded hash");
    let new_rows = after
        .read_groups(&[b"img-00000002".to_vec()].into())
        .await
        .unwrap();
    let n2 = GroupHasher::for_batch(&new_rows[&b"img-00000002".to_vec()]).hash(0, g2.num_rows());
    content.remove(&o2);
    content.add(&n2);
    assert_eq!(c.root, content.digest());

    // OPTIMIZE after the erasure moves erased groups into new packs with their recorded
    // hashes (img-00000003 shares img-00000002's chunk, which the edit makes OPTIMIZE
    // rewrite): same commit, same root, same rows; a later commit still finds them
    assert!(!(2..4).any(|i| quiver_core::storage::build::is_boundary(
        format!("img-{i:08}").as_bytes(),
        ds.config().chunk_groups
    )));
    let rows_before = table(&after).await;
    let r = ds.optimize_with("main", true).await.unwrap();
    assert_eq!(r.commit, c.id.to_hex());
    let opt = snap(VersionSpec::main()).await;
    assert_eq!(opt.root(), c.root);
    assert_eq!(table(&opt).await, rows_before);
    let fresh = Catalog::open(&url).await.unwrap();
    let fds = fresh.dataset("demo").await.unwrap();
    let mut content = opt.view().await.unwrap().layout.content.clone();
    let mut add = quiver_core::demo::DemoLabels::new(1, 9)
        .next()
        .unwrap()
        .slice(0, 1);
    let mut cols = add.columns().to_vec();
    cols[0] = std::sync::Arc::new(StringArray::from(vec!["img-00000003"]));
    cols[1] = std::sync::Arc::new(Int64Array::from(vec![99]));
    add = RecordBatch::try_new(add.schema(), cols).unwrap();
    let c2 = fds
        .upsert("main", &[add], "add to an erased group")
        .await
        .unwrap();
    let prev = fds.snapshot(fds.commit(&c.id).await.unwrap());
    let d = diff_of(&prev, &fds.snapshot(c2.clone())).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        d[0].1,
        Some(o3),
        "the erased group's recorded hash, after OPTIMIZE"
    );
    let g3 = fds
        .snapshot(c2.clone())
        .read_groups(&[b"img-00000003".to_vec()].into())
        .await
        .unwrap();
    let g3 = &g3[&b"img-00000003".to_vec()];
    content.remove(&o3);
    content.add(&GroupHasher::for_batch(g3).hash(0, g3.num_rows()));
    assert_eq!(c2.root, content.digest());
    let f = fresh.fsck(FsckOptions::default()).await.unwrap();
    assert!(f.is_clean(), "{:?}", f.problems);
}

/// The same rows written again after an erasure (a re-import into another dataset) are not
/// served from the erased pack that had those bytes: the new pack gets another address.
#[tokio::test]
async fn rows_written_again_are_not_the_erased_pack() {
    let cat = Catalog::open("memory://").await.unwrap();
    let load: Vec<RecordBatch> = DemoLabels::new(500, 1).collect();
    let a = cat
        .create_dataset("a", demo::schema(), demo::options())
        .await
        .unwrap();
    a.append("main", &load, "load").await.unwrap();
    let original = table(&a.head("main").await.unwrap()).await;
    let rows = EraseKeys::new(&a).unwrap().group(b"img-00000001".to_vec());
    assert_eq!(a.erase(&rows, "").await.unwrap().packs_rewritten, 1);
    let b = cat
        .create_dataset("b", demo::schema(), demo::options())
        .await
        .unwrap();
    b.append("main", &load, "load").await.unwrap();
    let snap = b.head("main").await.unwrap();
    assert_eq!(table(&snap).await, original);
    assert_eq!(
        snap.root(),
        a.head("main").await.unwrap().root(),
        "same content"
    );
    let f = cat.fsck(FsckOptions::default()).await.unwrap();
    assert!(f.is_clean(), "{:?}", f.problems);
}

/// Another process that cached a pack before it was erased fails at most one read with
/// `PackRewritten`, then reads the erased bytes; it never serves the old values.
#[tokio::test]
async fn another_process_with_cached_packs_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap();
    let cat = Catalog::open(url).await.unwrap();
    let ds = cat
        .create_dataset("demo", demo::schema(), demo::options())
        .await
        .unwrap();
    ds.append("main", &edits(1, 2000), "load").await.unwrap();
    ds.upsert("main", &edits(2, 30), "edit").await.unwrap();
    let other = Catalog::open(url).await.unwrap();
    let ods = other.dataset("demo").await.unwrap();
    let before = table(&ods.head("main").await.unwrap()).await;
    let rows = EraseKeys::new(&ds).unwrap().group(b"img-00000002".to_vec());
    let rewritten = ds.erase(&rows, "").await.unwrap().packs_rewritten;
    let snap = ods.head("main").await.unwrap();
    let mut failures = 0;
    let now = loop {
        let mut out = Table::new();
        let mut failed = false;
        match snap.scan(None).await {
            Ok(bs) => {
                for b in bs {
                    add_rows(&mut out, &b);
                }
            }
            Err(CoreError::PackRewritten { .. }) => failed = true,
            Err(e) => panic!("{e}"),
        }
        if !failed {
            break out;
        }
        failures += 1;
        assert!(failures <= 8, "recovers after a few reads");
    };
    // its cached sums no longer matched: one read per rewritten pack said so
    assert!(
        failures >= 1 && failures <= rewritten,
        "{failures} of {rewritten}"
    );
    for (k, v) in &before {
        if k.0 == "img-00000002" {
            assert_eq!(now[k], erased_row(k));
        } else {
            assert_eq!(&now[k], v);
        }
    }
}

/// A custom matcher (what the SQL layer's predicate is): rows that match only in an old
/// version are erased there; the erasure records what was asked.
#[tokio::test]
async fn a_matcher_erases_rows_of_old_versions_only_where_they_match() {
    struct Reviewer(&'static str);
    #[async_trait::async_trait]
    impl quiver_core::RowMatcher for Reviewer {
        async fn matches(
            &self,
            b: &RecordBatch,
        ) -> quiver_core::Result<arrow::array::BooleanArray> {
            let col = b.column_by_name("reviewer").unwrap().as_string::<i32>();
            Ok(col.iter().map(|v| Some(v == Some(self.0))).collect())
        }
        fn describe(&self) -> String {
            format!("WHERE reviewer = '{}'", self.0)
        }
    }
    let cat = Catalog::open("memory://").await.unwrap();
    let ds = cat
        .create_dataset("demo", demo::schema(), demo::options())
        .await
        .unwrap();
    ds.append("main", &edits(1, 400), "load").await.unwrap();
    let v1 = ds.head("main").await.unwrap();
    let old = table(&v1).await;
    // every label reviewed by alice is re-reviewed by bob on main
    let mut t = ds.begin("main").await.unwrap();
    for b in v1.scan(None).await.unwrap() {
        let ri = b.schema().index_of("reviewer").unwrap();
        let mut cols = b.columns().to_vec();
        let rv: StringArray = b
            .column(ri)
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|v| if v == "alice" { "bob" } else { v }))
            .collect();
        cols[ri] = std::sync::Arc::new(rv);
        t.upsert(&RecordBatch::try_new(b.schema(), cols).unwrap())
            .await
            .unwrap();
    }
    t.commit("re-review").await.unwrap();
    let head_before = table(&ds.head("main").await.unwrap()).await;
    let r = ds.erase(&Reviewer("alice"), "alice left").await.unwrap();
    assert!(r.rows_erased > 0, "{r:?}");
    let alice: Vec<&(String, i64)> = old
        .iter()
        .filter(|(_, v)| v[10] == "alice")
        .map(|(k, _)| k)
        .collect();
    assert!(!alice.is_empty());
    let now_old = table(&v1).await;
    for (k, v) in &old {
        if alice.contains(&k) {
            assert_eq!(now_old[k], erased_row(k));
        } else {
            assert_eq!(&now_old[k], v);
        }
    }
    // on main those labels say bob: not erased (the before-image copies of alice's rows in
    // the re-review's change pack are)
    assert_eq!(table(&ds.head("main").await.unwrap()).await, head_before);
    let listed = ds.erased_labels().await.unwrap();
    assert_eq!(listed.len(), alice.len());
    assert!(listed
        .iter()
        .all(|l| l.filter == "WHERE reviewer = 'alice'"));
    let f = cat.fsck(FsckOptions::default()).await.unwrap();
    assert!(f.is_clean(), "{:?}", f.problems);
}

/// An erasure cut short (its record written, the pack not yet; or the pack written, its
/// sums not yet) leaves a readable catalog that `fsck` reports, and running it again
/// finishes it.
#[tokio::test]
async fn an_erasure_cut_short_is_reported_and_finished_by_running_it_again() {
    use quiver_core::ProblemKind;
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap();
    let cat = Catalog::open(url).await.unwrap();
    let ds = cat
        .create_dataset("demo", demo::schema(), demo::options())
        .await
        .unwrap();
    ds.append("main", &edits(1, 300), "load").await.unwrap();
    let original = table(&ds.head("main").await.unwrap()).await;
    let packs = cat.store().list("objects/pack/").await.unwrap();
    assert_eq!(packs.len(), 1);
    let pack = &packs[0];
    let hex = pack.rsplit('/').next().unwrap();
    let sums = format!("packsums/{}/{hex}", &hex[..2]);
    let (old_pack, old_sums) = (
        cat.store().get_file(pack).await.unwrap(),
        cat.store().get_file(&sums).await.unwrap(),
    );
    let rows = EraseKeys::new(&ds).unwrap().group(b"img-00000001".to_vec());
    ds.erase(&rows, "").await.unwrap();
    let erased_table = table(
        &Catalog::open(url)
            .await
            .unwrap()
            .dataset("demo")
            .await
            .unwrap()
            .head("main")
            .await
            .unwrap(),
    )
    .await;
    assert_ne!(erased_table, original);

    // cut after the record: the pack and its sums are the old ones
    cat.store().put_file(pack, old_pack.clone()).await.unwrap();
    cat.store().put_file(&sums, old_sums.clone()).await.unwrap();
    let fresh = Catalog::open(url).await.unwrap();
    let f = fresh.fsck(FsckOptions::default()).await.unwrap();
    assert_eq!(
        f.count(ProblemKind::ErasureIncomplete),
        1,
        "{:?}",
        f.problems
    );
    let fds = fresh.dataset("demo").await.unwrap();
    assert_eq!(table(&fds.head("main").await.unwrap()).await, original);
    fds.erase(&rows, "again").await.unwrap();
    assert_eq!(table(&fds.head("main").await.unwrap()).await, erased_table);
    let f = fresh.fsck(FsckOptions::default()).await.unwrap();
    assert!(f.is_clean(), "{:?}", f.problems);

    // cut after the pack: its sums are the old ones; a fresh reader checks the pack
    // against its record and reads it
    cat.store().put_file(&sums, old_sums).await.unwrap();
    let fresh = Catalog::open(url).await.unwrap();
    let fds = fresh.dataset("demo").await.unwrap();
    let head = fds.head("main").await.unwrap();
    let read = match head.scan(None).await {
        Ok(_) => table(&head).await,
        // the first read finds the sums wrong and derives them
        Err(CoreError::PackRewritten { .. }) => table(&head).await,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(read, erased_table);
    let f = fresh.fsck(FsckOptions::default()).await.unwrap();
    assert_eq!(
        f.count(ProblemKind::ErasureIncomplete),
        1,
        "{:?}",
        f.problems
    );
    fds.erase(&rows, "again").await.unwrap();
    let f = Catalog::open(url)
        .await
        .unwrap()
        .fsck(FsckOptions::default())
        .await
        .unwrap();
    assert!(f.is_clean(), "{:?}", f.problems);

    // a pack matching neither its address nor its record is corruption
    let mut bad = cat.store().get_file(pack).await.unwrap().to_vec();
    let at = bad.len() / 2;
    bad[at] ^= 1;
    cat.store().put_file(pack, bad.into()).await.unwrap();
    let f = Catalog::open(url)
        .await
        .unwrap()
        .fsck(FsckOptions::default())
        .await
        .unwrap();
    assert_eq!(f.count(ProblemKind::Corrupt), 1, "{:?}", f.problems);
}

/// `AssetStore::erase`: the bytes go, a tombstone says when, by whom and why, reads say so;
/// gc keeps the tombstone; fsck counts it.
#[tokio::test]
async fn erased_assets_say_so() {
    let cat = Catalog::open("memory://").await.unwrap();
    let assets = cat.assets();
    let h = assets
        .put_bytes(bytes::Bytes::from_static(b"a face"))
        .await
        .unwrap();
    let other = assets
        .put_bytes(bytes::Bytes::from_static(b"a tree"))
        .await
        .unwrap();
    let t = assets.erase(&h, "subject asked", "dpo").await.unwrap();
    assert_eq!((t.size, t.author.as_str()), (Some(6), "dpo"));
    assert!(!assets.exists(&h).await.unwrap());
    for e in [
        assets.get(&h).await.unwrap_err(),
        assets.size(&h).await.unwrap_err(),
        assets.open(&h).await.err().unwrap(),
    ] {
        assert!(matches!(e, CoreError::AssetErased { .. }), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("was erased on") && m.contains("subject asked"),
            "{m}"
        );
    }
    // again: the same tombstone; an asset never stored is not found
    assert_eq!(assets.erase(&h, "x", "y").await.unwrap(), t);
    let never = Hash::of(b"never");
    assert!(matches!(
        assets.erase(&never, "", "").await.unwrap_err(),
        CoreError::AssetNotFound(_)
    ));
    assert_eq!(assets.get(&other).await.unwrap().as_ref(), b"a tree");
    assert_eq!(assets.tombstones().await.unwrap(), vec![t]);
    let f = cat.fsck(FsckOptions::default()).await.unwrap();
    assert!(f.is_clean() && f.erased_assets == 1, "{f:?}");
    let g = assets.gc(false).await.unwrap();
    assert_eq!(g.deleted, 1, "the other, unreferenced asset");
    assert_eq!(assets.tombstones().await.unwrap().len(), 1);
}

/// VACUUM deletes an erased pack no version needs any more with its sums and its erasure
/// record; the live erased packs and their records stay, and fsck is clean.
#[tokio::test]
async fn gc_takes_the_records_of_the_packs_it_deletes() {
    let cat = Catalog::open("memory://").await.unwrap();
    let ds = cat
        .create_dataset("demo", demo::schema(), demo::options())
        .await
        .unwrap();
    ds.append("main", &edits(1, 300), "load").await.unwrap();
    ds.create_branch("exp", &VersionSpec::main()).await.unwrap();
    ds.upsert("exp", &edits(2, 20), "exp edit").await.unwrap();
    let rows = EraseKeys::new(&ds).unwrap().group(b"img-00000001".to_vec());
    assert_eq!(ds.erase(&rows, "").await.unwrap().packs_rewritten, 2);
    let records = |cat: &Catalog| {
        let cat = cat.clone();
        async move { cat.store().list("erasures/packs/").await.unwrap().len() }
    };
    assert_eq!(records(&cat).await, 2);
    ds.delete_branch("exp").await.unwrap();
    let r = cat
        .gc(&quiver_core::VacuumOptions {
            retain: std::time::Duration::ZERO,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((r.packs.count, r.erasure_records.count), (1, 1), "{r:?}");
    assert_eq!(records(&cat).await, 1);
    let f = cat.fsck(FsckOptions::default()).await.unwrap();
    assert!(f.is_clean() && f.orphans.is_empty(), "{f:?}");
    assert_eq!(f.erased_packs, 1);
    let t = table(&ds.head("main").await.unwrap()).await;
    assert_eq!(
        t[&("img-00000001".to_string(), 0)],
        erased_row(&("img-00000001".to_string(), 0))
    );
}
