"""The body of an actor that does not exist yet: it idles and says so in the tree.

Issue 2 asks for the full tree to run before the real actors exist; every actor still using
this is listed in the README's status section, and none of them is called done.
"""

from __future__ import annotations

import trio

from runtime.actor import ActorContext


async def idle(ctx: ActorContext, task_status: trio.TaskStatus[None]) -> None:
    ctx.set_note("placeholder: not implemented yet")
    ctx.log.debug("placeholder actor started (incarnation %d)", ctx.incarnation)
    task_status.started()
    await trio.sleep_forever()
