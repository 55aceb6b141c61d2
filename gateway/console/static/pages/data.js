// Data (tenant admins): webhook endpoints and their delivery log, API keys
// (pages/apikeys.js), exports (pages/exports.js), erasure requests
// (pages/erasures.js). A new
// endpoint's signing secret is shown once, right after its creation (or a
// rotation), and kept nowhere else.
import { html, useState, useQuery, useAction, Loading, ErrorBox, Ok, Secret } from "../ui.js";
import { mutate, ERROR_FIELDS } from "../api.js";
import { t, tc, fmtDateTime } from "../i18n.js";
import { ApiKeys } from "./apikeys.js";
import { Erasures } from "./erasures.js";
import { Exports } from "./exports.js";

const ENDPOINTS = `query Endpoints { webhookEndpoints(first: 10) { totalCount edges { node {
  id url description eventTypes enabled disabledReason pending failingSince createdAt
  deliveries(first: 10) { totalCount edges { node { id eventType status attemptCount createdAt
    deliveredAt lastError } } } } } } }`;

const SECRET_RESULT = (field, input) => `mutation M($input: ${input}!) { ${field}(input: $input) {
  __typename ... on WebhookEndpointSecret { secret endpoint { id url } } ${ERROR_FIELDS} } }`;

function Endpoint({ ep, onChanged, showSecret }) {
  const act = useAction(async (kind, arg) => {
    if (kind === "toggle") {
      await mutate(
        `mutation U($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) {
          __typename ${ERROR_FIELDS} } }`,
        { input: { endpointId: ep.id, enabled: !ep.enabled } },
        "updateWebhookEndpoint",
        "WebhookEndpointPayload",
      );
    } else if (kind === "rotate") {
      const r = await mutate(
        SECRET_RESULT("rotateWebhookSecret", "WebhookEndpointInput"),
        { input: { endpointId: ep.id } },
        "rotateWebhookSecret",
        "WebhookEndpointSecret",
      );
      showSecret({ value: r.secret, label: "secretOnce" });
    } else if (kind === "replay") {
      await mutate(
        `mutation R($input: ReplayWebhookDeliveryInput!) { replayWebhookDelivery(input: $input) {
          __typename ${ERROR_FIELDS} } }`,
        { input: { deliveryId: arg } },
        "replayWebhookDelivery",
        "WebhookReplayed",
      );
      onChanged();
      return t("replayed");
    }
    onChanged();
    return t("done");
  });
  const deliveries = ep.deliveries.edges.map((e) => e.node);
  return html`<article class="card endpoint">
    <div class="row between">
      <h3>${ep.url}</h3>
      <span class=${"tag" + (ep.enabled ? "" : " off")}>${ep.enabled ? t("enabled") : t("disabled")}
        ${ep.disabledReason ? ` (${ep.disabledReason})` : ""}</span>
    </div>
    ${ep.description && html`<p>${ep.description}</p>`}
    <p class="muted small wrap">${t("eventTypes").split(" (")[0]} : ${ep.eventTypes.join(", ") || "*"} — ${ep.pending} ${t("ds_PENDING")}</p>
    <div class="row">
      <button type="button" class="secondary small" disabled=${act.busy} onClick=${() => act.run("toggle")}>
        ${ep.enabled ? t("disable") : t("enable")}</button>
      <button type="button" class="secondary small" disabled=${act.busy} onClick=${() => act.run("rotate")}>
        ${t("rotateSecret")}</button>
    </div>
    <${ErrorBox} error=${act.error} /><${Ok} text=${act.ok} />
    <h4>${t("deliveries")} (${ep.deliveries.totalCount})</h4>
    ${deliveries.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
    ${deliveries.length > 0 &&
    html`<div class="table-wrap"><table class="stack deliveries">
      <thead><tr><th scope="col">${t("when")}</th><th scope="col">${t("event")}</th><th scope="col">${t("status")}</th>
        <th scope="col">${tc("attempts")}</th><th scope="col"><span class="sr">${t("replay")}</span></th></tr></thead>
      <tbody>${deliveries.map(
        (d) => html`<tr><td data-label=${t("when")}>${fmtDateTime(d.createdAt)}</td>
          <td data-label=${t("event")} class="wrap">${d.eventType}</td>
          <td data-label=${t("status")}>${t("ds_" + d.status)}${d.lastError ? html`<br /><span class="muted small wrap">${d.lastError}</span>` : ""}</td>
          <td data-label=${tc("attempts")}>${d.attemptCount}</td>
          <td><button type="button" class="secondary small" disabled=${act.busy}
            onClick=${() => act.run("replay", d.id)}>${t("replay")}</button></td></tr>`,
      )}</tbody>
    </table></div>`}
  </article>`;
}

export function DataPage() {
  const q = useQuery(ENDPOINTS, {}, []);
  const [url, setUrl] = useState("");
  const [types, setTypes] = useState("");
  const [description, setDescription] = useState("");
  const [secret, setSecret] = useState(null);
  const create = useAction(async () => {
    const r = await mutate(
      SECRET_RESULT("createWebhookEndpoint", "CreateWebhookEndpointInput"),
      {
        input: {
          url: url.trim(),
          description: description.trim(),
          eventTypes: types.split(",").map((s) => s.trim()).filter(Boolean),
        },
      },
      "createWebhookEndpoint",
      "WebhookEndpointSecret",
    );
    setSecret({ value: r.secret, label: "secretOnce" });
    setUrl("");
    setTypes("");
    setDescription("");
    q.reload();
    return null;
  });
  const endpoints = (q.data && q.data.webhookEndpoints.edges.map((e) => e.node)) || [];
  return html`<div>
    <h1>${t("data")}</h1>
    <section aria-labelledby="wh-h">
      <h2 id="wh-h">${t("webhooks")}</h2>
      <${Secret} secret=${secret} onHide=${() => setSecret(null)} />
      <form class="card" onSubmit=${(e) => {
        e.preventDefault();
        create.run();
      }}>
        <h3>${t("addWebhook")}</h3>
        <div class="form-grid">
          <div class="field"><label for="wh-url">${t("url")}</label>
            <input id="wh-url" type="url" required value=${url} onInput=${(e) => setUrl(e.target.value)} /></div>
          <div class="field"><label for="wh-types">${t("eventTypes")}</label>
            <input id="wh-types" value=${types} placeholder="quartier.hubs." onInput=${(e) => setTypes(e.target.value)} /></div>
          <div class="field"><label for="wh-desc">${t("description")}</label>
            <input id="wh-desc" value=${description} onInput=${(e) => setDescription(e.target.value)} /></div>
        </div>
        <${ErrorBox} error=${create.error} />
        <button type="submit" disabled=${create.busy}>${t("addWebhook")}</button>
      </form>
      <${Loading} q=${q} />
      ${q.data && endpoints.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
      ${endpoints.map(
        (ep) => html`<${Endpoint} key=${ep.id} ep=${ep} onChanged=${q.reload} showSecret=${setSecret} />`,
      )}
    </section>
    <${ApiKeys} />
    <${Exports} />
    <${Erasures} />
  </div>`;
}
