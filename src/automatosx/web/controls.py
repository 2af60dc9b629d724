"""Which control buttons an execution's page offers: only the commands its state allows,
so a press is never answered 409 for a reason the page could have known.

- running (`executing` and the other working states): pause and cancel;
- paused, or running with its runner gone (orphaned): resume and cancel;
- a pause or cancel already asked for and not yet done: cancel, or nothing;
- finished: nothing; a read-only server: nothing;
- a sub-workflow's child whose parent is still going is resumed through its parent (as
  `ax workflow resume` says), so it offers no resume.

Approval gates are decided on their own buttons, offered for each gate still waiting for
a decision (even while the execution is paused: the decision waits for the resume).
"""

from __future__ import annotations

from automatosx.store.records import TERMINAL_STATES


def allowed_actions(
    state: str,
    *,
    orphaned: bool = False,
    control_request: str | None = None,
    steered_by_parent: bool = False,
    read_only: bool = False,
) -> tuple[str, ...]:
    """The commands to offer, in the order the page shows them."""
    if read_only or state in TERMINAL_STATES or control_request == "cancel":
        return ()
    if state == "paused" or (orphaned and control_request is None):
        return ("cancel",) if steered_by_parent else ("resume", "cancel")
    if control_request == "pause":
        return ("cancel",)
    return ("pause", "cancel")
