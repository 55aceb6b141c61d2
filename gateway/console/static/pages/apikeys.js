// Data (tenant admins): the network's API keys (for analytics consumers).
// A new key's secret is shown once, right after its creation, and kept
// nowhere; the list shows each key's prefix only.
import { html, useState, useQuery, useAction, Loading, ErrorBox, Ok, Secret } from "../ui.js";
import { mutate, ERROR_FIELDS } from "../api.js";
import { t, tc, fmtDateTime } from "../i18n.js";

const KEYS = `query Keys { apiKeys(first: 50) { totalCount edges { node {
  id name prefix scopes createdAt lastUsedAt expiresAt revokedAt } } } }`;
const SCOPES = ["EVENTS_READ", "REPORTS_READ", "EXPORT"];

export function ApiKeys() {
  const q = useQuery(KEYS, {}, []);
  const [secret, setSecret] = useState(null);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState(["EVENTS_READ"]);
  const [expires, setExpires] = useState("");
  const create = useAction(async () => {
    const input = { name: name.trim(), scopes };
    if (expires) input.expiresAt = new Date(expires + "T23:59:59").toISOString();
    const r = await mutate(
      `mutation K($input: CreateApiKeyInput!) { createApiKey(input: $input) {
        __typename ... on ApiKeyCreated { secret apiKey { id } } ${ERROR_FIELDS} } }`,
      { input },
      "createApiKey",
      "ApiKeyCreated",
    );
    setSecret({ value: r.secret, label: "keySecretOnce" });
    setName("");
    q.reload();
    return null;
  });
  const revoke = useAction(async (id) => {
    await mutate(
      `mutation R($input: RevokeApiKeyInput!) { revokeApiKey(input: $input) {
        __typename ${ERROR_FIELDS} } }`,
      { input: { id } },
      "revokeApiKey",
      "ApiKeyRevoked",
    );
    q.reload();
    return t("done");
  });
  const toggle = (s) => setScopes((old) => (old.includes(s) ? old.filter((x) => x !== s) : [...old, s]));
  const keys = (q.data && q.data.apiKeys.edges.map((e) => e.node)) || [];
  return html`<section aria-labelledby="keys-h">
    <h2 id="keys-h">${t("apiKeys")}</h2>
    <${Secret} secret=${secret} onHide=${() => setSecret(null)} />
    <form class="card" onSubmit=${(e) => {
      e.preventDefault();
      create.run();
    }}>
      <div class="form-grid">
        <div class="field"><label for="key-name">${t("keyName")}</label>
          <input id="key-name" required value=${name} onInput=${(e) => setName(e.target.value)} /></div>
        <div class="field"><label for="key-expires">${t("expires")}</label>
          <input id="key-expires" type="date" value=${expires} onInput=${(e) => setExpires(e.target.value)} /></div>
      </div>
      <fieldset class="row"><legend>${t("scopes")}</legend>
        ${SCOPES.map(
          (s) => html`<span class="field check"><input id=${"scope-" + s} type="checkbox" checked=${scopes.includes(s)}
            onChange=${() => toggle(s)} /><label for=${"scope-" + s}>${tc("sc_" + s)}</label></span>`,
        )}
      </fieldset>
      <${ErrorBox} error=${create.error} />
      <button type="submit" disabled=${create.busy}>${t("createKey")}</button>
    </form>
    <${Loading} q=${q} /><${ErrorBox} error=${revoke.error} /><${Ok} text=${revoke.ok} />
    ${q.data && keys.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
    ${keys.length > 0 &&
    html`<div class="table-wrap"><table class="stack keys">
      <thead><tr><th scope="col">${t("keyName")}</th><th scope="col">${t("prefix")}</th><th scope="col">${t("scopes")}</th>
        <th scope="col">${t("lastUsed")}</th><th scope="col">${t("expires")}</th><th scope="col"><span class="sr">${t("revoke")}</span></th></tr></thead>
      <tbody>${keys.map(
        (k) => html`<tr><td data-label=${t("keyName")}>${k.name}</td>
          <td data-label=${t("prefix")}><code>${k.prefix}…</code></td>
          <td data-label=${t("scopes")}>${k.scopes.map((s) => tc("sc_" + s)).join(", ")}</td>
          <td data-label=${t("lastUsed")}>${k.lastUsedAt ? fmtDateTime(k.lastUsedAt) : "—"}</td>
          <td data-label=${t("expires")}>${k.revokedAt ? html`<span class="tag off">${t("revoked")}</span>` : k.expiresAt ? fmtDateTime(k.expiresAt) : "—"}</td>
          <td>${!k.revokedAt &&
          html`<button type="button" class="secondary small" disabled=${revoke.busy}
            onClick=${() => revoke.run(k.id)}>${t("revoke")}</button>`}</td></tr>`,
      )}</tbody></table></div>`}
  </section>`;
}
