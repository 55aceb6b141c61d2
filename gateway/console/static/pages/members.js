// Members: the directory with profile cards, the network's admins, invitations.
import { html, useState, useQuery, useAction, Loading, ErrorBox, Ok, biz } from "../ui.js";
import { mutate, ERROR_FIELDS } from "../api.js";
import { t, tc, fmtDate, sortedBy } from "../i18n.js";

const MEMBERS = `query Members($text: String, $after: String) {
  members(first: 48, text: $text, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node { id displayName businessName activityLabel activityText offers seeks
      availableFor workPostcode email isTenantAdmin links } }
  }
}`;

const INVITATIONS = `query Invitations { invitations(first: 50) {
  totalCount edges { node { id email status expiresAt createdAt invitedBy { displayName } } } } }`;

function MemberCard({ m, admin, onAdmin, busy }) {
  return html`<article class="card member" aria-label=${m.displayName}>
    <div class="row between">
      <h3>${m.displayName}</h3>
      ${m.isTenantAdmin && html`<span class="tag">${t("networkAdmin")}</span>`}
    </div>
    ${biz(m.businessName, m.activityLabel, m.workPostcode) &&
    html`<p class="biz">${biz(m.businessName, m.activityLabel, m.workPostcode)}</p>`}
    <dl class="kv">
      ${m.offers && html`<dt>${t("offers")}</dt><dd>${m.offers}</dd>`}
      ${m.seeks && html`<dt>${t("seeks")}</dt><dd>${m.seeks}</dd>`}
      ${m.availableFor && html`<dt>${t("availableFor")}</dt><dd>${m.availableFor}</dd>`}
      ${m.email && html`<dt>${t("email")}</dt><dd class="wrap">${m.email}</dd>`}
    </dl>
    ${admin &&
    html`<button type="button" class="secondary small" disabled=${busy}
      onClick=${() => onAdmin(m, !m.isTenantAdmin)}>
      ${m.isTenantAdmin ? t("removeAdmin") : t("makeAdmin")}</button>`}
  </article>`;
}

function Invitations() {
  const q = useQuery(INVITATIONS, {}, []);
  const [email, setEmail] = useState("");
  const [asAdmin, setAsAdmin] = useState(false);
  const invite = useAction(async () => {
    await mutate(
      `mutation Invite($input: InviteMemberInput!) { inviteMember(input: $input) {
        __typename ... on InvitationSent { invitationId expiresAt } ${ERROR_FIELDS} } }`,
      { input: { email: email.trim(), asAdmin } },
      "inviteMember",
      "InvitationSent",
    );
    setEmail("");
    q.reload();
    return t("invitationSent");
  });
  const revoke = useAction(async (id) => {
    await mutate(
      `mutation Revoke($input: RevokeInvitationInput!) { revokeInvitation(input: $input) {
        __typename ${ERROR_FIELDS} } }`,
      { input: { invitationId: id } },
      "revokeInvitation",
      "InvitationRevoked",
    );
    q.reload();
    return t("done");
  });
  const rows = (q.data && q.data.invitations.edges.map((e) => e.node)) || [];
  return html`<section aria-labelledby="inv-h">
    <h2 id="inv-h">${t("invitations")}</h2>
    <form class="card" onSubmit=${(e) => {
      e.preventDefault();
      invite.run();
    }}>
      <div class="form-grid">
        <div class="field">
          <label for="invite-email">${t("email")}</label>
          <input id="invite-email" type="email" required value=${email}
            onInput=${(e) => setEmail(e.target.value)} />
        </div>
        <div class="field check">
          <input id="invite-admin" type="checkbox" checked=${asAdmin}
            onChange=${(e) => setAsAdmin(e.target.checked)} />
          <label for="invite-admin">${tc("inviteAsAdmin")}</label>
        </div>
      </div>
      <button type="submit" disabled=${invite.busy}>${t("invite")}</button>
      <${ErrorBox} error=${invite.error} /><${Ok} text=${invite.ok} />
    </form>
    <${Loading} q=${q} />
    <${ErrorBox} error=${revoke.error} />
    ${rows.length === 0 && !q.loading && html`<p class="muted">${t("nothing")}</p>`}
    ${rows.length > 0 &&
    html`<div class="table-wrap"><table class="stack invitations">
      <thead><tr><th scope="col">${t("email")}</th><th scope="col">${t("status")}</th>
        <th scope="col">${t("expires")}</th><th scope="col">${t("invitedBy")}</th><th scope="col"><span class="sr">${t("revoke")}</span></th></tr></thead>
      <tbody>${rows.map(
        (i) => html`<tr>
          <td data-label=${t("email")}>${i.email}</td><td data-label=${t("status")}>${t("inv_" + i.status)}</td>
          <td data-label=${t("expires")}>${i.status === "pending" || i.status === "expired" ? fmtDate(i.expiresAt) : null}</td>
          <td data-label=${t("invitedBy")}>${i.invitedBy ? i.invitedBy.displayName : "—"}</td>
          <td>${i.status === "pending" &&
          html`<button type="button" class="secondary small" disabled=${revoke.busy}
            onClick=${() => revoke.run(i.id)}>${t("revoke")}</button>`}</td>
        </tr>`,
      )}</tbody></table></div>`}
  </section>`;
}

export function MembersPage({ admin }) {
  const [text, setText] = useState("");
  const [search, setSearch] = useState("");
  const q = useQuery(MEMBERS, { text: search || null }, [search]);
  const setAdmin = useAction(async (m, on) => {
    await mutate(
      `mutation SetAdmin($input: SetTenantAdminInput!) { setTenantAdmin(input: $input) {
        __typename ${ERROR_FIELDS} } }`,
      { input: { memberId: m.id, admin: on } },
      "setTenantAdmin",
      "TenantAdminSet",
    );
    q.reload();
    return t("done");
  });
  const members = (q.data && q.data.members.edges.map((e) => e.node)) || [];
  const admins = sortedBy(members.filter((m) => m.isTenantAdmin));
  return html`<div>
    <h1>${t("members")}</h1>
    <section aria-labelledby="dir-h">
      <h2 id="dir-h">${t("directory")}
        ${q.data && html` <span class="muted small">(${q.data.members.totalCount} ${t("membersCount")})</span>`}</h2>
      <form class="row" role="search" onSubmit=${(e) => {
        e.preventDefault();
        setSearch(text.trim());
      }}>
        <label for="member-search" class="sr">${t("search")}</label>
        <input id="member-search" type="search" value=${text} onInput=${(e) => setText(e.target.value)} />
        <button type="submit" class="secondary">${t("search").split(" (")[0]}</button>
      </form>
      <${ErrorBox} error=${setAdmin.error} /><${Ok} text=${setAdmin.ok} />
      <${Loading} q=${q} />
      ${q.data && members.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
      <div class="grid spaced">
        ${members.map(
          (m) => html`<${MemberCard} key=${m.id} m=${m} admin=${admin} busy=${setAdmin.busy}
            onAdmin=${(member, on) => setAdmin.run(member, on)} />`,
        )}
      </div>
    </section>
    ${admin &&
    html`<section aria-labelledby="adm-h">
      <h2 id="adm-h">${t("admins")}</h2>
      <ul class="plain card">${admins.map((m) => html`<li class="wrap">${m.displayName}${m.email ? " — " + m.email : ""}</li>`)}</ul>
    </section>`}
    ${admin && html`<${Invitations} />`}
  </div>`;
}
