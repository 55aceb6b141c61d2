"""The webhooks service as its own NATS user (infra/nats_auth.py, from the
registry): it asks identity who is a tenant admin, creates and reads its
durable consumers on the stream, and a delivery reaches a receiver — without
one refusal from the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from services.identity import contract as idc
from services.webhooks import contract as c
from tests.integration.test_nats_auth import Secured, secured, secured_server
from tests.support.identity import as_member, card, create_network
from tests.support.receiver import Receiver
from tests.support.waiting import eventually

pytestmark = pytest.mark.asyncio

__all__ = ["secured", "secured_server"]  # the fixtures, used here


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def test_webhooks_work_with_their_own_credentials(
    secured: Secured, receiver: Receiver
) -> None:
    with capture_logs() as logs:
        await secured.start("webhooks")
        async with AsyncExitStack() as stack:
            gateway = await secured.bus("gateway", stack)
            _, admin = await create_network(gateway, "wh-bus")
            ctx = as_member(admin)
            await gateway.request(
                c.CreateEndpoint(
                    url=receiver.url, event_types=[idc.ProfileCardUpdated.type_name()]
                ),
                ctx,
            )
            await gateway.request(idc.UpdateProfileCard(changes=card("Admin again")), ctx)
            await eventually(lambda: receiver.delivered, timeout=30)
            webhooks = secured.hosts["webhooks"]
            await eventually(  # the keys reaction reads identity's events too
                lambda: any(r.handled for r in webhooks.reactions if r.durable == "webhooks-keys"),
                timeout=30,
            )
    assert {r.durable for r in webhooks.reactions if r.handled} >= {
        "webhooks-identity",
        "webhooks-keys",
        "webhooks-webhooks",
    }
    denied = [e for e in logs if e["event"] in ("nats.permission_denied", "nats.refused")]
    assert denied == []
