//! Per-label history against an oracle: every version scanned whole and compared with its
//! first parent.

use std::collections::BTreeMap;

use quiver_core::{LabelChangeKind, VersionSpec};

use crate::common::*;

type Label = (String, i64);
type Row = (Option<String>, Option<f64>);

async fn content(ds: &quiver_core::Dataset, c: &quiver_core::Commit) -> BTreeMap<Label, Row> {
    rows(&ds.snapshot(c.clone()))
        .await
        .into_iter()
        .map(|r| ((r.0, r.1), (r.2, r.3)))
        .collect()
}

#[tokio::test]
async fn label_history_equals_the_changes_between_whole_versions() {
    let (_, ds) = new_dataset("memory://").await;
    ds.append("main", &[synthetic(60, 3, 0.0)], "base")
        .await
        .unwrap();
    ds.create_branch("side", &VersionSpec::main())
        .await
        .unwrap();
    let mut seed = 7u64;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        seed >> 33
    };
    for i in 0..12 {
        let branch = if i % 4 == 3 { "side" } else { "main" };
        let g = format!("s{:07}", next() % 8);
        let l = (next() % 4) as i64;
        if next() % 3 == 0 {
            let keys = batch(&[(g.as_str(), l, "x", 0.0)])
                .project(&[0, 1])
                .unwrap();
            ds.delete(branch, &keys, "delete").await.unwrap();
        } else {
            let class = format!("c{i}");
            ds.upsert(
                branch,
                &[batch(&[(g.as_str(), l, class.as_str(), 0.5)])],
                "edit",
            )
            .await
            .unwrap();
        }
        if i == 7 {
            ds.merge(&VersionSpec::Branch("side".into()), "main", None, "t")
                .await
                .unwrap();
        }
    }
    // an OPTIMIZE puts later commits on another base
    ds.optimize_with("main", true).await.unwrap();
    ds.upsert("main", &[batch(&[("s0000001", 0, "late", 0.1)])], "late")
        .await
        .unwrap();
    let head = ds.branch_head("main").await.unwrap().commit;

    // the oracle: walk first parents, compare whole versions
    let mut chain = vec![head.clone()];
    while let Some(p) = chain.last().unwrap().parents.first() {
        chain.push(ds.commit(p).await.unwrap());
    }
    for g in 0..8 {
        let group = format!("s{g:07}");
        let mut want = Vec::new();
        for (i, c) in chain.iter().enumerate() {
            let after = content(&ds, c).await;
            let before = match chain.get(i + 1) {
                Some(p) => content(&ds, p).await,
                None => BTreeMap::new(),
            };
            let labels: std::collections::BTreeSet<i64> = after
                .keys()
                .chain(before.keys())
                .filter(|k| k.0 == group)
                .map(|k| k.1)
                .collect();
            for l in labels {
                let k = (group.clone(), l);
                let kind = match (before.get(&k), after.get(&k)) {
                    (None, Some(_)) => LabelChangeKind::Added,
                    (Some(_), None) => LabelChangeKind::Removed,
                    (Some(a), Some(b)) if a != b => LabelChangeKind::Modified,
                    _ => continue,
                };
                want.push((c.id, l, kind));
            }
        }
        let key = group.as_bytes().to_vec();
        let got: Vec<_> = ds
            .label_history(&head, &key, None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| {
                let l = i64::from_be_bytes(c.label.clone().try_into().unwrap()) ^ i64::MIN;
                (c.commit.id, l, c.kind)
            })
            .collect();
        assert_eq!(got, want, "group {group}");
        // one label of it
        // label key 0 as the key encoding orders integers (sign bit flipped)
        let label = i64::MIN.to_be_bytes().to_vec();
        let one: Vec<_> = ds
            .label_history(&head, &key, Some(&label))
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.commit.id, c.kind))
            .collect();
        let want_one: Vec<_> = want
            .iter()
            .filter(|w| w.1 == 0)
            .map(|w| (w.0, w.2))
            .collect();
        assert_eq!(one, want_one, "group {group}, label 0");
    }
}
