// Data (tenant admins): erasure of a member's personal data, on their
// behalf (confirmed first: it cannot be undone), and the erasures done.
// The network's sole admin is not offered (the network would be left
// without one): the form says why, and how to erase them all the same.
import { html, useState, useQuery, useAction, Loading, ErrorBox, Ok } from "../ui.js";
import { mutate, ERROR_FIELDS } from "../api.js";
import { t, tc, fmtDateTime, sortedBy } from "../i18n.js";

const ERASURES = `query Erasures { erasures(first: 20) { edges { node {
  id status requestedAt completedAt member { id displayName } } } } }`;
const PEOPLE = `query People { members(first: 50) { edges { node { id displayName isTenantAdmin } } } }`;

export function Erasures() {
  const q = useQuery(ERASURES, {}, []);
  const people = useQuery(PEOPLE, {}, []);
  const [who, setWho] = useState("");
  const [sure, setSure] = useState(false);
  const erased = new Set(((q.data && q.data.erasures.edges) || []).map((e) => e.node.member && e.node.member.id));
  // those already erased (they read as a former member) are not offered again
  const everyone = ((people.data && people.data.members.edges.map((e) => e.node)) || []).filter(
    (m) => !erased.has(m.id),
  );
  const admins = everyone.filter((m) => m.isTenantAdmin);
  const soleAdmin = admins.length === 1 ? admins[0] : null;
  const members = sortedBy(everyone.filter((m) => m !== soleAdmin));
  const erase = useAction(async () => {
    await mutate(
      `mutation E($input: RequestErasureInput!) { requestErasure(input: $input) {
        __typename ... on ErasureRequested { erasure { id status } } ${ERROR_FIELDS} } }`,
      { input: { memberId: who } },
      "requestErasure",
      "ErasureRequested",
    );
    setSure(false);
    setWho("");
    q.reload();
    people.reload();
    return t("erased");
  });
  const list = (q.data && q.data.erasures.edges.map((e) => e.node)) || [];
  return html`<section aria-labelledby="era-h">
    <h2 id="era-h">${t("erasures")}</h2>
    <form class="card" onSubmit=${(e) => {
      e.preventDefault();
      erase.run();
    }}>
      <p class="muted">${t("erasureHint")}</p>
      ${soleAdmin &&
      html`<p class="muted sole-admin">${soleAdmin.displayName}${t("soleAdminNotOffered")}</p>`}
      <div class="field"><label for="erase-who">${t("memberLabel")}</label>
        <select id="erase-who" required value=${who} onChange=${(e) => setWho(e.target.value)}>
          <option value="">—</option>
          ${members.map((m) => html`<option value=${m.id}>${m.displayName}</option>`)}
        </select></div>
      <div class="field check"><input id="erase-sure" type="checkbox" checked=${sure}
        onChange=${(e) => setSure(e.target.checked)} /><label for="erase-sure">${t("erasureSure")}</label></div>
      <${ErrorBox} error=${erase.error} /><${Ok} text=${erase.ok} />
      <button type="submit" class="danger" disabled=${erase.busy || !sure || !who}>${t("requestErasure")}</button>
    </form>
    <${Loading} q=${q} />
    ${q.data && list.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
    ${list.length > 0 &&
    html`<ul class="plain card">${list.map(
      (x) => html`<li><span class="tag">${tc("er_" + x.status)}</span>${" "}${t("onDate")}${" "}${fmtDateTime(
        x.status === "COMPLETED" && x.completedAt ? x.completedAt : x.requestedAt,
      )} — ${x.member ? x.member.displayName : "—"}</li>`,
    )}</ul>`}
  </section>`;
}
