// Referrals and results: the ledger of slips, the value thanked, the
// network's (or one's own) results, a hub's core and drifting members, and
// the members' traffic lights as a chart.
import { html, useState, useQuery, useHubs, HubPicker, Loading } from "../ui.js";
import { t, tc, fmtDate, fmtMoney, sortedBy } from "../i18n.js";

const LEDGER = `query Ledger($direction: LedgerDirection!) {
  slips(direction: $direction, first: 50) { totalCount edges { node { id about warmth status givenAt
    value { amount currency } giver { displayName } receiver { displayName } hub { name } } } }
  thanks(direction: $direction, first: 50) { totalCount edges { node { thanksId about at
    value { amount currency } giver { displayName } receiver { displayName } } } } }`;

const RESULTS = `query Results($scope: ResultsScope!) { results(scope: $scope) { since until meetupsAttended
  referralsGiven referralsReceived referralsWon oneToOnes missionsDone
  valueGiven { amount currency } valueReceived { amount currency } } }`;

const ENGAGEMENT = `query Engagement($hubId: ID!) { hubEngagement(hubId: $hubId) {
  core { id displayName } drifting { id displayName }
  members { light inCore drifting meetupsInCoreWindow setBy
    measures { measure value light } member { id displayName } } } }`;

const LIGHTS = ["GREEN", "AMBER", "RED"];
const COLOURS = { GREEN: "#2e7d32", AMBER: "#b26a00", RED: "#c62828" };

function totals(rows) {
  const sums = {};
  for (const r of rows) {
    if (!r.value) continue;
    sums[r.value.currency] = (sums[r.value.currency] || 0) + Number(r.value.amount);
  }
  return Object.entries(sums).map(([currency, amount]) => fmtMoney({ currency, amount: amount.toFixed(2) }));
}

// One bar per colour (how many members), then one dot per member.
export function LightsChart({ members }) {
  const counts = Object.fromEntries(LIGHTS.map((l) => [l, members.filter((m) => m.light === l).length]));
  const max = Math.max(1, ...Object.values(counts));
  const label = `${t("lightsChart")}: ${LIGHTS.map((l) => `${tc("l_" + l)} ${counts[l]}`).join(", ")}`;
  return html`<svg class="chart lights" viewBox="0 0 360 130" role="img" aria-label=${label}>
    <title>${label}</title>
    ${LIGHTS.map((l, i) => {
      const w = Math.round((counts[l] / max) * 240);
      const y = 10 + i * 40;
      return html`<g>
        <text x="0" y=${y + 20} font-size="13" fill="#1d1d1b">${tc("l_" + l)}</text>
        <rect x="70" y=${y} width=${Math.max(w, 2)} height="28" rx="4" fill=${COLOURS[l]} />
        <text x=${78 + Math.max(w, 2)} y=${y + 20} font-size="13" fill="#1d1d1b">${counts[l]}</text>
      </g>`;
    })}
  </svg>`;
}

function Engagement() {
  const hubs = useHubs();
  const hubId = hubs.hub && hubs.hub.id;
  const q = useQuery(ENGAGEMENT, hubId ? { hubId } : null, [hubId]);
  const e = q.data && q.data.hubEngagement;
  return html`<section aria-labelledby="eng-h">
    <h2 id="eng-h">${t("engagement")}</h2>
    <${HubPicker} ...${hubs} />
    ${hubId && html`<${Loading} q=${q} />`}
    ${e &&
    html`<div class="cols">
      <div class="card">
        <h3>${t("core")} (${(e.core || []).length})</h3>
        <p>${sortedBy(e.core || []).map((m) => m.displayName).join(", ") || "—"}</p>
        <h3>${t("drifting")} (${(e.drifting || []).length})</h3>
        <p>${sortedBy(e.drifting || []).map((m) => m.displayName).join(", ") || "—"}</p>
      </div>
      <div class="card">
        <h3>${t("lightsChart")}</h3>
        <${LightsChart} members=${e.members} />
      </div>
    </div>
    <div class="table-wrap" tabindex="0" role="region" aria-label=${t("lights")}><table class="lights-table">
      <thead><tr><th scope="col">${t("memberLabel")}</th><th scope="col">${t("lights")}</th>
        ${["MEETUPS", "REFERRALS_GIVEN", "ONE_TO_ONES"].map((k) => html`<th scope="col">${t("me_" + k)}</th>`)}</tr></thead>
      <tbody>${e.members.map(
        (m) => html`<tr>
          <td>${m.member ? m.member.displayName : "—"}${m.inCore ? html` <span class="tag">${t("core")}</span>` : ""}${m.drifting
            ? html` <span class="tag warn">${t("drifting")}</span>`
            : ""}</td>
          <td><span class=${"dot " + m.light} aria-hidden="true"></span>${tc("l_" + m.light)}</td>
          ${["MEETUPS", "REFERRALS_GIVEN", "ONE_TO_ONES"].map((k) => {
            const x = m.measures.find((y) => y.measure === k);
            return html`<td>${x ? html`<span class=${"dot " + x.light} aria-hidden="true"></span>${x.value}` : "—"}</td>`;
          })}
        </tr>`,
      )}</tbody>
    </table></div>`}
  </section>`;
}

export function ResultsPage({ admin }) {
  const [direction, setDirection] = useState(admin ? "ALL" : "RECEIVED");
  const ledger = useQuery(LEDGER, { direction }, [direction]);
  const results = useQuery(RESULTS, { scope: admin ? "TENANT" : "MEMBER" }, []);
  const slips = (ledger.data && ledger.data.slips.edges.map((e) => e.node)) || [];
  const thanks = (ledger.data && ledger.data.thanks.edges.map((e) => e.node)) || [];
  const r = results.data && results.data.results;
  return html`<div>
    <h1>${t("results")}</h1>
    <section aria-labelledby="res-h">
      <h2 id="res-h">${admin ? t("network90") : t("my90")}</h2>
      <${Loading} q=${results} />
      ${r &&
      html`<dl class="kv card results">
        <dt>${t("meetupsAttended")}</dt><dd>${r.meetupsAttended}</dd>
        <dt>${t("referralsGiven")}</dt><dd>${r.referralsGiven}</dd>
        <dt>${t("referralsWon")}</dt><dd>${r.referralsWon}</dd>
        <dt>${t("valueThanked")}</dt><dd>${r.valueGiven.map(fmtMoney).join(", ") || "—"}</dd>
        <dt>${t("oneToOnes")}</dt><dd>${r.oneToOnes}</dd>
        <dt>${t("missionsDone")}</dt><dd>${r.missionsDone}</dd>
      </dl>`}
    </section>
    <${Engagement} />
    <section aria-labelledby="ledger-h">
      <h2 id="ledger-h">${t("ledger")}</h2>
      <div class="tabs" role="group" aria-label=${t("ledger")}>
        ${(admin ? ["ALL", "RECEIVED", "GIVEN"] : ["RECEIVED", "GIVEN"]).map(
          (d) => html`<button type="button" aria-pressed=${direction === d ? "true" : "false"}
            onClick=${() => setDirection(d)}>${t("dir_" + d)}</button>`,
        )}
      </div>
      <${Loading} q=${ledger} />
      ${ledger.data && slips.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
      ${slips.length > 0 &&
      html`<div class="table-wrap"><table class="stack ledger">
        <thead><tr><th scope="col">${t("when")}</th><th scope="col">${t("giver")}</th><th scope="col">${t("receiver")}</th>
          <th scope="col">${t("about")}</th><th scope="col">${t("warmth")}</th><th scope="col">${t("status")}</th><th scope="col">${t("value")}</th></tr></thead>
        <tbody>${slips.map(
          (s) => html`<tr><td data-label=${t("when")}>${fmtDate(s.givenAt)}</td>
            <td data-label=${t("giver")}>${s.giver ? s.giver.displayName : "—"}</td>
            <td data-label=${t("receiver")}>${s.receiver ? s.receiver.displayName : "—"}</td>
            <td data-label=${t("about")}>${s.about}</td>
            <td data-label=${t("warmth")}><span aria-hidden="true">${"●".repeat(s.warmth)}</span><span class="sr">${s.warmth}/5</span></td>
            <td data-label=${t("status")}>${t("rs_" + s.status)}</td>
            <td data-label=${t("value")}>${s.value ? fmtMoney(s.value) : "—"}</td></tr>`,
        )}</tbody>
      </table></div>`}
      <h2>${t("thanks")}</h2>
      ${thanks.length > 0 && html`<p><strong>${t("valueThanked")} : ${totals(thanks).join(", ")}</strong></p>`}
      ${ledger.data && thanks.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
      ${thanks.length > 0 &&
      html`<ul class="plain card thanks">${thanks.map(
        (x) => html`<li>${fmtDate(x.at)} — ${x.receiver ? x.receiver.displayName : "—"} → ${x.giver ? x.giver.displayName : "—"} :
          ${" "}${x.about} ${x.value ? html`<strong>${fmtMoney(x.value)}</strong>` : ""}</li>`,
      )}</ul>`}
    </section>
  </div>`;
}
