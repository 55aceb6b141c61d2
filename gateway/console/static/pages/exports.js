// Data (tenant admins): the network's exports: start one, follow its
// progress, download the archive once ready (a signed link, valid a few minutes).
import { html, useState, useEffect, useQuery, useAction, Loading, ErrorBox, Ok } from "../ui.js";
import { mutate, ERROR_FIELDS } from "../api.js";
import { t, fmtDateTime } from "../i18n.js";

const EXPORTS = `query Exports { exports(first: 10) { edges { node {
  id scope status progress requestedAt readyAt expiresAt size error downloadUrl } } } }`;

export function Exports() {
  const q = useQuery(EXPORTS, {}, []);
  const list = (q.data && q.data.exports.edges.map((e) => e.node)) || [];
  const running = list.some((x) => x.status === "QUEUED" || x.status === "RUNNING");
  useEffect(() => {
    if (!running) return undefined;
    const id = setTimeout(q.reload, 2000);
    return () => clearTimeout(id);
  }, [q.data]);
  const start = useAction(async () => {
    await mutate(
      `mutation S($input: StartExportInput!) { startExport(input: $input) {
        __typename ... on ExportStarted { export { id } } ${ERROR_FIELDS} } }`,
      { input: { scope: "NETWORK" } },
      "startExport",
      "ExportStarted",
    );
    q.reload();
    return t("exportStarted");
  });
  return html`<section aria-labelledby="exp-h">
    <h2 id="exp-h">${t("exports")}</h2>
    <div class="row"><button type="button" disabled=${start.busy} onClick=${() => start.run()}>${t("startExport")}</button></div>
    <${ErrorBox} error=${start.error} /><${Ok} text=${start.ok} />
    <${Loading} q=${q} />
    ${q.data && list.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
    ${list.length > 0 &&
    html`<ul class="plain card exports">${list.map(
      (x) => html`<li class="row between">
        <span>${fmtDateTime(x.requestedAt)} — ${x.scope === "NETWORK" ? t("network") : t("mine")}${" "}<span
          class="tag">${t("ex_" + x.status)}</span>${x.error ? html` <span class="muted small">${x.error}</span>` : ""}</span>
        ${(x.status === "QUEUED" || x.status === "RUNNING") &&
        html`<progress max="1" value=${x.progress} aria-label=${t("progress")}>${Math.round(x.progress * 100)} %</progress>`}
        ${x.downloadUrl && html`<a href=${x.downloadUrl} download>${t("download")}</a>`}
      </li>`,
    )}</ul>`}
  </section>`;
}
