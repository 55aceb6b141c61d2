// The facilitator roster: who facilitates now, the volunteers in order
// (reorder, swap two turns), hand over to the next one.
import { html, useState, useQuery, useAction, useHubs, HubPicker, Loading, ErrorBox, Ok } from "../ui.js";
import { mutate, ERROR_FIELDS } from "../api.js";
import { t, fmtDateTime } from "../i18n.js";

const ROSTER = `query Roster($id: ID!) { hub(id: $id) { id name facilitatorTermEndsAt
  coAdmins { id } facilitator { id displayName } facilitatorRoster { id displayName } } }`;

const HUB_RESULT = (field, input) => `mutation M($input: ${input}!) { ${field}(input: $input) {
  __typename ... on HubPayload { hub { id } } ${ERROR_FIELDS} } }`;

export function RosterPage({ me, admin }) {
  const hubs = useHubs();
  const q = useQuery(ROSTER, hubs.hub ? { id: hubs.hub.id } : null, [hubs.hub && hubs.hub.id]);
  const hub = q.data && q.data.hub;
  const roster = (hub && hub.facilitatorRoster) || [];
  const [a, setA] = useState("");
  const [b, setB] = useState("");
  const act = useAction(async (field, input, vars) => {
    await mutate(HUB_RESULT(field, input), { input: { hubId: hub.id, ...vars } }, field, "HubPayload");
    q.reload();
    return t("done");
  });
  const swap = (first, second) =>
    act.run("swapFacilitatorTurns", "SwapFacilitatorTurnsInput", { firstMemberId: first, secondMemberId: second });
  const first = a || (roster[0] && roster[0].id) || "";
  const second = b || (roster[1] && roster[1].id) || "";
  const onRoster = roster.some((m) => m.id === me.id);
  const runs = Boolean(hub) && (admin || (hub.coAdmins || []).some((m) => m.id === me.id));
  const facilitates = Boolean(hub && hub.facilitator && hub.facilitator.id === me.id);
  return html`<div>
    <h1>${t("roster")}</h1>
    <${Loading} q=${hubs.q} />
    <${HubPicker} ...${hubs} />
    ${hubs.hub && html`<${Loading} q=${q} />`}
    <${ErrorBox} error=${act.error} /><${Ok} text=${act.ok} />
    ${hub &&
    html`<div class="cols">
      <section class="card" aria-labelledby="fac-h">
        <h2 id="fac-h">${t("facilitator")}</h2>
        <p class="current-facilitator"><strong>${hub.facilitator ? hub.facilitator.displayName : t("nobody")}</strong></p>
        ${hub.facilitatorTermEndsAt && html`<p class="muted">${t("termEnds")}${fmtDateTime(hub.facilitatorTermEndsAt)}</p>`}
        <div class="row">
          ${(runs || facilitates) &&
          html`<button type="button" disabled=${act.busy}
            onClick=${() => act.run("handOverFacilitation", "HubInput", {})}>${t("handOver")}</button>`}
          ${!onRoster &&
          html`<button type="button" class="secondary" disabled=${act.busy}
            onClick=${() => act.run("volunteerAsFacilitator", "HubInput", {})}>${t("volunteer")}</button>`}
        </div>
      </section>
      <section class="card" aria-labelledby="vol-h">
        <h2 id="vol-h">${t("volunteers")}</h2>
        ${roster.length === 0 && html`<p class="muted">${t("nobody")}</p>`}
        <ol class="plain roster">
          ${roster.map(
            (m, i) => html`<li class="row between">
              <span>${i + 1}. ${m.displayName}</span>
              ${runs && html`<span class="row">
                <button type="button" class="secondary small" disabled=${act.busy || i === 0}
                  aria-label=${`${t("moveUp")} : ${m.displayName}`}
                  onClick=${() => swap(roster[i - 1].id, m.id)}>↑</button>
                <button type="button" class="secondary small" disabled=${act.busy || i === roster.length - 1}
                  aria-label=${`${t("moveDown")} : ${m.displayName}`}
                  onClick=${() => swap(m.id, roster[i + 1].id)}>↓</button>
              </span>`}
            </li>`,
          )}
        </ol>
        ${runs && roster.length > 1 &&
        html`<form onSubmit=${(e) => {
          e.preventDefault();
          swap(first, second);
        }}>
          <h3>${t("swap")}</h3>
          <div class="form-grid">
            <div class="field"><label for="swap-a">${t("first")}</label>
              <select id="swap-a" value=${first} onChange=${(e) => setA(e.target.value)}>
                ${roster.map((m) => html`<option value=${m.id}>${m.displayName}</option>`)}</select></div>
            <div class="field"><label for="swap-b">${t("second")}</label>
              <select id="swap-b" value=${second} onChange=${(e) => setB(e.target.value)}>
                ${roster.map((m) => html`<option value=${m.id}>${m.displayName}</option>`)}</select></div>
          </div>
          <button type="submit" class="secondary" disabled=${act.busy}>${t("swapDo")}</button>
        </form>`}
      </section>
    </div>`}
  </div>`;
}
