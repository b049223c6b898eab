#!/usr/bin/env python3
"""BI-style queries over Flight SQL with ADBC and pandas.

Any Flight SQL client works the same way (JDBC driver, DBeaver, Superset, ...): versions are
plain SQL (`AS OF TAG`, or the quoted `"demo@v1"` table names), lineage is in `quiver.*`.

    python examples/bi_adbc.py grpc://127.0.0.1:50051 [--token T]

The URL and token can also come from QUIVER_URL / QUIVER_TOKEN.
"""

import argparse
import os
import sys

import adbc_driver_flightsql.dbapi as flightsql
import pandas as pd

QUERIES = [
    ("Reviewers and approved labels per class at tag v1 (top 10)",
     """SELECT class, count(DISTINCT reviewer) AS reviewers, count(*) AS approved,
               round(avg(score), 3) AS mean_score
        FROM demo AS OF TAG 'v1'
        WHERE review_state = 'approved'
        GROUP BY class ORDER BY approved DESC, class LIMIT 10""", None),
    ("Review states of class 'person' at tag v1 (prepared statement)",
     """SELECT review_state, count(*) AS labels FROM "demo@v1"
        WHERE class = ? GROUP BY review_state ORDER BY review_state""", ("person",)),
    ("Training runs and the exact commit each one read (lineage)",
     """SELECT r.run_id, r.dataset, r.ref, substr(r.commit_id, 1, 12) AS commit, r.shards,
               c.message AS commit_message, r.recorded_at
        FROM quiver.runs r
        LEFT JOIN quiver.commits c ON c.dataset = r.dataset AND c.commit_id = r.commit_id
        ORDER BY r.recorded_at, r.run_id""", None),
    ("Runs per tagged commit",
     """SELECT t.tag, count(r.run_id) AS runs
        FROM quiver.tags t LEFT JOIN quiver.runs r ON r.commit_id = t.commit_id AND r.dataset = t.dataset
        WHERE t.dataset = 'demo' GROUP BY t.tag ORDER BY t.tag""", None),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url", nargs="?", default=os.environ.get("QUIVER_URL", "grpc://127.0.0.1:50051"))
    p.add_argument("--token", default=os.environ.get("QUIVER_TOKEN"))
    args = p.parse_args(argv)

    db_kwargs = {}
    if args.token:
        db_kwargs["adbc.flight.sql.authorization_header"] = f"Bearer {args.token}"
    pd.set_option("display.width", 160)
    with flightsql.connect(args.url, db_kwargs=db_kwargs, autocommit=True) as conn:
        for title, sql, params in QUERIES:
            with conn.cursor() as cur:
                if params is None:
                    cur.execute(sql)
                else:
                    cur.execute(sql, parameters=params)
                df = cur.fetch_df()
            print(f"== {title}")
            print(df.to_string(index=False) if len(df) else "(no rows)")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
