//! `quiver-core`: the catalog and dataset API of Quiver.
//!
//! A [`Catalog`] (a root URL) holds datasets. A [`Dataset`] has an Arrow schema, a key
//! (group key + label key), branches, tags and a commit graph. Every version is a
//! [`Snapshot`]: a Merkle snapshot tree (`quiver-tree`) whose leaves' rows live in Parquet
//! packs. Writes go through a [`WriteTxn`] that ends as one commit. SQL, Flight and the CLI
//! sit on this API.

pub mod assets;
pub mod branch_settings;
pub mod catalog;
pub mod conform;
pub mod dataset;
pub mod demo;
pub mod encoding;
pub mod erase;
pub mod error;
pub mod fsck;
pub mod gc;
pub mod history;
pub mod import;
pub mod lease;
pub mod lineage;
pub mod merge;
pub mod model;
pub mod nodes;
pub mod pack_sums;
pub mod packs;
pub mod read_cache;
pub mod revert;
pub mod schema_registry;
pub mod snapshot;
pub mod storage;
pub mod verified;
pub mod write;

pub use assets::{AssetStore, GcOptions, GcReport};
pub use branch_settings::{BranchCheck, BranchSettings, CheckOutcome, CheckRunner};
pub use catalog::{default_author, validate_name, Catalog, DatasetOptions};
pub use conform::{conform, Casts, ConformRules};
pub use dataset::{BranchHead, Dataset};
pub use erase::{EraseKeys, EraseReport, ErasedLabel, RowMatcher};
pub use error::{CoreError, Result};
pub use fsck::{FsckOptions, FsckProblem, FsckReport, ProblemKind};
pub use gc::{parse_retention, GcPlan, Removed, VacuumOptions, VacuumReport};
pub use history::{LabelChange, LabelChangeKind};
pub use lease::WriteLease;
pub use lineage::{ModelRecord, PredictionBatch, RunRecord};
pub use merge::{
    ConflictKind, LabelConflict, MergeKind, MergePreview, MergeReport, PendingMerge, Resolution,
};
pub use model::{
    Commit, CommitData, DatasetConfig, OperationSummary, RefInfo, VersionSpec, FORMAT_VERSION,
};
pub use revert::RewindReport;
pub use schema_registry::{SchemaChange, SchemaVersion, Taxonomy};
pub use snapshot::{plan_locs, PackScan, Snapshot};
pub use storage::optimize::OptimizeReport;
pub use write::{WriteMode, WriteTxn};

pub use quiver_store::StoreOptions;
pub use quiver_tree::{Change, ChangeKind, ChildEntry, Hash, Key};

/// The branch every dataset starts with.
pub const DEFAULT_BRANCH: &str = "main";
