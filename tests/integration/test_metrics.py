"""DORA metrics from a known history, built through the services on a fake clock: exact values,
and the same words in the CLI table, the CLI JSON and the TUI's Metrics screen."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from shipdeck.core.services.metrics import metrics
from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.runs import rollback, run_plan
from shipdeck.tui.app import ShipdeckApp
from shipdeck.tui.screens.metrics import MetricsScreen
from tests.integration.shipping import release_all, shipping
from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import open_section, screen_text
from tests.tui.scenario import actor_ctx


async def test_known_history_gives_exact_metrics_everywhere(ws: WorkspaceFixture) -> None:
    # The fake clock starts two days before the machine's, so the CLI (a subprocess on the real
    # clock) and the services (on the fake one) both see the whole history in their 30 days.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    ws.clock.at = start
    with shipping(ws):
        alice = ws.as_user("alice")
        shas = ws.shas["model-server"]
        release_all(alice, "1.0.0", apps=["model-server"])
        assert run_plan(alice, create_plan(alice, "staging", ["model-server"]).id).ok
        ws.clock.advance(hours=2)
        release_all(alice, "1.1.0", apps=["model-server"])
        assert run_plan(alice, create_plan(alice, "staging", ["model-server@1.1.0"]).id).ok
        ws.clock.advance(minutes=30)
        assert rollback(alice, "model-server", "staging", reason="errors up").ok  # restores in 30m
        ws.clock.advance(hours=1)
        release_all(alice, "1.2.0", apps=["model-server"], demo_health="fail")
        failed = run_plan(alice, create_plan(alice, "staging", ["model-server@1.2.0"]).id)
        assert failed.state == "rolled_back"  # failed its health check: never took traffic
        ws.clock.advance(minutes=1)  # the window is [since, until): the last run is inside it

        (m,) = metrics(alice, env="staging", days=30)
        assert (m.deployments, m.failures, m.failed_attempts, m.attempts) == (2, 1, 1, 3)
        assert m.change_failure_rate == 0.5
        assert m.time_to_restore_median == timedelta(minutes=30) and m.restores == 1
        first_commit = datetime(2026, 10, 1, tzinfo=UTC)  # the repository's commit 0
        assert len(shas) == 5
        # 1.0.0 brought every commit (lead time from commit 0); 1.1.0 is the same HEAD commit,
        # so it brought none and has no lead time of its own
        assert m.lead_time_median == start - first_commit
        cells = m.cells()
        assert cells["change failures"] == "50%  (1 of 2)"
        assert cells["time to restore"] == "median 30m  (1 restore)"
        assert cells["deploys"] == "2  (0.07/day)"

        table = cli(ws, "metrics", "--env", "staging")
        assert table.returncode == 0, table.stderr
        assert table.stdout.splitlines() == [
            "staging  last 30 days",
            *(f"  {key:<17}{value}" for key, value in cells.items()),
            "  failed attempts  1",
        ]
        doc = json.loads(cli(ws, "-o", "json", "metrics", "--env", "staging").stdout)
        cfr = doc["environments"][0]["change_failure_rate"]
        assert (cfr["rate"], cfr["failures"], cfr["deployments"], cfr["failed_attempts"]) == (
            0.5, 1, 2, 1,
        )  # fmt: skip
        assert doc["environments"][0]["time_to_restore"]["median_seconds"] == 1800.0

        app = ShipdeckApp(actor_ctx(ws, "alice"))
        async with app.run_test(size=(100, 40)) as pilot:
            await open_section(pilot, "m", MetricsScreen)
            shown = screen_text(app)
        for key, value in cells.items():
            assert f"{key:<17}{value}" in shown
