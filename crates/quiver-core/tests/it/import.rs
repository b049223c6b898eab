//! Importers, exporters and the asset store (issue 7).

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use futures::StreamExt;
use quiver_core::import::export::{export_coco, export_parquet, export_yolo, ExportOptions};
use quiver_core::import::tabular::{import_csv, import_parquet, TableKeys};
use quiver_core::import::{coco, yolo, ImportOptions};
use quiver_core::{Catalog, CoreError, Hash, VersionSpec};
use serde_json::json;

/// Deterministic pseudo-image bytes.
fn image_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A small COCO file: `n` images with 1–3 annotations each, plus the image files.
fn write_coco(dir: &Path, n: usize) -> (PathBuf, PathBuf, serde_json::Value) {
    let images_dir = dir.join("images");
    std::fs::create_dir_all(&images_dir).unwrap();
    let mut images = Vec::new();
    let mut anns = Vec::new();
    let mut ann_id = 100;
    for i in 0..n {
        let name = format!("img_{i:04}.jpg");
        std::fs::write(images_dir.join(&name), image_bytes(i as u64, 1000 + i * 37)).unwrap();
        images.push(json!({"id": i + 1, "file_name": name, "width": 640, "height": 480}));
        for j in 0..(i % 3 + 1) {
            ann_id += 1;
            anns.push(json!({
                "id": ann_id, "image_id": i + 1, "category_id": (i + j) % 3 + 1,
                "bbox": [i as f64 * 1.5, j as f64, 10.25, 20.0 + j as f64],
                "area": 205.0, "iscrowd": 0,
                "segmentation": [[1.0, 2.0, 3.0, 4.0, 5.5, 6.0]]
            }));
        }
    }
    let doc = json!({
        "info": {"description": "test"},
        "images": images,
        "annotations": anns,
        "categories": [
            {"id": 1, "name": "cat", "supercategory": "animal"},
            {"id": 2, "name": "dog", "supercategory": "animal"},
            {"id": 3, "name": "car", "supercategory": "vehicle"},
            {"id": 4, "name": "unused"}
        ]
    });
    let file = dir.join("ann.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    (file, images_dir, doc)
}

fn write_json(path: &Path, doc: &serde_json::Value) {
    std::fs::write(path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
}

/// The head of `main` of dataset `ds`.
async fn main_head(cat: &Catalog, ds: &str) -> quiver_core::Snapshot {
    cat.dataset(ds).await.unwrap().head("main").await.unwrap()
}

async fn root(cat: &Catalog, ds: &str) -> Hash {
    main_head(cat, ds).await.root()
}

#[tokio::test]
async fn asset_store_put_get_stream_dedup_and_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let cat_dir = dir.path().join("cat");
    for url in [cat_dir.to_str().unwrap().to_string(), "memory://".into()] {
        let cat = Catalog::open(&url).await.unwrap();
        let assets = cat.assets();
        let small = image_bytes(1, 5000);
        let h1 = assets.put_bytes(small.clone().into()).await.unwrap();
        assert_eq!(h1, Hash::of(&small));
        assert_eq!(assets.put_bytes(small.clone().into()).await.unwrap(), h1);
        assert_eq!(assets.get(&h1).await.unwrap().as_ref(), &small[..]);
        // a file larger than the single-request limit streams through a multipart upload
        let big = image_bytes(2, 20 * 1024 * 1024 + 123);
        let f = dir.path().join("big.bin");
        std::fs::write(&f, &big).unwrap();
        let h2 = assets.put_file(&f).await.unwrap();
        assert_eq!(h2, Hash::of(&big));
        assert_eq!(assets.put_file(&f).await.unwrap(), h2, "idempotent");
        assert_eq!(assets.size(&h2).await.unwrap(), big.len() as u64);
        let mut s = assets.open(&h2).await.unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next().await {
            got.extend_from_slice(&c.unwrap());
        }
        assert!(got == big);
        let out = dir.path().join("out.bin");
        assert_eq!(
            assets.get_to_file(&h2, &out).await.unwrap(),
            big.len() as u64
        );
        assert!(std::fs::read(&out).unwrap() == big);
        let mut listed = assets.list().await.unwrap();
        listed.sort();
        let mut want = vec![h1, h2];
        want.sort();
        assert_eq!(listed, want);
        // nothing left in staging
        assert!(cat.store().list("tmp/").await.unwrap().is_empty());
        let missing = Hash::of(b"nope");
        assert!(!assets.exists(&missing).await.unwrap());
        assert!(matches!(
            assets.get(&missing).await,
            Err(CoreError::AssetNotFound(_))
        ));
    }
    // corruption on disk is detected by get and by the stream
    let cat = Catalog::open(cat_dir.to_str().unwrap()).await.unwrap();
    let data = image_bytes(3, 4096);
    let h = cat.assets().put_bytes(data.into()).await.unwrap();
    let p = cat_dir.join(quiver_core::AssetStore::path_of(&h));
    std::fs::write(&p, b"tampered").unwrap();
    let e = cat.assets().get(&h).await.unwrap_err();
    assert!(
        e.to_string().contains("corrupt") || e.to_string().contains("mismatch"),
        "{e}"
    );
    let mut s = cat.assets().open(&h).await.unwrap();
    let mut last = None;
    while let Some(c) = s.next().await {
        last = Some(c);
    }
    assert!(last.unwrap().is_err());
}

#[tokio::test]
async fn coco_import_with_images_export_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (file, images, _) = write_coco(dir.path(), 12);
    let cat = Catalog::open(dir.path().join("cat").to_str().unwrap())
        .await
        .unwrap();
    let r = coco::import(&cat, &file, &ImportOptions::new("coco").images(&images))
        .await
        .unwrap();
    assert!(r.created_dataset);
    assert_eq!(r.samples, 12);
    assert_eq!(r.labels, 24); // 1+2+3 per 3 images
    assert_eq!(r.assets, 12);
    assert_eq!(r.commit.data.summary.operation, "import");
    let ds = cat.dataset("coco").await.unwrap();
    let snap = ds.head("main").await.unwrap();
    assert_eq!(snap.num_rows().await.unwrap(), 24);
    // every label carries the hash of its image, and the image is in the asset store
    let hi = snap.schema().index_of("image_hash").unwrap();
    let si = snap.schema().index_of("sample_id").unwrap();
    for b in snap.scan(None).await.unwrap() {
        let hashes = b.column(hi).as_string::<i32>();
        let samples = b.column(si).as_string::<i32>();
        for r in 0..b.num_rows() {
            let h = Hash::from_hex(hashes.value(r)).unwrap();
            let want = std::fs::read(images.join(samples.value(r))).unwrap();
            assert!(cat.assets().get(&h).await.unwrap().as_ref() == &want[..]);
        }
    }
    // images are stored once: a second dataset over the same images adds no asset
    let before = cat.assets().list().await.unwrap().len();
    coco::import(&cat, &file, &ImportOptions::new("coco2").images(&images))
        .await
        .unwrap();
    assert_eq!(cat.assets().list().await.unwrap().len(), before);
    assert_eq!(root(&cat, "coco").await, root(&cat, "coco2").await);

    // export COCO (with images) → import → same root hash
    let out = dir.path().join("export.json");
    let out_images = dir.path().join("exported_images");
    let e = export_coco(
        &cat,
        "coco",
        "main",
        &out,
        &ExportOptions {
            images: Some(out_images.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((e.labels, e.images, e.assets), (24, 12, 12));
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let cats = exported["categories"].as_array().unwrap();
    assert_eq!(cats.len(), 4, "{cats:?}");
    assert_eq!(cats[0]["supercategory"], "animal");
    coco::import(&cat, &out, &ImportOptions::new("rt").images(&out_images))
        .await
        .unwrap();
    assert_eq!(root(&cat, "rt").await, root(&cat, "coco").await);

    // export Parquet → import Parquet → same root hash
    let pq = dir.path().join("export.parquet");
    let e = export_parquet(&cat, "coco", "main", &pq, &ExportOptions::default())
        .await
        .unwrap();
    assert_eq!(e.labels, 24);
    import_parquet(
        &cat,
        &pq,
        &TableKeys::default(),
        &ImportOptions::new("rtpq"),
    )
    .await
    .unwrap();
    assert_eq!(root(&cat, "rtpq").await, root(&cat, "coco").await);
    // re-importing the same file is a no-op: no new commit
    let head = ds.head("main").await.unwrap().commit().id;
    let r = coco::import(&cat, &file, &ImportOptions::new("coco").images(&images))
        .await
        .unwrap();
    assert_eq!(r.commit.id, head);
    assert!(r.unchanged);
}

#[tokio::test]
async fn coco_reimport_commits_exactly_the_changed_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _, mut doc) = write_coco(dir.path(), 40);
    let cat = Catalog::open("memory://").await.unwrap();
    let first = coco::import(&cat, &file, &ImportOptions::new("d"))
        .await
        .unwrap();
    // v1 tag, then an edited file: one bbox changed, one annotation removed, one added
    let ds = cat.dataset("d").await.unwrap();
    ds.create_tag("v1", &VersionSpec::main()).await.unwrap();
    let anns = doc["annotations"].as_array_mut().unwrap();
    let changed_img = anns[5]["image_id"].as_i64().unwrap();
    anns[5]["bbox"] = json!([1.0, 2.0, 3.0, 4.0]);
    let removed = anns.remove(20);
    let removed_img = removed["image_id"].as_i64().unwrap();
    anns.push(json!({"id": 9999, "image_id": 3, "category_id": 2, "bbox": [0.0, 0.0, 1.0, 1.0], "area": 1.0, "iscrowd": 0}));
    let edited = dir.path().join("edited.json");
    write_json(&edited, &doc);
    let r = coco::import(&cat, &edited, &ImportOptions::new("d").message("relabel"))
        .await
        .unwrap();
    assert!(!r.created_dataset);
    assert_eq!(r.deleted, 1);
    assert_eq!(r.commit.parents, vec![first.commit.id]);
    let s = &r.commit.data.summary;
    assert_eq!(
        (s.labels_added, s.labels_removed, s.labels_modified),
        (1, 1, 1),
        "{s:?}"
    );
    // the diff names only the touched samples
    let v1 = ds.checkout(&VersionSpec::Tag("v1".into())).await.unwrap();
    let head = ds.head("main").await.unwrap();
    let changes = v1.diff(&head).await.unwrap();
    let mut keys: Vec<String> = changes
        .iter()
        .map(|c| String::from_utf8(c.key.clone()).unwrap())
        .collect();
    keys.sort();
    let mut want: Vec<String> = [changed_img, removed_img, 3]
        .iter()
        .map(|i| format!("img_{:04}.jpg", i - 1))
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(keys, want);
    assert_eq!(head.num_rows().await.unwrap(), v1.num_rows().await.unwrap());
    // re-importing the original file restores the original root (history independence)
    coco::import(&cat, &file, &ImportOptions::new("d"))
        .await
        .unwrap();
    assert_eq!(root(&cat, "d").await, v1.root());
}

#[tokio::test]
async fn coco_bad_input_names_file_and_position_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (file, images, doc) = write_coco(dir.path(), 5);
    let cat = Catalog::open("memory://").await.unwrap();
    let check = |e: CoreError, file: &Path, needles: &[&str]| {
        let msg = e.to_string();
        assert!(matches!(e, CoreError::InvalidInput { .. }), "{msg}");
        assert!(msg.contains(&file.display().to_string()), "{msg}");
        for n in needles {
            assert!(msg.contains(n), "missing '{n}' in: {msg}");
        }
    };
    // truncated JSON
    let text = std::fs::read_to_string(&file).unwrap();
    let trunc = dir.path().join("trunc.json");
    std::fs::write(&trunc, &text[..text.len() / 2]).unwrap();
    let e = coco::import(&cat, &trunc, &ImportOptions::new("bad"))
        .await
        .unwrap_err();
    check(e, &trunc, &["line", "column", "truncated"]);
    // invalid JSON
    let inv = dir.path().join("invalid.json");
    std::fs::write(&inv, "{\"images\": [\n  {\"id\": 1,, }\n]}").unwrap();
    let e = coco::import(&cat, &inv, &ImportOptions::new("bad"))
        .await
        .unwrap_err();
    check(e, &inv, &["line 2"]);
    // wrong type
    let mut d = doc.clone();
    d["annotations"][0]["id"] = json!("seven");
    let wrong = dir.path().join("wrong.json");
    write_json(&wrong, &d);
    let e = coco::import(&cat, &wrong, &ImportOptions::new("bad"))
        .await
        .unwrap_err();
    check(e, &wrong, &["line", "not a COCO"]);
    // a wrong type in a field the labels carry, with images to store: the whole file is
    // checked before any image is stored
    let mut d = doc.clone();
    d["annotations"][4]["area"] = json!("large");
    let wrong = dir.path().join("wrong_area.json");
    write_json(&wrong, &d);
    let e = coco::import(&cat, &wrong, &ImportOptions::new("bad").images(&images))
        .await
        .unwrap_err();
    check(e, &wrong, &["line", "not a COCO"]);
    // annotation pointing at a missing image
    let mut d = doc.clone();
    d["annotations"][2]["image_id"] = json!(77);
    let f = dir.path().join("missing_image.json");
    write_json(&f, &d);
    let e = coco::import(&cat, &f, &ImportOptions::new("bad"))
        .await
        .unwrap_err();
    check(e, &f, &["annotations[2]", "image_id 77"]);
    // category id with no category
    let mut d = doc.clone();
    d["annotations"][1]["category_id"] = json!(42);
    let f = dir.path().join("missing_cat.json");
    write_json(&f, &d);
    let e = coco::import(&cat, &f, &ImportOptions::new("bad"))
        .await
        .unwrap_err();
    check(e, &f, &["annotations[1]", "category_id 42"]);
    // missing image file under --images
    std::fs::remove_file(images.join("img_0003.jpg")).unwrap();
    let e = coco::import(&cat, &file, &ImportOptions::new("bad").images(&images))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("img_0003.jpg") && msg.contains("images[3]"),
        "{msg}"
    );
    // nothing was created or stored
    assert!(cat.list_datasets().await.unwrap().is_empty());
    assert!(cat.assets().list().await.unwrap().is_empty());

    // bad input against an existing dataset leaves its head untouched
    let good = dir.path().join("good.json");
    write_json(&good, &doc);
    let r = coco::import(&cat, &good, &ImportOptions::new("ok"))
        .await
        .unwrap();
    let f = dir.path().join("missing_cat.json");
    assert!(coco::import(&cat, &f, &ImportOptions::new("ok"))
        .await
        .is_err());
    let ds = cat.dataset("ok").await.unwrap();
    assert_eq!(ds.head("main").await.unwrap().commit().id, r.commit.id);
}

#[tokio::test]
async fn yolo_import_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root_dir = dir.path().join("yolo");
    for sub in ["images/train", "labels/train"] {
        std::fs::create_dir_all(root_dir.join(sub)).unwrap();
    }
    std::fs::write(root_dir.join("classes.txt"), "person\ncar\n\nbike\n").unwrap();
    for i in 0..6 {
        std::fs::write(
            root_dir.join(format!("images/train/{i}.png")),
            image_bytes(i, 300),
        )
        .unwrap();
        let lines: String = (0..=i % 3)
            .map(|j| format!("{} 0.5 0.5 0.{} 0.2\n", (i + j) % 3, j + 1))
            .collect();
        std::fs::write(root_dir.join(format!("labels/train/{i}.txt")), lines).unwrap();
    }
    let cat = Catalog::open("memory://").await.unwrap();
    let r = yolo::import(&cat, &root_dir, None, &ImportOptions::new("y"))
        .await
        .unwrap();
    assert_eq!((r.samples, r.labels, r.assets), (6, 12, 6));
    let snap = cat.dataset("y").await.unwrap().head("main").await.unwrap();
    let b = snap.scan(None).await.unwrap();
    let classes: Vec<String> = b
        .iter()
        .flat_map(|b| {
            let c = b
                .column_by_name("class")
                .unwrap()
                .as_string::<i32>()
                .clone();
            (0..c.len()).map(move |i| c.value(i).to_string())
        })
        .collect();
    assert!(classes
        .iter()
        .all(|c| ["person", "car", "bike"].contains(&c.as_str())));
    let s = b[0]
        .column_by_name("sample_id")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string();
    assert!(s.starts_with("train/") && s.ends_with(".png"), "{s}");

    // wrong field count → file and line
    let bad = root_dir.join("labels/train/4.txt");
    std::fs::write(&bad, "0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1\n").unwrap();
    let e = yolo::import(&cat, &root_dir, None, &ImportOptions::new("y"))
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("4.txt") && msg.contains("line 2") && msg.contains("found 4"),
        "{msg}"
    );
    // class out of range
    std::fs::write(&bad, "7 0.5 0.5 0.1 0.1\n").unwrap();
    let msg = yolo::import(&cat, &root_dir, None, &ImportOptions::new("y"))
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("line 1") && msg.contains("class 7"), "{msg}");
    // label file without an image
    std::fs::write(&bad, "0 0.5 0.5 0.1 0.1\n").unwrap();
    std::fs::write(
        root_dir.join("labels/train/orphan.txt"),
        "0 0.5 0.5 0.1 0.1\n",
    )
    .unwrap();
    let msg = yolo::import(&cat, &root_dir, None, &ImportOptions::new("y"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("orphan.txt") && msg.contains("no image"),
        "{msg}"
    );
    assert_eq!(
        cat.dataset("y")
            .await
            .unwrap()
            .head("main")
            .await
            .unwrap()
            .commit()
            .id,
        r.commit.id
    );
}

#[tokio::test]
async fn csv_import_infers_schema_and_reimports_changes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("labels.csv");
    std::fs::write(
        &f,
        "img,box,class,score,reviewed\na.jpg,1,cat,0.5,true\na.jpg,2,dog,0.25,false\nb.jpg,1,car,0.75,true\n",
    )
    .unwrap();
    let cat = Catalog::open("memory://").await.unwrap();
    let keys = TableKeys {
        group_key: "img".into(),
        label_key: "box".into(),
    };
    let r = import_csv(&cat, &f, &keys, &ImportOptions::new("t"))
        .await
        .unwrap();
    assert_eq!((r.samples, r.labels), (2, 3));
    let ds = cat.dataset("t").await.unwrap();
    let schema = ds.schema();
    assert_eq!(
        schema.field_with_name("box").unwrap().data_type(),
        &arrow::datatypes::DataType::Int64
    );
    assert_eq!(
        schema.field_with_name("score").unwrap().data_type(),
        &arrow::datatypes::DataType::Float64
    );
    // change one row, drop one → exactly those labels
    std::fs::write(
        &f,
        "img,box,class,score,reviewed\na.jpg,1,cat,0.5,true\nb.jpg,1,bus,0.75,true\n",
    )
    .unwrap();
    let r = import_csv(&cat, &f, &keys, &ImportOptions::new("t"))
        .await
        .unwrap();
    let s = &r.commit.data.summary;
    assert_eq!(
        (s.labels_added, s.labels_removed, s.labels_modified),
        (0, 1, 1),
        "{s:?}"
    );
    // bad key flag, duplicate key, unparsable value
    let bad_keys = TableKeys {
        group_key: "image".into(),
        label_key: "box".into(),
    };
    let msg = import_csv(&cat, &f, &bad_keys, &ImportOptions::new("t2"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("'image'") && msg.contains("labels.csv"),
        "{msg}"
    );
    std::fs::write(&f, "img,box,class\na.jpg,1,cat\nb.jpg,1,dog\na.jpg,1,car\n").unwrap();
    let msg = import_csv(&cat, &f, &keys, &ImportOptions::new("t2"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("line 4") && msg.contains("duplicate key (a.jpg, 1)"),
        "{msg}"
    );
    assert!(cat.dataset("t2").await.is_err());
    // a value that does not fit the existing dataset's column type
    std::fs::write(&f, "img,box,class,score,reviewed\na.jpg,1,cat,high,true\n").unwrap();
    let msg = import_csv(&cat, &f, &keys, &ImportOptions::new("t"))
        .await
        .unwrap_err()
        .to_string();
    assert!(msg.contains("score"), "{msg}");
}

#[tokio::test]
async fn asset_gc_deletes_only_unreachable_assets() {
    let dir = tempfile::tempdir().unwrap();
    let (file, images, mut doc) = write_coco(dir.path(), 6);
    let cat = Catalog::open(dir.path().join("cat").to_str().unwrap())
        .await
        .unwrap();
    coco::import(&cat, &file, &ImportOptions::new("d").images(&images))
        .await
        .unwrap();
    let ds = cat.dataset("d").await.unwrap();
    // an old version referencing img_0005 stays reachable through history
    doc["annotations"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["image_id"] != json!(6));
    doc["images"]
        .as_array_mut()
        .unwrap()
        .retain(|i| i["id"] != json!(6));
    let edited = dir.path().join("edited.json");
    write_json(&edited, &doc);
    coco::import(&cat, &edited, &ImportOptions::new("d").images(&images))
        .await
        .unwrap();
    // unreferenced assets: one orphan blob, one referenced only from a dropped dataset
    let orphan = cat
        .assets()
        .put_bytes(b"orphan".to_vec().into())
        .await
        .unwrap();
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(extra.join("images")).unwrap();
    std::fs::write(extra.join("images/x.jpg"), b"only in a dropped dataset").unwrap();
    let x = extra.join("x.json");
    write_json(
        &x,
        &json!({"images": [{"id": 1, "file_name": "x.jpg"}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1}], "categories": [{"id": 1, "name": "a"}]}),
    );
    coco::import(
        &cat,
        &x,
        &ImportOptions::new("gone").images(extra.join("images")),
    )
    .await
    .unwrap();
    cat.drop_dataset("gone").await.unwrap();
    assert_eq!(cat.assets().list().await.unwrap().len(), 8);

    let dry = cat.assets().gc(true).await.unwrap();
    assert_eq!(
        (dry.assets, dry.referenced, dry.deleted),
        (8, 6, 2),
        "{dry:?}"
    );
    assert_eq!(
        cat.assets().list().await.unwrap().len(),
        8,
        "dry run deletes nothing"
    );
    assert!(dry.deleted_hashes.contains(&orphan));
    let grace = cat
        .assets()
        .gc_with(&quiver_core::GcOptions {
            dry_run: false,
            grace: std::time::Duration::from_secs(3600),
        })
        .await
        .unwrap();
    assert_eq!((grace.deleted, grace.kept_young), (0, 2));
    let done = cat.assets().gc(false).await.unwrap();
    assert_eq!(done.deleted, 2);
    assert_eq!(cat.assets().list().await.unwrap().len(), 6);
    assert!(!cat.assets().exists(&orphan).await.unwrap());
    // history still reads: img_0005's asset survives through the first commit
    let h = quiver_core::assets::hash_file(&images.join("img_0005.jpg"))
        .await
        .unwrap();
    assert!(cat.assets().exists(&h).await.unwrap());
    // once no version references it (history rewritten by dropping the dataset), it goes
    cat.drop_dataset("d").await.unwrap();
    let r = cat.assets().gc(false).await.unwrap();
    assert_eq!(r.deleted, 6);
    let _ = ds;
}

/// The real public dataset: scikit-learn's bundled `load_digits` images written as PNGs with
/// a COCO file by `scripts/make_digits.py` (run by `scripts/test.sh`, which sets
/// `QUIVER_DIGITS_DIR`). Skipped when the variable is not set.
#[tokio::test]
async fn digits_real_dataset_round_trip() {
    let Ok(d) = std::env::var("QUIVER_DIGITS_DIR") else {
        eprintln!("QUIVER_DIGITS_DIR not set: skipping the load_digits test");
        return;
    };
    let d = PathBuf::from(d);
    let ann = d.join("annotations.json");
    let images = d.join("images");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&ann).unwrap()).unwrap();
    let n_images = doc["images"].as_array().unwrap().len();
    let n_anns = doc["annotations"].as_array().unwrap().len();
    assert_eq!(n_images, 1797, "load_digits has 1797 images");
    let tmp = tempfile::tempdir().unwrap();
    let cat = Catalog::open(tmp.path().join("cat").to_str().unwrap())
        .await
        .unwrap();
    let r = coco::import(&cat, &ann, &ImportOptions::new("digits").images(&images))
        .await
        .unwrap();
    assert_eq!(r.labels as usize, n_anns);
    assert_eq!(r.samples as usize, n_images);
    // query: row count and per-class counts (10 digits, each 170–190 images)
    let snap = cat
        .dataset("digits")
        .await
        .unwrap()
        .head("main")
        .await
        .unwrap();
    assert_eq!(snap.num_rows().await.unwrap() as usize, n_anns);
    let mut per_class = std::collections::BTreeMap::<String, usize>::new();
    for b in snap.scan(None).await.unwrap() {
        let c = b.column_by_name("class").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            *per_class.entry(c.value(i).to_string()).or_default() += 1;
        }
    }
    assert_eq!(per_class.len(), 10, "{per_class:?}");
    assert!(
        per_class.values().all(|&n| (170..=190).contains(&n)),
        "{per_class:?}"
    );
    // identical digit images share one asset
    assert!(cat.assets().list().await.unwrap().len() <= n_images);
    // export → import round trips to the same root hash (COCO with images, and Parquet)
    let out = tmp.path().join("digits.json");
    let out_images = tmp.path().join("images");
    export_coco(
        &cat,
        "digits",
        "main",
        &out,
        &ExportOptions {
            images: Some(out_images.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    coco::import(
        &cat,
        &out,
        &ImportOptions::new("digits_rt").images(&out_images),
    )
    .await
    .unwrap();
    assert_eq!(root(&cat, "digits_rt").await, root(&cat, "digits").await);
    let pq = tmp.path().join("digits.parquet");
    export_parquet(&cat, "digits", "main", &pq, &ExportOptions::default())
        .await
        .unwrap();
    import_parquet(
        &cat,
        &pq,
        &TableKeys::default(),
        &ImportOptions::new("digits_pq"),
    )
    .await
    .unwrap();
    assert_eq!(root(&cat, "digits_pq").await, root(&cat, "digits").await);
    eprintln!("load_digits: {n_images} images, {n_anns} labels, classes {per_class:?}");
}

/// The phases an import went through (a streamed load never has "reading Parquet").
#[derive(Default)]
struct Phases(std::sync::Mutex<Vec<String>>);

impl quiver_core::import::Progress for Phases {
    fn phase(&self, name: &str, _: Option<u64>) {
        self.0.lock().unwrap().push(name.to_string());
    }
}

/// A Parquet file sorted by key streams into a new dataset; the same rows shuffled are
/// loaded whole; both give the same content hash and rows, a file with a duplicate key is
/// refused naming the row, and a second import into the now non-empty dataset upserts.
#[tokio::test]
async fn sorted_parquet_streams_and_matches_the_whole_file_load() {
    use arrow::compute::take_record_batch;
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().join("cat").to_str().unwrap())
        .await
        .unwrap();
    let sorted = crate::common::synthetic(3000, 3, 0.0);
    let write = |name: &str, b: &arrow::array::RecordBatch| {
        let p = dir.path().join(name);
        let f = std::fs::File::create(&p).unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(1000))
            .build();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, b.schema(), Some(props)).unwrap();
        // small batches: groups straddle batch and row-group boundaries
        for off in (0..b.num_rows()).step_by(700) {
            w.write(&b.slice(off, 700.min(b.num_rows() - off))).unwrap();
        }
        w.close().unwrap();
        p
    };
    let a = write("sorted.parquet", &sorted);
    let n = sorted.num_rows() as u32;
    let shuffled_idx =
        arrow::array::UInt32Array::from((0..n).map(|i| (i * 7919) % n).collect::<Vec<_>>());
    let b = write(
        "shuffled.parquet",
        &take_record_batch(&sorted, &shuffled_idx).unwrap(),
    );
    let keys = TableKeys::default();
    // the phases tell the paths apart: a streamed load never reads the file whole
    let (pa, pb) = (
        std::sync::Arc::new(Phases::default()),
        std::sync::Arc::new(Phases::default()),
    );
    let ra = import_parquet(
        &cat,
        &a,
        &keys,
        &ImportOptions::new("streamed").progress(pa.clone()),
    )
    .await
    .unwrap();
    let rb = import_parquet(
        &cat,
        &b,
        &keys,
        &ImportOptions::new("whole").progress(pb.clone()),
    )
    .await
    .unwrap();
    assert!(!pa.0.lock().unwrap().iter().any(|p| p == "reading Parquet"));
    assert!(pb.0.lock().unwrap().iter().any(|p| p == "reading Parquet"));
    assert!(ra.created_dataset && rb.created_dataset);
    assert_eq!((ra.labels, ra.samples), (9000, 3000));
    assert_eq!((rb.labels, rb.samples), (9000, 3000));
    let (sa, sb) = (
        cat.dataset("streamed")
            .await
            .unwrap()
            .head("main")
            .await
            .unwrap(),
        cat.dataset("whole")
            .await
            .unwrap()
            .head("main")
            .await
            .unwrap(),
    );
    assert_eq!(sa.root(), sb.root());
    assert_eq!(
        crate::common::rows(&sa).await,
        crate::common::rows(&sb).await
    );
    // a duplicate key (sorted input, so the stream sees it) is refused, nothing created
    let dup = arrow::compute::concat_batches(
        &sorted.schema(),
        [&sorted.slice(0, 10), &sorted.slice(9, 5)],
    )
    .unwrap();
    let d = write("dup.parquet", &dup);
    let err = import_parquet(&cat, &d, &keys, &ImportOptions::new("dup"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("duplicate key"), "{err}");
    assert!(cat.dataset("dup").await.is_err());
    // into a non-empty dataset: an upsert commit over the existing rows
    let changed = crate::common::synthetic(3000, 3, 0.5);
    let c = write("changed.parquet", &changed);
    let rc = import_parquet(&cat, &c, &keys, &ImportOptions::new("streamed"))
        .await
        .unwrap();
    assert!(!rc.created_dataset);
    let head = cat
        .dataset("streamed")
        .await
        .unwrap()
        .head("main")
        .await
        .unwrap();
    assert_eq!(head.num_rows().await.unwrap(), 9000);
    assert_ne!(head.root(), sa.root());
}

/// Groups of every size streamed in decode batches smaller than a group, as large as
/// one, and larger: the group held back at the end of one batch and continued by the next
/// (or by several whole batches) is stored once, whole, so every batch size gives the same
/// content hash and rows as the whole-file load of the same rows shuffled.
#[tokio::test]
async fn streamed_groups_straddling_decode_batches_match_the_whole_file_load() {
    use arrow::compute::{filter_record_batch, take_record_batch};
    let dir = tempfile::tempdir().unwrap();
    let cat = Catalog::open(dir.path().join("cat").to_str().unwrap())
        .await
        .unwrap();
    // 300 samples of 1..=20 labels, sample 150 with all 20
    let full = crate::common::synthetic(300, 20, 0.0);
    let keep = arrow::array::BooleanArray::from(
        (0..full.num_rows())
            .map(|i| {
                let (g, j) = (i / 20, i % 20);
                g == 150 || j < 1 + (g * 13) % 20
            })
            .collect::<Vec<_>>(),
    );
    let sorted = filter_record_batch(&full, &keep).unwrap();
    let write = |name: &str, b: &arrow::array::RecordBatch| {
        let p = dir.path().join(name);
        let f = std::fs::File::create(&p).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, b.schema(), None).unwrap();
        w.write(b).unwrap();
        w.close().unwrap();
        p
    };
    let a = write("sorted.parquet", &sorted);
    let n = sorted.num_rows() as u32;
    let shuffled_idx =
        arrow::array::UInt32Array::from((0..n).map(|i| (i * 7919) % n).collect::<Vec<_>>());
    let b = write(
        "shuffled.parquet",
        &take_record_batch(&sorted, &shuffled_idx).unwrap(),
    );
    let keys = TableKeys::default();
    import_parquet(&cat, &b, &keys, &ImportOptions::new("whole"))
        .await
        .unwrap();
    let whole = cat
        .dataset("whole")
        .await
        .unwrap()
        .head("main")
        .await
        .unwrap();
    let expect = crate::common::rows(&whole).await;
    for rows in [1, 7, 20, 64, 1 << 16] {
        let name = format!("streamed_{rows}");
        let phases = std::sync::Arc::new(Phases::default());
        let r = import_parquet(
            &cat,
            &a,
            &keys,
            &ImportOptions::new(&name)
                .stream_batch_rows(rows)
                .progress(phases.clone()),
        )
        .await
        .unwrap();
        // streamed: the file was never read whole
        let seen = phases.0.lock().unwrap().clone();
        assert!(
            !seen.iter().any(|p| p == "reading Parquet"),
            "{name}: {seen:?}"
        );
        assert_eq!(
            (r.labels, r.samples),
            (sorted.num_rows() as u64, 300),
            "{name}"
        );
        let head = main_head(&cat, &name).await;
        assert_eq!(head.root(), whole.root(), "{name}");
        assert_eq!(crate::common::rows(&head).await, expect, "{name}");
    }
}

/// YOLO label keys come from a box's content: deleting one box is one removed label, a
/// folder exported and imported again is the same version, and the export writes the
/// label files, the class names and (on request) the images.
#[tokio::test]
async fn yolo_keys_are_stable_and_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let root_dir = dir.path().join("yolo");
    for sub in ["images/train", "labels/train"] {
        std::fs::create_dir_all(root_dir.join(sub)).unwrap();
    }
    std::fs::write(root_dir.join("classes.txt"), "person\ncar\nbike\n").unwrap();
    std::fs::write(root_dir.join("images/train/a.png"), image_bytes(1, 200)).unwrap();
    // two identical boxes: distinct keys by occurrence
    let lines =
        "0 0.5 0.5 0.1 0.2\n1 0.25 0.25 0.1 0.1\n2 0.75 0.75 0.2 0.2\n2 0.75 0.75 0.2 0.2\n";
    let label_file = root_dir.join("labels/train/a.txt");
    std::fs::write(&label_file, lines).unwrap();
    let cat = Catalog::open("memory://").await.unwrap();
    let first = yolo::import(&cat, &root_dir, None, &ImportOptions::new("y"))
        .await
        .unwrap();
    assert_eq!(first.labels, 4);
    let ds = cat.dataset("y").await.unwrap();
    // delete the first box: exactly one label removed, nothing "modified"
    std::fs::write(&label_file, &lines[lines.find('\n').unwrap() + 1..]).unwrap();
    let second = yolo::import(&cat, &root_dir, None, &ImportOptions::new("y"))
        .await
        .unwrap();
    let before = ds.snapshot(first.commit.clone());
    let after = ds.snapshot(second.commit.clone());
    let rows = |b: &[arrow::array::RecordBatch]| -> Vec<(i64, i64)> {
        let mut v: Vec<(i64, i64)> = b
            .iter()
            .flat_map(|b| {
                let l = b
                    .column_by_name("label_id")
                    .unwrap()
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .clone();
                let c = b
                    .column_by_name("class_id")
                    .unwrap()
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .clone();
                (0..l.len()).map(move |i| (l.value(i), c.value(i)))
            })
            .collect();
        v.sort();
        v
    };
    let (old, new) = (
        rows(&before.scan(None).await.unwrap()),
        rows(&after.scan(None).await.unwrap()),
    );
    assert_eq!(old.len(), 4);
    assert_eq!(new.len(), 3);
    assert!(new.iter().all(|r| old.contains(r)), "{old:?} {new:?}");
    // export, then import the export into a new dataset: the same content hash
    let out = dir.path().join("export");
    let opts = ExportOptions {
        images: Some(out.join("images")),
        ..Default::default()
    };
    let r = export_yolo(&cat, "y", "main", &out, &opts).await.unwrap();
    assert_eq!((r.labels, r.images, r.assets), (3, 1, 1));
    // no label has class 0 any more and the dataset has no schema registry: its name is
    // unknown, its line kept so that the ids stay aligned
    assert_eq!(
        std::fs::read_to_string(out.join("classes.txt")).unwrap(),
        "class_0\ncar\nbike\n"
    );
    assert!(out.join("labels/train/a.txt").is_file());
    assert_eq!(
        std::fs::read(out.join("images/train/a.png")).unwrap(),
        image_bytes(1, 200)
    );
    let again = yolo::import(&cat, &out, None, &ImportOptions::new("y2"))
        .await
        .unwrap();
    let a = ds.head("main").await.unwrap();
    let b = cat
        .dataset("y2")
        .await
        .unwrap()
        .snapshot(again.commit.clone());
    assert_eq!(a.root(), b.root(), "export + import keeps every label");
    // a dataset without YOLO columns is refused with what it needs
    let e = export_yolo(&cat, "nope", "main", &out, &ExportOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}

/// A COCO file into a new dataset streams: annotations in no particular order (and before
/// `images` in the file), cut into buckets of one image, of a few, and of the whole file,
/// give the same content hash and rows as the whole-file import of the same file (into a
/// branch, which reads it whole), and the same image hashes.
#[tokio::test]
async fn coco_streams_in_buckets_and_matches_the_whole_file_import() {
    let dir = tempfile::tempdir().unwrap();
    let (_, images, mut doc) = write_coco(dir.path(), 40);
    // scatter the annotations: the file's order is not the key order
    let anns = doc["annotations"].as_array().unwrap().clone();
    let n = anns.len();
    let scattered: Vec<_> = (0..n).map(|i| anns[(i * 37) % n].clone()).collect();
    doc["annotations"] = json!(scattered);
    let file = dir.path().join("scattered.json");
    write_json(&file, &doc);
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .find("\"annotations\"")
            < std::fs::read_to_string(&file).unwrap().find("\"images\""),
        "the annotations come before the images they point at"
    );
    let cat = Catalog::open(dir.path().join("cat").to_str().unwrap())
        .await
        .unwrap();
    let phases = std::sync::Arc::new(Phases::default());
    let whole = coco::import(
        &cat,
        &file,
        &ImportOptions::new("whole")
            .branch("dev")
            .images(&images)
            .progress(phases.clone()),
    )
    .await
    .unwrap();
    assert!(
        !phases
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|p| p == "partitioning labels by sample"),
        "an import into a branch reads the file whole"
    );
    let whole_head = cat
        .dataset("whole")
        .await
        .unwrap()
        .head("dev")
        .await
        .unwrap();
    let all_rows = |snap: quiver_core::Snapshot| async move {
        let batches = snap.scan(None).await.unwrap();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    };
    let expect = all_rows(whole_head.clone()).await;
    assert_eq!(expect.num_rows(), n);
    assert_eq!(expect.column_by_name("image_hash").unwrap().null_count(), 0);
    for rows in [1, 5, 1 << 16] {
        let name = format!("streamed_{rows}");
        let phases = std::sync::Arc::new(Phases::default());
        let r = coco::import(
            &cat,
            &file,
            &ImportOptions::new(&name)
                .images(&images)
                .stream_batch_rows(rows)
                .progress(phases.clone()),
        )
        .await
        .unwrap();
        let seen = phases.0.lock().unwrap().clone();
        assert!(
            seen.iter().any(|p| p == "partitioning labels by sample"),
            "{name}: {seen:?}"
        );
        assert!(r.created_dataset, "{name}");
        assert_eq!(
            (r.labels, r.samples, r.assets),
            (n as u64, 40, 40),
            "{name}"
        );
        assert_eq!(r.asset_bytes, whole.asset_bytes, "{name}");
        let head = main_head(&cat, &name).await;
        assert_eq!(head.root(), whole_head.root(), "{name}");
        assert_eq!(all_rows(head).await, expect, "{name}");
        // the categories (with the unused one) are kept for export, as by the whole import
        let ds = cat.dataset(&name).await.unwrap();
        let meta = ds.metadata().await.unwrap();
        assert_eq!(
            meta["coco_categories"].as_array().unwrap().len(),
            4,
            "{name}"
        );
    }
}
