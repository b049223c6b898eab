//! Corrupt packs are never served (DESIGN invariant 1): single bytes flipped anywhere in a
//! pack on local disk — data and dictionary pages, page indexes, footer — make reads fail
//! with a corruption error naming the pack; a damaged or missing sums file never lets a
//! corrupt pack through either.

use std::path::{Path, PathBuf};

use quiver_core::{Catalog, CoreError};

use crate::common::*;

type Rows = Vec<(String, i64, Option<String>, Option<f64>)>;

/// The one file under `dir` (recursively).
fn only_file(dir: &Path) -> PathBuf {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                found.push(p);
            }
        }
    }
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// A catalog with one dataset of 9,000 labels in one pack: (dir, pack file, pack path
/// relative to the catalog root, its rows).
async fn one_pack() -> (tempfile::TempDir, PathBuf, String, Rows) {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_string();
    let (_, ds) = new_dataset(&url).await;
    ds.append("main", &[synthetic(3_000, 3, 0.0)], "load")
        .await
        .unwrap();
    let file = only_file(&dir.path().join("objects/pack"));
    let rel = file
        .strip_prefix(dir.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let cat = Catalog::open(&url).await.unwrap();
    let expected = rows(
        &cat.dataset("labels")
            .await
            .unwrap()
            .head("main")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(expected.len(), 9_000);
    (dir, file, rel, expected)
}

/// Read the head of `labels` in a fresh catalog (no cached footers or sums): all rows,
/// and two projected columns.
async fn read_all(url: &str) -> Result<(Rows, usize), CoreError> {
    let cat = Catalog::open(url).await?;
    let snap = cat.dataset("labels").await?.head("main").await?;
    let projected: usize = snap
        .scan(Some(vec![0, 3]))
        .await?
        .iter()
        .map(|b| b.num_rows())
        .sum();
    snap.scan(None).await?;
    Ok((rows(&snap).await, projected))
}

/// Assert `e` is a corruption error naming `what` by its relative path only.
fn assert_names(e: &CoreError, what: &str, root: &Path) {
    let msg = e.to_string();
    assert!(
        matches!(e, CoreError::Corrupt { what: w, .. } if w == what),
        "expected corruption of {what}, got: {msg}"
    );
    assert!(
        !msg.contains(root.to_str().unwrap()),
        "absolute path in: {msg}"
    );
}

/// Every single-byte flip, wherever it lands in the pack (but the leading magic, which no
/// reader reads), fails a full read with an error naming the pack; the same pack restored
/// reads the same rows as before.
#[tokio::test]
async fn flipped_pack_bytes_are_never_served() {
    let (dir, file, rel, expected) = one_pack().await;
    let url = dir.path().to_str().unwrap();
    let clean = std::fs::read(&file).unwrap();
    let n = clean.len();
    // 48 positions spread over the whole file, plus the footer's last bytes (metadata,
    // its length, the magic)
    let mut positions: Vec<usize> = (0..48).map(|i| 5 + i * (n - 10) / 48).collect();
    positions.extend([1, n - 40, n - 9, n - 7, n - 2]);
    for &at in &positions {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x10;
        std::fs::write(&file, &bytes).unwrap();
        match read_all(url).await {
            // the leading magic is never read: a flip there is provably harmless
            Ok((got, _)) => assert!(
                at < 4 && got == expected,
                "flip at byte {at} of {n} was served ({} rows, same as before: {})",
                got.len(),
                got == expected
            ),
            Err(e) => assert_names(&e, &rel, dir.path()),
        }
    }
    std::fs::write(&file, &clean).unwrap();
    let (got, projected) = read_all(url).await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(projected, 9_000);
}

/// A damaged sums file is itself reported (by its path); a missing one (a pack written
/// before sums existed) falls back to checking the whole pack against its address.
#[tokio::test]
async fn sums_file_damage_and_absence_are_safe() {
    let (dir, file, rel, expected) = one_pack().await;
    let url = dir.path().to_str().unwrap();
    let sums = only_file(&dir.path().join("packsums"));
    let sums_rel = sums
        .strip_prefix(dir.path())
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let clean_sums = std::fs::read(&sums).unwrap();
    for at in [0, 20, 45, 60, clean_sums.len() / 2, clean_sums.len() - 1] {
        let mut b = clean_sums.clone();
        b[at] ^= 1;
        std::fs::write(&sums, &b).unwrap();
        let e = read_all(url).await.unwrap_err();
        assert_names(&e, &sums_rel, dir.path());
    }

    // no sums file: the pack is verified whole, then read as usual
    std::fs::remove_file(&sums).unwrap();
    let (got, _) = read_all(url).await.unwrap();
    assert_eq!(got, expected);
    let clean = std::fs::read(&file).unwrap();
    let mut bytes = clean.clone();
    bytes[clean.len() / 2] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let e = read_all(url).await.unwrap_err();
    assert_names(&e, &rel, dir.path());
}
