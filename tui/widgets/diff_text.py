"""How a release diff reads on screen: commits, then artifact and config changes, one per line.

Shared by the app view (each environment against the latest), the plan editor (each chosen
release against what is live) and the release diff screen (any two releases), so a diff reads
the same wherever it is shown. Commit subjects and authors come from repositories: plain Text.
"""

from __future__ import annotations

from rich.text import Text

from shipdeck.core.ports import CommitInfo
from shipdeck.core.services.plan_preview import Change
from shipdeck.core.services.releases import ReleaseDiff
from shipdeck.tui.widgets.plan_text import in_zone, safe

PREVIEW_COMMITS = 5  # per app in a plan: enough to recognise the change; the app view lists all


def commit_line(c: CommitInfo, sign: str = " ") -> Text:
    """One commit; a downgrade marks the ones it takes out with '−'."""
    text = Text(f" {sign}", style="bold yellow")
    text.append(c.sha[:7], style="cyan")
    text.append(f"  {in_zone(c.date):%Y-%m-%d %H:%M}  ", style="dim")
    text.append(f"{safe(c.author)[:16]:<16}", style="bold")
    text.append(f"  {safe(c.subject)}")
    return text


def diff_body(diff: ReleaseDiff, max_commits: int | None = None, more_commits: int = 0) -> Text:
    """The lines under a diff's headline: commits (at most `max_commits`), artifacts, config."""
    commits = diff.commits if max_commits is None else diff.commits[:max_commits]
    hidden = more_commits + len(diff.commits) - len(commits)
    lines = [commit_line(c) for c in commits]
    if hidden:
        lines.append(Text(f"  … and {hidden} older commits", style="dim"))
    for a in diff.artifacts:
        lines.append(Text.assemble("  ", ("artifact ", "magenta"), safe(a.summary)))
    for cfg in diff.config:
        lines.append(
            Text.assemble(
                "  ", ("config ", "magenta"), f"{safe(cfg.key)}: {safe(cfg.old)} → {safe(cfg.new)}"
            )
        )
    if not (diff.artifacts or diff.config):
        lines.append(Text("  no artifact or config changes", style="dim"))
    return Text("\n").join(lines)


def count_words(n: int, what: str = "commit") -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def change_text(item: Change, max_commits: int | None = PREVIEW_COMMITS) -> Text:
    """One app going from one release to another: what that changes, a downgrade named as one."""
    text = Text()
    text.append(item.app, style="bold")
    was = safe(item.old.version) if item.old else "nothing live"
    text.append(f"  {was} → {safe(item.new.version)}", style="")
    if item.unchanged:
        text.append("  already live: nothing changes", style="dim")
        return text
    removed = item.removed
    if removed:
        text.append(f"  downgrade: removes {count_words(len(removed))}", style="bold yellow")
    added = len(item.diff.commits)
    if added:
        text.append(f"  adds {count_words(added)}", style="green")
    shown = removed if max_commits is None else removed[:max_commits]
    for c in shown:
        text.append("\n")
        text.append_text(commit_line(c, "−"))
    if len(shown) < len(removed):
        text.append(f"\n  … and {len(removed) - len(shown)} more removed", style="dim")
    text.append("\n")
    text.append_text(diff_body(item.diff, max_commits))
    return text
