// Meetups: the calendar (upcoming and past), a meetup's answers and
// waitlist, taking attendance (at the table, on a phone), closing with the
// next date fixed (the series' rhythm proposes it), mission cards, date polls.
import { html, useState, useEffect, useQuery, useAction, useHubs, HubPicker, Loading, ErrorBox, Ok, hashParam, setHashParam, useId } from "../ui.js";
import { mutate, ERROR_FIELDS } from "../api.js";
import { t, tc, fmtLocal, fmtDateTime, collate } from "../i18n.js";

const CALENDAR = `query Calendar($id: ID!, $when: MeetupWhen!) { hub(id: $id) { id name
  meetups(when: $when, first: 30) { edges { node { id title kind localStart timezone state
    seated waiting capacity venue { name } } } }
  coAdmins { id } facilitator { id }
  openCards { id title drawnAt member { displayName } meetup { title localStart } }
  datePolls { id title state timezone voters chosenSlotId venue { name }
    slots { slotId localStart yes ifNeedBe no } meetup { id localStart } } } }`;

const MEETUP = `query Meetup($id: ID!) { meetup(id: $id) { id title kind topic localStart timezone
  startsAt state cancelReason capacity seated waiting maybe declined
  venue { name address }
  series { id name rrule nextLocalStart venue { name address } }
  nextMeetup { id localStart title }
  rsvps { answer seat waitlistPosition member { id displayName } }
  attendance { status substitute visitorId member { id displayName } }
  cards { id title doneAt member { displayName } }
  hub { id coAdmins { id } facilitator { id } members(first: 50) { edges { node { member { id displayName erased } } } } } } }`;

const MARKS = ["PRESENT", "LATE", "ABSENT", "EXCUSED"];
const ANSWERS = { YES: "pv_yes", MAYBE: "maybe", NO: "declined" };

function Attendance({ m, onSaved }) {
  const rsvpOrder = m.rsvps.map((r) => r.member && r.member.id).filter(Boolean);
  // an erased member (a former member) is not called any more: past
  // records still show them, as "former member"
  const members = ((m.hub && m.hub.members.edges) || [])
    .map((e) => e.node.member)
    .filter((p) => p && !p.erased);
  members.sort((a, b) => {
    const ia = rsvpOrder.indexOf(a.id);
    const ib = rsvpOrder.indexOf(b.id);
    return (ia < 0 ? 999 : ia) - (ib < 0 ? 999 : ib) || collate(a.displayName, b.displayName);
  });
  const initial = {};
  for (const a of m.attendance) if (a.member && a.status !== "VISITOR") initial[a.member.id] = a.status;
  const [marks, setMarks] = useState(initial);
  const save = useAction(async () => {
    const entries = Object.entries(marks).map(([memberId, status]) => ({ memberId, status }));
    await mutate(
      `mutation Attend($input: RecordAttendanceInput!) { recordAttendance(input: $input) {
        __typename ... on AttendancePayload { attendance { status } } ${ERROR_FIELDS} } }`,
      { input: { meetupId: m.id, entries } },
      "recordAttendance",
      "AttendancePayload",
    );
    onSaved();
    return t("attendanceSaved");
  });
  const visitors = m.attendance.filter((a) => a.status === "VISITOR").length;
  return html`<form class="card" aria-labelledby="att-h" onSubmit=${(e) => {
    e.preventDefault();
    save.run();
  }}>
    <h2 id="att-h">${t("takeAttendance")}</h2>
    <ul class="plain attendance">
      ${members.map((p) => {
        const answer = m.rsvps.find((r) => r.member && r.member.id === p.id);
        return html`<li data-member=${p.displayName}>
          <fieldset class="marks-set">
            <legend><strong>${p.displayName}</strong>
              ${answer && html` <span class="muted small">(${answer.seat === "WAITING" ? t("waitlist").toLowerCase() : t(ANSWERS[answer.answer])})</span>`}</legend>
            <div class="marks">
              ${MARKS.map(
                (s) => html`<label class=${marks[p.id] === s ? "on" : ""}>
                  <input type="radio" name=${"mark-" + p.id} value=${s} checked=${marks[p.id] === s}
                    onChange=${() => setMarks((old) => ({ ...old, [p.id]: s }))} />${tc("a_" + s)}</label>`,
              )}
            </div>
          </fieldset>
        </li>`;
      })}
    </ul>
    ${visitors > 0 && html`<p class="muted">${t("a_VISITOR")} : ${visitors}</p>`}
    <${ErrorBox} error=${save.error} /><${Ok} text=${save.ok} />
    <button type="submit" disabled=${save.busy}>${t("saveAttendance")}</button>
  </form>`;
}

function CloseForm({ m, onClosed }) {
  const proposed = (m.series && m.series.nextLocalStart) || "";
  const [next, setNext] = useState(proposed.slice(0, 16));
  const venue0 = (m.series && m.series.venue) || m.venue;
  const [venue, setVenue] = useState(venue0.name);
  const [result, setResult] = useState(null);
  const close = useAction(async () => {
    const input = { meetupId: m.id };
    if (next) {
      input.nextLocalStart = next.length === 16 ? next + ":00" : next;
      if (venue.trim())
        input.nextVenue = { name: venue.trim(), address: venue.trim() === venue0.name ? venue0.address : "" };
    }
    const r = await mutate(
      `mutation Close($input: CloseMeetupInput!) { closeMeetup(input: $input) {
        __typename ... on MeetupClosed { next { id localStart venue { name } }
          cards { id title member { displayName } } } ${ERROR_FIELDS} } }`,
      { input },
      "closeMeetup",
      "MeetupClosed",
    );
    setResult(r);
    onClosed();
    return t("closed");
  });
  return html`<form class="card" aria-labelledby="close-h" novalidate onSubmit=${(e) => {
    e.preventDefault();
    close.run();
  }}>
    <h2 id="close-h">${t("closeMeetup")}</h2>
    <p class="muted">${t("closeIntro")}</p>
    <div class="form-grid">
      <div class="field">
        <label for="next-date">${t("nextDate")} *</label>
        <input id="next-date" type="datetime-local" aria-required="true" value=${next}
          aria-describedby="next-hint" onInput=${(e) => setNext(e.target.value)} />
        <span id="next-hint" class="muted small">${proposed ? t("proposed") + fmtLocal(proposed) : ""}</span>
      </div>
      <div class="field">
        <label for="next-venue">${t("nextVenue")}</label>
        <input id="next-venue" value=${venue} onInput=${(e) => setVenue(e.target.value)} />
      </div>
    </div>
    <${ErrorBox} error=${close.error} /><${Ok} text=${close.ok} />
    ${result &&
    html`<p>${t("next")}<strong>${fmtLocal(result.next.localStart)}</strong> — ${result.next.venue.name}</p>
      ${result.cards.length > 0 &&
      html`<h3>${t("missionCards")}</h3>
        <ul class="plain">${result.cards.map((c) => html`<li>${c.title} — ${c.member ? c.member.displayName : "—"}</li>`)}</ul>`}`}
    <button type="submit" disabled=${close.busy}>${t("closeMeetup")}</button>
  </form>`;
}

function MeetupDetail({ id, onBack, onChanged, me, admin }) {
  const q = useQuery(MEETUP, { id }, [id]);
  const m = q.data && q.data.meetup;
  const reload = () => {
    q.reload();
    onChanged();
  };
  if (!m) return html`<div><${Loading} q=${q} /></div>`;
  const seated = m.rsvps.filter((r) => r.answer === "YES" && r.seat === "SEATED");
  const waiting = m.rsvps.filter((r) => r.seat === "WAITING").sort((a, b) => a.waitlistPosition - b.waitlistPosition);
  const maybe = m.rsvps.filter((r) => r.answer === "MAYBE");
  const no = m.rsvps.filter((r) => r.answer === "NO");
  const runs =
    admin ||
    (m.hub && (m.hub.coAdmins || []).some((x) => x.id === me.id)) ||
    (m.hub && m.hub.facilitator && m.hub.facilitator.id === me.id);
  const open = runs && (m.state === "SCHEDULED" || m.state === "HELD");
  // the roll call and the close open at the meetup's start (the API refuses
  // closing before): by this browser's clock
  const started = Date.parse(m.startsAt) <= Date.now();
  const names = (list) => list.map((r) => (r.member ? r.member.displayName : "—")).join(", ") || "—";
  return html`<div class="meetup-detail">
    <button type="button" class="secondary small" onClick=${onBack}>← ${t("calendar")}</button>
    <h2>${m.title} <span class="tag">${t("s_" + m.state)}</span></h2>
    <p><strong>${fmtLocal(m.localStart)}</strong> <span class="muted">(${m.timezone})</span> — ${m.venue.name}
      ${m.venue.address && html`<span class="muted">, ${m.venue.address}</span>`}</p>
    ${m.nextMeetup && html`<p>${t("next")}${fmtLocal(m.nextMeetup.localStart)}</p>`}
    <section class="card" aria-labelledby="rsvp-h">
      <h3 id="rsvp-h">${`${t("rsvps")} — ${m.seated}${m.capacity ? "/" + m.capacity : ""} ${t("seated")}, ${m.waiting} ${t("waitlist").toLowerCase()}, ${m.maybe} ${t("maybe")}, ${m.declined} ${t("declined")}`}</h3>
      <dl class="kv">
        <dt>${tc("seated")}</dt><dd>${names(seated)}</dd>
        <dt>${t("waitlist")}</dt><dd>${waiting.map((r) => `${r.waitlistPosition}. ${r.member ? r.member.displayName : "—"}`).join(", ") || "—"}</dd>
        <dt>${tc("maybe")}</dt><dd>${names(maybe)}</dd>
        <dt>${tc("declined")}</dt><dd>${names(no)}</dd>
      </dl>
    </section>
    ${!open && m.attendance.length > 0 &&
    html`<section class="card" aria-labelledby="att-done-h">
      <h3 id="att-done-h">${t("attendance")}</h3>
      <ul class="plain">${m.attendance.map(
        (a) => html`<li>${a.member ? a.member.displayName : t("a_VISITOR")} — ${t("a_" + a.status)}${a.substitute ? ` (${a.substitute})` : ""}</li>`,
      )}</ul>
    </section>`}
    ${m.cards.length > 0 &&
    html`<section class="card" aria-labelledby="cards-h">
      <h3 id="cards-h">${t("missionCards")}</h3>
      <ul class="plain">${m.cards.map(
        (c) => html`<li>${c.title} — ${c.member ? c.member.displayName : "—"}
          ${c.doneAt ? html` <span class="tag">${t("doneAt")}</span>` : ""}</li>`,
      )}</ul>
    </section>`}
    ${open && !started && html`<p class="card muted not-started">${t("notStarted")}</p>`}
    ${open && started && html`<${Attendance} key=${m.id + m.attendance.length} m=${m} onSaved=${reload} />`}
    ${open && started && html`<${CloseForm} m=${m} onClosed=${reload} />`}
  </div>`;
}

function Poll({ p, onChanged, runs }) {
  const closePoll = useAction(async (slotId) => {
    await mutate(
      `mutation ClosePoll($input: CloseDatePollInput!) { closeDatePoll(input: $input) {
        __typename ... on DatePollPayload { poll { id state } } ${ERROR_FIELDS} } }`,
      { input: { pollId: p.id, slotId } },
      "closeDatePoll",
      "DatePollPayload",
    );
    onChanged();
    return t("pollClosed");
  });
  const best = Math.max(0, ...p.slots.map((s) => s.yes));
  return html`<article class="card poll">
    <div class="row between"><h3>${p.title}</h3><span class="tag">${t("s_" + p.state)}</span></div>
    <p class="muted">${p.venue.name} — ${p.voters} ${t("voters")}</p>
    <div class="table-wrap" tabindex="0" role="region" aria-label=${p.title}><table>
      <thead><tr><th scope="col">${t("when")}</th><th scope="col">${tc("pv_yes")}</th>
        <th scope="col">${tc("pv_ifNeedBe")}</th><th scope="col">${tc("pv_no")}</th><th scope="col"><span class="sr">${t("chooseSlot")}</span></th></tr></thead>
      <tbody>${p.slots.map(
        (s) => html`<tr class=${s.slotId === p.chosenSlotId ? "chosen" : ""}>
          <td>${fmtLocal(s.localStart)}${s.yes === best && best > 0 ? " ★" : ""}</td>
          <td>${s.yes}</td><td>${s.ifNeedBe}</td><td>${s.no}</td>
          <td>${runs && p.state === "OPEN" &&
          html`<button type="button" class="secondary small" disabled=${closePoll.busy}
            onClick=${() => closePoll.run(s.slotId)}>${t("chooseSlot")}</button>`}</td>
        </tr>`,
      )}</tbody>
    </table></div>
    <${ErrorBox} error=${closePoll.error} /><${Ok} text=${closePoll.ok} />
  </article>`;
}

export function MeetupsPage({ me, admin }) {
  const hubs = useHubs();
  const [when, setWhen] = useState("UPCOMING");
  const [open, setOpen] = useState(hashParam("meetup"));
  const hubId = hubs.hub && hubs.hub.id;
  const q = useQuery(CALENDAR, hubId ? { id: hubId, when } : null, [hubId, when]);
  const hub = q.data && q.data.hub;
  const choose = (id) => {
    setOpen(id);
    setHashParam("meetup", id || "");
  };
  const list = (hub && hub.meetups && hub.meetups.edges.map((e) => e.node)) || [];
  return html`<div>
    <h1>${t("meetups")}</h1>
    <${Loading} q=${hubs.q} />
    <${HubPicker} ...${hubs} choose=${(id) => {
      choose(null);
      hubs.choose(id);
    }} />
    ${open
      ? html`<${MeetupDetail} id=${open} me=${me} admin=${admin} onBack=${() => choose(null)} onChanged=${q.reload} />`
      : html`<div>
      <h2>${t("calendar")}</h2>
      <div class="tabs" role="group" aria-label=${t("calendar")}>
        ${["UPCOMING", "PAST"].map(
          (w) => html`<button type="button" aria-pressed=${when === w ? "true" : "false"}
            onClick=${() => setWhen(w)}>${w === "UPCOMING" ? t("upcoming") : t("past")}</button>`,
        )}
      </div>
      ${hubId && html`<${Loading} q=${q} />`}
      ${hub && list.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
      <ul class="plain card meetups">
        ${list.map(
          (m) => html`<li class="row between">
            <span><a href=${`#/meetups?hub=${encodeURIComponent(hubId)}&meetup=${encodeURIComponent(m.id)}`}
              onClick=${(e) => {
                e.preventDefault();
                choose(m.id);
              }}>${m.title}</a>
              ${m.kind === "WORKSHOP" && html` <span class="tag">${t("workshop")}</span>`}<br />
              <span class="muted small">${fmtLocal(m.localStart)} — ${m.venue.name}</span></span>
            <span class="row"><span class="tag">${t("s_" + m.state)}</span>
              <span class="small">${m.seated}${m.capacity ? "/" + m.capacity : ""} ${t("seated")}${m.waiting ? ` +${m.waiting}` : ""}</span></span>
          </li>`,
        )}
      </ul>
      ${hub &&
      html`<section aria-labelledby="open-cards-h">
        <h2 id="open-cards-h">${t("openCards")}</h2>
        ${(hub.openCards || []).length === 0 && html`<p class="muted">${t("nothing")}</p>`}
        <ul class="plain card">${(hub.openCards || []).map(
          (c) => html`<li>${c.title} — <strong>${c.member ? c.member.displayName : "—"}</strong>
            <span class="muted small"> (${fmtDateTime(c.drawnAt)})</span></li>`,
        )}</ul>
      </section>
      <section aria-labelledby="polls-h">
        <h2 id="polls-h">${t("datePolls")}</h2>
        ${(hub.datePolls || []).length === 0 && html`<p class="muted">${t("nothing")}</p>`}
        ${(hub.datePolls || []).map(
          (p) => html`<${Poll} key=${p.id} p=${p} onChanged=${q.reload}
            runs=${admin || (hub.coAdmins || []).some((x) => x.id === me.id) || (hub.facilitator && hub.facilitator.id === me.id)} />`,
        )}
      </section>`}
    </div>`}
  </div>`;
}
