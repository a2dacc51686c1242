// tokenservice demo: a tiny single-page client for the JWT token service.
// Sign up, log in, show the signed-in user (GET /me), refresh an expired
// access token once via POST /token/refresh, and log out. No dependencies.
// Optional ?api=<base URL> points it at a service on another origin.
"use strict";

const ACCESS_KEY = "jwt-token";
const REFRESH_KEY = "jwt-refresh-token";
const SESSION_ENDED = "Your session has ended; please log in again.";
const API_BASE = (new URLSearchParams(location.search).get("api") || "").replace(/\/+$/, "");

const $ = (id) => document.getElementById(id);
const form = $("auth-form");
const profile = $("profile");
const message = $("message");

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
  profile.hidden = true;
  form.hidden = false;
  $("password").value = "";
}

function showProfile(user) {
  $("whoami").textContent = `Signed in as ${user.username}`;
  $("user-id").textContent = user.id;
  $("user-username").textContent = user.username;
  $("user-role").textContent = user.role;
  form.hidden = true;
  profile.hidden = false;
}

async function loadProfile() {
  const res = await api("GET", "/me");
  if (res.status === 401) throw new SessionEnded();
  if (res.status !== 200) throw new ApiError(res);
  showProfile(res.data);
}

async function logIn(username, password) {
  const res = await request("POST", "/token", { body: { username, password } });
  if (res.status !== 200) throw new ApiError(res);
  storeTokens(res.data);
  await loadProfile();
}

async function signUp(username, password) {
  const res = await request("POST", "/users", { body: { username, password } });
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
      if (profile.hidden) showSignedOut(); // e.g. a failed session check on load
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
  const signingUp = event.submitter?.value === "signup";
  run(async () => {
    await (signingUp ? signUp(username, password) : logIn(username, password));
    if (!profile.hidden) $("whoami").focus();
  });
});

$("logout").addEventListener("click", () => run(async () => {
  await logOut();
  $("username").focus();
}));

// On load: resume a stored session, otherwise show the signed-out form.
if (localStorage.getItem(ACCESS_KEY)) {
  form.hidden = true;
  run(loadProfile);
} else {
  showSignedOut();
}
