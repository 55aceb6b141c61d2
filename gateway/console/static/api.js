// The console's only way to the system: the public GraphQL API at /graphql.
// The access token lives in memory only; the refresh token (single use) in
// this tab's sessionStorage, so that a reload keeps the session and closing
// the tab ends it. Neither is ever put in the page. Every request says the
// console's language (`Accept-Language: fr` or `en`, the network's locale):
// the API words its refusals in it.

import { getLang } from "./i18n.js";

const ENDPOINT = "/graphql";
const REFRESH_KEY = "quartier.console.refresh";
const SLUG_KEY = "quartier.console.slug";

let access = null; // {token, expiresAt: ms}
let refreshing = null; // the one refresh in flight
const RATE_LIMIT_ATTEMPTS = 4; // a request refused over a budget (429) is sent again, up to this
const MAX_RETRY_WAIT = 10; // seconds: a longer Retry-After is shown, not waited for
let refreshTimer = null;
const listeners = new Set();

export class ApiError extends Error {
  // code: the API's (typed result's `code`, or `extensions.code`);
  // rule / field when the API names one.
  constructor({ message, code, rule, field, typename }) {
    super(message || code || "error");
    this.code = code || "";
    this.rule = rule || null;
    this.field = field || null;
    this.typename = typename || null;
  }
}

const AUTH_FIELDS = `
  accessToken accessTokenExpiresAt refreshToken tenantSlug
  member { id memberId displayName isTenantAdmin roles }
`;
const ERROR_FIELDS = `
  ... on Error { message code }
  ... on RuleViolation { rule }
  ... on ValidationError { field }
  ... on Conflict { field }
`;
export { ERROR_FIELDS };

export function onSession(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function emit(session) {
  for (const l of listeners) l(session);
}

export function storedSlug() {
  return sessionStorage.getItem(SLUG_KEY) || "";
}

function keep(payload) {
  access = {
    token: payload.accessToken,
    expiresAt: Date.parse(payload.accessTokenExpiresAt),
  };
  sessionStorage.setItem(REFRESH_KEY, payload.refreshToken);
  sessionStorage.setItem(SLUG_KEY, payload.tenantSlug);
  clearTimeout(refreshTimer);
  // refresh a minute before the access token expires (at least in 5 s)
  const wait = Math.max(5000, access.expiresAt - Date.now() - 60000);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
  return { slug: payload.tenantSlug, member: payload.member };
}

function forget() {
  access = null;
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(REFRESH_KEY);
}

async function post(query, variables, token) {
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/graphql-response+json, application/json",
    "Accept-Language": getLang(),
  };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  for (let attempt = 1; ; attempt++) {
    try {
      response = await fetch(ENDPOINT, {
        method: "POST",
        headers,
        body: JSON.stringify({ query, variables: variables || {} }),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (e) {
      throw new ApiError({ code: "NETWORK", message: String(e.message || e) });
    }
    // Over a budget (429): nothing ran, so the same request is sent again
    // once the wait the gateway asks for is over, if it is short; a long
    // one is shown to the user as the API words it.
    const wait = Number(response.headers.get("Retry-After") || "1");
    if (response.status !== 429 || attempt >= RATE_LIMIT_ATTEMPTS || !(wait <= MAX_RETRY_WAIT)) break;
    await new Promise((done) => setTimeout(done, wait * 1000));
  }
  let body;
  try {
    body = await response.json();
  } catch (e) {
    throw new ApiError({ code: "HTTP_" + response.status, message: response.statusText });
  }
  return body;
}

function topError(body) {
  const e = (body.errors || [])[0];
  if (!e) return null;
  const ext = e.extensions || {};
  return new ApiError({ message: e.message, code: ext.code || "", field: ext.field });
}

// A query or mutation as the signed-in member. Data with no error, or an
// ApiError (the first one the API gave). An expired access token is
// refreshed once, and the operation sent again.
export async function gql(query, variables) {
  if (!access) await refresh();
  let body = await post(query, variables, access && access.token);
  let err = topError(body);
  if (err && err.code === "UNAUTHENTICATED") {
    await refresh();
    body = await post(query, variables, access && access.token);
    err = topError(body);
  }
  if (err) throw err;
  return body.data;
}

// A mutation whose field returns a typed result union: the payload when it
// is `success`, else an ApiError carrying the typed error.
export async function mutate(query, variables, field, success) {
  const data = await gql(query, variables);
  const result = data[field];
  if (result && result.__typename === "Unauthenticated") {
    await refresh();
    return mutate(query, variables, field, success);
  }
  if (!result || (success && result.__typename !== success) || result.code) {
    throw new ApiError({ ...(result || {}), typename: result && result.__typename });
  }
  return result;
}

// Public (no sign-in): the network's name and language by slug.
export async function tenantInfo(slug) {
  const body = await post(
    "query Tenant($slug: String!) { tenant(slug: $slug) { name slug locale } }",
    { slug },
  );
  const err = topError(body);
  if (err) throw err;
  return body.data.tenant;
}

// Public: ask for a password reset link by e-mail. The API answers alike
// whether or not the address has an account (TooManyAttempts aside).
export async function requestPasswordReset(tenant, email) {
  const body = await post(
    `mutation Reset($input: RequestPasswordResetInput!) { requestPasswordReset(input: $input) {
       __typename ... on TooManyAttempts { retryAfterSeconds } ${ERROR_FIELDS} } }`,
    { input: { tenant, email } },
  );
  const err = topError(body);
  if (err) throw err;
  const result = body.data.requestPasswordReset;
  if (result.__typename !== "PasswordResetRequested") throw new ApiError(result);
  return result;
}

export async function login(tenant, email, password) {
  const body = await post(
    `mutation Login($input: LoginInput!) { login(input: $input) {
       __typename ... on AuthPayload { ${AUTH_FIELDS} }
       ... on TooManyAttempts { retryAfterSeconds } ${ERROR_FIELDS} } }`,
    { input: { tenant, email, password } },
  );
  const err = topError(body);
  if (err) throw err;
  const result = body.data.login;
  if (result.__typename !== "AuthPayload") throw new ApiError(result);
  const session = keep(result);
  emit(session);
  return session;
}

// Trade the stored refresh token for new tokens (one refresh at a time).
export function refresh() {
  if (refreshing) return refreshing;
  const token = sessionStorage.getItem(REFRESH_KEY);
  if (!token) {
    const e = new ApiError({ code: "UNAUTHENTICATED", message: "" });
    emit(null);
    return Promise.reject(e);
  }
  refreshing = (async () => {
    try {
      const body = await post(
        `mutation Refresh($input: RefreshSessionInput!) { refreshSession(input: $input) {
           __typename ... on AuthPayload { ${AUTH_FIELDS} } ${ERROR_FIELDS} } }`,
        { input: { refreshToken: token } },
      );
      const err = topError(body);
      if (err) throw err;
      const result = body.data.refreshSession;
      if (result.__typename !== "AuthPayload") {
        forget();
        emit(null);
        throw new ApiError(result);
      }
      const session = keep(result);
      emit(session);
      return session;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export function hasStoredSession() {
  return Boolean(sessionStorage.getItem(REFRESH_KEY));
}

export async function logout() {
  const token = sessionStorage.getItem(REFRESH_KEY);
  forget();
  if (token) {
    try {
      await post(
        `mutation Logout($input: RefreshSessionInput!) { logout(input: $input) { __typename } }`,
        { input: { refreshToken: token } },
      );
    } catch (e) {
      // signed out here whatever the server says
    }
  }
  emit(null);
}
