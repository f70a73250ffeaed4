/**
 * recsys.js: the browser SDK of the recsys event collector. One ES module, no dependencies,
 * no build step: `import * as recsys from "./recsys.js"`. See README.md beside it.
 *
 * - `init({endpoint, writeKey, userBinding})`, `track(eventType, properties)`, `flush()`.
 * - Events in the collector's rich format (streaming/events.py), with the context the format
 *   has fields for: page (url, referrer), device (type), campaign (utm_source,
 *   utm_campaign), temporal (time of day, day of week). Never the user agent or the
 *   address: the project stores neither.
 * - Sent to the collector's beacon path (`POST /events/beacon?key=<write key>`) as
 *   `text/plain`, which no browser preflights: `fetch` with `keepalive` for batches (10
 *   events or 1 s), `navigator.sendBeacon` when the page is hidden or left.
 * - Every event has its id from the start (`crypto.randomUUID`); a retry sends the same ids,
 *   and the collector stores an id once however often it arrives.
 */

const SESSION_KEY = "recsys.session";
const PENDING_KEY = "recsys.pending";
const SESSION_IDLE_MS = 30 * 60 * 1000;
const MAX_REQUEST_BYTES = 60000; // a beacon or a keepalive fetch carries at most 64 KiB
const RETRYABLE = new Set([0, 408, 429, 500, 502, 503, 504]); // 0: no answer read
const TIMES_OF_DAY = ["night", "morning", "afternoon", "evening"]; // 6 hours each, from 0:00
const DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const CONTROL = /[\u0000-\u001f\u007f]/g; // the collector refuses them in any text field
const DEFAULTS = {
  batchSize: 10, // events per request
  flushIntervalMs: 1000, // the longest an event waits in the queue
  maxAttempts: 8, // sends of one batch before it is dropped
  retryBaseMs: 500, // first retry after 0.25-0.5 s, doubling up to retryMaxMs
  retryMaxMs: 30000,
  maxQueued: 1000, // beyond it the oldest queued events are dropped
};

let sdk = null;
let listening = false;

/**
 * Start the SDK. `endpoint`: the collector's beacon URL
 * (`https://collector.shop.example/events/beacon`); `writeKey`: a publishable write key;
 * `userBinding`: `{userId, signature}` signed by the shop's backend for a logged-in user
 * (without it, events are an anonymous visitor's, under `anonymous:<session id>`).
 * Options: batchSize, flushIntervalMs, maxAttempts, retryBaseMs, retryMaxMs, maxQueued.
 */
export function init(options) {
  const { endpoint, writeKey, userBinding = null } = options || {};
  if (!endpoint || !writeKey) {
    throw new TypeError("recsys.init: endpoint and writeKey are required");
  }
  if (userBinding && (!userBinding.userId || !userBinding.signature)) {
    throw new TypeError("recsys.init: userBinding needs userId and signature");
  }
  const url = new URL(endpoint, location.href);
  url.searchParams.set("key", writeKey);
  const config = { ...DEFAULTS };
  for (const name of Object.keys(DEFAULTS)) {
    if (Number.isFinite(options[name]) && options[name] > 0) config[name] = options[name];
  }
  if (sdk) clearTimeout(sdk.timer);
  sdk = {
    config, url: url.toString(), binding: userBinding, queue: [], timer: null,
    unanswered: new Set(), // batches sent or waiting for a retry, not yet answered 2xx/4xx
  };
  if (!listening) {
    listening = true;
    addEventListener("pagehide", handOver);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") handOver();
    });
  }
  // events a previous page of this tab could not hand over: sent again with their ids
  const pending = storage.take(PENDING_KEY);
  if (Array.isArray(pending) && pending.length) enqueue(pending);
}

/**
 * Queue one event: `eventType` (view, click, add_to_cart, remove_from_cart, purchase,
 * rating, search, or an alias the collector knows) and its `properties` (product_id,
 * price, category, brand, rating, query, source, recommendation_id; other fields are kept
 * in the lake's `extra`). Returns the event's id.
 */
export function track(eventType, properties = {}) {
  if (!sdk) throw new Error("recsys.track: call recsys.init first");
  if (typeof eventType !== "string" || !eventType) {
    throw new TypeError("recsys.track: eventType must be a non-empty string");
  }
  const now = Date.now();
  const session = currentSession(now);
  const event = {
    event_id: uuid(),
    user_id: sdk.binding ? String(sdk.binding.userId) : `anonymous:${session.id}`,
    session_id: session.id,
    event_type: eventType,
    timestamp: now,
    context: context(now, session),
    properties: { ...properties },
  };
  if (sdk.binding) event.user_signature = sdk.binding.signature;
  if (byteLength(JSON.stringify(event)) > MAX_REQUEST_BYTES) {
    console.warn("recsys: event dropped: larger than one request may be", event.event_id);
    return event.event_id;
  }
  enqueue([event]);
  return event.event_id;
}

/** Send every queued event now; resolves once each batch is answered (or set to retry). */
export function flush() {
  if (!sdk) return Promise.resolve();
  clearTimeout(sdk.timer);
  sdk.timer = null;
  const sends = [];
  while (sdk.queue.length) sends.push(send(sdk, { events: takeBatch(sdk), attempts: 0 }));
  return Promise.all(sends).then(() => undefined);
}

function enqueue(events) {
  const { queue, config } = sdk;
  queue.push(...events);
  if (queue.length > config.maxQueued) {
    const dropped = queue.splice(0, queue.length - config.maxQueued);
    console.warn(`recsys: ${dropped.length} queued events dropped (maxQueued)`);
  }
  if (queue.length >= config.batchSize) flush();
  else if (sdk.timer === null) sdk.timer = setTimeout(flush, config.flushIntervalMs);
}

function takeBatch(state, limit = state.config.batchSize) {
  const batch = [];
  let bytes = 2;
  while (state.queue.length && batch.length < limit) {
    const size = byteLength(JSON.stringify(state.queue[0])) + 1;
    if (batch.length && bytes + size > MAX_REQUEST_BYTES) break;
    batch.push(state.queue.shift());
    bytes += size;
  }
  return batch;
}

async function send(state, batch) {
  state.unanswered.add(batch);
  let status = 0;
  let retryAfter = null;
  let answer = null;
  try {
    const response = await fetch(state.url, {
      method: "POST",
      body: JSON.stringify(batch.events),
      headers: { "Content-Type": "text/plain;charset=UTF-8" }, // no CORS preflight
      keepalive: true, // finishes even if the page is left meanwhile
      credentials: "omit",
    });
    status = response.status;
    retryAfter = Number.parseInt(response.headers.get("Retry-After"), 10);
    if (status >= 400) answer = await response.json().catch(() => null);
  } catch {
    status = 0; // offline, refused, or no CORS grant to read the answer
  }
  batch.attempts += 1;
  if (!RETRYABLE.has(status)) {
    state.unanswered.delete(batch);
    if (status === 422) console.warn("recsys: events refused by the collector", answer);
    else if (status >= 300) console.warn(`recsys: events dropped: ${status}`, answer);
    return;
  }
  if (batch.attempts >= state.config.maxAttempts) {
    state.unanswered.delete(batch);
    console.warn(`recsys: ${batch.events.length} events dropped after ${batch.attempts} tries`);
    return;
  }
  const backoff = Math.min(state.config.retryMaxMs,
    state.config.retryBaseMs * 2 ** (batch.attempts - 1)) * (0.5 + Math.random() / 2);
  const wait = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : backoff;
  batch.beaconed = false; // failed again since a copy was beaconed: copy it at the next hide
  await new Promise((resolve) => { setTimeout(resolve, wait); });
  await send(state, batch);
}

/** The page is hidden or left: beacon what is queued, and a copy of every unanswered batch
 * (the same ids: stored once if both arrive). What the browser will not take waits in
 * sessionStorage for this tab's next page. */
function handOver() {
  if (!sdk) return;
  clearTimeout(sdk.timer);
  sdk.timer = null;
  const copies = [];
  for (const batch of sdk.unanswered) {
    if (!batch.beaconed) copies.push(...batch.events);
    batch.beaconed = true;
  }
  const state = { config: sdk.config, queue: [...copies, ...sdk.queue] };
  sdk.queue = [];
  const refused = [];
  while (state.queue.length) {
    const events = takeBatch(state, Infinity);
    const sent = navigator.sendBeacon
      && navigator.sendBeacon(sdk.url, new Blob([JSON.stringify(events)],
        { type: "text/plain;charset=UTF-8" }));
    if (!sent) refused.push(...events);
  }
  if (refused.length) {
    const pending = storage.take(PENDING_KEY);
    storage.put(PENDING_KEY, [...(Array.isArray(pending) ? pending : []), ...refused]
      .slice(-sdk.config.maxQueued));
    enqueue(refused); // and again from this page, should it stay
  }
}

function currentSession(now) {
  let session = storage.get(SESSION_KEY);
  const campaign = campaignOf(location.search);
  if (!session || typeof session.id !== "string" || !(now - session.last <= SESSION_IDLE_MS)) {
    session = { id: uuid(), last: now, campaign };
  } else if (campaign) {
    session.campaign = campaign; // a campaign link followed within the session
  }
  session.last = now;
  storage.put(SESSION_KEY, session);
  return session;
}

function context(now, session) {
  const time = new Date(now);
  const found = {
    page: { url: withoutQuery(location.href) },
    device: { type: deviceType() },
    temporal: {
      time_of_day: TIMES_OF_DAY[Math.floor(time.getHours() / 6)],
      day_of_week: DAYS[time.getDay()],
    },
  };
  const referrer = document.referrer && withoutQuery(document.referrer);
  if (referrer) found.page.referrer = referrer;
  if (session.campaign) found.campaign = session.campaign;
  return found;
}

/** utm_source and utm_campaign of a query string (the fields the event format has). */
function campaignOf(search) {
  const params = new URLSearchParams(search);
  const found = {};
  for (const name of ["utm_source", "utm_campaign"]) {
    const value = params.get(name);
    if (value) found[name] = value.replace(CONTROL, "").slice(0, 256);
  }
  return Object.keys(found).length ? found : null;
}

/** A URL without its query and fragment: they can hold search terms, e-mail addresses or
 * tokens, and campaigns are read from it separately. */
function withoutQuery(address) {
  try {
    const url = new URL(address);
    return (url.origin + url.pathname).slice(0, 2048);
  } catch {
    return undefined;
  }
}

/** mobile, tablet or desktop from the pointer and the screen (never the user agent). */
function deviceType() {
  const touch = typeof matchMedia === "function" && matchMedia("(pointer: coarse)").matches;
  if (!touch) return "desktop";
  return Math.min(screen.width, screen.height) >= 600 ? "tablet" : "mobile";
}

function uuid() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // crypto.randomUUID needs a secure context; getRandomValues does not
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)}`;
}

function byteLength(text) {
  return new TextEncoder().encode(text).length;
}

/** sessionStorage, or memory where it is unavailable (storage disabled, sandboxed frame). */
const storage = (() => {
  const memory = new Map();
  const store = (() => {
    try {
      return globalThis.sessionStorage || null;
    } catch {
      return null;
    }
  })();
  const get = (key) => {
    try {
      const text = store ? store.getItem(key) : memory.get(key);
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  };
  const put = (key, value) => {
    const text = JSON.stringify(value);
    try {
      if (store) store.setItem(key, text);
      else memory.set(key, text);
    } catch {
      memory.set(key, text);
    }
  };
  const take = (key) => {
    const value = get(key);
    try {
      if (store) store.removeItem(key);
    } catch { /* nothing stored there */ }
    memory.delete(key);
    return value;
  };
  return { get, put, take };
})();
