//! Imports read image files only inside the directory the user named: a COCO `file_name`
//! (or a YOLO image symlink) that leads elsewhere is refused with an error naming the
//! record, and nothing is stored or committed.

use std::path::Path;

use quiver_core::import::{coco, yolo, ImportOptions};
use quiver_core::{Catalog, CoreError};
use serde_json::json;

fn coco_doc(file_name: &str) -> serde_json::Value {
    json!({
        "images": [
            {"id": 1, "file_name": "ok.jpg"},
            {"id": 7, "file_name": file_name}
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 1, 1]}
        ],
        "categories": [{"id": 1, "name": "a"}]
    })
}

/// A layout with a secret file next to (outside) the images directory.
fn layout(dir: &Path) -> std::path::PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(images.join("sub")).unwrap();
    std::fs::write(images.join("ok.jpg"), b"fine image").unwrap();
    std::fs::write(images.join("sub/in.jpg"), b"nested image").unwrap();
    std::fs::write(dir.join("secret.txt"), b"server secret").unwrap();
    images
}

async fn assert_refused(cat: &Catalog, ann: &Path, images: &Path, needle: &str) {
    let err = coco::import(cat, ann, &ImportOptions::new("d").images(images))
        .await
        .expect_err("a file name outside the images directory must be refused");
    let msg = err.to_string();
    assert!(matches!(err, CoreError::InvalidInput { .. }), "{msg}");
    assert!(msg.contains("images[1] (id 7)"), "names the record: {msg}");
    assert!(msg.contains(needle), "says why ({needle}): {msg}");
    assert!(
        cat.assets().list().await.unwrap().is_empty(),
        "nothing stored"
    );
    assert!(
        cat.list_datasets().await.unwrap().is_empty(),
        "nothing created"
    );
}

#[tokio::test]
async fn coco_file_names_cannot_escape_the_images_directory() {
    let dir = tempfile::tempdir().unwrap();
    let images = layout(dir.path());
    let secret = dir.path().join("secret.txt");
    let ann = dir.path().join("ann.json");
    let cat = Catalog::open("memory://").await.unwrap();

    let cases = [
        ("../secret.txt".to_string(), "'..'"),
        ("sub/../../secret.txt".to_string(), "'..'"),
        (secret.display().to_string(), "absolute"),
    ];
    for (name, why) in &cases {
        std::fs::write(&ann, serde_json::to_vec(&coco_doc(name)).unwrap()).unwrap();
        assert_refused(&cat, &ann, &images, why).await;
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&secret, images.join("link.jpg")).unwrap();
        std::fs::write(&ann, serde_json::to_vec(&coco_doc("link.jpg")).unwrap()).unwrap();
        assert_refused(&cat, &ann, &images, "symbolic link").await;
        std::os::unix::fs::symlink(dir.path(), images.join("up")).unwrap();
        std::fs::write(
            &ann,
            serde_json::to_vec(&coco_doc("up/secret.txt")).unwrap(),
        )
        .unwrap();
        assert_refused(&cat, &ann, &images, "symbolic link").await;
        // a symlink that stays inside is fine
        std::os::unix::fs::symlink(images.join("sub/in.jpg"), images.join("alias.jpg")).unwrap();
    }

    // names inside the directory (nested, `./`) still import
    std::fs::write(&ann, serde_json::to_vec(&coco_doc("./sub/in.jpg")).unwrap()).unwrap();
    let r = coco::import(&cat, &ann, &ImportOptions::new("d").images(&images))
        .await
        .unwrap();
    assert_eq!(r.assets, 2);
}

#[cfg(unix)]
#[tokio::test]
async fn yolo_image_symlinks_cannot_escape_the_images_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("yolo");
    std::fs::create_dir_all(root.join("images")).unwrap();
    std::fs::create_dir_all(root.join("labels")).unwrap();
    std::fs::write(root.join("classes.txt"), "a\n").unwrap();
    std::fs::write(dir.path().join("secret.png"), b"server secret").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.png"), root.join("images/x.png")).unwrap();
    std::fs::write(root.join("labels/x.txt"), "0 0.5 0.5 0.1 0.1\n").unwrap();
    let cat = Catalog::open("memory://").await.unwrap();
    let err = yolo::import(&cat, &root, None, &ImportOptions::new("y"))
        .await
        .expect_err("an image symlink leading outside images/ must be refused");
    let msg = err.to_string();
    assert!(matches!(err, CoreError::InvalidInput { .. }), "{msg}");
    assert!(
        msg.contains("x.txt") && msg.contains("symbolic link"),
        "{msg}"
    );
    assert!(cat.assets().list().await.unwrap().is_empty());
}
