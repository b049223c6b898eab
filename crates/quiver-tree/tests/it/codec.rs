//! Node encoding: round trip, canonical form, robustness against garbage.

use proptest::prelude::*;
use quiver_tree::{ChildEntry, ColumnStats, GroupEntry, Hash, Node, StatValue, TreeError};

fn stat_value() -> impl Strategy<Value = StatValue> {
    prop_oneof![
        any::<bool>().prop_map(StatValue::Bool),
        any::<i64>().prop_map(StatValue::Int),
        // Compare floats by bits below: any bit pattern, NaNs included.
        any::<u64>().prop_map(|b| StatValue::Float(f64::from_bits(b))),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(StatValue::Bytes),
    ]
}

fn column_stats() -> impl Strategy<Value = ColumnStats> {
    (
        prop::option::of(stat_value()),
        prop::option::of(stat_value()),
        any::<u64>(),
    )
        .prop_map(|(min, max, null_count)| ColumnStats {
            min,
            max,
            null_count,
        })
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..20)
}

fn stats() -> impl Strategy<Value = Vec<ColumnStats>> {
    prop::collection::vec(column_stats(), 0..4)
}

fn node() -> impl Strategy<Value = Node> {
    let group =
        (bytes(), hash(), any::<u64>(), stats()).prop_map(|(key, hash, rows, stats)| GroupEntry {
            key,
            hash,
            rows,
            stats,
        });
    let child = (
        hash(),
        bytes(),
        bytes(),
        any::<u64>(),
        any::<u64>(),
        stats(),
    )
        .prop_map(
            |(hash, first_key, last_key, rows, groups, stats)| ChildEntry {
                hash,
                first_key,
                last_key,
                rows,
                groups,
                stats: stats.into(),
            },
        );
    prop_oneof![
        prop::collection::vec(group, 0..8).prop_map(|entries| Node::Leaf { entries }),
        (1u8..=255, prop::collection::vec(child, 0..8))
            .prop_map(|(level, children)| Node::Internal { level, children }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(n in node()) {
        let bytes = n.encode();
        let back = Node::decode(&bytes).unwrap();
        // Byte-exact re-encoding (floats compared by bits, NaN included).
        prop_assert_eq!(back.encode(), bytes.clone());
        prop_assert_eq!(back.hash(), Hash::of(&bytes));
        prop_assert_eq!(n.hash(), Hash::of(&bytes));
    }

    #[test]
    fn truncated_is_error(n in node()) {
        let bytes = n.encode();
        for len in 0..bytes.len() {
            let r = Node::decode(&bytes[..len]);
            let is_malformed = matches!(r, Err(TreeError::Malformed { .. }));
            prop_assert!(is_malformed, "prefix {} of {} decoded", len, bytes.len());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Node::decode(&longer).is_err());
    }

    #[test]
    fn mutated_never_panics_and_stays_canonical(n in node(), pos in any::<prop::sample::Index>(), b in any::<u8>()) {
        let mut bytes = n.encode();
        let i = pos.index(bytes.len());
        bytes[i] = b;
        if let Ok(m) = Node::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn random_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..200), header in any::<bool>()) {
        if header && bytes.len() >= 2 {
            bytes[0] = quiver_tree::NODE_MAGIC;
            bytes[1] = quiver_tree::NODE_FORMAT_VERSION;
        }
        if let Ok(m) = Node::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }
}

#[test]
fn huge_length_prefix_is_rejected_without_allocating() {
    // Leaf claiming u64::MAX entries, then a key claiming a huge length.
    let mut b = vec![0x51, 0x01, 0x00, 0x00];
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(matches!(Node::decode(&b), Err(TreeError::Malformed { .. })));
}

#[test]
fn known_layout_of_a_small_leaf() {
    let n = Node::Leaf {
        entries: vec![GroupEntry {
            key: b"ab".to_vec(),
            hash: Hash([7; 32]),
            rows: 300,
            stats: vec![ColumnStats {
                min: Some(StatValue::Int(-1)),
                max: None,
                null_count: 2,
            }],
        }],
    };
    let mut want = vec![0x51, 0x01, 0x00, 0x00, 0x01, 0x02, b'a', b'b'];
    want.extend_from_slice(&[7; 32]);
    want.extend_from_slice(&[0xac, 0x02, 0x01, 0x02, 0x01, 0x00, 0x02]);
    assert_eq!(n.encode(), want);
    assert_eq!(Node::decode(&want).unwrap(), n);
}

#[test]
fn equal_min_max_is_written_once_and_required_canonical() {
    use quiver_tree::{ColumnStats, GroupEntry, Hash, Node, StatValue};
    let st = ColumnStats {
        min: Some(StatValue::Bytes(b"approved".to_vec())),
        max: Some(StatValue::Bytes(b"approved".to_vec())),
        null_count: 0,
    };
    let leaf = Node::Leaf {
        entries: vec![GroupEntry {
            key: b"k".to_vec(),
            hash: Hash::of(b"k"),
            rows: 1,
            stats: vec![st.clone()],
        }],
    };
    let bytes = leaf.encode();
    // the value appears once, followed by the 0x05 "same as min" tag
    assert_eq!(bytes.windows(8).filter(|w| w == b"approved").count(), 1);
    assert_eq!(Node::decode(&bytes).unwrap(), leaf);
    // an explicit copy of min in place of 0x05 is not canonical
    let pos = bytes.len() - 2; // [.., 0x05, null_count]
    assert_eq!(bytes[pos], 0x05);
    let mut explicit = bytes[..pos].to_vec();
    explicit.extend_from_slice(&[0x04, 8]);
    explicit.extend_from_slice(b"approved");
    explicit.push(0);
    assert!(Node::decode(&explicit).is_err());
}
