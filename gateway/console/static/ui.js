// Shared pieces of the console's pages.
import { html, useState, useEffect, useCallback, useRef } from "./vendor/preact-htm-3.1.1.module.js";
import { gql } from "./api.js";
import { t, errorText } from "./i18n.js";

export { html, useState, useEffect, useCallback, useRef };

// Run a query now and whenever `deps` change: {data, error, loading, reload}.
// `variables` null: nothing to ask yet.
export function useQuery(query, variables, deps = []) {
  const [state, setState] = useState({ data: null, error: null, loading: variables !== null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    if (variables === null) {
      setState({ data: null, error: null, loading: false });
      return undefined;
    }
    setState((s) => ({ ...s, loading: true, error: null }));
    gql(query, variables)
      .then((data) => live && setState({ data, error: null, loading: false }))
      .catch((error) => live && setState({ data: null, error, loading: false }));
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

// An action (a mutation): run(...) → {busy, error, ok}; `ok` holds the
// last success message.
export function useAction(fn) {
  const [state, setState] = useState({ busy: false, error: null, ok: null });
  const run = async (...args) => {
    setState({ busy: true, error: null, ok: null });
    try {
      const ok = await fn(...args);
      setState({ busy: false, error: null, ok: ok || null });
      return true;
    } catch (error) {
      setState({ busy: false, error, ok: null });
      return false;
    }
  };
  return { ...state, run, clear: () => setState({ busy: false, error: null, ok: null }) };
}

export function ErrorBox({ error }) {
  if (!error) return null;
  const e = errorText(error);
  return html`<div class="error" role="alert">
    <strong>${e.head}</strong>
    ${e.message && html`<span class="detail">${t("apiSays")}${e.message}</span>`}
  </div>`;
}

export function Ok({ text }) {
  if (!text) return null;
  return html`<div class="ok" role="status">${text}</div>`;
}

export function Loading({ q }) {
  if (q.loading && !q.data) return html`<p class="muted" aria-busy="true">${t("loading")}</p>`;
  if (q.error)
    return html`<div><${ErrorBox} error=${q.error} />
      <button type="button" class="secondary" onClick=${q.reload}>${t("retry")}</button></div>`;
  return null;
}

export const HUBS = `query Hubs { hubs { id name kind memberCount } }`;

// The hubs of the network, and the one chosen (kept in the URL's hash
// query: #/meetups?hub=…).
export function useHubs() {
  const q = useQuery(HUBS, {}, []);
  const hubs = (q.data && q.data.hubs) || [];
  const [hubId, setHubId] = useState(hashParam("hub"));
  const chosen = hubs.find((h) => h.id === hubId) || hubs[0] || null;
  const choose = (id) => {
    setHubId(id);
    setHashParam("hub", id);
  };
  return { q, hubs, hub: chosen, choose };
}

export function HubPicker({ hubs, hub, choose }) {
  if (!hubs.length) return null;
  return html`<div class="field inline">
    <label for="hub-picker">${t("hub")}</label>
    <select id="hub-picker" value=${hub && hub.id} onChange=${(e) => choose(e.target.value)}>
      ${hubs.map((h) => html`<option value=${h.id}>${h.name}</option>`)}
    </select>
  </div>`;
}

export function hashParam(name) {
  const q = location.hash.split("?")[1] || "";
  return new URLSearchParams(q).get(name);
}

export function setHashParam(name, value) {
  const [path, q] = location.hash.split("?");
  const params = new URLSearchParams(q || "");
  params.set(name, value);
  history.replaceState(null, "", `${path}?${params}`);
}

// "Atelier Dubois · Fleuriste · 75011": the parts there are, with no stray
// separator where one is empty.
export function biz(...parts) {
  return parts.filter((p) => p && String(p).trim()).join(" · ");
}

export function Name({ m }) {
  return m ? m.displayName : "—";
}

// Ticks every `ms` (for countdowns).
export function useNow(ms = 30000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, []);
  return now;
}

let counter = 0;
export function useId(prefix) {
  const ref = useRef(null);
  if (ref.current === null) ref.current = `${prefix}-${++counter}`;
  return ref.current;
}

// A secret shown this once: {value, label} (the label's text key).
export function Secret({ secret, onHide }) {
  if (!secret) return null;
  return html`<div class="card" role="status">
    <p><strong>${t(secret.label)}</strong></p>
    <p class="secret" data-testid="secret-once">${secret.value}</p>
    <button type="button" class="secondary small" onClick=${onHide}>${t("close")}</button>
  </div>`;
}
