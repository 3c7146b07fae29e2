"""How the SDK reaches the endpoint: host names, addresses and ports (``_exporter``)."""

from __future__ import annotations

from tests._helpers import enqueue_all, traces
from tests._server import FaultServer
from tests.conftest import MakeTracer


async def test_an_endpoint_host_name_is_resolved(
    server: FaultServer, make_tracer: MakeTracer
) -> None:
    """An endpoint given by host name (``localhost``, not an IP literal, so aiohttp asks
    the SDK's resolver) is resolved to the server's address and port on the running loop."""
    tracer = make_tracer(endpoint=server.url.replace("127.0.0.1", "localhost"), max_retries=0)
    enqueue_all(tracer, traces(3))
    await tracer.flush()
    assert sorted(server.accepted_ids()) == ["t-0", "t-1", "t-2"]
    assert tracer.stats().sent == 3
