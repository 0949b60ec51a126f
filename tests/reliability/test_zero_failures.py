"""Zero failed requests: paced load (>= 200 requests/s, a new connection per request) on the
front port while the run engine ships 50 releases in a row, each one a blue/green switch."""

from __future__ import annotations

import threading

import pytest

from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.runs import run_plan
from tests.integration.shipping import front_port, live, release_all, shipping
from tests.support.load import LoadResult, run_load
from tests.support.workspace import WorkspaceFixture

SWITCHES = 50
RATE = 250.0
CHUNK = 4.0  # seconds of load per run_load call, repeated until the switches are done


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_no_request_fails_during_50_engine_switches(ws: WorkspaceFixture) -> None:
    with shipping(ws):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["chat-api"])
        release_all(alice, "1.1.0", apps=["chat-api"])
        assert run_plan(alice, create_plan(alice, "staging", ["chat-api@1.0.0"]).id).ok
        port = front_port(ws, "chat-api", "staging")
        outcomes: list[str] = []
        done = threading.Event()

        def ship() -> None:
            try:
                for n in range(SWITCHES):
                    version = "1.1.0" if n % 2 == 0 else "1.0.0"
                    outcomes.append(
                        run_plan(
                            alice, create_plan(alice, "staging", [f"chat-api@{version}"]).id
                        ).state
                    )
            finally:
                done.set()

        shipper = threading.Thread(target=ship)
        total = LoadResult()
        shipper.start()
        while not done.is_set():
            chunk = run_load(port, RATE, CHUNK)
            total.sent += chunk.sent
            total.failures += chunk.failures
            total.errors += chunk.errors
            total.bodies.update(chunk.bodies)
            total.elapsed += chunk.elapsed
        shipper.join()

        assert outcomes == ["succeeded"] * SWITCHES
        assert total.sent / total.elapsed >= 200
        assert total.failures == 0, total.errors
        assert set(total.bodies) == {"1.0.0", "1.1.0"}  # traffic really moved back and forth
