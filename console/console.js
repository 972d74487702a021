// The roomcast live console: start a sample job, watch its progress and log tail, see
// environment status tiles and who is watching each. Everything goes through the
// roomcast/client SDK, which resumes every subscription with `since` after a reconnect, so the
// log continues without a gap.
import { createClient } from "/console/sdk/roomcast-client.js";

const ENVIRONMENTS = ["dev", "staging", "prod"];
const MAX_LINES = 3000;
const HISTORY = 1000;
const WATCHERS_SHOWN = 3;
// Counts-only presence answers (too many users for a list) are read again this long after a change.
const COUNTS_REREAD_MS = 2000;
const $ = (id) => document.getElementById(id);

let client;
let token;
let watching; // { jobId, channel, lastN, gaps, lines, next, stateOffset, paused }
let everDisconnected = false;
let bannerTimer;
let jobsRefresher;
const watchers = new Map(); // channel -> { channel, el, members, count, missed, seq, timer }

function showBanner(text, kind = "warn", hideAfterMs = 0) {
  const banner = $("banner");
  banner.textContent = text;
  banner.dataset.kind = kind;
  banner.hidden = false;
  clearTimeout(bannerTimer);
  if (hideAfterMs > 0) bannerTimer = setTimeout(() => (banner.hidden = true), hideAfterMs);
}

function setPill(el, state, text = state) {
  el.dataset.state = state;
  el.textContent = text;
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok)
    throw new Error(
      json.error ? `${json.error.code} ${json.error.reason}: ${json.error.message}` : `HTTP ${res.status}`,
    );
  return json;
}

// --- token -------------------------------------------------------------------------------

function initialToken() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    localStorage.setItem("roomcast.token", fromHash);
    history.replaceState(null, "", location.pathname + location.search);
    return fromHash;
  }
  return localStorage.getItem("roomcast.token") ?? undefined;
}

function askForToken(message) {
  $("token-panel").hidden = false;
  $("app").hidden = true;
  const error = $("token-error");
  error.hidden = !message;
  error.textContent = message ?? "";
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) return;
  localStorage.setItem("roomcast.token", value);
  start(value);
});

// --- connection --------------------------------------------------------------------------

function start(newToken) {
  client?.close();
  token = newToken;
  $("token-panel").hidden = true;
  $("app").hidden = false;
  client = createClient({ url: location.origin, token, transports: ["websocket", "polling"] });
  client.on("welcome", (welcome) => {
    setPill($("connection"), "online", `online · ${welcome.node}`);
    if (everDisconnected) {
      showBanner(`Reconnected to ${welcome.node}: subscriptions resumed where they stopped.`, "ok", 5000);
      // Joins and leaves during the disconnect were missed (and are never replayed).
      for (const channel of watchers.keys()) readWatchers(channel);
    }
  });
  client.on("disconnected", (reason) => {
    everDisconnected = true;
    setPill($("connection"), "reconnecting", "reconnecting…");
    showBanner(`Connection lost (${reason}). Reconnecting… the log will resume without a gap.`);
  });
  client.on("closing", (closing) =>
    showBanner(`The server is closing this connection (${closing.code} ${closing.reason}); reconnecting…`),
  );
  client.on("error", (error) => {
    if (error.code === 4401 || error.code === 4403) {
      localStorage.removeItem("roomcast.token");
      askForToken(`The token was refused (${error.code} ${error.reason ?? ""}): ${error.message}`);
    }
  });
  client.on("unsubscribed", (notice) => {
    // history_lost: the SDK subscribes again at once.
    if (notice.reason === "history_lost") readWatchers(notice.channel);
    else forgetWatchers(notice.channel);
    if (watching && notice.channel === watching.channel) marker(`the channel ended (${notice.code} ${notice.reason})`);
  });
  client.on("lag", (lag) => {
    if (watching && lag.channel === watching.channel) marker(`${lag.skipped} events could not be delivered (lag)`);
  });
  client.connect();
  for (const env of ENVIRONMENTS) subscribeEnvironment(env);
  // A new token (the last one expired or was refused): the followed job goes on, on this connection.
  if (watching) watch(watching.jobId);
  refreshJobs();
  clearInterval(jobsRefresher);
  jobsRefresher = setInterval(refreshJobs, 3000);
}

// --- environments ------------------------------------------------------------------------

function tileOf(env) {
  let tile = document.querySelector(`.tile[data-env="${env}"]`);
  if (!tile) {
    tile = document.createElement("div");
    tile.className = "tile";
    tile.dataset.env = env;
    tile.innerHTML = `<h3><span></span><span class="pill">waiting</span></h3><dl></dl><p class="watching muted" hidden></p>`;
    tile.querySelector("h3 span").textContent = env;
    $("env-tiles").append(tile);
    const option = document.createElement("option");
    option.value = option.textContent = env;
    $("env-select").append(option);
  }
  return tile;
}

function renderEnvironment(env, status) {
  const tile = tileOf(env);
  if (!status || typeof status !== "object") return;
  const label = String(status.status ?? "unknown");
  setPill(tile.querySelector(".pill"), label);
  const rows = Object.entries(status.metrics ?? {}).map(([k, v]) => [k, v]);
  if (status.version) rows.unshift(["version", status.version]);
  if (status.ts) rows.push(["updated", new Date(status.ts).toLocaleTimeString([], { hour12: false })]);
  const dl = tile.querySelector("dl");
  dl.replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = String(v);
      return [dt, dd];
    }),
  );
}

function subscribeEnvironment(env) {
  const channel = `env:${env}:status`;
  followWatchers(channel, tileOf(env).querySelector(".watching"));
  client
    .subscribe(channel, (event) => renderEnvironment(env, event.data), {
      onReset: ({ snapshot }) => renderEnvironment(env, snapshot),
      onPresence: presenceChanged,
    })
    .then((answer) => {
      renderEnvironment(env, answer.snapshot);
      readWatchers(channel);
    })
    .catch((err) => {
      forgetWatchers(channel);
      setPill(tileOf(env).querySelector(".pill"), "failed", err.message.slice(0, 40));
    });
}

// --- who is watching ---------------------------------------------------------------------

// Per channel, its members (user -> name shown) from a presence() answer, kept live by the
// join/leave callbacks. An answer may predate events that arrived before it: those are
// replayed over it. Counts-only answers cannot take a join or leave: they are read again.
function followWatchers(channel, el) {
  forgetWatchers(channel);
  watchers.set(channel, { channel, el, members: new Map(), count: 0, missed: undefined, seq: 0, timer: undefined });
}

function forgetWatchers(channel) {
  const state = watchers.get(channel);
  if (!state) return;
  clearTimeout(state.timer);
  state.el.hidden = true;
  watchers.delete(channel);
}

async function readWatchers(channel) {
  const state = watchers.get(channel);
  if (!state) return;
  const seq = ++state.seq;
  state.missed = [];
  let answer;
  try {
    answer = await client.presence(channel);
  } catch {
    if (seq === state.seq) state.missed = undefined;
    return; // read again at the next reconnect
  }
  if (watchers.get(channel) !== state || seq !== state.seq) return; // a newer read is on its way
  state.count = answer.count;
  state.members = answer.members && new Map(answer.members.map((m) => [m.user, m.info?.name ?? m.user]));
  const missed = state.missed;
  state.missed = undefined;
  missed.forEach((event) => applyPresence(state, event));
  state.el.hidden = false;
  renderWatchers(state);
}

function presenceChanged(event) {
  const state = watchers.get(event.channel);
  if (!state) return;
  state.missed?.push(event);
  applyPresence(state, event);
  renderWatchers(state);
}

function applyPresence(state, event) {
  if (!state.members) {
    state.timer ??= setTimeout(() => {
      state.timer = undefined;
      readWatchers(state.channel);
    }, COUNTS_REREAD_MS);
  } else if (event.action === "join") state.members.set(event.user, event.info?.name ?? event.user);
  else state.members.delete(event.user);
}

function renderWatchers({ el, members, count }) {
  if (!members) {
    el.textContent = `${count} watching`;
    return;
  }
  const names = [...members.values()];
  const more = names.length - WATCHERS_SHOWN;
  el.textContent =
    names.length === 0
      ? "nobody watching"
      : `watching: ${names.slice(0, WATCHERS_SHOWN).join(", ")}${more > 0 ? ` (+${more} more)` : ""}`;
}

// --- jobs --------------------------------------------------------------------------------

$("job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const name = form.get("name");
  const seconds = Number(form.get("seconds"));
  const data =
    name === "sample.build"
      ? { lines: Number(form.get("lines")), durationMs: seconds * 1000, failAttempts: Number(form.get("failAttempts")) }
      : { durationMs: seconds * 1000 };
  $("job-error").hidden = true;
  try {
    const created = await api("POST", "/v1/jobs", { name, envId: form.get("envId"), data });
    watch(created.jobId);
    refreshJobs();
  } catch (err) {
    $("job-error").hidden = false;
    $("job-error").textContent = err.message;
  }
});

$("watch-form").addEventListener("submit", (event) => {
  event.preventDefault();
  watch(new FormData(event.target).get("jobId").trim());
});

$("cancel-job").addEventListener("click", async () => {
  if (!watching) return;
  try {
    const answer = await api("DELETE", `/v1/jobs/${watching.jobId}`);
    marker(`cancel requested: ${answer.state}`);
  } catch (err) {
    marker(`cancel failed: ${err.message}`);
  }
});

async function refreshJobs() {
  try {
    const stats = await api("GET", "/v1/jobs/stats");
    const list = $("job-list");
    list.replaceChildren(
      ...(stats.active.length === 0
        ? [Object.assign(document.createElement("li"), { className: "muted", textContent: "none" })]
        : stats.active.map((job) => {
            const li = document.createElement("li");
            const a = document.createElement("a");
            a.textContent = job.jobId;
            a.addEventListener("click", () => watch(job.jobId));
            li.append(
              a,
              ` ${job.name}${job.envId ? ` on ${job.envId}` : ""}: ${Math.round(job.progress)}%${job.status ? ` (${job.status})` : ""}`,
            );
            return li;
          })),
    );
  } catch {
    // shown again on the next refresh
  }
}

function currentFilter() {
  const filter = {};
  if ($("filter-stream").value) filter.stream = $("filter-stream").value;
  if ($("filter-level").value) filter.level = $("filter-level").value;
  if ($("filter-contains").value.trim()) filter.contains = $("filter-contains").value.trim();
  return Object.keys(filter).length > 0 ? filter : undefined;
}

for (const id of ["filter-stream", "filter-level", "filter-contains"]) {
  $(id).addEventListener("change", () => {
    if (!watching) return;
    client.setFilter(watching.channel, currentFilter()).then(
      () => marker(`filter: ${JSON.stringify(currentFilter() ?? {})}`),
      (err) => marker(`filter refused: ${err.message}`),
    );
  });
}

$("pause").addEventListener("click", async () => {
  if (!watching) return;
  const button = $("pause");
  button.disabled = true;
  try {
    if (watching.paused) {
      await client.resume(watching.channel);
      watching.paused = false;
      marker("resumed: what was missed follows from history");
      readWatchers(watching.channel); // no joins nor leaves come while paused
    } else {
      await client.pause(watching.channel);
      watching.paused = true;
      marker("paused");
    }
  } finally {
    button.textContent = watching.paused ? "Resume" : "Pause";
    button.disabled = false;
  }
});

function setProgress(value) {
  const percent = Math.max(0, Math.min(100, Math.round(value)));
  $("progress").setAttribute("aria-valuenow", String(percent));
  $("progress-bar").style.width = `${percent}%`;
  $("progress-text").textContent = `${percent}%`;
}

function applySnapshot(snapshot) {
  if (!snapshot) return;
  setPill($("job-state"), snapshot.state);
  setProgress(snapshot.progress ?? 0);
  $("job-attempt").textContent = `attempts made: ${snapshot.attemptsMade}`;
  $("job-status").textContent = snapshot.status ? `step: ${snapshot.status}` : "";
  if (snapshot.result !== undefined) $("job-result").textContent = `result: ${JSON.stringify(snapshot.result)}`;
  if (snapshot.failedReason) $("job-result").textContent = `failed: ${snapshot.failedReason}`;
}

function lineElement(line) {
  const div = document.createElement("div");
  div.className = `line ${line.stream}${line.level ? ` ${line.level}` : ""}`;
  div.dataset.n = String(line.n);
  const n = document.createElement("span");
  n.className = "n";
  n.textContent = String(line.n);
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = line.text;
  div.append(n, text);
  return div;
}

function appendToLog(nodes) {
  const log = $("log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 30;
  log.append(...nodes);
  while (log.childElementCount > MAX_LINES) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function marker(text) {
  const div = document.createElement("div");
  div.className = "marker";
  div.textContent = `— ${text}`;
  appendToLog([div]);
}

// Gaps are line numbers never received, whatever the filter. A job's lines are numbered from 1
// with no hole (across attempts too), and a `log` event carries a contiguous batch of them: the
// `lines` the filter kept plus `filtered` more it removed. So each batch starts where the one
// before ended, and `next` bounds that number: a range [lo, hi] while filtered batches leave it
// open (one unfiltered line pins it). A batch whose kept lines cannot start there skipped lines.
function receiveBatch(lines, filtered) {
  const size = lines.length + filtered;
  const next = watching.next;
  if (lines.length > 0) {
    // Where this batch can start, given the numbers of its first and last kept lines.
    const lo = lines[lines.length - 1].n - size + 1;
    const hi = lines[0].n;
    if (lo > next.hi) watching.gaps++;
    if (lo > next.hi || hi < next.lo) {
      // After a gap (or history replayed after one), the batches go on from here.
      next.lo = lo;
      next.hi = hi;
    } else {
      next.lo = Math.max(next.lo, lo);
      next.hi = Math.min(next.hi, hi);
    }
  }
  next.lo += size;
  next.hi += size;
}

function appendLines(lines, filtered) {
  receiveBatch(lines, filtered);
  for (const line of lines) if (line.n > watching.lastN) watching.lastN = line.n;
  watching.lines += lines.length;
  appendToLog(lines.map(lineElement));
  $("log-count").textContent =
    `${watching.lines} lines shown, last #${watching.lastN}${watching.gaps > 0 ? `, ${watching.gaps} gaps` : ", no gaps"}`;
  $("log-count").dataset.gaps = String(watching.gaps);
}

function onJobEvent(event) {
  watching.stateOffset = event.offset;
  const data = event.data ?? {};
  switch (event.type) {
    case "state":
      setPill($("job-state"), data.state);
      $("job-attempt").textContent = data.attempt ? `attempt ${data.attempt}` : `attempts made: ${data.attemptsMade}`;
      if (data.status) $("job-status").textContent = `step: ${data.status}`;
      if (data.state === "active" && data.restarted)
        marker(
          `attempt ${data.attempt} starts (${data.restarted === "retry" ? "retry after a failure" : "its last worker stopped"})`,
        );
      if (data.state === "active" && !data.status) setProgress(0);
      if (data.state === "retrying")
        marker(`attempt failed: ${data.failedReason}; retrying in ${((data.retryInMs ?? 0) / 1000).toFixed(1)} s`);
      if (data.state === "stalled") marker("the worker running this job stopped; another worker takes it over");
      if (data.state === "queued" && data.reason) marker(`back in the queue (${data.reason})`);
      break;
    case "progress":
      setProgress(data.progress);
      break;
    case "log":
      appendLines(data.lines ?? [], data.filtered ?? 0);
      break;
    case "done":
      setPill($("job-state"), data.state);
      if (data.state === "completed") setProgress(100);
      $("job-result").textContent =
        data.state === "completed"
          ? `result: ${JSON.stringify(data.result)}`
          : data.state === "failed"
            ? `failed: ${data.failedReason}`
            : "cancelled";
      marker(
        `job ${data.state}; its channel stays until ${new Date(data.expiresAt).toLocaleTimeString([], { hour12: false })}`,
      );
      refreshJobs();
      break;
  }
}

async function watch(jobId) {
  if (!jobId) return;
  if (watching) {
    client.unsubscribe(watching.channel).catch(() => undefined);
    forgetWatchers(watching.channel);
  }
  const channel = `job:${jobId}`;
  // Before any batch, the next one may start anywhere from line 1 (a late subscriber's history starts mid-job).
  watching = {
    jobId,
    channel,
    lastN: 0,
    gaps: 0,
    lines: 0,
    next: { lo: 1, hi: Infinity },
    stateOffset: 0,
    paused: false,
  };
  $("job").hidden = false;
  $("job-id").textContent = jobId;
  $("log").replaceChildren();
  $("job-result").textContent = "";
  $("pause").textContent = "Pause";
  setProgress(0);
  const mine = watching;
  followWatchers(channel, $("job-watching"));
  try {
    const answer = await client.subscribe(channel, (event) => mine === watching && onJobEvent(event), {
      history: HISTORY,
      filter: currentFilter(),
      onReset: ({ snapshot, events }) => {
        if (mine !== watching) return;
        marker("history could not fill the gap: reloaded the job's state");
        applySnapshot(snapshot);
        events.forEach(onJobEvent);
      },
      onPresence: presenceChanged,
    });
    // The snapshot is the state at the answer: newer live events win over it.
    if (mine === watching && answer.offset >= watching.stateOffset) applySnapshot(answer.snapshot);
    if (mine === watching) readWatchers(channel);
  } catch (err) {
    if (mine === watching) forgetWatchers(channel);
    marker(`cannot watch ${jobId}: ${err.message}`);
  }
}

const saved = initialToken();
if (saved) start(saved);
else askForToken();
