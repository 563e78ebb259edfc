// The gallery: upload through the API (presigned POST, multipart for big files) and watch
// the pipeline work. Plain JavaScript, no build step, no dependencies.
"use strict";

const API_KEY = document.querySelector('meta[name="imgpipe-api-key"]').content;
// A web app signs its users in and sends their token; the local stack's issuer plays the
// provider. The token's subject is the uploader of what this page uploads.
const TOKEN_URL = document.querySelector('meta[name="imgpipe-token-url"]').content;
const TOKEN_SECRET = document.querySelector('meta[name="imgpipe-token-secret"]').content;
const TOKEN_REFRESH_MS = 10 * 60 * 1000; // tokens live an hour: fetched again well before
let token = null; // { value, at }
// Bytes; below this one presigned POST is enough. `?multipart_from=N` changes it (tests).
const MULTIPART_FROM = Number(new URLSearchParams(location.search).get("multipart_from"))
  || 32 * 1024 * 1024;
const PART_UPLOADS = 3; // parts of one file in flight at once
const POLL_MS = 1500;
const FIRST_PAGE = 60; // cards read on load
const NEWEST_MIN = 2; // an idle poll reads this many of the newest images
const NEWEST_MAX = 50;
const WINDOW_MAX = 100; // records one poll reads newest first, at most
const MAX_LIMIT = 200; // the API's page size limit
const FEW = 4; // up to this many single reads; more: one listing of what is processing
// What this build accepts (processor/core/formats.py), written into the page by the server.
const FORMATS = JSON.parse(document.getElementById("imgpipe-formats").textContent);
const TYPES = FORMATS.types; // file extension -> Content-Type
const ACCEPTED_TYPES = FORMATS.content_types;

const $ = (selector) => document.querySelector(selector);
const records = new Map(); // id -> latest record from GET /images
const watching = new Map(); // id -> upload row waiting for the image's final status
let loaded = false; // the first page has been read
let newestAsk = NEWEST_MIN;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function contentType(file) {
  if (ACCEPTED_TYPES.includes(file.type)) return file.type;
  const ext = file.name.split(".").pop().toLowerCase();
  return TYPES[ext] || file.type || "application/octet-stream";
}

function bytes(n) {
  if (n == null) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

// --- the API ---------------------------------------------------------------------------

async function authorization() {
  if (!TOKEN_URL) return { "x-api-key": API_KEY };
  if (!token || Date.now() - token.at > TOKEN_REFRESH_MS) {
    const response = await fetch(TOKEN_URL, {
      cache: "no-store", headers: { "x-imgpipe-gallery": TOKEN_SECRET },
    });
    if (!response.ok) throw new Error(`sign-in failed: ${response.status}`);
    token = { value: (await response.json()).access_token, at: Date.now() };
  }
  return { authorization: `Bearer ${token.value}` };
}

async function api(path, { method = "GET", body, params } = {}) {
  const url = new URL(path, location.origin);
  if (params) for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const headers = await authorization();
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    // RFC 9457 problem details: say what the API said.
    const fields = (data.errors || []).map((e) => `${e.loc.slice(1).join(".")}: ${e.msg}`);
    const error = new Error([data.detail || data.title || response.statusText, ...fields].join(" — "));
    error.status = response.status;
    throw error;
  }
  return data;
}

// XMLHttpRequest, not fetch: only it reports upload progress.
function send(method, url, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded);
    xhr.onload = () => (xhr.status < 300 ? resolve(xhr)
      : reject(new Error(s3Error(xhr.responseText) || `storage answered ${xhr.status}`)));
    xhr.onerror = () => reject(new Error("network error while uploading"));
    xhr.send(body);
  });
}

function s3Error(xml) {
  const match = /<Message>([^<]*)<\/Message>/.exec(xml || "");
  return match ? match[1] : "";
}

async function uploadPost(file, type, progress) {
  const form = await api("/uploads", {
    method: "POST", body: { filename: file.name, content_type: type, size: file.size },
  });
  const data = new FormData();
  for (const [name, value] of Object.entries(form.fields)) data.append(name, value);
  data.append("file", file); // last: S3 ignores fields after the file
  await send("POST", form.url, data, progress);
  return form.id;
}

async function uploadMultipart(file, type, progress) {
  const start = await api("/uploads/multipart", {
    method: "POST", body: { filename: file.name, content_type: type, size: file.size },
  });
  const base = `/uploads/multipart/${encodeURIComponent(start.upload_id)}`;
  const sent = new Map(); // part number -> bytes sent so far
  const report = () => progress([...sent.values()].reduce((a, b) => a + b, 0));
  try {
    const numbers = Array.from({ length: start.part_count }, (_, i) => i + 1);
    const etags = [];
    for (let i = 0; i < numbers.length; i += start.max_parts_per_request) {
      const batch = numbers.slice(i, i + start.max_parts_per_request);
      const { parts } = await api(`${base}/parts`, {
        method: "POST", body: { key: start.key, size: file.size, part_numbers: batch },
      });
      const queue = [...parts];
      const worker = async () => {
        for (let part = queue.shift(); part; part = queue.shift()) {
          const from = (part.part_number - 1) * start.part_size;
          const blob = file.slice(from, Math.min(from + start.part_size, file.size));
          const xhr = await send("PUT", part.url, blob, (n) => { sent.set(part.part_number, n); report(); });
          sent.set(part.part_number, blob.size);
          report();
          // Needs the bucket's CORS rule to expose ETag.
          etags.push({ part_number: part.part_number, etag: xhr.getResponseHeader("ETag") });
        }
      };
      await Promise.all(Array.from({ length: PART_UPLOADS }, worker));
    }
    etags.sort((a, b) => a.part_number - b.part_number);
    const done = await api(`${base}/complete`, {
      method: "POST", body: { key: start.key, parts: etags },
    });
    return done.id;
  } catch (error) {
    api(base, { method: "DELETE", params: { key: start.key } }).catch(() => {});
    throw error;
  }
}

function uploadRow(file) {
  const bar = el("progress", { max: String(file.size || 1), value: "0" });
  const state = el("span", { class: "state", text: "starting…" });
  const row = el("li", {}, el("span", { class: "name", text: file.name, title: file.name }), bar, state);
  $("#uploads").prepend(row);
  return {
    progress: (n) => { bar.value = n; state.textContent = `uploading ${bytes(n)} of ${bytes(file.size)}`; },
    set(text, kind = "") { state.textContent = text; state.className = `state ${kind}`; },
    done() { bar.value = bar.max; },
  };
}

async function upload(file) {
  const row = uploadRow(file);
  const type = contentType(file);
  if (file.size === 0) {
    row.set("refused: the file is empty (0 bytes)", "failed");
    return;
  }
  try {
    const id = file.size >= MULTIPART_FROM
      ? await uploadMultipart(file, type, row.progress)
      : await uploadPost(file, type, row.progress);
    row.done();
    row.set("uploaded; processing…");
    watching.set(id, row); // the next poll finds it among the newest
  } catch (error) {
    row.set(`refused: ${error.message}`, "failed");
  }
}

// --- the grid ------------------------------------------------------------------------------

const fileName = (record) => (record.source_key || "").split("/").pop() || record.id;

// An animated image plays (its WebP renditions are animated) unless the visitor asked for
// less motion; then, as in a browser without WebP, the still poster (JPEG or PNG) shows.
const stillsOnly = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

function thumbUrl(record) {
  const thumbs = record.renditions.filter((r) => r.name === "thumb");
  const still = stillsOnly() && record.animated;
  const pick = thumbs.find((r) => r.format === "webp" && !(still && r.animated))
    || thumbs.find((r) => !r.animated) || thumbs[0];
  return pick ? pick.url : record.src;
}

const motion = (record) => record.animated
  ? [`${record.frames} frames`, record.duration_ms && `${(record.duration_ms / 1000).toFixed(1)} s`,
     record.loop === 0 ? "loops" : record.loop > 1 ? `plays ${record.loop}×` : "plays once",
     record.still_reason && `kept still: ${record.still_reason.code}`].filter(Boolean).join(", ")
  : null;

function card(record) {
  const node = el("figure", { class: "card", tabindex: "0", "data-id": record.id });
  node.addEventListener("click", () => openDetail(record.id));
  node.addEventListener("keydown", (e) => e.key === "Enter" && openDetail(record.id));
  return node;
}

function fillCard(node, record) {
  node.dataset.status = record.status;
  const thumb = el("div", { class: "thumb" });
  if (record.dominant_color) thumb.style.background = record.dominant_color;
  const url = record.status === "done" ? thumbUrl(record) : null;
  if (url) {
    const img = el("img", { alt: fileName(record), loading: "lazy", decoding: "async" });
    img.addEventListener("load", () => img.classList.add("loaded"));
    img.src = url;
    thumb.append(img);
  } else if (record.status === "failed") {
    thumb.append(el("span", { "aria-hidden": "true", text: "!" }));
  }
  const caption = el("figcaption", {},
    el("span", { class: "title", text: fileName(record), title: fileName(record) }),
    el("span", { class: "meta" },
      el("span", { class: `badge ${record.status}`, text: record.status }),
      record.animated ? el("span", { class: "badge animated", text: "animated" }) : "",
      record.width ? `${record.width}×${record.height} ${record.format || ""}` : ""));
  if (record.error) {
    caption.append(el("span", { class: "reason", text: `${record.error.code}: ${record.error.message}` }));
  }
  node.replaceChildren(thumb, caption);
}

// --- what the gallery asks for ---------------------------------------------------------------
// Never the whole list again: reading every record on every poll made the local stack 15x
// slower while a gallery was open. One page on load, then per poll only what can have
// changed: the newest few, down to the oldest image still processing (new images and the ones
// that finished are the newest), and single reads for anything older still in progress. An
// idle poll reads one small page.

function cardNode(id) {
  return $("#grid").querySelector(`[data-id="${id}"]`);
}

// Newest first, as the API lists them: created_at, then id.
function newer(a, b) {
  return a.created_at === b.created_at ? a.id > b.id : a.created_at > b.created_at;
}

function place(node, record) {
  const grid = $("#grid");
  const next = [...grid.children].find((n) => {
    const other = records.get(n.dataset.id);
    return other && newer(record, other);
  });
  grid.insertBefore(node, next || null);
}

function forget(id) {
  records.delete(id);
  const node = cardNode(id);
  if (node) node.remove();
}

function upsert(record) {
  if (record.status === "deleted") {
    forget(record.id);
  } else {
    const before = records.get(record.id);
    records.set(record.id, record);
    let node = cardNode(record.id);
    if (!node) {
      node = card(record);
      place(node, record);
    }
    if (!before || before.updated_at !== record.updated_at || before.status !== record.status) {
      fillCard(node, record);
    }
  }
  const row = watching.get(record.id);
  if (row && record.status !== "processing") {
    watching.delete(record.id);
    if (record.status === "done") row.set(`done: ${record.width}×${record.height}`, "done");
    else row.set(`${record.status}: ${record.error ? record.error.message : ""}`, "failed");
  }
}

// Newest first, down to the first image already known and to the oldest one still processing:
// one page holds what arrived and what finished (they were created last). Returns the ids read.
async function readNewest() {
  const processing = [...records.values()].filter((r) => r.status === "processing");
  const oldest = processing.reduce((o, r) => (!o || newer(o, r) ? r : o), null);
  const span = oldest ? [...records.values()].filter((r) => !newer(oldest, r)).length : 0;
  const read = new Set();
  let cursor = null;
  let fresh = 0;
  let ask = Math.min(NEWEST_MAX, Math.max(newestAsk, span + NEWEST_MIN));
  for (;;) {
    const params = { limit: String(ask) };
    if (cursor) params.cursor = cursor;
    const page = await api("/images", { params });
    let reachedKnown = false;
    for (const record of page.data) {
      if (records.has(record.id)) reachedKnown = true;
      else fresh += 1;
      upsert(record);
      read.add(record.id);
    }
    const last = page.data[page.data.length - 1];
    const pastOldest = !oldest || (last && !newer(last, oldest));
    if ((reachedKnown && pastOldest) || !page.next || read.size >= WINDOW_MAX) break;
    cursor = page.next;
    ask = Math.min(NEWEST_MAX, ask * 2); // more arrived than asked for: twice as many next
  }
  // As many as arrived since the last poll, and a few more: one request when images flow in.
  newestAsk = Math.min(NEWEST_MAX, NEWEST_MIN + fresh);
  return read;
}

// Images still processing that readNewest did not reach (an old image reprocessed, or more
// in progress than one window): where are they now?
async function readInProgress(read) {
  const stale = [...records.values()].filter((r) => r.status === "processing" && !read.has(r.id));
  if (!stale.length) return;
  const still = new Set();
  if (stale.length > FEW) {
    const page = await api("/images", { params: { status: "processing", limit: String(MAX_LIMIT) } });
    for (const record of page.data) {
      still.add(record.id);
      if (records.has(record.id)) upsert(record);
    }
  }
  // The others have left "processing" (done, failed or deleted): read each once.
  const left = stale.filter((r) => !still.has(r.id));
  const one = async () => {
    for (let r = left.shift(); r; r = left.shift()) await readOne(r.id);
  };
  await Promise.all(Array.from({ length: Math.min(FEW, left.length) }, one));
}

async function readOne(id) {
  try {
    upsert(await api(`/images/${id}`));
  } catch (error) {
    if (error.status === 404) forget(id);
    else throw error;
  }
}

function summarise() {
  const counts = {};
  for (const r of records.values()) counts[r.status] = (counts[r.status] || 0) + 1;
  $("#summary").textContent = Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(" · ");
  $("#empty").hidden = records.size > 0;
}

async function refresh() {
  try {
    if (!loaded) {
      const page = await api("/images", { params: { limit: String(FIRST_PAGE) } });
      page.data.forEach(upsert);
      loaded = true;
    } else {
      await readInProgress(await readNewest());
    }
    $("#offline").hidden = true;
  } catch (error) {
    $("#offline").textContent = `The API is not answering: ${error.message}`;
    $("#offline").hidden = false;
  }
  summarise();
}

// One poll at a time, the next POLL_MS after the last ended: a slow answer never piles up.
async function poll() {
  if (!document.hidden) await refresh();
  setTimeout(poll, POLL_MS);
}

// --- the detail view -----------------------------------------------------------------------

let shown = null;

// Every allowed width up to the image's own (docs/sizes.md): the browser asks for the one
// the view needs, which the CDN makes on its first request; the eager ladder otherwise.
function detailPicture(record) {
  const onDemand = record.srcset_on_demand || {};
  const sets = Object.keys(onDemand).length ? onDemand : record.srcset;
  const picture = el("picture");
  // AVIF first (the fewest bytes at the same quality), but not for an animation: its AVIF
  // is a still, and a browser takes the first source it reads.
  if (sets.avif && !record.animated) {
    picture.append(el("source", { type: "image/avif", srcset: sets.avif, sizes: "60vw" }));
  }
  if (sets.webp) {
    // An animated image's WebP plays; with reduced motion asked for, the still shows.
    const source = { type: "image/webp", srcset: sets.webp, sizes: "60vw" };
    if (record.animated) source.media = "(prefers-reduced-motion: no-preference)";
    picture.append(el("source", source));
  }
  const fallback = sets.jpeg || sets.png;
  const img = el("img", { src: record.src, alt: fileName(record), width: String(record.width), height: String(record.height) });
  if (fallback) { img.srcset = fallback; img.sizes = "60vw"; }
  picture.append(img);
  return picture;
}

function openDetail(id) {
  const record = records.get(id);
  if (!record) return;
  shown = id;
  $("#detail-title").textContent = fileName(record);
  const frame = $("#detail-image");
  frame.style.background = record.dominant_color || "";
  frame.replaceChildren();
  if (record.status === "done" && record.src) {
    frame.append(detailPicture(record));
    if (!Object.keys(record.srcset_on_demand || {}).length) {
      // Listings leave out what the sizes made on demand need: the image's own read has it.
      api(`/images/${id}`).then((full) => {
        if (shown === id && $("#detail").open && full.status === "done" && full.src) {
          frame.replaceChildren(detailPicture(full));
        }
      }).catch(() => {});
    }
  } else {
    frame.append(el("p", { class: record.error ? "error" : "summary",
      text: record.error ? `${record.error.code}: ${record.error.message}` : record.status }));
  }
  const facts = [
    ["status", record.status],
    ["id", record.id],
    ["original", [record.format, record.width && `${record.width}×${record.height}`, bytes(record.bytes)].filter(Boolean).join(", ")],
    ["animation", motion(record)],
    ["colour", record.dominant_color],
    ["placeholder", record.placeholder],
    ["uploaded", record.created_at],
    ["updated", record.updated_at],
    ["source key", record.source_key],
  ];
  if (record.error) facts.splice(1, 0, ["error", `${record.error.code}: ${record.error.message}`]);
  $("#detail-facts").replaceChildren(...facts.filter(([, v]) => v).flatMap(([k, v]) => {
    const dd = el("dd", { text: v });
    if (k === "colour") dd.prepend(el("span", { class: "swatch", style: `background:${v}` }));
    return [el("dt", { text: k }), dd];
  }));
  $("#detail-renditions tbody").replaceChildren(...record.renditions.map((r) => el("tr", {},
    el("td", { text: r.name }),
    el("td", {}, el("a", { href: r.url, target: "_blank", rel: "noopener", text: r.animated ? `${r.format} (animated)` : r.format })),
    el("td", { text: `${r.width}×${r.height}` }),
    el("td", { text: bytes(r.bytes) }),
    // SSIMULACRA2 against the pixels it was encoded from (docs/engine.md, Scores)
    el("td", { class: "score", text: r.score == null ? "–" : r.score.toFixed(1) }))));
  $("#delete").disabled = record.status === "deleted";
  $("#reprocess").disabled = record.status === "deleted";
  if (!$("#detail").open) $("#detail").showModal();
}

async function act(button, action, after) {
  button.disabled = true;
  const id = shown;
  try {
    await action();
    $("#detail").close();
    after(id);
    summarise();
  } catch (error) {
    alert(error.message);
  } finally {
    button.disabled = false;
  }
}

// --- wiring --------------------------------------------------------------------------------

function start() {
  const drop = $("#drop");
  const take = (files) => [...files].forEach(upload);
  $("#picker").addEventListener("change", (e) => { take(e.target.files); e.target.value = ""; });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => { e.preventDefault(); take(e.dataTransfer.files); });
  // A file dropped next to the target should not navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  // Deleted: the card goes now. Reprocessed: followed like any image in progress.
  $("#delete").addEventListener("click", (e) => act(e.target,
    () => api(`/images/${shown}`, { method: "DELETE" }), forget));
  $("#reprocess").addEventListener("click", (e) => act(e.target,
    () => api(`/images/${shown}/reprocess`, { method: "POST" }),
    (id) => upsert({ ...records.get(id), status: "processing" })));

  poll();
}

start();
