"""The endpoints of meetups' mails: a reminder's unsubscribe link (RFC 8058
one-click, or the button of its page). No login: the link's signed token is
the credential; it names its network, and the network whose address it was
opened at (the gateway's page) must be the same."""

from __future__ import annotations

from typing import Any

from services.events import contract as c
from services.events.domain import MemberSettings
from services.events.domain.people import settings_id
from services.events.handlers.base import EventsHandlers
from services.events.links import Link, verify
from services.runtime.errors import InvalidToken
from services.runtime.handlers import handles
from services.runtime.i18n import t
from services.runtime.tenancy import RequestContext


class MailHandlers(EventsHandlers):
    def _unsubscribe_link(self, token: str, ctx: RequestContext) -> Link:
        link = verify(self.link_key, token, self.now())
        if (
            link.kind != "unsubscribe"
            or link.target_id != link.holder_id
            or link.tenant_id != ctx.require_tenant()
        ):
            raise InvalidToken(t("this link is not valid"), rule="link_invalid")
        return link

    def _settings(self, tenant_id: str, member_id: str) -> MemberSettings | None:
        return self.app.find(settings_id(tenant_id, member_id), MemberSettings)

    @handles(c.DescribeUnsubscribeLink)
    def describe_unsubscribe(
        self, q: c.DescribeUnsubscribeLink, ctx: RequestContext
    ) -> c.UnsubscribeInfo:
        """What the page shows; an invalid link is described, not refused."""
        try:
            link = self._unsubscribe_link(q.token, ctx)
        except InvalidToken as e:
            return c.UnsubscribeInfo(
                valid=False, reason=e.message, reason_code=e.rule or "link_invalid", reminders=None
            )
        found = self._settings(link.tenant_id, link.holder_id)
        return c.UnsubscribeInfo(
            valid=True, reason=None, reason_code=None, reminders=found is None or found.reminders
        )

    @handles(c.UnsubscribeByLink)
    def unsubscribe(self, cmd: c.UnsubscribeByLink, ctx: RequestContext) -> c.ReminderSettings:
        link = self._unsubscribe_link(cmd.token, ctx)

        def unit() -> tuple[list[Any], bool]:
            settings = self._settings(link.tenant_id, link.holder_id)
            if settings is None:
                settings = MemberSettings(tenant_id=link.tenant_id, member_id=link.holder_id)
            settings.set_reminders(False, by_link=True)
            return [settings], settings.reminders

        return c.ReminderSettings(reminders=self.write(lambda: self.app.transact(unit)))
