"""`shipdeck override` and `shipdeck review ...`: break-glass past a window or freeze, and the
second person's acknowledgement that closes its review.
"""

from __future__ import annotations

import typer

from shipdeck.tui import output
from shipdeck.tui.commands.common import context, parse_span, utc_when


def register(app: typer.Typer) -> None:
    @app.command("override")
    def override_(
        plan_id: str = typer.Argument(..., metavar="PLAN"),
        reason: str = typer.Option(..., "--reason"),
        until: str = typer.Option("1h", "--until", help="How long it lasts (at most 24h)."),
    ) -> None:
        """Break-glass past a window or freeze (role-gated, audited, opens a review)."""
        from shipdeck.core.services.plans import override

        o = override(context(), plan_id, reason, parse_span(until, "--until"))
        if output.OPTIONS.machine:
            output.emit({"override": o.as_dict()})
        else:
            output.say(f"override #{o.id} on plan {plan_id} until {utc_when(o.until)}: {reason}")
            output.info(
                "a review is open until someone else runs: shipdeck review ack " + str(o.id)
            )

    review = typer.Typer(
        help="Overrides waiting for a second person's acknowledgement.", no_args_is_help=True
    )
    app.add_typer(review, name="review")

    @review.command("list")
    def review_list() -> None:
        """Open reviews (overrides nobody else has acknowledged)."""
        from shipdeck.core.services.plans import open_reviews

        items = open_reviews(context())
        if output.OPTIONS.machine:
            output.emit({"reviews": [o.as_dict() for o in items]})
            return
        output.table(
            ["ID", "PLAN", "ENV", "BY", "AT", "REASON"],
            [[o.id, o.plan_id, o.env, o.by, utc_when(o.at), o.reason] for o in items],
        )

    @review.command("ack")
    def review_ack(
        override_id: int = typer.Argument(..., metavar="ID"),
        note: str = typer.Option("", "--note"),
    ) -> None:
        """Acknowledge someone else's override."""
        from shipdeck.core.services.plans import acknowledge_override

        o = acknowledge_override(context(), override_id, note)
        if output.OPTIONS.machine:
            output.emit({"override": o.as_dict()})
        else:
            output.say(f"override #{o.id} acknowledged by {o.acknowledged_by}")
