#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use super::*;

/// One example of every kind of statement (several for some), as users write them.
pub(crate) const EXAMPLES: &[&str] = &[
    "CREATE DATASET d (sample_id BIGINT NOT NULL, label_id INT NOT NULL, c VARCHAR) KEY (sample_id, label_id)",
    "CREATE DATASET \"my ds\" (\"Sample\" VARCHAR NOT NULL, l BIGINT NOT NULL) KEY (\"Sample\", l)",
    "CREATE BRANCH relabel FROM ds AS OF TAG 'v1'",
    "CREATE BRANCH 'feature/x' FROM ds",
    "CREATE TABLE IF NOT EXISTS t (g VARCHAR, l BIGINT, v DOUBLE, PRIMARY KEY (g, l))",
    "DROP TABLE IF EXISTS a, \"B\"",
    "DROP BRANCH relabel ON ds",
    "CREATE TAG 'v1' ON ds AS OF BRANCH 'main'",
    "CREATE TAG 'it''s' ON ds AS OF TIMESTAMP '2026-03-03 00:00:00'",
    "DROP TAG 'v1' ON ds",
    "ALTER TAG 'v1' RENAME TO 'v1-final' ON ds",
    "ALTER BRANCH relabel RENAME TO \"feature/relabel\" ON ds",
    "ALTER BRANCH main ON ds SET PROTECTED",
    "alter branch \"Main\" on ds unset protected",
    "ALTER BRANCH main ON ds ADD CHECK no_unknown_class AS 'SELECT * FROM ds WHERE class NOT IN (''cat'', ''dog'')'",
    "ALTER BRANCH main ON ds ADD CHECK \"boxes-in-image\" AS 'SELECT * FROM ds WHERE bbox_x + bbox_w > 1'",
    "ALTER BRANCH main ON ds DROP CHECK no_unknown_class",
    "DROP DATASET ds",
    "DROP DATASET IF EXISTS a, \"B\"",
    "SHOW DATASETS",
    "SHOW BRANCHES ON ds",
    "SHOW TAGS ON ds",
    "SHOW HISTORY ON ds AS OF BRANCH 'relabel'",
    "SHOW HISTORY ON ds",
    "DIFF ds BETWEEN TAG 'v1' AND BRANCH 'relabel'",
    "DIFF ds BETWEEN VERSION 'abc123' AND TIMESTAMP '2026-01-01'",
    "USE BRANCH relabel ON ds",
    "BEGIN",
    "START TRANSACTION",
    "COMMIT 'relabel pass'",
    "COMMIT",
    "ROLLBACK",
    "MERGE BRANCH 'relabel' INTO main ON ds MESSAGE 'bring back'",
    "MERGE TAG 'v1' INTO fix ON ds",
    "MERGE 'relabel' INTO main ON ds MESSAGE 'loose'",
    "MERGE 'tag:v1' INTO main ON ds PREVIEW",
    "MERGE BRANCH relabel INTO main ON ds PREVIEW",
    "merge 'v1' into \"Fix\" on ds preview",
    "SHOW CONFLICTS ON ds",
    "REVERT '9f2c41d0' ON ds",
    "REVERT VERSION '~1' ON ds BRANCH relabel MESSAGE 'undo the relabel'",
    "revert tag 'bad' on \"My ds\" branch 'feature/x'",
    "RESET BRANCH main ON ds TO TAG 'v1'",
    "RESET BRANCH relabel ON ds TO 'main' MESSAGE 'start over'",
    "RESET BRANCH b ON ds TO TIMESTAMP now() - INTERVAL '1 day'",
    "RESOLVE CONFLICTS ON ds USING THEIRS WHERE theirs_score > 0.5",
    "RESOLVE CONFLICTS ON ds USING OURS",
    "ABORT MERGE ON ds",
    "COMMIT MERGE ON ds MESSAGE 'resolved'",
    "CREATE SCHEMA VERSION '2.0' ON ds FROM '1.0' ADD CLASS 'kite' = 7, ADD CLASS 'minus' = -1, REMOVE CLASS 'dog', RENAME CLASS 'car' TO 'vehicle', ADD ATTRIBUTE 'occluded' BOOLEAN, DROP ATTRIBUTE 'old', RENAME ATTRIBUTE 'a' TO 'b' MESSAGE 'taxonomy v2'",
    "CREATE SCHEMA VERSION '1.0' ON ds ADD CLASS 'cat' = 1",
    "SHOW SCHEMAS ON ds",
    "SHOW SCHEMA ON ds",
    "SHOW SCHEMA ON ds VERSION '2.0'",
    "SHOW SCHEMA ON ds AT '2026-03-03 00:00:00'",
    "MIGRATE ds TO SCHEMA '2.0'",
    "MIGRATE ds TO SCHEMA '2.0' USING ('person' = 'pedestrian', 'truck' = 'vehicle')",
    "CREATE RUN 'run-1' ON ds AS OF TAG 'v1'",
    "CREATE RUN 'run-2' ON ds",
    "CREATE MODEL 'm1' FROM RUN 'run-1' MESSAGE 'resnet'",
    "CREATE MODEL 'm2' FROM RUN 'run-1'",
    "INSERT INTO quiver.predictions VALUES ('m1', 'img-1', 'cat', 0.9)",
    "INSERT INTO quiver.predictions (model, sample_id, class, score) SELECT 'm1', sample_id, class, 0.5 FROM ds AS OF TAG 'v1'",
    "VACUUM ds",
    "VACUUM ds RETAIN 12 HOURS DRY RUN",
    "OPTIMIZE ds ON BRANCH relabel FULL",
    "OPTIMIZE ds",
    "ERASE FROM ds WHERE sample_id = 'img-00000001' REASON 'privacy request 12'",
    "erase from \"My ds\" where reviewer = 'alice' and class in ('cat', 'dog')",
    "ERASE FROM ds WHERE label_id > 3 AND NOT score IS NULL REASON 'it''s gone'",
    "SELECT * FROM ds AS OF TAG 'v1' a JOIN ds AS OF BRANCH 'b' b USING (k)",
    "SELECT a.class FROM public.ds AS OF TAG 'v1' AS a",
    "WITH old AS (SELECT * FROM ds AS OF TAG 'v1') SELECT count(*) FROM old",
    "SELECT * FROM (SELECT * FROM ds AS OF VERSION 'abcd') s WHERE s.k IN (SELECT k FROM ds AS OF BRANCH 'x')",
    "EXPLAIN SELECT * FROM ds AS OF TIMESTAMP '2026-03-03 00:00:00'",
    "SELECT * FROM ds VERSION AS OF 3 v WHERE v.k = 1",
    "SELECT * FROM ds VERSION AS OF -1",
    "SELECT * FROM ds TIMESTAMP AS OF '2026-03-03'",
    "SELECT * FROM ds FOR SYSTEM_TIME AS OF now() - INTERVAL '7 days' AS d JOIN ds AS OF VERSION '~0' e USING (k)",
    "SELECT * FROM ds AS OF TIMESTAMP now() - INTERVAL '7 days'",
    "CREATE BRANCH b FROM ds AS OF TIMESTAMP now() - INTERVAL '1 day'",
    "DIFF ds BETWEEN TIMESTAMP now() - INTERVAL '1 day' AND VERSION '~-1'",
    "INSERT INTO ds VALUES (1, 1, 'cat')",
    "UPDATE ds SET class = 'dog' WHERE k IN (SELECT k FROM ds AS OF TAG 'v1')",
    "DELETE FROM ds WHERE sample_id IN ('img-00000001')",
    "ALTER DATASET ds SET METADATA 'owner' = 'vision-team', 'frames' = 30, 'public' = FALSE",
    "ALTER DATASET \"My DS\" ALTER COLUMN bbox_x SET METADATA 'unit' = 'fraction of width', 'min' = -0.5",
    "ALTER DATASET ds ALTER COLUMN class UNSET METADATA 'note', 'it''s'",
    "SHOW METADATA ON ds",
];

#[test]
fn every_statement_kind_round_trips_through_display() {
    let mut kinds = BTreeSet::new();
    for sql in EXAMPLES {
        let st = parse_statement(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        kinds.insert(st.kind());
        let text = st.to_string();
        let again = parse_statement(&text).unwrap_or_else(|e| panic!("{sql} → {text}: {e}"));
        assert_eq!(again, st, "{sql} → {text}");
        assert_eq!(again.to_string(), text, "{sql}");
    }
    let all: BTreeSet<&str> = STATEMENT_KINDS.iter().copied().collect();
    assert_eq!(kinds, all, "every kind of statement has an example");
}

#[test]
fn as_of_is_given_to_tables_on_the_syntax_tree() {
    let st = parse_statement("select count(*) from DS as of version 'abcd' where x > 1").unwrap();
    assert_eq!(
        st.to_string(),
        "SELECT count(*) FROM \"ds@version:abcd\" AS \"ds\" WHERE x > 1"
    );
    let st = parse_statement("SELECT a.x FROM public.ds AS OF TAG 'v1' a").unwrap();
    assert_eq!(st.to_string(), "SELECT a.x FROM public.\"ds@tag:v1\" a");
    let st =
        parse_statement("SELECT * FROM ds AS OF TAG 'v1' JOIN ds AS OF BRANCH 'b' AS n USING (k)")
            .unwrap();
    assert_eq!(
        st.to_string(),
        "SELECT * FROM \"ds@tag:v1\" AS \"ds\" JOIN \"ds@branch:b\" AS n USING(k)"
    );
    // the same words inside strings and quoted names are not AS OF
    let st = parse_statement("SELECT 'x AS OF TAG y' AS \"AS OF\" FROM ds").unwrap();
    assert_eq!(
        st.to_string(),
        "SELECT 'x AS OF TAG y' AS \"AS OF\" FROM ds"
    );
}

#[test]
fn misplaced_as_of_is_a_located_error() {
    for (sql, needle) in [
        (
            "SELECT 1 AS OF TAG 'v1'",
            "must follow a table name in a FROM or JOIN clause at line 1, column 10",
        ),
        (
            "SELECT *\nFROM ds AS OF SOMETHING 'v1'",
            "found 'SOMETHING' at line 2, column 15",
        ),
        (
            "SELECT * FROM ds AS OF TAG",
            "must be followed by a quoted name",
        ),
        (
            "INSERT INTO ds AS OF TAG 'v1' VALUES (1)",
            "must follow a table name",
        ),
        (
            "WITH x AS (SELECT 1) SELECT * FROM x AS OF TAG 'v1'",
            "common table expression",
        ),
        (
            "SELECT * FROM quiver.commits AS OF TAG 'v1'",
            "system table",
        ),
        (
            "SELECT * FROM \"ds@v1\" AS OF TAG 'v1'",
            "already names a version",
        ),
        ("SELECT * FROM ds PARTITION (p1)", "PARTITION"),
        (
            "SELECT * FROM quiver_diff('ds', 'a', 'b') AS OF TAG 'v1'",
            "must follow a table name",
        ),
    ] {
        let e = parse_statement(sql).expect_err(sql).to_string();
        assert!(e.contains(needle), "{sql}: {e}");
    }
}

#[test]
fn quiver_statement_errors_name_line_and_column() {
    for (sql, needle) in [
        (
            "DIFF ds BETWEEN TAG 'v1'",
            "expected AND, found end of statement",
        ),
        (
            "SHOW BRANCHES ON ds extra",
            "expected end of statement, found 'extra' at line 1, column 21",
        ),
        (
            "RESOLVE CONFLICTS ON ds\n  USING BOTH",
            "expected OURS or THEIRS, found 'BOTH' at line 2, column 9",
        ),
        (
            "MERGE BRANCH b ON ds",
            "expected INTO, found 'ON' at line 1, column 16",
        ),
        (
            "ERASE FROM ds",
            "ERASE: expected WHERE <predicate> (to erase every label, say so: WHERE true), found end of statement",
        ),
        (
            "ERASE FROM ds WHERE k = 1 REASON 7",
            "expected the reason, a string literal, found '7' at line 1, column 34",
        ),
        (
            "ERASE ds WHERE k = 1",
            "expected FROM, found 'ds' at line 1, column 7",
        ),
        (
            "CREATE BRANCH FROM",
            "expected FROM, found end of statement",
        ),
        (
            "VACUUM ds RETAIN 7 WEEKS",
            "VACUUM: expected DAYS or HOURS, found 'WEEKS'",
        ),
        (
            "ALTER BRANCH main ON ds PROTECT",
            "ALTER BRANCH: expected ALTER BRANCH old RENAME TO new ON ds, or ALTER BRANCH b ON ds SET PROTECTED",
        ),
        (
            "ALTER BRANCH main ON ds ADD CHECK c AS SELECT 1",
            "expected the check's query as a string",
        ),
        (
            "RESET BRANCH main ON ds 'v1'",
            "expected TO, found ''v1'' at line 1, column 25",
        ),
        (
            "REVERT ON ds",
            "expected BRANCH, TAG, VERSION or TIMESTAMP, found 'ON'",
        ),
    ] {
        let e = parse_statement(sql).expect_err(sql).to_string();
        assert!(e.contains(needle), "{sql}: {e}");
    }
}

#[test]
fn vacuum_parses() {
    for (sql, hours, dry) in [
        ("VACUUM ds", None, false),
        ("vacuum ds retain 7 days", Some(168), false),
        ("VACUUM ds RETAIN 12 HOURS DRY RUN", Some(12), true),
        ("VACUUM ds RETAIN 0 DAYS", Some(0), false),
        ("VACUUM ds DRY RUN", None, true),
    ] {
        let st = parse_statement(sql).unwrap();
        let want = Statement::Vacuum {
            dataset: "ds".into(),
            retain_hours: hours,
            dry_run: dry,
        };
        assert_eq!(st, want, "{sql}");
        assert!(st.is_write(), "{sql}");
    }
    for bad in [
        "VACUUM",
        "VACUUM ds RETAIN",
        "VACUUM ds RETAIN 7",
        "VACUUM ds RETAIN 7 WEEKS",
        "VACUUM ds RETAIN -1 DAYS",
        "VACUUM ds RETAIN 99999999999 DAYS",
        "VACUUM ds DRY",
        "VACUUM ds extra",
    ] {
        assert!(parse_statement(bad).is_err(), "{bad}");
    }
}

#[test]
fn reads_and_writes_are_decided_on_the_type() {
    for (sql, write) in [
        ("/* DELETE */ SELECT 1", false),
        ("(SELECT 1)", false),
        ("WITH x AS (SELECT 1) SELECT * FROM x", false),
        ("EXPLAIN SELECT 1", false),
        ("/* SELECT */ DELETE FROM ds", true),
        ("INSERT/**/INTO ds VALUES (1)", true),
        ("SHOW HISTORY ON ds", false),
        ("USE BRANCH b ON ds", false),
        ("COMMIT", true),
        ("CREATE RUN 'r' ON ds", true),
        ("REVERT 'abcd' ON ds", true),
        ("RESET BRANCH main ON ds TO TAG 'v1'", true),
        ("MERGE 'b' INTO main ON ds PREVIEW", false),
        ("ALTER BRANCH main ON ds SET PROTECTED", true),
        ("ALTER BRANCH main ON ds UNSET PROTECTED", true),
        (
            "ALTER BRANCH main ON ds ADD CHECK c AS 'SELECT 1 WHERE false'",
            true,
        ),
        ("ALTER BRANCH main ON ds DROP CHECK c", true),
    ] {
        let st = parse_statement(sql).unwrap();
        assert_eq!(st.is_write(), write, "{sql}");
    }
}

#[test]
fn script_splits_on_top_level_semicolons() {
    let v = parse_script("BEGIN; INSERT INTO ds VALUES (1, 'a;b'); COMMIT 'm';").unwrap();
    assert_eq!(v.len(), 3);
    assert!(v[1].is_dml());
}

#[test]
fn bad_sql_never_panics() {
    for sql in [
        "",
        ";",
        "AS OF",
        "SELECT * FROM AS OF TAG 'x'",
        "CREATE DATASET",
        "CREATE DATASET d (",
        "CREATE DATASET d (a INT) KEY (a",
        "MIGRATE ds TO SCHEMA '1' USING (",
        "DIFF",
        "RESOLVE CONFLICTS ON ds USING OURS WHERE",
        "CREATE SCHEMA VERSION '1' ON ds ADD CLASS 'x' =",
        "SELECT * FROM ds AS OF",
        "SELECT * FROM ds AS",
        "'unterminated",
        "INSERT INTO quiver.predictions",
    ] {
        let _ = parse_script(sql);
    }
}
