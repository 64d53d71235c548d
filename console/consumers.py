"""Websocket pushes: an open page learns that what it shows has changed and reloads its
part over plain HTTP, through the same view, filters and access checks as any request."""

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from console.access import Capability, can
from orchestration.services import live


class ConsoleEventsConsumer(AsyncJsonWebsocketConsumer):
    """Subscribes to the approval queue, or to one run with ?run=<id>."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not await database_sync_to_async(can)(user, Capability.VIEW_QUEUE):
            await self.close(code=4403)
            return
        self.groups_joined: list[str] = [live.QUEUE_GROUP]
        run_id = _run_id(self.scope)
        if run_id is not None:
            self.groups_joined.append(live.run_group(run_id))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def console_event(self, message: dict[str, Any]) -> None:
        # Only the event name and ids travel; the page fetches the content itself.
        await self.send_json({k: v for k, v in message.items() if k != "type"})


def _run_id(scope: dict[str, Any]) -> int | None:
    query = scope.get("query_string", b"").decode()
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "run" and value.isdigit():
            return int(value)
    return None
