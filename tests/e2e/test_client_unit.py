"""Client pieces that need no server: error translation, column conversion, shard split."""

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import quiver
from quiver.errors import from_flight


@pytest.mark.parametrize("exc, cls, msg", [
    (flight.FlightUnauthenticatedError(
        "Flight returned unauthenticated error, with message: missing bearer token. "
        "gRPC client debug context: UNKNOWN:Error received from peer. Client context: OK"),
     quiver.Unauthenticated, "missing bearer token"),
    (flight.FlightUnauthorizedError("read-only token may not write. Detail: Unauthorized"),
     quiver.PermissionDenied, "read-only token may not write"),
    (pa.ArrowInvalid("Flight returned invalid argument error, with message: bad ticket. "
                     "gRPC client debug context: x"), quiver.InvalidArgument, "bad ticket"),
    (pa.ArrowKeyError("Flight returned not found error, with message: no dataset 'x'. Client context: y"),
     quiver.NotFound, "no dataset 'x'"),
    (pa.ArrowException("Flight returned already exists error, with message: branch 'b' exists"),
     quiver.AlreadyExists, "branch 'b' exists"),
    (pa.ArrowInvalid("gRPC returned precondition failed error, with message: branch 'gold' is "
                     "protected"), quiver.Conflict, "branch 'gold' is protected"),
    (flight.FlightServerError("boom"), quiver.ServerError, "boom"),
])
def test_error_translation_keeps_the_server_message(exc, cls, msg):
    err = from_flight(exc)
    assert type(err) is cls
    assert str(err) == msg
    assert isinstance(err, quiver.QuiverError)
    assert err.raw == str(exc)


def test_column_conversion():
    torch = pytest.importorskip("torch")
    from quiver.torch_data import assigned_endpoints, batch_to_torch

    b = pa.record_batch({
        "i": pa.array([1, 2], pa.int64()),
        "f": pa.array([0.5, None], pa.float32()),
        "s": pa.array(["a", None]),
        "t": pa.array([1_000_000, None], pa.timestamp("us", tz="UTC")),
        "tn": pa.array([5_000, 7_000], pa.timestamp("ns")),
        "b": pa.array([True, False]),
    })
    out = batch_to_torch(b)
    assert out["i"].tolist() == [1, 2] and out["i"].dtype == torch.int64
    assert out["f"][0].item() == 0.5 and out["f"][1].isnan()
    assert out["s"] == ["a", None]
    assert out["t"].tolist() == [1_000_000, -(2 ** 63)] and out["t"].dtype == torch.int64
    assert out["tn"].tolist() == [5, 7]
    assert out["b"].dtype == torch.bool
    # every endpoint to exactly one (rank, worker)
    seen = sorted(j for r in range(3) for w in range(2) for j in assigned_endpoints(20, r, 3, w, 2))
    assert seen == list(range(20))
