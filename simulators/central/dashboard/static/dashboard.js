// The staff dashboard: redraws itself from each snapshot the server streams (server-sent
// events). No framework, no build step, no network beyond this server.
"use strict";

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function stateOf(device) {
  if (device.online === true) return ["online", "online"];
  if (device.online === false) return ["offline", "offline"];
  return ["unknown", "not seen"];
}

function drawDevices(devices) {
  const body = document.querySelector("#devices tbody");
  body.replaceChildren();
  for (const d of devices) {
    const [cls, label] = stateOf(d);
    const row = el("tr", { "data-device": d.device_id });
    row.append(el("td", {}, d.device_id), el("td", {}, d.kind || "?"));
    row.append(el("td", { class: cls }, label + (d.out_of_service ? " (out of service)" : "")));
    const depth = d.outbox_pending === null ? "–"
      : `${d.outbox_pending} pending, ${d.outbox_unconfirmed} unconfirmed`;
    row.append(el("td", {}, depth), el("td", { title: d.last_seen || "" }, d.last_seen_local || "–"));
    body.append(row);
  }
}

function drawFeed(feed) {
  const list = document.getElementById("feed");
  list.replaceChildren();
  for (const e of feed) {
    const item = el("li", { class: e.kind, "data-key": e.key });
    item.textContent = `${e.local_time} ${e.device_id} #${e.seq}: ${e.text}`;
    list.append(item);
  }
}

// A bar chart of 24 hourly values, drawn as SVG.
function drawChart(id, values) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 480 140");
  const top = Math.max(1, ...values);
  values.forEach((v, hour) => {
    const h = Math.round((v / top) * 110);
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", String(hour * 20 + 2));
    bar.setAttribute("y", String(120 - h));
    bar.setAttribute("width", "16");
    bar.setAttribute("height", String(h));
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `${hour}:00 — ${v}`;
    bar.append(tip);
    svg.append(bar);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", String(hour * 20 + 4));
    label.setAttribute("y", "134");
    label.textContent = String(hour);
    svg.append(label);
    if (v > 0) {
      const count = document.createElementNS(ns, "text");
      count.setAttribute("x", String(hour * 20 + 4));
      count.setAttribute("y", String(117 - h));
      count.textContent = String(v);
      svg.append(count);
    }
  });
  document.getElementById(id).replaceChildren(svg);
}

function drawGaps(gaps, totals) {
  const list = document.getElementById("gaps");
  list.replaceChildren();
  for (const g of gaps) list.append(el("li", {}, `${g.device_id}: ${g.first}–${g.last} (${g.size} missing)`));
  if (gaps.length === 0) list.append(el("li", {}, `none open (${totals.gaps_filled} filled)`));
}

function drawTotals(t) {
  const box = document.getElementById("totals");
  box.replaceChildren();
  box.className = "totals";
  const parts = [["events", t.events], ["duplicates dropped", t.duplicates], ["open gaps", t.open_gaps],
    ["rejected", t.rejected], ["exceptions", t.exceptions_open]];
  for (const [kind, n] of Object.entries(t.by_kind)) parts.push([kind, n]);
  for (const [name, n] of parts) box.append(el("span", { "data-total": name }, `${name}: ${n}`));
}

function draw(snap) {
  drawTotals(snap.totals);
  drawDevices(snap.devices);
  drawFeed(snap.feed);
  drawChart("chart-visitors", snap.charts.visitors);
  drawChart("chart-checkouts", snap.charts.checkouts);
  drawGaps(snap.gaps, snap.totals);
}

const conn = document.getElementById("conn");
const source = new EventSource("/api/stream");
source.addEventListener("open", () => { conn.textContent = "live"; });
source.addEventListener("error", () => { conn.textContent = "reconnecting…"; });
source.addEventListener("trouble", (e) => { conn.textContent = "central trouble: " + JSON.parse(e.data); });
source.addEventListener("snapshot", (e) => { conn.textContent = "live"; draw(JSON.parse(e.data)); });
