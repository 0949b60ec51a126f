"""DORA metrics per environment, with a sparkline of deploys per day over the window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from shipdeck.core.domain.metrics import DeploymentFact, EnvMetrics
from shipdeck.tui.messages import MetricsLoaded
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.scroll import VimScroll

WINDOWS = (7, 30, 90)


@dataclass(frozen=True)
class EnvReport:
    metrics: EnvMetrics
    per_day: list[float]  # deploys that took traffic, oldest day first
    failed_per_day: list[float]


@dataclass(frozen=True)
class Report:
    days: int
    envs: list[EnvReport]


def daily(facts: list[DeploymentFact], m: EnvMetrics, days: int) -> tuple[list[float], list[float]]:
    """Deploys and failed deploys per day in [since, until), for the sparklines."""
    ok, bad = [0.0] * days, [0.0] * days
    for f in facts:
        if f.env != m.env or f.kind != "deploy" or not m.since <= f.at < m.until:
            continue
        day = min(int((f.at - m.since) / timedelta(days=1)), days - 1)
        if f.outcome in ("succeeded", "rolled_back"):
            ok[day] += 1
        if f.outcome in ("failed", "rolled_back"):
            bad[day] += 1
    return ok, bad


def summary(m: EnvMetrics, days: int) -> Text:
    """The core's figures (EnvMetrics.cells, as the CLI prints them), one per line."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{m.env}", style="bold underline")
    text.append(f"  last {days} days\n", style="dim")
    lines = list(m.cells().items())
    for n, (label, value) in enumerate(lines, 1):
        text.append(f"{label:<17}", style="dim")
        bad = label == "change failures" and (m.change_failure_rate or 0) > 0.15
        text.append(value, style="bold red" if bad else "bold")
        if n < len(lines):
            text.append("\n")
    return text


class MetricsScreen(ShipdeckScreen):
    TITLE = "Metrics"
    CSS_PATH = "sections.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "window", "Window 7/30/90d"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.days = 30

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.ctx, self.TITLE)
        with VimScroll(id="metrics-body", can_focus=True):
            yield Static("computing…", id="metrics-note")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#metrics-body").focus()
        self.reload()

    def reload(self) -> None:
        self._load(self.days)

    @work(thread=True, exclusive=True, exit_on_error=False, group="metrics")
    def _load(self, days: int) -> None:
        from shipdeck.core.services.chain_head import head
        from shipdeck.core.services.metrics import deployment_facts, metrics

        seq, _ = head(self.ctx)
        facts = deployment_facts(self.ctx)
        envs = [EnvReport(m, *daily(facts, m, days)) for m in metrics(self.ctx, days=days)]
        self.post_message(MetricsLoaded(Report(days, envs), seq))

    @on(MetricsLoaded)
    async def _loaded(self, message: MetricsLoaded) -> None:
        report: Report = message.report
        body = self.query_one("#metrics-body", VimScroll)
        await body.remove_children()
        widgets: list[Widget] = []
        for env in report.envs:
            widgets.append(Static(summary(env.metrics, report.days), classes="metrics-env"))
            for label, data, cls in (
                ("deploys/day ", env.per_day, "spark-ok"),
                ("failures/day", env.failed_per_day, "spark-bad"),
            ):
                widgets.append(
                    Horizontal(
                        Static(Text(label, style="dim"), classes="spark-label"),
                        Sparkline(data, classes=f"spark {cls}"),
                        classes="spark-row",
                    )
                )
        if not report.envs:
            widgets.append(Static("no environments in shipdeck.toml"))
        await body.mount_all(widgets)
        self.mark_loaded(message.head_seq)

    def action_window(self) -> None:
        self.days = WINDOWS[(WINDOWS.index(self.days) + 1) % len(WINDOWS)]
        self.reload()

    def action_refresh(self) -> None:
        self.reload()
