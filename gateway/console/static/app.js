// The console's shell: sign-in, the session, the language, the navigation.
import { render } from "./vendor/preact-htm-3.1.1.module.js";
import { html, useState, useEffect, ErrorBox, Ok } from "./ui.js";
import * as api from "./api.js";
import { t, setLang, getLang } from "./i18n.js";
import { MembersPage } from "./pages/members.js";
import { AdmissionsPage } from "./pages/admissions.js";
import { HubsPage } from "./pages/hubs.js";
import { RosterPage } from "./pages/roster.js";
import { MeetupsPage } from "./pages/meetups.js";
import { ResultsPage } from "./pages/results.js";
import { DataPage } from "./pages/data.js";

// [route, label key, component, for tenant admins only]
const PAGES = [
  ["members", "members", MembersPage, false],
  ["admissions", "admissions", AdmissionsPage, false],
  ["hubs", "hubs", HubsPage, false],
  ["roster", "roster", RosterPage, false],
  ["meetups", "meetups", MeetupsPage, false],
  ["results", "resultsShort", ResultsPage, false],
  ["data", "data", DataPage, true],
];

function route() {
  const name = location.hash.replace(/^#\/?/, "").split("?")[0];
  return name || "members";
}

function useRoute() {
  const [r, setR] = useState(route());
  useEffect(() => {
    const on = () => setR(route());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return r;
}

// "Forgotten password?": the API mails a reset link (to the page the
// gateway serves, /reset-password) if the address has an account; it
// answers alike either way, and so does this form.
function ForgotPassword({ slug, setSlug }) {
  const [email, setEmail] = useState("");
  const [error, setError] = useState(null);
  const [sent, setSent] = useState(false);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSent(false);
    try {
      await api.requestPasswordReset(slug.trim().toLowerCase(), email.trim());
      setSent(true);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };
  return html`<form onSubmit=${submit} class="card" aria-labelledby="forgot-h">
    <h2 id="forgot-h">${t("forgotPassword")}</h2>
    <p class="muted">${t("resetIntro")}</p>
    <div class="field">
      <label for="reset-tenant">${t("tenant")}</label>
      <input id="reset-tenant" name="tenant" autocomplete="organization" required value=${slug}
        onInput=${(e) => setSlug(e.target.value)} />
    </div>
    <div class="field">
      <label for="reset-email">${t("email")}</label>
      <input id="reset-email" name="email" type="email" autocomplete="username" required value=${email}
        onInput=${(e) => setEmail(e.target.value)} />
    </div>
    <${ErrorBox} error=${error} /><${Ok} text=${sent ? t("resetSent") : null} />
    <div class="row between">
      <button type="submit" disabled=${busy}>${t("sendResetLink")}</button>
      <a href="#/">${t("backToSignIn")}</a>
    </div>
  </form>`;
}

function SignIn({ onDone, network, setNetwork }) {
  const current = useRoute();
  const [slug, setSlug] = useState(api.storedSlug() || "");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const lookUp = async (value) => {
    if (!value) return;
    try {
      const found = await api.tenantInfo(value.trim());
      setNetwork(found);
      if (found) setLang(found.locale);
    } catch (e) {
      // the sign-in itself will say what is wrong
    }
  };
  useEffect(() => {
    if (slug) lookUp(slug);
  }, []);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const found = await api.tenantInfo(slug.trim().toLowerCase());
      if (!found) {
        setError({ code: "unknown_tenant", message: "" });
        setBusy(false);
        return;
      }
      setNetwork(found);
      setLang(found.locale);
      const session = await api.login(slug.trim().toLowerCase(), email.trim(), password);
      setPassword("");
      onDone(session);
    } catch (err) {
      setError(err);
    }
    setBusy(false);
  };

  return html`<main id="main" class="signin">
    <h1>${t("app")}</h1>
    ${network && html`<p class="network-name">${network.name}</p>`}
    <p class="muted">${t("signInIntro")}</p>
    ${current === "password-reset"
      ? html`<${ForgotPassword} slug=${slug} setSlug=${setSlug} />`
      : html`<form onSubmit=${submit} class="card">
      <div class="field">
        <label for="tenant">${t("tenant")}</label>
        <input id="tenant" name="tenant" autocomplete="organization" required value=${slug}
          onInput=${(e) => setSlug(e.target.value)} onChange=${(e) => lookUp(e.target.value)} />
      </div>
      <div class="field">
        <label for="email">${t("email")}</label>
        <input id="email" name="email" type="email" autocomplete="username" required value=${email}
          onInput=${(e) => setEmail(e.target.value)} />
      </div>
      <div class="field">
        <label for="password">${t("password")}</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.target.value)} />
      </div>
      <${ErrorBox} error=${error} />
      <div class="row between">
        <button type="submit" disabled=${busy}>${busy ? t("signingIn") : t("signIn")}</button>
        <a class="forgot" href="#/password-reset">${t("forgotPassword")}</a>
      </div>
    </form>`}
  </main>`;
}

function Shell({ session, network, onSignOut }) {
  const current = useRoute();
  const me = session.member || {};
  const admin = Boolean(me.isTenantAdmin);
  const pages = PAGES.filter(([, , , adminOnly]) => admin || !adminOnly);
  // an admins' page opened by someone else (a link, a typed address): said
  // so plainly on the page, rather than another page shown in its place
  const refused = admin ? null : PAGES.find(([n, , , adminOnly]) => adminOnly && n === current);
  const found = refused || pages.find(([name]) => name === current) || pages[0];
  const [name, , Page] = found;
  useEffect(() => {
    document.title = `${t(found[1])} — ${t("app")}`;
  }, [name]);
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e) => {
      e.preventDefault();
      document.getElementById("main").focus();
    }}>${t("skip")}</a>
    <header class="top">
      <div class="brand">
        <span class="logo" aria-hidden="true">Q</span>
        <span class="title">${network ? network.name : t("app")}</span>
      </div>
      <div class="who">
        <span>${t("signedInAs")}<strong>${me.displayName}</strong>
          <span class="muted"> (${admin ? t("networkAdmin") : t("member")})</span></span>
        <button type="button" class="secondary small" onClick=${onSignOut}>${t("signOut")}</button>
      </div>
    </header>
    <nav class="nav" aria-label=${t("menu")}>
      <ul>
        ${pages.map(
          ([n, label]) => html`<li><a href=${"#/" + n} aria-current=${n === name ? "page" : undefined}
            class=${n === name ? "active" : ""}>${t(label)}</a></li>`,
        )}
      </ul>
    </nav>
    <main id="main" tabindex="-1" class="content">
      ${refused
        ? html`<div><h1>${t(found[1])}</h1>
            <p class="card notice" role="status">${t("adminOnlyPage")}</p></div>`
        : html`<${Page} key=${name} me=${me} admin=${admin} />`}
    </main>
  </div>`;
}

function App() {
  const [session, setSession] = useState(null);
  const [network, setNetwork] = useState(null);
  const [starting, setStarting] = useState(api.hasStoredSession());
  const [, setLangTick] = useState(getLang());

  useEffect(() => {
    const off = api.onSession((s) => {
      if (!s) setSession(null);
    });
    if (api.hasStoredSession()) {
      api
        .refresh()
        .then(async (s) => {
          const found = await api.tenantInfo(s.slug).catch(() => null);
          if (found) {
            setNetwork(found);
            setLang(found.locale);
            setLangTick(found.locale);
          }
          setSession(s);
        })
        .catch(() => setSession(null))
        .finally(() => setStarting(false));
    }
    return off;
  }, []);

  if (starting) return html`<main id="main" class="signin"><p aria-busy="true">${t("loading")}</p></main>`;
  if (!session)
    return html`<${SignIn} network=${network}
      setNetwork=${(n) => {
        setNetwork(n);
        if (n) setLangTick(n.locale);
      }}
      onDone=${setSession} />`;
  return html`<${Shell} session=${session} network=${network}
    onSignOut=${async () => {
      await api.logout();
      setSession(null);
    }} />`;
}

setLang((navigator.language || "fr").toLowerCase().startsWith("en") ? "en" : "fr");
render(html`<${App} />`, document.getElementById("app"));
