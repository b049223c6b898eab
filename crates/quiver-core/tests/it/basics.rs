use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use quiver_core::{Catalog, CoreError, DatasetOptions, VersionSpec};
use std::sync::Arc;

use crate::common::*;

#[tokio::test]
async fn write_read_history_refs_on_disk_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        dir.path().to_str().unwrap().to_string(),
        "memory://".to_string(),
    ] {
        let (cat, ds) = new_dataset(&url).await;
        assert_eq!(
            cat.list_datasets().await.unwrap(),
            vec!["labels".to_string()]
        );
        let c1 = ds
            .append(
                "main",
                &[batch(&[
                    ("a", 1, "car", 0.5),
                    ("a", 2, "dog", 0.7),
                    ("b", 1, "cat", 0.1),
                ])],
                "first",
            )
            .await
            .unwrap();
        assert_eq!(c1.data.summary.groups_added, 2);
        assert_eq!(c1.data.summary.labels_added, 3);
        let snap = ds.head("main").await.unwrap();
        assert_eq!(rows(&snap).await.len(), 3);

        // append of an existing label key fails and changes nothing
        let err = ds
            .append("main", &[batch(&[("a", 1, "car", 0.9)])], "dup")
            .await
            .unwrap_err();
        assert!(matches!(err, CoreError::DuplicateKey { .. }), "{err}");
        assert!(err.to_string().contains("(a, 1)"), "{err}");
        assert_eq!(ds.head("main").await.unwrap().commit().id, c1.id);

        // upsert one label, add one, leave the rest
        let c2 = ds
            .upsert(
                "main",
                &[batch(&[("a", 2, "person", 0.8), ("c", 1, "car", 0.3)])],
                "relabel",
            )
            .await
            .unwrap();
        let s = &c2.data.summary;
        assert_eq!(
            (
                s.groups_added,
                s.groups_modified,
                s.labels_added,
                s.labels_modified
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(c2.parents, vec![c1.id]);
        let r = rows(&ds.head("main").await.unwrap()).await;
        assert_eq!(r.len(), 4);
        assert!(r.contains(&("a".into(), 2, Some("person".into()), Some(0.8))));

        // tag v1, branch, edit branch; main and v1 unchanged
        ds.create_tag("v1", &VersionSpec::main()).await.unwrap();
        ds.create_branch("relabel", &VersionSpec::Tag("v1".into()))
            .await
            .unwrap();
        let keys = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "sample_id",
                DataType::Utf8,
                false,
            )])),
            vec![Arc::new(StringArray::from(vec!["b"]))],
        )
        .unwrap();
        let c3 = ds.delete("relabel", &keys, "drop b").await.unwrap();
        assert_eq!(c3.data.summary.groups_removed, 1);
        assert_eq!(rows(&ds.head("relabel").await.unwrap()).await.len(), 3);
        assert_eq!(
            rows(&ds.checkout(&VersionSpec::Tag("v1".into())).await.unwrap())
                .await
                .len(),
            4
        );
        assert_eq!(ds.head("main").await.unwrap().commit().id, c2.id);

        // label-level delete
        let lkeys = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("sample_id", DataType::Utf8, false),
                Field::new("label_id", DataType::Int64, false),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(Int64Array::from(vec![1])),
            ],
        )
        .unwrap();
        let c4 = ds.delete("relabel", &lkeys, "drop a/1").await.unwrap();
        assert_eq!(c4.data.summary.labels_removed, 1);
        assert_eq!(c4.data.summary.groups_modified, 1);

        // history, index, prefix, timestamp
        let hist = ds.history("relabel").await.unwrap();
        assert_eq!(hist.len(), 5); // create, first, relabel, drop b, drop a/1
        assert_eq!(hist[0].id, c4.id);
        let first = ds
            .resolve(&VersionSpec::Index {
                branch: "main".into(),
                index: 0,
            })
            .await
            .unwrap();
        assert_eq!(first.data.summary.operation, "create");
        let last = ds
            .resolve(&VersionSpec::Index {
                branch: "main".into(),
                index: -1,
            })
            .await
            .unwrap();
        assert_eq!(last.id, c2.id);
        let by_prefix = ds
            .resolve(&VersionSpec::Version(c1.id.to_hex()[..10].to_string()))
            .await
            .unwrap();
        assert_eq!(by_prefix.id, c1.id);
        let at = ds
            .resolve(&VersionSpec::Timestamp {
                branch: "main".into(),
                at: c1.data.timestamp,
            })
            .await
            .unwrap();
        assert_eq!(at.id, c1.id);
        assert_eq!(ds.resolve_loose("v1").await.unwrap().id, c2.id);
        assert_eq!(ds.resolve_loose("relabel").await.unwrap().id, c4.id);

        // branches and tags listing, rename, delete
        let names: Vec<String> = ds
            .branches()
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(names, vec!["main".to_string(), "relabel".to_string()]);
        ds.rename_branch("relabel", "curated").await.unwrap();
        assert!(matches!(
            ds.branch_head("relabel").await.unwrap_err(),
            CoreError::BranchNotFound { .. }
        ));
        assert_eq!(ds.branch_head("curated").await.unwrap().commit.id, c4.id);
        ds.rename_tag("v1", "v1.0").await.unwrap();
        let err = ds.tag("v1").await.unwrap_err();
        assert_eq!(err.to_string(), "tag 'v1' not found in dataset 'labels'");
        assert!(matches!(
            ds.create_tag("v1.0", &VersionSpec::main())
                .await
                .unwrap_err(),
            CoreError::TagExists { .. }
        ));
        ds.delete_tag("v1.0").await.unwrap();
        assert!(ds.tags().await.unwrap().is_empty());
        ds.delete_branch("curated").await.unwrap();
        assert!(ds.delete_branch("main").await.is_err());
        assert_eq!(ds.branch_log("main").await.unwrap().len(), 3);

        // drop
        cat.drop_dataset("labels").await.unwrap();
        assert!(matches!(
            cat.dataset("labels").await.unwrap_err(),
            CoreError::DatasetNotFound(_)
        ));
    }
}

#[tokio::test]
async fn errors_name_what_was_asked_for() {
    let (cat, ds) = new_dataset("memory://").await;
    assert_eq!(
        cat.dataset("nope").await.unwrap_err().to_string(),
        "dataset 'nope' does not exist"
    );
    assert!(matches!(
        cat.create_dataset("labels", schema(), DatasetOptions::default())
            .await
            .unwrap_err(),
        CoreError::DatasetExists(_)
    ));
    assert!(matches!(
        cat.create_dataset("a/../b", schema(), DatasetOptions::default())
            .await
            .unwrap_err(),
        CoreError::InvalidName { .. }
    ));
    let e = ds
        .checkout(&VersionSpec::Branch("ghost".into()))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "branch 'ghost' not found in dataset 'labels'"
    );
    let e = ds
        .resolve(&VersionSpec::Version("deadbeef".into()))
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::VersionNotFound { .. }), "{e}");
    let e = ds
        .resolve(&VersionSpec::Index {
            branch: "main".into(),
            index: 5,
        })
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::IndexOutOfRange { .. }), "{e}");
    let e = ds
        .create_branch("x y", &VersionSpec::main())
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::InvalidName { .. }), "{e}");
    // names are at most 240 bytes; the error does not echo a long name whole
    let long = "b".repeat(10_000);
    let e = ds
        .create_branch(&long, &VersionSpec::main())
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::InvalidName { .. }), "{e}");
    assert!(e.to_string().contains("at most 240 bytes"), "{e}");
    assert!(e.to_string().len() < 300, "{e}");
    let e = cat
        .create_dataset(&"d".repeat(241), schema(), DatasetOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::InvalidName { .. }), "{e}");
    cat.create_dataset(&"d".repeat(240), schema(), DatasetOptions::default())
        .await
        .unwrap();
    // wrong schema
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "sample_id",
            DataType::Int64,
            false,
        )])),
        vec![Arc::new(Int64Array::from(vec![1]))],
    )
    .unwrap();
    let e = ds.append("main", &[bad], "bad").await.unwrap_err();
    assert!(matches!(e, CoreError::SchemaMismatch { .. }), "{e}");
    // duplicate keys inside one write
    let e = ds
        .append(
            "main",
            &[batch(&[("a", 1, "x", 0.0), ("a", 1, "y", 0.0)])],
            "dup",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::DuplicateKey { .. }), "{e}");
    // unsupported key type
    let s = Arc::new(Schema::new(vec![
        Field::new("sample_id", DataType::Float64, false),
        Field::new("label_id", DataType::Int64, false),
    ]));
    assert!(matches!(
        cat.create_dataset("f", s, DatasetOptions::default())
            .await
            .unwrap_err(),
        CoreError::UnsupportedKeyType { .. }
    ));
    assert_eq!(
        ds.history("main").await.unwrap().len(),
        1,
        "nothing was committed"
    );
}

#[tokio::test]
async fn metadata_persists_without_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap();
    let (_, ds) = new_dataset(url).await;
    ds.set_metadata("owner", Some(serde_json::json!("vision-team")))
        .await
        .unwrap();
    ds.set_column_metadata("class", "taxonomy", Some(serde_json::json!({"v": 2})))
        .await
        .unwrap();
    let cat = Catalog::open(url).await.unwrap();
    let ds2 = cat.dataset("labels").await.unwrap();
    assert_eq!(
        ds2.metadata().await.unwrap()["owner"],
        serde_json::json!("vision-team")
    );
    assert_eq!(
        ds2.column_metadata("class").await.unwrap()["taxonomy"]["v"],
        2
    );
    assert!(matches!(
        ds2.column_metadata("nope").await.unwrap_err(),
        CoreError::ColumnNotFound { .. }
    ));
    ds2.set_metadata("owner", None).await.unwrap();
    assert!(ds2.metadata().await.unwrap().is_empty());
    assert_eq!(ds2.history("main").await.unwrap().len(), 1);
}

#[tokio::test]
async fn same_content_same_root_whatever_history() {
    let (_, ds) = new_dataset("memory://").await;
    ds.create_branch("b", &VersionSpec::main()).await.unwrap();
    // main: one bulk write
    let all = synthetic(300, 3, 0.0);
    let a = ds
        .append("main", std::slice::from_ref(&all), "bulk")
        .await
        .unwrap();
    // b: three writes in another order, with an edit that is later reverted
    ds.append("b", &[all.slice(600, 300)], "last third")
        .await
        .unwrap();
    ds.append("b", &[all.slice(0, 600)], "first two thirds")
        .await
        .unwrap();
    ds.upsert("b", &[batch(&[("s0000005", 1, "zebra", 9.0)])], "edit")
        .await
        .unwrap();
    let b = ds.upsert("b", &[all.slice(16, 1)], "revert").await.unwrap();
    assert_eq!(a.root, b.root);
    assert_ne!(a.id, b.id);
}

/// Writes take strings in any layout (SQL reads them as views) and store the dataset's
/// type; a string where a number belongs is still refused.
#[tokio::test]
async fn writes_accept_string_views_and_refuse_other_types() {
    let (_, ds) = new_dataset("memory://").await;
    let b = batch(&[("s1", 0, "cat", 0.5), ("s2", 0, "dog", 0.25)]);
    let view = |i: usize| arrow::compute::cast(b.column(i), &DataType::Utf8View).unwrap();
    let views = RecordBatch::try_new(
        Arc::new(Schema::new(
            b.schema()
                .fields()
                .iter()
                .map(|f| match f.data_type() {
                    DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
                    _ => f.as_ref().clone(),
                })
                .collect::<Vec<Field>>(),
        )),
        vec![view(0), b.column(1).clone(), view(2), b.column(3).clone()],
    )
    .unwrap();
    let c = ds.append("main", &[views], "views").await.unwrap();
    assert_eq!(c.data.summary.labels_added, 2);
    let head = ds.head("main").await.unwrap();
    assert_eq!(head.schema().field(0).data_type(), &DataType::Utf8);
    assert_eq!(
        rows(&head).await,
        vec![
            ("s1".to_string(), 0, Some("cat".to_string()), Some(0.5)),
            ("s2".to_string(), 0, Some("dog".to_string()), Some(0.25)),
        ]
    );
    // a string column where the label key (Int64) belongs
    let bad = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("sample_id", DataType::Utf8, false),
            Field::new("label_id", DataType::Utf8View, false),
            Field::new("class", DataType::Utf8, true),
            Field::new("score", DataType::Float64, true),
        ])),
        vec![
            b.column(0).clone(),
            view(0),
            b.column(2).clone(),
            b.column(3).clone(),
        ],
    )
    .unwrap();
    let err = ds.append("main", &[bad], "bad").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("column 'label_id' expects Int64 but got Utf8View"),
        "{err}"
    );
}

/// A handle acting for a named author records that name on commits and on the ref log of
/// branch and tag changes (a server acting for a token), not the process's user.
#[tokio::test]
async fn with_author_names_the_actor_of_commits_and_ref_changes() {
    let (_cat, ds) = new_dataset("memory://").await;
    let as_alice = ds.with_author("alice");
    as_alice
        .create_branch("fix", &VersionSpec::main())
        .await
        .unwrap();
    as_alice
        .create_tag("t1", &VersionSpec::main())
        .await
        .unwrap();
    let log = ds.branch_log("fix").await.unwrap();
    assert_eq!(log.last().map(|e| e.author.as_str()), Some("alice"));
    let mut txn = as_alice.begin("fix").await.unwrap();
    txn.upsert(&batch(&[("s9", 1, "cat", 0.5)])).await.unwrap();
    let c = txn.commit("by alice").await.unwrap();
    assert_eq!(c.data.author, "alice");
    as_alice.delete_tag("t1").await.unwrap();
    // the plain handle still acts as the process's author
    assert_eq!(ds.author(), quiver_core::default_author());
}
