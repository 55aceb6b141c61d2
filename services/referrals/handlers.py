"""Referrals' endpoints: who may do what, and the calls. Membership, roles,
hubs, the meeting rule and attendance are read from the local directory
(current state, learnt from the other services' events: reactions.py);
identity is asked which members match a need (`SearchMembers`, ranked here)
and which activity codes exist (`ListProfessions`).

Who sees what: a slip, its prospect and its value — the giver, the receiver,
the admins of its hub, tenant admins; anyone else gets `not_found`, as for a
missing slip or another network's. Values in reports are totals only.

Errors: `NotFound` (missing, another network's, or not visible),
`Forbidden` (not the receiver, not an admin), `Unauthenticated` (no
member), `RuleViolation` with its rule (`self_referral`, `former_member`,
`referral_lifecycle`, `referrals_between_members_who_met`,
`not_met_at_meetup`, `ask_the_network_first`, `need_closed`),
`InvalidInput` naming the field. A refused command stores nothing. The
create-like commands take an idempotency key (contract: `idempotent`).
The rules and the decisions behind them: docs/referrals-rules.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa

from services.identity import contract as idc
from services.referrals import contract as c
from services.referrals.application import Referrals
from services.referrals.domain import (
    DEFAULTS,
    Need,
    OneToOne,
    Referral,
    Thanks,
    engagement,
    met_recently,
    one_to_one_id,
    rank_matches,
)
from services.referrals.views import directory, ledger, reports
from services.runtime.errors import Forbidden, InvalidInput, NotFound, RuleViolation
from services.runtime.handlers import Handlers, handles
from services.runtime.host import ServiceHost
from services.runtime.i18n import t
from services.runtime.tenancy import RequestContext, as_service, scoped
from services.runtime.views import check_page

MAX_MATCHES = 20  # members told of a need
MAX_WORDS = 8  # words of a need searched one by one
SEARCH_PAGE = 50  # members per identity search (its page limit)
MAX_ONE_TO_ONES = 200  # listed at once, the latest first


class ReferralsHandlers(Handlers):
    def __init__(self, host: ServiceHost, app: Referrals):
        super().__init__(host)
        self.app = app

    def now(self) -> datetime:
        return self.clock.now()

    # -- who (inside a unit of work) ------------------------------------------------------

    def _member(self, ctx: RequestContext) -> tuple[str, str]:
        """(tenant, member) of the caller, an active member of the network."""
        member_id = ctx.require_member()
        tenant_id = ctx.require_tenant()
        if not self.read(lambda conn: directory.is_active_member(conn, tenant_id, member_id)):
            raise Forbidden(t("only members of the network may do this"))
        return tenant_id, member_id

    def _is_admin(self, ctx: RequestContext, hub_id: str | None) -> bool:
        """A tenant admin, or a co-admin of `hub_id` (current state)."""
        tenant_id, member_id = ctx.require_tenant(), ctx.actor.member_id or ""

        def query(conn: sa.Connection) -> bool:
            if directory.is_tenant_admin(conn, tenant_id, member_id):
                return True
            hub = directory.hub_row(conn, tenant_id, hub_id) if hub_id else None
            return hub is not None and member_id in hub.co_admins

        return self.read(query)

    def _sees(self, ctx: RequestContext, row: Any) -> bool:
        return ctx.actor.member_id in (row.giver_id, row.receiver_id) or self._is_admin(
            ctx, row.hub_id
        )

    def _slip(self, ctx: RequestContext, referral_id: str) -> c.Slip:
        tenant_id = ctx.require_tenant()
        row = self.read(lambda conn: ledger.slip_row(conn, tenant_id, referral_id))
        if row is None or not self._sees(ctx, row):
            raise NotFound(t("referral not found"))
        return ledger.to_slip(row, private=True)

    # -- referrals -----------------------------------------------------------------------

    def _check_met(self, tenant_id: str, giver: str, receiver: str, now: datetime) -> None:
        """The hub rule "referrals only between members who met": in every hub
        of both with the rule on (`referrals_meeting_days` = N), they were
        both present at one of its meetups, or confirmed a one-to-one, in its
        last N days (`met_recently`: the edges). Otherwise a RuleViolation
        `referrals_between_members_who_met` that says what is missing."""

        def query(conn: sa.Connection) -> str | None:
            shared = set(directory.hubs_of(conn, tenant_id, giver)) & set(
                directory.hubs_of(conn, tenant_id, receiver)
            )
            for hub_id in sorted(shared):
                hub = directory.hub_row(conn, tenant_id, hub_id)
                if hub is None or hub.meeting_days is None:
                    continue
                together = directory.co_attended(conn, tenant_id, hub_id, giver, receiver)
                one_to_ones = ledger.confirmed_one_to_ones(conn, tenant_id, giver, receiver)
                if not met_recently(together, one_to_ones, now, hub.meeting_days):
                    since = now - timedelta(days=hub.meeting_days)
                    return t(
                        "in this hub, a referral goes only between members who met in the last "
                        "{days} days: you were not both present at one of its meetups, and have "
                        "no confirmed one-to-one, since {since}. Meet at the next meetup, or log "
                        "a one-to-one.",
                        days=hub.meeting_days,
                        since=f"{since:%Y-%m-%d}",
                    )
            return None

        missing = self.read(query)
        if missing is not None:
            raise RuleViolation(missing, rule="referrals_between_members_who_met")

    def _check_meetup(
        self, tenant_id: str, meetup_id: str, giver: str, receiver: str, hub_id: str | None
    ) -> None:
        """The meetup where giver and receiver met: one of the network's
        meetups (as far as attendance was recorded: else not found), of the
        slip's hub if it names one, where both were present."""

        def query(conn: sa.Connection) -> list[Any]:
            return directory.meetup_attendance(conn, tenant_id, meetup_id)

        rows = self.read(query)
        if not rows:
            raise NotFound(t("meetup not found"), field="meetup_id")
        if hub_id is not None and rows[0].hub_id != hub_id:
            raise InvalidInput(t("this meetup is another hub's"), field="meetup_id")
        present = {r.member_id for r in rows if r.present}
        if not {giver, receiver} <= present:
            raise RuleViolation(
                t("you were not both present at this meetup"), rule="not_met_at_meetup"
            )

    def _check_member(self, tenant_id: str, member_id: str, field: str, current: bool) -> None:
        """A member of the network: unknown (or another network's) is not
        found; with `current`, a former member (`directory.formers_among`)
        is refused with the rule `former_member`."""

        def query(conn: sa.Connection) -> tuple[bool, bool]:
            known = directory.is_active_member(conn, tenant_id, member_id)
            return known, known and directory.is_former(conn, tenant_id, member_id)

        known, former = self.read(query)
        if not known:
            raise NotFound(t("member not found"), field=field)
        if current and former:
            raise RuleViolation(
                t("this member has left the network's hubs: a former member"),
                rule="former_member",
            )

    @handles(c.GiveReferral)
    def give(self, cmd: c.GiveReferral, ctx: RequestContext) -> c.Slip:
        tenant_id, giver = self._member(ctx)
        now = self.now()
        if cmd.receiver_id != giver:
            self._check_member(tenant_id, cmd.receiver_id, "receiver_id", current=True)
        if cmd.prospect_member_id is not None:
            self._check_member(tenant_id, cmd.prospect_member_id, "prospect_member_id", False)
        if cmd.hub_id is not None and cmd.hub_id not in self.read(
            lambda conn: directory.hubs_of(conn, tenant_id, giver)
        ):
            raise NotFound(t("hub not found"), field="hub_id")
        if cmd.meetup_id is not None and cmd.receiver_id != giver:
            self._check_meetup(tenant_id, cmd.meetup_id, giver, cmd.receiver_id, cmd.hub_id)
        referral = Referral.new(
            tenant_id,
            giver,
            cmd.receiver_id,
            cmd.about,
            cmd.warmth,
            now,
            prospect=msgspec.structs.asdict(cmd.prospect) if cmd.prospect else None,
            prospect_member_id=cmd.prospect_member_id,
            hub_id=cmd.hub_id,
            meetup_id=cmd.meetup_id,
        )
        self._check_met(tenant_id, giver, cmd.receiver_id, now)
        self.write(lambda: self.app.save(referral))
        return self._slip(ctx, str(referral.id))

    def _move(
        self, ctx: RequestContext, referral_id: str, status: str, reason: str | None = None
    ) -> c.Slip:
        tenant_id, member_id = self._member(ctx)
        self._slip(ctx, referral_id)  # not found for those who may not see it
        self.write(
            lambda: self.app.update(
                tenant_id,
                referral_id,
                Referral,
                lambda r: r.move(status, member_id, self.now(), reason),
            )
        )
        return self._slip(ctx, referral_id)

    @handles(c.AcceptReferral)
    def accept(self, cmd: c.AcceptReferral, ctx: RequestContext) -> c.Slip:
        return self._move(ctx, cmd.referral_id, "accepted")

    @handles(c.DeclineReferral)
    def decline(self, cmd: c.DeclineReferral, ctx: RequestContext) -> c.Slip:
        return self._move(ctx, cmd.referral_id, "declined", cmd.reason)

    @handles(c.MarkContacted)
    def contacted(self, cmd: c.MarkContacted, ctx: RequestContext) -> c.Slip:
        return self._move(ctx, cmd.referral_id, "contacted")

    @handles(c.MarkLost)
    def lost(self, cmd: c.MarkLost, ctx: RequestContext) -> c.Slip:
        return self._move(ctx, cmd.referral_id, "lost", cmd.reason)

    @handles(c.MarkWon)
    def won(self, cmd: c.MarkWon, ctx: RequestContext) -> c.Slip:
        tenant_id, member_id = self._member(ctx)
        self._slip(ctx, cmd.referral_id)
        value = (cmd.value.amount, cmd.value.currency)
        self.write(lambda: self.app.win(tenant_id, cmd.referral_id, member_id, value, self.now()))
        return self._slip(ctx, cmd.referral_id)

    @handles(c.RecordThanks)
    def record_thanks(self, cmd: c.RecordThanks, ctx: RequestContext) -> c.Thanks:
        tenant_id, member_id = self._member(ctx)
        if cmd.giver_id != member_id and not self.read(
            lambda conn: directory.is_active_member(conn, tenant_id, cmd.giver_id)
        ):
            raise NotFound(t("member not found"), field="giver_id")
        thanks = Thanks.new(
            tenant_id,
            cmd.giver_id,
            member_id,
            (cmd.value.amount, cmd.value.currency),
            cmd.about,
            self.now(),
            hub_id=cmd.hub_id,
        )
        self.write(lambda: self.app.save(thanks))
        row = self.read(
            lambda conn: conn.execute(
                scoped(ledger.thanks, tenant_id).where(ledger.thanks.c.thanks_id == str(thanks.id))
            ).one()
        )
        return ledger.to_thanks(row, private=True)

    @handles(c.ListSlips)
    def list_slips(self, q: c.ListSlips, ctx: RequestContext) -> c.SlipPage:
        tenant_id, member_id = self._member(ctx)
        check_page(q.limit, q.offset, t("referrals"))
        query = scoped(ledger.slips, tenant_id)
        if q.direction == "given":
            query = query.where(ledger.slips.c.giver_id == member_id)
        elif q.direction == "received":
            query = query.where(ledger.slips.c.receiver_id == member_id)
        elif q.hub_id is not None:
            if not self._is_admin(ctx, q.hub_id):
                raise Forbidden(t("only the hub's admins see all its referrals"))
            query = query.where(ledger.slips.c.hub_id == q.hub_id)
        elif not self._is_admin(ctx, None):
            raise Forbidden(t("only tenant admins see all the network's referrals"))
        if q.hub_id is not None and q.direction != "all":
            query = query.where(ledger.slips.c.hub_id == q.hub_id)
        if q.status is not None:
            query = query.where(ledger.slips.c.status == q.status)
        rows, total = self.read(
            lambda conn: ledger.page(conn, query, ledger.slips.c.given_at.desc(), q.offset, q.limit)
        )
        return c.SlipPage(items=[ledger.to_slip(r, private=True) for r in rows], total=total)

    @handles(c.GetSlip)
    def get_slip(self, q: c.GetSlip, ctx: RequestContext) -> c.Slip:
        self._member(ctx)
        return self._slip(ctx, q.referral_id)

    @handles(c.ListThanks)
    def list_thanks(self, q: c.ListThanks, ctx: RequestContext) -> c.ThanksPage:
        tenant_id, member_id = self._member(ctx)
        check_page(q.limit, q.offset, t("thanks"))
        th = ledger.thanks
        query = scoped(th, tenant_id)
        if q.direction == "given":
            query = query.where(th.c.giver_id == member_id)
        elif q.direction == "received":
            query = query.where(th.c.receiver_id == member_id)
        elif not self._is_admin(ctx, None):
            raise Forbidden(t("only tenant admins see all the network's thanks"))
        rows, total = self.read(
            lambda conn: ledger.page(conn, query, th.c.at.desc(), q.offset, q.limit)
        )
        return c.ThanksPage(items=[ledger.to_thanks(r, private=True) for r in rows], total=total)

    # -- one-to-ones -----------------------------------------------------------------------

    def _one_to_one(self, tenant_id: str, one_to_one_id: str) -> c.OneToOne:
        row = self.read(
            lambda conn: conn.execute(
                scoped(ledger.one_to_ones, tenant_id).where(
                    ledger.one_to_ones.c.one_to_one_id == one_to_one_id
                )
            ).first()
        )
        if row is None:
            raise NotFound(t("one-to-one not found"))
        return ledger.to_one_to_one(row)

    @handles(c.LogOneToOne)
    def log_one_to_one(self, cmd: c.LogOneToOne, ctx: RequestContext) -> c.OneToOne:
        """Logged by one; the other logging the same day confirms it."""
        tenant_id, member_id = self._member(ctx)
        if cmd.other_id != member_id:
            self._check_member(tenant_id, cmd.other_id, "other_id", current=True)
        now = self.now()

        def unit() -> tuple[list[Any], str]:
            found = self.app.find(
                one_to_one_id(tenant_id, member_id, cmd.other_id, cmd.met_on), OneToOne
            )
            if found is None:
                created = OneToOne.new(
                    tenant_id, member_id, cmd.other_id, cmd.met_on, now.date(), now
                )
                return [created], str(created.id)
            if found.other_id == member_id:
                found.answer(member_id, True, now)
            return [found], str(found.id)

        one_id = self.write(lambda: self.app.transact(unit))
        return self._one_to_one(tenant_id, one_id)

    def _answer(self, ctx: RequestContext, one_to_one_id: str, confirmed: bool) -> c.OneToOne:
        tenant_id, member_id = self._member(ctx)
        self.write(
            lambda: self.app.update(
                tenant_id,
                one_to_one_id,
                OneToOne,
                lambda o: o.answer(member_id, confirmed, self.now()),
            )
        )
        return self._one_to_one(tenant_id, one_to_one_id)

    @handles(c.ConfirmOneToOne)
    def confirm_one_to_one(self, cmd: c.ConfirmOneToOne, ctx: RequestContext) -> c.OneToOne:
        return self._answer(ctx, cmd.one_to_one_id, True)

    @handles(c.DeclineOneToOne)
    def decline_one_to_one(self, cmd: c.DeclineOneToOne, ctx: RequestContext) -> c.OneToOne:
        return self._answer(ctx, cmd.one_to_one_id, False)

    @handles(c.ListOneToOnes)
    def list_one_to_ones(self, q: c.ListOneToOnes, ctx: RequestContext) -> list[c.OneToOne]:
        """The asker's one-to-ones, the latest first: at most MAX_ONE_TO_ONES
        (the reply is a list, not a page; older ones count in reports)."""
        tenant_id, member_id = self._member(ctx)
        return self.read(
            lambda conn: ledger.one_to_ones_of(conn, tenant_id, member_id, MAX_ONE_TO_ONES)
        )

    # -- needs ---------------------------------------------------------------------------

    async def _matches(self, ctx: RequestContext, codes: list[str], words: str) -> list[str]:
        """Members whose card matches a need, best first, at most MAX_MATCHES.
        Identity answers (`SearchMembers`, asked as a service, tenant-scoped):
        one search per activity code, one per word of 3 letters or more (at
        most MAX_WORDS: identity requires every word of a search to match, so
        words are asked one by one). A member scores 2 per matching activity
        and 1 per matching word; ties keep the order identity found them in.
        Unknown activity codes are refused first (`ListProfessions`):
        InvalidInput on `activity_codes`. At most 1 + 10 + MAX_WORDS requests."""
        if codes:
            known = {p.code for p in await self.bus.request(idc.ListProfessions(), as_service(ctx))}
            unknown = [code for code in codes if code not in known]
            if unknown:
                raise InvalidInput(
                    t("not an activity of the taxonomy: {code}", code=unknown[0][:60]),
                    field="activity_codes",
                )
        searches = [(2, idc.SearchMembers(activity_code=code, limit=SEARCH_PAGE)) for code in codes]
        for word in list(dict.fromkeys(w for w in words.split() if len(w) >= 3))[:MAX_WORDS]:
            searches.append((1, idc.SearchMembers(text=word, offered_only=True, limit=SEARCH_PAGE)))
        hits = []
        for weight, search in searches:
            page = await self.bus.request(search, as_service(ctx))
            hits.append((weight, [m.member_id for m in page.items]))
        return rank_matches(hits, MAX_MATCHES)

    @staticmethod
    def _visible_need(need: c.Need, member_id: str | None) -> c.Need:
        """The poster sees every answer; others, their own answer only."""
        if member_id == need.poster_id:
            return need
        return msgspec.structs.replace(
            need, answers=[a for a in need.answers if a.member_id == member_id]
        )

    def _need(self, ctx: RequestContext, need_id: str) -> c.Need:
        """Any member of the network may read a need (to answer it); another
        network's or a missing one is not found."""
        tenant_id, member_id = ctx.require_tenant(), ctx.actor.member_id
        row = self.read(lambda conn: ledger.need_row(conn, tenant_id, need_id))
        if row is None:
            raise NotFound(t("need not found"))
        return self._visible_need(ledger.to_need(row), member_id)

    @handles(c.PostNeed)
    async def post_need(self, cmd: c.PostNeed, ctx: RequestContext) -> c.Need:
        """Checked first (text policy, bounds), then matched by identity
        (`_matches`), then saved; the matched members are mailed by the
        `mail` reaction (services/referrals/mail.py) and find it in
        `ListNeeds`. Only active members of the network, not the poster,
        are kept as matches."""
        tenant_id, poster = await self.unit(lambda: self._member(ctx))
        now = self.now()
        codes, words, _ = Need.checked(
            cmd.activity_codes, cmd.words, cmd.description, cmd.deadline, now
        )
        found = await self._matches(ctx, codes, words)

        def unit() -> c.Need:
            active = set(self.read(lambda conn: directory.active_among(conn, tenant_id, found)))
            need = Need.new(
                tenant_id,
                poster,
                cmd.activity_codes,
                cmd.words,
                cmd.description,
                cmd.deadline,
                [m for m in found if m in active],
                self.app.settings(tenant_id)["need_window_days"],
                now,
            )
            self.write(lambda: self.app.save(need))
            return self._need(ctx, str(need.id))

        return await self.unit(unit)

    @handles(c.AnswerNeed)
    def answer_need(self, cmd: c.AnswerNeed, ctx: RequestContext) -> c.Need:
        tenant_id, member_id = self._member(ctx)
        self.write(
            lambda: self.app.update(
                tenant_id, cmd.need_id, Need, lambda n: n.answer(member_id, cmd.message, self.now())
            )
        )
        return self._need(ctx, cmd.need_id)

    @handles(c.MarkNeedMet)
    def need_met(self, cmd: c.MarkNeedMet, ctx: RequestContext) -> c.Need:
        tenant_id, member_id = self._member(ctx)
        if not self.read(lambda conn: directory.is_active_member(conn, tenant_id, cmd.member_id)):
            raise NotFound(t("member not found"), field="member_id")
        self.write(
            lambda: self.app.update(
                tenant_id, cmd.need_id, Need, lambda n: n.met(member_id, cmd.member_id, self.now())
            )
        )
        return self._need(ctx, cmd.need_id)

    @handles(c.ReleaseNeed)
    def release_need(self, cmd: c.ReleaseNeed, ctx: RequestContext) -> c.Need:
        tenant_id, member_id = self._member(ctx)
        self.write(
            lambda: self.app.update(
                tenant_id, cmd.need_id, Need, lambda n: n.release(member_id, self.now())
            )
        )
        return self._need(ctx, cmd.need_id)

    @handles(c.ListNeeds)
    def list_needs(self, q: c.ListNeeds, ctx: RequestContext) -> c.NeedPage:
        """`mine`: the asker's needs, newest first. Else the needs the asker
        was matched to (told of): open ones first, newest first."""
        tenant_id, member_id = self._member(ctx)
        check_page(q.limit, q.offset, t("needs"))
        n = ledger.needs
        if q.mine:
            query = scoped(n, tenant_id).where(n.c.poster_id == member_id)
            order: Any = n.c.posted_at.desc()
        else:
            query = ledger.matched_needs(tenant_id, member_id)
            order = (sa.case((n.c.status == "open", 0), else_=1), n.c.posted_at.desc())
        rows, total = self.read(lambda conn: ledger.page(conn, query, order, q.offset, q.limit))
        return c.NeedPage(
            items=[self._visible_need(ledger.to_need(r), member_id) for r in rows], total=total
        )

    @handles(c.GetNeed)
    def get_need(self, q: c.GetNeed, ctx: RequestContext) -> c.Need:
        self._member(ctx)
        return self._need(ctx, q.need_id)

    # -- reports and engagement --------------------------------------------------------------

    @handles(c.GetResults)
    def results(self, q: c.GetResults, ctx: RequestContext) -> c.Results:
        if ctx.actor.kind == "service" and ctx.actor.key_id:
            # a tenant API key holding `reports:read` (the gateway checked it):
            # it reads as the network's tenant admins do, and names its member
            tenant_id, member_id = ctx.require_tenant(), ""
            if q.scope == "member" and not q.subject_id:
                raise InvalidInput(t("an API key names the member (subjectId)"), field="subject_id")
        else:
            tenant_id, member_id = self._member(ctx)
        as_key = not member_id
        until = q.until or self.now()
        since = q.since or until - timedelta(days=90)
        if since > until or until - since > timedelta(days=3 * 366):
            raise InvalidInput(
                t("a period of at most three years, its start before its end"), field="since"
            )

        def query(conn: sa.Connection) -> c.Results:
            subject = q.subject_id
            members: list[str] | None
            exact = True  # the figures as they are; else coarsened (views.reports)
            window_since, window_until = since, until
            if q.scope == "member":
                subject = subject or member_id
                admin_hubs = set(directory.admin_of(conn, tenant_id, member_id))
                may_see = subject == member_id or bool(
                    as_key
                    or directory.is_tenant_admin(conn, tenant_id, member_id)
                    or admin_hubs & set(directory.hubs_of(conn, tenant_id, subject))
                )
                known = subject == member_id or directory.is_known(conn, tenant_id, subject)
                if not may_see or not known:
                    raise NotFound(t("member not found"))
                members = [subject]
            elif q.scope == "hub":
                if not subject or directory.hub_row(conn, tenant_id, subject) is None:
                    raise NotFound(t("hub not found"))
                tenant_admin = as_key or directory.is_tenant_admin(conn, tenant_id, member_id)
                hub_admin = subject in directory.admin_of(conn, tenant_id, member_id)
                if not (
                    tenant_admin
                    or hub_admin
                    or subject in directory.hubs_of(conn, tenant_id, member_id)
                ):
                    raise Forbidden(t("only the hub's members and admins see its report"))
                exact = tenant_admin or hub_admin
                members = directory.members_of(conn, tenant_id, subject)
            else:
                subject, members = tenant_id, None
                exact = as_key or bool(directory.is_tenant_admin(conn, tenant_id, member_id))
            if not exact:
                window = reports.coarse_window(since, until, self.now())
                if window is None:
                    raise InvalidInput(
                        t(
                            "hub and network reports cover whole months that have ended: "
                            "ask for a period that includes one"
                        ),
                        field="since",
                    )
                window_since, window_until = window.since, window.until
            return self._results(
                conn, tenant_id, q.scope, subject, members, window_since, window_until, exact
            )

        return self.read(query)

    def _results(
        self,
        conn: sa.Connection,
        tenant_id: str,
        scope: str,
        subject: str,
        members: list[str] | None,
        since: datetime,
        until: datetime,
        exact: bool,
    ) -> c.Results:
        d = directory.attendance
        m = directory.missions
        attendance_where: list[Any] = [d.c.tenant_id == tenant_id, d.c.present.is_(True)]
        mission_where: list[Any] = [m.c.tenant_id == tenant_id]
        if scope == "member":
            attendance_where.append(d.c.member_id == subject)
            mission_where.append(m.c.member_id == subject)
        elif scope == "hub":
            attendance_where.append(d.c.hub_id == subject)
            mission_where.append(m.c.hub_id == subject)
        attended = conn.execute(
            sa.select(sa.func.count())
            .select_from(d)
            .where(*attendance_where, d.c.starts_at >= since, d.c.starts_at <= until)
        ).scalar_one()
        missions = conn.execute(
            sa.select(sa.func.count())
            .select_from(m)
            .where(*mission_where, m.c.done_at >= since, m.c.done_at <= until)
        ).scalar_one()
        found = ledger.results(
            conn, tenant_id, scope, subject, members, since, until, int(attended), int(missions)
        )
        if exact:
            return found
        hidden = reports.withheld(conn, tenant_id, members, since, until)
        return reports.without(found, hidden) if hidden else found

    @handles(c.GetHubEngagement)
    def hub_engagement(self, q: c.GetHubEngagement, ctx: RequestContext) -> c.HubEngagement:
        tenant_id, member_id = self._member(ctx)
        now = self.now()
        settings = self.app.settings(tenant_id)

        def query(conn: sa.Connection) -> c.HubEngagement:
            if directory.hub_row(conn, tenant_id, q.hub_id) is None:
                raise NotFound(t("hub not found"))
            members = directory.members_of(conn, tenant_id, q.hub_id)
            if member_id not in members and not self._is_admin(ctx, q.hub_id):
                raise Forbidden(t("only members of the hub see its engagement"))
            # an erased member is in no one's core, and drifts from nothing
            erased = directory.erased_among(conn, tenant_id, members)
            members = [m for m in members if m not in erased]
            since = now - timedelta(days=30 * settings["light_months"])
            attended = directory.attendances(conn, tenant_id, q.hub_id)
            given = ledger.given_since(conn, tenant_id, since)
            met = ledger.one_to_ones_since(conn, tenant_id, since)
            found = [
                engagement(m, attended.get(m, []), given.get(m, 0), met.get(m, 0), settings, now)
                for m in members
            ]
            return c.HubEngagement(
                hub_id=q.hub_id,
                core=[e.member_id for e in found if e.in_core],
                drifting=[e.member_id for e in found if e.drifting],
                members=[
                    c.Engagement(
                        member_id=e.member_id,
                        light=e.light,  # type: ignore[arg-type]
                        measures=[
                            c.LightMeasure(measure=x.measure, value=x.value, light=x.light)  # type: ignore[arg-type]
                            for x in e.measures
                        ],
                        meetups_in_core_window=e.meetups_in_core_window,
                        in_core=e.in_core,
                        drifting=e.drifting,
                        last_meetup_at=e.last_meetup_at,
                    )
                    for e in found
                ],
            )

        return self.read(query)

    @handles(c.GetEngagementSettings)
    def get_settings(self, q: c.GetEngagementSettings, ctx: RequestContext) -> c.EngagementSettings:
        tenant_id, _ = self._member(ctx)
        return c.EngagementSettings(**self.app.settings(tenant_id))

    @handles(c.SetEngagementSettings)
    def set_settings(
        self, cmd: c.SetEngagementSettings, ctx: RequestContext
    ) -> c.EngagementSettings:
        tenant_id, _ = self._member(ctx)
        if not self._is_admin(ctx, None):
            raise Forbidden(t("only tenant admins set the network's engagement settings"))
        values = msgspec.structs.asdict(cmd.settings)

        def unit() -> tuple[list[Any], None]:
            settings = self.app.settings_aggregate(tenant_id)
            changed = settings.change(values, DEFAULTS)
            return ([settings] if changed else []), None  # the same values: nothing stored

        self.write(lambda: self.app.transact(unit))
        return c.EngagementSettings(**self.app.settings(tenant_id))
