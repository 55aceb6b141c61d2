// Hubs: the area (a plain SVG of the radius and the postcodes: no map tiles),
// the rules editor, and the versioned history of the rules with what
// changed between versions. The first version reads "first version, at the
// hub's creation": its reason is the API's own marker ("hub created"), not
// words of a member, and is not shown.
import { html, useState, useEffect, useQuery, useAction, useHubs, HubPicker, Loading, ErrorBox, Ok } from "../ui.js";
import { mutate, ERROR_FIELDS } from "../api.js";
import { t, tc, getLang, fmtDateTime } from "../i18n.js";

const RULE_FIELDS = `admissionMode nonCompetition nonCompetitionLiftAt nonCompetitionLifted
  objectionWindowDays maxVisits facilitatorTermDays facilitatorTermMeetups referralsMeetingDays`;

const HUB = `query Hub($id: ID!) { hub(id: $id) { id name kind memberCount rulesVersion
  nonCompetitionInForce createdAt
  area { centre { lat lon } radiusKm postcodes }
  rules { ${RULE_FIELDS} }
  coAdmins { id displayName }
  rulesHistory { version reason changedAt changedBy { displayName } rules { ${RULE_FIELDS} } } } }`;

// [field, kind]: bool, int, int? (empty: null), mode
const RULES = [
  ["admissionMode", "mode"],
  ["nonCompetition", "bool"],
  ["nonCompetitionLiftAt", "int?"],
  ["nonCompetitionLifted", "bool"],
  ["objectionWindowDays", "int"],
  ["maxVisits", "int"],
  ["facilitatorTermDays", "int"],
  ["facilitatorTermMeetups", "int?"],
  ["referralsMeetingDays", "int?"],
];

function show(value) {
  if (value === null || value === undefined) return "—";
  if (value === true) return t("yes");
  if (value === false) return t("no");
  if (typeof value === "string" && ["COOPTATION", "APPROVAL", "OPEN"].includes(value)) return t("m_" + value);
  return String(value);
}

export function AreaMap({ area, name }) {
  const km = area.radiusKm;
  const codes = area.postcodes || [];
  const num = (x) => x.toLocaleString(getLang() === "en" ? "en-GB" : "fr-FR");
  const label = `${t("area")} — ${name}: ${km ? `${t("radius")} ${num(km)} km` : t("noRadius")}${
    codes.length ? `; ${t("postcodes")} ${codes.join(", ")}` : ""
  }`;
  // The circle is the radius (80 units); postcodes are labelled tiles below it.
  const tileY = km ? 196 : 40;
  const height = tileY + Math.ceil(codes.length / 3) * 34 + 8;
  return html`<svg class="area" viewBox=${`0 0 240 ${height}`} role="img" aria-label=${label}>
    <title>${label}</title>
    ${km &&
    html`<g>
      <circle cx="120" cy="100" r="80" fill="#cfe3e0" stroke="#1f5f5b" stroke-width="2" stroke-dasharray="6 4" />
      <circle cx="120" cy="100" r="4" fill="#1f5f5b" />
      <line x1="120" y1="100" x2="200" y2="100" stroke="#1f5f5b" stroke-width="1.5" />
      <text x="160" y="94" text-anchor="middle" font-size="12" fill="#1d1d1b">${num(km)} km</text>
      ${area.centre &&
      html`<text x="120" y="120" text-anchor="middle" font-size="10" fill="#1d1d1b">
        ${area.centre.lat.toFixed(4)}, ${area.centre.lon.toFixed(4)}</text>`}
    </g>`}
    ${!km && html`<text x="120" y="24" text-anchor="middle" font-size="12" fill="#1d1d1b">${t("noRadius")}</text>`}
    ${codes.map((c, i) => {
      const x = 12 + (i % 3) * 74;
      const y = tileY + Math.floor(i / 3) * 34;
      return html`<g>
        <rect x=${x} y=${y} width="68" height="26" rx="5" fill="#ffffff" stroke="#1f5f5b" />
        <text x=${x + 34} y=${y + 17} text-anchor="middle" font-size="12" fill="#1d1d1b">${c}</text>
      </g>`;
    })}
  </svg>`;
}

function RulesEditor({ hub, onSaved }) {
  const [values, setValues] = useState({ ...hub.rules });
  const [reason, setReason] = useState("");
  useEffect(() => setValues({ ...hub.rules }), [hub.rulesVersion, hub.id]);
  const set = (field, v) => setValues((old) => ({ ...old, [field]: v }));
  const save = useAction(async () => {
    const changes = {};
    for (const [field] of RULES) if (values[field] !== hub.rules[field]) changes[field] = values[field];
    if (Object.keys(changes).length === 0) return t("rulesUnchanged"); // no new version to claim
    const input = { hubId: hub.id, rules: changes };
    if (reason.trim()) input.reason = reason.trim();
    await mutate(
      `mutation Rules($input: ChangeHubRulesInput!) { changeHubRules(input: $input) {
        __typename ... on HubPayload { hub { id rulesVersion } } ${ERROR_FIELDS} } }`,
      { input },
      "changeHubRules",
      "HubPayload",
    );
    setReason("");
    onSaved();
    return t("rulesSaved");
  });
  const input = (field, kind) => {
    const id = `rule-${field}`;
    const label = t("r_" + field);
    if (kind === "bool")
      return html`<div class="field check">
        <input id=${id} type="checkbox" checked=${values[field]} onChange=${(e) => set(field, e.target.checked)} />
        <label for=${id}>${label}</label></div>`;
    if (kind === "mode")
      return html`<div class="field"><label for=${id}>${label}</label>
        <select id=${id} value=${values[field]} onChange=${(e) => set(field, e.target.value)}>
          ${["COOPTATION", "APPROVAL", "OPEN"].map((m) => html`<option value=${m}>${t("m_" + m)}</option>`)}
        </select></div>`;
    const optional = kind === "int?";
    return html`<div class="field"><label for=${id}>${label}</label>
      <input id=${id} type="number" inputmode="numeric" min="0" value=${values[field] === null ? "" : values[field]}
        placeholder=${optional ? t("emptyMeansOff") : ""} required=${!optional}
        onInput=${(e) => set(field, e.target.value === "" ? (optional ? null : e.target.value) : Number(e.target.value))} /></div>`;
  };
  return html`<form class="card" aria-labelledby="rules-h" onSubmit=${(e) => {
    e.preventDefault();
    save.run();
  }}>
    <h2 id="rules-h">${t("changeRules")} <span class="muted small">(${t("rulesVersion")} ${hub.rulesVersion})</span></h2>
    <div class="form-grid">${RULES.map(([f, k]) => input(f, k))}</div>
    <div class="field"><label for="rule-reason">${t("reason")}</label>
      <input id="rule-reason" value=${reason} onInput=${(e) => setReason(e.target.value)} /></div>
    <${ErrorBox} error=${save.error} /><${Ok} text=${save.ok} />
    <button type="submit" disabled=${save.busy}>${t("save")}</button>
  </form>`;
}

function History({ versions }) {
  const sorted = [...versions].sort((a, b) => b.version - a.version);
  const byVersion = Object.fromEntries(versions.map((v) => [v.version, v]));
  return html`<section aria-labelledby="hist-h">
    <h2 id="hist-h">${t("history")}</h2>
    <ol class="plain card history" reversed>
      ${sorted.map((v) => {
        const before = byVersion[v.version - 1];
        const changes = before
          ? RULES.map(([f]) => f).filter((f) => before.rules[f] !== v.rules[f])
          : [];
        return html`<li class="version" data-version=${v.version}>
          <div class="row between">
            <strong>${tc("rulesVersion")} ${v.version}</strong>
            <span class="muted small">${fmtDateTime(v.changedAt)} — ${v.changedBy
              ? v.changedBy.displayName
              : t("automatic")}</span>
          </div>
          ${before && v.reason && html`<p>${t("reason")} : ${v.reason}</p>`}
          ${before
            ? html`<ul class="diff">${changes.map(
                (f) => html`<li>${t("r_" + f)} : <del>${show(before.rules[f])}</del> → <ins>${show(v.rules[f])}</ins></li>`,
              )}</ul>`
            : html`<p class="muted">${t("firstVersion")}</p>`}
        </li>`;
      })}
    </ol>
  </section>`;
}

export function HubsPage({ me, admin }) {
  const hubs = useHubs();
  const q = useQuery(HUB, hubs.hub ? { id: hubs.hub.id } : null, [hubs.hub && hubs.hub.id]);
  const hub = q.data && q.data.hub;
  return html`<div>
    <h1>${t("hubs")}</h1>
    <${Loading} q=${hubs.q} />
    <${HubPicker} ...${hubs} />
    ${hubs.hub && html`<${Loading} q=${q} />`}
    ${hub &&
    html`<div>
      <h2>${hub.name} <span class="tag">${t("k_" + hub.kind)}</span></h2>
      <div class="cols">
        <section class="card" aria-labelledby="area-h">
          <h3 id="area-h">${t("area")}</h3>
          <p class="muted small">${t("areaCaption")}</p>
          <${AreaMap} area=${hub.area} name=${hub.name} />
          <p>${t("postcodes")} : ${hub.area.postcodes.join(", ") || "—"}</p>
        </section>
        <section class="card" aria-labelledby="rules-now-h">
          <h3 id="rules-now-h">${t("rules")}</h3>
          <dl class="kv">${RULES.map(([f]) => html`<dt>${t("r_" + f)}</dt><dd>${show(hub.rules[f])}</dd>`)}
            <dt>${tc("membersCount")}</dt><dd>${hub.memberCount}</dd>
            <dt>${t("coAdmins")}</dt><dd>${(hub.coAdmins || []).map((m) => m.displayName).join(", ") || "—"}</dd>
          </dl>
        </section>
      </div>
      ${(admin || (hub.coAdmins || []).some((m) => m.id === me.id)) &&
      html`<${RulesEditor} hub=${hub} onSaved=${q.reload} />`}
      <${History} versions=${hub.rulesHistory} />
    </div>`}
  </div>`;
}
