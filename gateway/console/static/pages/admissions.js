// Admissions: a hub's pending nominations, their objections and the
// window's countdown; admit (with an exception reason when the
// one-per-profession rule stands) or reject (with a reason). Every member
// sees how many objections a nomination has; their content only the hub's
// admins (the API's rule), so the others read that, never "no objection".
// Admitting a candidate someone objected to asks for a confirmation first
// (in the page, not a browser dialog).
import { html, useState, useEffect, useRef, useQuery, useAction, useHubs, HubPicker, Loading, ErrorBox, Ok, useNow, useId, biz } from "../ui.js";
import { mutate, ERROR_FIELDS } from "../api.js";
import { t, fmtDateTime, fmtCountdown } from "../i18n.js";

const NOMINATIONS = `query Nominations($id: ID!) { hub(id: $id) { id name
  coAdmins { id }
  nominations { id status note nominatedAt windowClosesAt objectionCount exceptionReason
    objections { reason raisedAt objector { displayName } }
    candidate { displayName businessName activityLabel }
    sponsor { displayName } } } }`;

const DECIDE = (field, input) => `mutation Decide($input: ${input}!) { ${field}(input: $input) {
  __typename ... on NominationPayload { nomination { id status } } ${ERROR_FIELDS} } }`;

function Nomination({ hub, n, onDone, decides }) {
  const now = useNow();
  const id = useId("nom");
  const [exception, setException] = useState(null); // the reason's text, once the rule stands
  const [rejecting, setRejecting] = useState(null);
  // null: no confirmation asked; false: asked, awaiting it; true: confirmed
  const [confirmed, setConfirmed] = useState(null);
  const confirmButton = useRef(null);
  useEffect(() => {
    if (confirmed === false && confirmButton.current) confirmButton.current.focus();
  }, [confirmed]);
  const onAdmit = () => {
    if (n.objectionCount > 0 && !confirmed) setConfirmed(false);
    else admit.run();
  };
  const admit = useAction(async () => {
    const input = { hubId: hub.id, nominationId: n.id };
    if (exception !== null) input.exceptionReason = exception;
    try {
      await mutate(DECIDE("admitCandidate", "AdmitCandidateInput"), { input }, "admitCandidate", "NominationPayload");
    } catch (e) {
      if (e.rule === "non_competition" && exception === null) setException("");
      throw e;
    }
    onDone(t("admitted"));
  });
  const reject = useAction(async () => {
    await mutate(
      DECIDE("rejectCandidate", "RejectCandidateInput"),
      { input: { hubId: hub.id, nominationId: n.id, reason: rejecting || "" } },
      "rejectCandidate",
      "NominationPayload",
    );
    onDone(t("rejected"));
  });
  const left = n.windowClosesAt ? fmtCountdown(n.windowClosesAt, now) : null;
  const who = n.candidate ? n.candidate.displayName : t("invitedCandidate");
  return html`<article class="card nomination" aria-labelledby=${id}>
    <div class="row between">
      <h3 id=${id}>${who}</h3>
      <span class="tag">${t("st_" + n.status)}</span>
    </div>
    ${n.candidate && biz(n.candidate.businessName, n.candidate.activityLabel) &&
    html`<p class="muted">${biz(n.candidate.businessName, n.candidate.activityLabel)}</p>`}
    <dl class="kv">
      <dt>${t("sponsor")}</dt><dd>${n.sponsor ? n.sponsor.displayName : "—"}</dd>
      ${n.note && html`<dt>${t("note")}</dt><dd>${n.note}</dd>`}
      ${n.windowClosesAt &&
      html`<dt>${t("windowCloses").replace(/ : $|: $/, "")}</dt>
        <dd><time datetime=${n.windowClosesAt}>${fmtDateTime(n.windowClosesAt)}</time>
          ${" "}<span class="tag warn countdown">${left ? `${t("leftBefore")}${left}${t("left")}` : t("windowClosed")}</span></dd>`}
    </dl>
    <h4>${t("objections")} (${n.objectionCount})</h4>
    ${n.objectionCount === 0
      ? html`<p class="muted">${t("noObjection")}</p>`
      : n.objections.length === 0
        ? html`<p class="muted objections-hidden">${t("objectionsForAdmins")}</p>`
        : html`<ul class="plain">${n.objections.map(
            (o) => html`<li><strong>${o.objector ? o.objector.displayName : "—"}</strong> :
              ${" "}${o.reason} <span class="muted small">(${fmtDateTime(o.raisedAt)})</span></li>`,
          )}</ul>`}
    ${exception !== null &&
    html`<div class="field">
      <p class="muted">${t("exceptionHint")}</p>
      <label for=${id + "-exc"}>${t("exceptionReason")}</label>
      <textarea id=${id + "-exc"} value=${exception} onInput=${(e) => setException(e.target.value)}></textarea>
    </div>`}
    ${rejecting !== null &&
    html`<div class="field">
      <label for=${id + "-rej"}>${t("rejectReason")}</label>
      <textarea id=${id + "-rej"} value=${rejecting} onInput=${(e) => setRejecting(e.target.value)}></textarea>
    </div>`}
    <${ErrorBox} error=${admit.error || reject.error} />
    ${decides && confirmed === false &&
    html`<div class="card notice confirm" role="group" aria-labelledby=${id + "-conf"}>
      <p id=${id + "-conf"}><strong>${t("admitDespiteObjections")}</strong></p>
      <div class="row">
        <button type="button" ref=${confirmButton} disabled=${admit.busy} onClick=${() => {
          setConfirmed(true);
          admit.run();
        }}>${t("confirmAdmit")}</button>
        <button type="button" class="secondary" onClick=${() => setConfirmed(null)}>${t("cancel")}</button>
      </div>
    </div>`}
    ${decides && n.status === "INVITED" && html`<p class="muted awaiting">${t("awaitingCandidate")}</p>`}
    ${decides && confirmed !== false && html`<div class="row">
      ${rejecting === null && n.status !== "INVITED" &&
      html`<button type="button" disabled=${admit.busy} onClick=${onAdmit}>
        ${exception !== null ? t("admitWithException") : t("admit")}</button>`}
      <button type="button" class="danger" disabled=${reject.busy}
        onClick=${() => (rejecting === null ? setRejecting("") : reject.run())}>${t("reject")}</button>
      ${rejecting !== null &&
      html`<button type="button" class="secondary" onClick=${() => setRejecting(null)}>${t("cancel")}</button>`}
    </div>`}
  </article>`;
}

export function AdmissionsPage({ me, admin }) {
  const hubs = useHubs();
  const [ok, setOk] = useState(null);
  const q = useQuery(NOMINATIONS, hubs.hub ? { id: hubs.hub.id } : null, [hubs.hub && hubs.hub.id]);
  const hub = q.data && q.data.hub;
  const list = (hub && hub.nominations) || [];
  return html`<div>
    <h1>${t("admissions")}</h1>
    <${Loading} q=${hubs.q} />
    <${HubPicker} ...${hubs} />
    <h2>${t("pending")}</h2>
    <${Ok} text=${ok} />
    ${hubs.hub && html`<${Loading} q=${q} />`}
    ${hub && list.length === 0 && html`<p class="muted">${t("nothing")}</p>`}
    ${list.map(
      (n) => html`<${Nomination} key=${n.id} hub=${hub} n=${n}
        decides=${admin || (hub.coAdmins || []).some((m) => m.id === me.id)}
        onDone=${(text) => {
          setOk(text);
          q.reload();
        }} />`,
    )}
  </div>`;
}
