"""Each request a service serves is logged (`request.handled`, issue #12
item 4): which request, which service and replica, for which network and
correlation id, how it ended and how long it took; never its values — an
e-mail address, a name or a password a request carries is in no log line."""

from __future__ import annotations

import os
import socket
from dataclasses import replace

import pytest

from services.identity import contract as idc
from services.runtime.bus import Bus
from services.runtime.errors import InvalidInput
from services.runtime.host import ServiceHost
from services.runtime.messages import new_correlation_id
from tests.support.identity import PASSWORD, create_network, operator
from tests.support.logs import captured_logs

pytestmark = pytest.mark.asyncio

ADDRESS = "karim.secret@logs.example"
NAME = "Karim Secretname"


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # logging is not the store's
async def test_each_request_is_logged_with_where_and_how_but_no_personal_value(
    identity: ServiceHost, client_bus: Bus
) -> None:
    with captured_logs() as logs:
        tenant, _ = await create_network(client_bus, "pole-logs", ADDRESS, NAME)
        ctx = replace(operator(tenant.tenant_id), correlation_id=new_correlation_id())
        await client_bus.request(idc.InviteMember(email="other." + ADDRESS), ctx)
        with pytest.raises(InvalidInput):
            await client_bus.request(idc.InviteMember(email="not an address " + NAME), ctx)
        await client_bus.request(idc.GetTenant(slug="pole-logs"), ctx)
    handled = [e for e in logs if e["event"] == "request.handled"]
    mine = [e for e in handled if e["correlation_id"] == ctx.correlation_id]
    assert [(e["request"], e["outcome"], e["log_level"]) for e in mine] == [
        ("InviteMember", "ok", "info"),  # commands at info
        ("InviteMember", "invalid_input", "info"),
        ("GetTenant", "ok", "debug"),  # queries at debug
    ]
    for e in mine:
        assert (
            e["subject"]
            == f"quartier.{'qry' if e['request'] == 'GetTenant' else 'cmd'}.identity.{e['request']}"
        )
        assert e["service"] == "identity"
        assert e["replica"] == f"{socket.gethostname()}:{os.getpid()}"
        assert e["tenant"] == tenant.tenant_id
        assert e["actor"] == "operator"
        assert isinstance(e["ms"], float) and e["ms"] >= 0
    # the network's creation and the invitation's acceptance were logged too
    assert {"CreateTenant", "AcceptInvitation"} <= {e["request"] for e in handled}
    # nothing personal in any line logged meanwhile, by any part
    text = repr(logs)
    for personal in (ADDRESS, "Secretname", PASSWORD, "karim.secret"):
        assert personal not in text
