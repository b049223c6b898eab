"""Client side of `cargo bench --bench flight`: prints one JSON line of rates.

usage: flight_client.py URL "col1, col2, ..." RUNS
- doget_1_mbs: pyarrow do_get of the projection of tag v1 as one shard (MB/s of Arrow buffers)
- doget_4_mbs: the same as 4 shards, read by 4 threads
- dataloader_labels_s: labels/second out of a torch DataLoader(num_workers=2) over to_torch
- adbc_sql_mbs: the same projection as a SQL statement through ADBC Flight SQL (a BI client)
"""
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow.flight as fl


def descriptor(cmd):
    """A Quiver ReadCommand: protobuf Any with the Quiver type URL, the command's JSON inside."""
    url = b"type.googleapis.com/quiver.v1.ReadCommand"
    value = json.dumps(cmd).encode()

    def varint(n):
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)

    return fl.FlightDescriptor.for_command(
        b"\x0a" + varint(len(url)) + url + b"\x12" + varint(len(value)) + value)


def read_all(url, cmd):
    c = fl.connect(url)
    info = c.get_flight_info(descriptor(cmd))

    def one(ep):
        cc = fl.connect(url)
        rows = nbytes = 0
        for chunk in cc.do_get(ep.ticket):
            rows += chunk.data.num_rows
            nbytes += chunk.data.get_total_buffer_size()
        return rows, nbytes

    with ThreadPoolExecutor(len(info.endpoints)) as ex:
        res = list(ex.map(one, info.endpoints))
    return sum(r for r, _ in res), sum(b for _, b in res)


def main():
    url, cols = sys.argv[1], [c.strip() for c in sys.argv[2].split(",")]
    out = {}
    for shards in (1, 4):
        cmd = {"dataset": "demo", "ref": "tag:v1", "columns": cols, "shards": shards}
        t = time.perf_counter()
        rows, nbytes = read_all(url, cmd)
        dt = time.perf_counter() - t
        out[f"doget_{shards}_mbs"] = nbytes / dt / 1e6
        out[f"doget_{shards}_rows"] = rows

    import torch  # noqa: F401  (only for the DataLoader figure)
    import quiver

    ds = quiver.connect(url).dataset("demo").at(tag="v1")
    data = ds.to_torch(columns=["label_id", "score"], batch_size=8192, shards=8)
    loader = torch.utils.data.DataLoader(
        data, batch_size=None, num_workers=2, multiprocessing_context="spawn"
    )
    t = time.perf_counter()
    n = 0
    for batch in loader:
        n += len(batch["label_id"])
    out["dataloader_labels_s"] = n / (time.perf_counter() - t)
    out["dataloader_labels"] = n

    import adbc_driver_flightsql.dbapi as flightsql

    with flightsql.connect(url) as conn, conn.cursor() as cur:
        t = time.perf_counter()
        cur.execute(f"SELECT {', '.join(cols)} FROM demo AS OF TAG 'v1'")
        table = cur.fetch_arrow_table()
        dt = time.perf_counter() - t
    out["adbc_sql_mbs"] = table.get_total_buffer_size() / dt / 1e6
    out["adbc_sql_rows"] = table.num_rows
    print(json.dumps(out))


if __name__ == "__main__":
    main()
