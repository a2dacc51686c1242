// tokenservice demo: a tiny single-page client for the JWT token service.
// Sign up, log in (with a second factor's code when the account has one),
// show the signed-in user (GET /me) and where they are signed in, end one
// sign-in, turn on a second factor, refresh an expired access token once via
// POST /token/refresh, and log out. Ask for a reset link, and follow the
// mailed links (#action=reset-password|verify-email|end-session&token=...),
// whose token is taken out of the address bar at once. No dependencies.
// Optional ?api=<base URL> points it at a service on another origin, whose
// tokens are then kept apart from every other API's (see ACCESS_KEY).
"use strict";

const SESSION_ENDED = "Your session has ended; please log in again.";
const BAD_API = "The ?api= address is not an absolute http: or https: URL, so this page talks to no API."
  + " Open it with, for example, ?api=http://127.0.0.1:5000.";

// The API this page talks to: { base, origin }, or null when ?api= names no
// usable one. No ?api= means this page's own origin (relative URLs).
function chooseApi(param) {
  if (!param) return { base: "", origin: location.origin };
  let url;
  try {
    url = new URL(param); // no base URL: relative addresses ("/x", "//host") throw
  } catch {
    return null;
  }
  // Not javascript:, data:, ftp: ...; nor a user:password@ that fetch refuses.
  if (!["http:", "https:"].includes(url.protocol) || url.username || url.password) return null;
  return { base: url.origin + url.pathname.replace(/\/+$/, ""), origin: url.origin };
}

const API = chooseApi(new URLSearchParams(location.search).get("api"));
const API_BASE = API?.base ?? "";
// Tokens are kept for the API that issued them: a link with ?api=<another
// origin> must find no tokens to send there (this copy of the page may be
// served without the CSP that the service adds). This origin's own API keeps
// the documented plain names; another origin's are suffixed with "@<origin>".
const KEY_SUFFIX = !API || API.origin === location.origin ? "" : `@${API.origin}`;
const ACCESS_KEY = `jwt-token${KEY_SUFFIX}`;
const REFRESH_KEY = `jwt-refresh-token${KEY_SUFFIX}`;
// The service's name for this browser, so that it counts its owner's failed
// logins apart from strangers'. Not a credential: logout keeps it.
const DEVICE_KEY = `jwt-device-token${KEY_SUFFIX}`;

const $ = (id) => document.getElementById(id);
const form = $("auth-form");
const profile = $("profile");
const message = $("message");
const SCREENS = ["auth-form", "code-form", "end-session-form", "forgot-form", "reset-form", "verify-form", "profile"];
const LINK_ACTIONS = { "reset-password": "reset-form", "verify-email": "verify-form", "end-session": "end-session-form" };
// The username and password of a login that was asked for its second factor,
// kept in memory only, until the code is sent or the user goes back.
let pendingLogin = null;

// The action and token of a mailed link, read once and taken out of the
// address bar (and so out of the history and of any Referer).
const LINK = (() => {
  const params = new URLSearchParams(location.hash.slice(1));
  const action = params.get("action");
  const token = params.get("token");
  if (!token || !Object.hasOwn(LINK_ACTIONS, action)) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return { action, token };
})();

// A mailed link opened in a tab that already shows this page: read it as a fresh load would.
window.addEventListener("hashchange", () => {
  if (new URLSearchParams(location.hash.slice(1)).get("token")) location.reload();
});

// Show one screen (a form or the profile) and hide the others.
function show(id) {
  SCREENS.forEach((other) => { $(other).hidden = other !== id; });
}

class ApiError extends Error {
  constructor({ status, data }) {
    const base = data?.message || `The service answered with status ${status}.`;
    const fields = Object.entries(data?.fields || {}).map(([f, p]) => `${f}: ${p}`);
    super([base, ...fields].join(" "));
  }
}
class SessionEnded extends Error {}

const say = (text) => { message.textContent = text; };
const setBusy = (busy) => document.querySelectorAll("button").forEach((b) => { b.disabled = busy; });

function storeTokens(data) {
  localStorage.setItem(ACCESS_KEY, data.access_token);
  if (data.refresh_token) localStorage.setItem(REFRESH_KEY, data.refresh_token);
  else localStorage.removeItem(REFRESH_KEY);
}

function clearTokens() {
  localStorage.removeItem(ACCESS_KEY);
  localStorage.removeItem(REFRESH_KEY);
}

// One HTTP call; resolves to { status, data } and throws only on network failure.
async function request(method, path, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(API_BASE + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new Error(`Cannot reach the service at ${API_BASE || "this site"}.`);
  }
  const data = await res.json().catch(() => null);
  return { status: res.status, data };
}

// Authenticated call: on 401 token_expired, refresh once and retry once.
async function api(method, path, body) {
  let res = await request(method, path, { body, token: localStorage.getItem(ACCESS_KEY) });
  if (res.status === 401 && res.data?.error === "token_expired") {
    const refresh = await request("POST", "/token/refresh", {
      token: localStorage.getItem(REFRESH_KEY),
    });
    if (refresh.status !== 200 || !refresh.data?.access_token) throw new SessionEnded();
    storeTokens(refresh.data);
    res = await request(method, path, { body, token: localStorage.getItem(ACCESS_KEY) });
  }
  return res;
}

function showSignedOut() {
  pendingLogin = null;
  show("auth-form");
  $("password").value = "";
  $("otp").value = "";
  $("enrol-form").hidden = true;
  $("recovery").hidden = true;
}

function showProfile(user) {
  $("whoami").textContent = `Signed in as ${user.username}`;
  $("user-id").textContent = user.id;
  $("user-username").textContent = user.username;
  $("user-role").textContent = user.role;
  $("user-email").textContent = user.email ? `${user.email} (${user.email_verified ? "verified" : "not verified"})` : "none";
  $("resend").hidden = !user.email || user.email_verified;
  $("user-mfa").textContent = user.mfa ? "on" : "off";
  $("enrol").hidden = user.mfa || !$("enrol-form").hidden;
  show("profile");
}

async function loadProfile() {
  const res = await api("GET", "/me");
  if (res.status === 401) throw new SessionEnded();
  if (res.status !== 200) throw new ApiError(res);
  showProfile(res.data);
  await loadSessions();
}

// The caller's live sessions, each with a button that ends it (but this one: "Log out" does).
async function loadSessions() {
  const res = await api("GET", "/me/sessions");
  if (res.status === 401) throw new SessionEnded();
  if (res.status !== 200) throw new ApiError(res);
  const list = $("sessions");
  list.replaceChildren(...res.data.items.map((item) => {
    const li = document.createElement("li");
    const what = document.createElement("span");
    what.className = "what";
    const used = new Date(item.last_used_at).toLocaleString();
    what.textContent = `${item.user_agent || "An unnamed client"}, ${item.ip || "an unknown address"}, last used ${used}`
      + (item.current ? " (this browser)" : "");
    li.append(what);
    if (!item.current) {
      const end = document.createElement("button");
      end.type = "button";
      end.className = "secondary";
      end.textContent = "End";
      end.addEventListener("click", () => run(async () => {
        const ended = await api("DELETE", `/me/sessions/${encodeURIComponent(item.id)}`);
        if (ended.status === 401) throw new SessionEnded();
        if (ended.status !== 204 && ended.status !== 404) throw new ApiError(ended);
        await loadSessions();
        say("That sign-in has ended.");
      }));
      li.append(end);
    }
    return li;
  }));
}

// The QR code of an enrolment, drawn afresh from the answer's SVG: only its size and the path's
// drawing commands are taken, never an element or attribute as sent (a copy of this page served
// without the service's CSP may be talking to a stranger's API, whose SVG could carry handlers).
function qrCode(markup) {
  const sent = new DOMParser().parseFromString(markup, "text/html").querySelector("svg");
  const path = sent?.querySelector("path");
  const d = path?.getAttribute("d") ?? "";
  const scale = /^scale\((\d{1,2})\)$/.exec(path?.getAttribute("transform") ?? "")?.[1] ?? "1";
  const size = sent?.getAttribute("width") ?? "";
  if (!/^[MmHhVvZz0-9. -]+$/.test(d) || !/^\d{1,4}$/.test(size)) return null;
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("width", size);
  svg.setAttribute("height", size);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code for an authenticator app");
  const drawn = document.createElementNS(NS, "path");
  drawn.setAttribute("d", d);
  drawn.setAttribute("transform", `scale(${scale})`);
  drawn.setAttribute("stroke", "#000");
  svg.append(drawn);
  return svg;
}

// A password login, with the second factor's code (`second`: { otp } or { recovery_code }) when asked for it.
async function logIn(username, password, second = {}) {
  const device = localStorage.getItem(DEVICE_KEY);
  const body = { username, password, ...second, ...(device ? { device_token: device } : {}) };
  const res = await request("POST", "/token", { body });
  if (res.status === 401 && res.data?.error === "mfa_required") {
    pendingLogin = { username, password };
    show("code-form");
    $("code-heading").focus();
    return;
  }
  if (res.status !== 200) throw new ApiError(res);
  pendingLogin = null;
  $("otp").value = "";
  if (typeof res.data.device_token === "string") localStorage.setItem(DEVICE_KEY, res.data.device_token);
  storeTokens(res.data);
  await loadProfile();
}

async function signUp(username, password, email) {
  const body = email ? { username, password, email } : { username, password };
  const res = await request("POST", "/users", { body });
  if (res.status !== 201) throw new ApiError(res);
  await logIn(username, password);
}

async function logOut() {
  const token = localStorage.getItem(ACCESS_KEY);
  if (token) {
    try { await request("POST", "/logout", { token }); } catch { /* ignored */ }
  }
  clearTokens();
  showSignedOut();
  say("You are logged out.");
}

// Runs one user action: clears the old message, disables buttons, reports errors.
async function run(action) {
  say("");
  setBusy(true);
  try {
    await action();
  } catch (err) {
    if (err instanceof SessionEnded) {
      clearTokens();
      showSignedOut();
      say(SESSION_ENDED);
    } else {
      if (SCREENS.every((id) => $(id).hidden)) showSignedOut(); // e.g. a failed session check on load
      say(err.message);
    }
  } finally {
    setBusy(false);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const username = form.elements.username.value;
  const password = form.elements.password.value;
  const email = form.elements.email.value.trim();
  const signingUp = event.submitter?.value === "signup";
  run(async () => {
    await (signingUp ? signUp(username, password, email) : logIn(username, password));
    if (!profile.hidden) $("whoami").focus();
  });
});

$("code-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const code = $("otp").value.trim();
  if (!pendingLogin) return showSignedOut();
  const { username, password } = pendingLogin;
  // Six digits are the app's code; anything else is taken for a recovery code.
  run(() => logIn(username, password, /^\d{6}$/.test(code) ? { otp: code } : { recovery_code: code }));
});

$("enrol").addEventListener("click", () => run(async () => {
  const res = await api("POST", "/me/mfa/totp");
  if (res.status === 401) throw new SessionEnded();
  if (res.status !== 200) throw new ApiError(res);
  const qr = qrCode(res.data.qr_svg);
  $("qr").replaceChildren(...(qr ? [qr] : []));
  $("totp-secret").textContent = res.data.secret;
  $("enrol-code").value = "";
  $("enrol-form").hidden = false;
  $("enrol").hidden = true;
  $("enrol-heading").focus();
}));

$("enrol-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    const res = await api("POST", "/me/mfa/totp/confirm", { code: $("enrol-code").value.trim() });
    if (res.status === 401) throw new SessionEnded();
    if (res.status !== 200) throw new ApiError(res);
    $("recovery-codes").replaceChildren(...res.data.recovery_codes.map((code) => {
      const li = document.createElement("li");
      li.textContent = code;
      return li;
    }));
    $("enrol-form").hidden = true;
    $("qr").replaceChildren();
    $("recovery").hidden = false;
    await loadProfile();
    $("recovery-heading").focus();
    say("Your second factor is on: logins now ask for a code.");
  });
});

$("end-session-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const everywhere = $("end-everywhere").checked;
  run(async () => {
    const res = await request("POST", "/signin-alerts/end-session", { body: { token: LINK.token, everywhere } });
    if (res.status !== 204) throw new ApiError(res);
    if (everywhere) clearTokens();
    showSignedOut();
    say(everywhere ? "Every sign-in of the account has ended. Change your password now."
      : "That sign-in has ended. Change your password now: whoever signed in knew it.");
  });
});

$("logout").addEventListener("click", () => run(async () => {
  await logOut();
  $("username").focus();
}));

$("show-forgot").addEventListener("click", () => {
  say("");
  show("forgot-form");
  $("forgot-who").value = form.elements.username.value;
  $("forgot-heading").focus();
});

document.querySelectorAll("button.back").forEach((button) => button.addEventListener("click", () => {
  say("");
  showSignedOut();
}));

$("forgot-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const who = $("forgot-who").value.trim();
  run(async () => {
    const res = await request("POST", "/password/forgot", { body: who.includes("@") ? { email: who } : { username: who } });
    if (res.status !== 202) throw new ApiError(res);
    say(res.data.message);
  });
});

$("reset-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    const res = await request("POST", "/password/reset", {
      body: { token: LINK.token, new_password: $("new-password").value },
    });
    if (res.status !== 204) throw new ApiError(res);
    $("new-password").value = "";
    showSignedOut();
    say("Your password is set, and every session of the account has ended: log in with it.");
  });
});

$("verify-form").addEventListener("submit", (event) => {
  event.preventDefault();
  run(async () => {
    const res = await request("POST", "/email/verify", { body: { token: LINK.token } });
    if (res.status !== 204) throw new ApiError(res);
    if (localStorage.getItem(ACCESS_KEY)) await loadProfile();
    else showSignedOut();
    say("Your e-mail address is verified.");
  });
});

$("resend").addEventListener("click", () => run(async () => {
  const res = await api("POST", "/me/email/verify");
  if (res.status === 401) throw new SessionEnded();
  if (res.status !== 202) throw new ApiError(res);
  say(res.data.message);
}));

// Other tabs of this page share localStorage: follow their logouts and logins
// (storage events come only from other tabs). Only this API's access token
// matters; a null key means another tab cleared all of localStorage.
window.addEventListener("storage", (event) => {
  if (!API || event.storageArea !== localStorage || (event.key !== ACCESS_KEY && event.key !== null)) return;
  const signedIn = !profile.hidden;
  if (!localStorage.getItem(ACCESS_KEY) && signedIn) {
    showSignedOut();
    say("You were logged out in another tab.");
  } else if (localStorage.getItem(ACCESS_KEY) && !signedIn && !form.hidden) {
    run(loadProfile); // a login there: show who this tab is now signed in as
  }
});

// On load: say which API this is, then resume a stored session, otherwise
// show the signed-out form. With no usable API, show neither.
if (!API) {
  $("api").textContent = "API: none";
  form.hidden = true;
  say(BAD_API);
} else {
  $("api").textContent = KEY_SUFFIX ? `API: ${API.base}` : `API: this site (${API_BASE || location.origin})`;
  if (LINK) {
    show(LINK_ACTIONS[LINK.action]);
  } else if (localStorage.getItem(ACCESS_KEY)) {
    form.hidden = true;
    run(loadProfile);
  } else {
    showSignedOut();
  }
}
