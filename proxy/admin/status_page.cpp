#include "proxy/admin/status_page.hpp"

namespace lbd::proxy {

namespace {

// The script builds every cell with textContent, never innerHTML: names come from the config
// and addresses from operators, and neither may inject markup into an operator's browser.
constexpr std::string_view kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lbd status</title>
<style>
  body { font: 12px/1.3 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 14px 18px; color: #1d232a; background: #f4f6f8; }
  h1 { font-size: 18px; margin: 0 0 6px; }
  h1 small { font-weight: normal; color: #5b6670; font-size: 13px; margin-left: 8px; }
  h2 { font-size: 14px; margin: 18px 0 4px; }
  h2 small { font-weight: normal; color: #5b6670; margin-left: 6px; }
  #process { color: #3a444d; margin-bottom: 4px; }
  #process span { margin-right: 16px; white-space: nowrap; }
  #process b { font-weight: 600; }
  #error { color: #b3261e; font-weight: 600; min-height: 1em; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 2px rgba(0,0,0,.08); margin-bottom: 4px; }
  th, td { border: 1px solid #d5dbe0; padding: 2px 5px; text-align: right; white-space: nowrap; }
  th { background: #3d4f63; color: #fff; font-weight: 600; }
  thead tr.group th { background: #2d3b4b; }
  td.name, th.name { text-align: left; }
  td.check { text-align: left; max-width: 140px; overflow: hidden; text-overflow: ellipsis; color: #3a444d; }
  tbody tr:nth-child(even) td { background: #f8fafb; }
  td.state { font-weight: 700; text-align: center; color: #fff; }
  tr[data-state="UP"] td.state { background: #2e9e44; }
  tr[data-state="DOWN"] td.state { background: #d93025; }
  tr[data-state="DRAIN"] td.state { background: #5f7a99; }
  tr[data-state="EJECTED"] td.state { background: #e8710a; }
  tr[data-state="DOWN"] td { background: #fdecea; }
  tr[data-state="EJECTED"] td { background: #fef3e6; }
  tr[data-state="DRAIN"] td { background: #eef2f7; }
  td.bad { color: #b3261e; font-weight: 600; }
  .legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; color: #fff; font-weight: 700; border-radius: 2px; }
  footer { color: #7a858f; margin-top: 14px; font-size: 12px; }
</style>
</head>
<body data-samples="0">
<h1>lbd <small id="version"></small></h1>
<div id="process">loading /stats&hellip;</div>
<div id="error"></div>
<div class="legend"><span style="background:#2e9e44">UP</span><span style="background:#d93025">DOWN</span><span style="background:#5f7a99">DRAIN</span><span style="background:#e8710a">EJECTED</span></div>
<h2>Listeners</h2>
<div id="listeners"></div>
<div id="clusters"></div>
<footer>Refreshed every 2 s from <a href="/stats">/stats</a>; also <a href="/metrics">/metrics</a>. Rates are the change between the last two samples.</footer>
<script>
"use strict";
var previous = null;  // {t: ms, listeners: {name: requests}, endpoints: {"cluster\nendpoint": requests}}
var samples = 0;

function el(tag, attrs, children) {
  var e = document.createElement(tag);
  if (attrs) for (var k in attrs) {
    if (k === "class") e.className = attrs[k];
    else if (k === "title") e.title = attrs[k];
    else e.setAttribute(k, attrs[k]);
  }
  (children || []).forEach(function (c) {
    e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  });
  return e;
}
function td(text, cls) { return el("td", cls ? {"class": cls} : null, [text]); }
function num(n) { return n.toLocaleString("en-US"); }
function bytes(n) {
  var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
function rate(now, before, dt) {
  if (before === undefined || dt <= 0) return "\u2013";
  var r = Math.max(0, now - before) / dt;
  return r < 10 ? r.toFixed(1) : num(Math.round(r));
}
function duration(s) {
  s = Math.max(0, Math.floor(s));
  var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}
function sum(o) { var t = 0; for (var k in o) t += o[k]; return t; }
function errCell(n) { return td(num(n), n > 0 ? "bad" : ""); }
function header(groups, cols) {
  var g = el("tr", {"class": "group"}, groups.map(function (x) { return el("th", {colspan: x[1], "class": x[2] || ""}, [x[0]]); }));
  var c = el("tr", null, cols.map(function (x, i) { return el("th", i === 0 ? {"class": "name"} : null, [x]); }));
  return el("thead", null, [g, c]);
}

function renderProcess(p) {
  document.getElementById("version").textContent = p.version + " \u00b7 " + p.driver;
  var box = document.getElementById("process");
  box.textContent = "";
  var items = [["workers", p.workers], ["uptime", duration(p.time - p.start_time)],
               ["config generation", p.config_generation],
               ["reloads", p.reloads.ok + " ok, " + p.reloads.failed + " failed"],
               ["ready", p.ready ? "yes" : "no"], ["draining", p.draining ? "yes" : "no"]];
  items.forEach(function (it) { box.appendChild(el("span", null, [it[0] + ": ", el("b", null, [String(it[1])])])); });
}

function renderListeners(list, dt) {
  var body = el("tbody");
  list.forEach(function (l) {
    var errors = l.errors.client + l.errors.upstream + l.errors.idle_timeouts + l.no_upstream +
                 l.errors.connect.refused + l.errors.connect.timeout + l.errors.connect.other;
    var before = previous ? previous.listeners[l.name] : undefined;
    var isHttp = l.protocol === "http";
    body.appendChild(el("tr", {"data-listener": l.name}, [
      td(l.name, "name"), td(l.address, "name"), td(l.protocol, "name"),
      td(num(l.connections.active)), td(num(l.connections.accepted)), errCell(l.connections.rejected_over_limit),
      td(isHttp ? num(l.requests) : "\u2013"), td(isHttp ? rate(l.requests, before, dt) : rate(l.connections.accepted, before, dt)),
      td(num(l.responses["2xx"])), td(num(l.responses["3xx"])), errCell(l.responses["4xx"]), errCell(l.responses["5xx"]),
      errCell(errors), errCell(l.no_upstream),
      td(bytes(l.bytes.received)), td(bytes(l.bytes.sent))]));
  });
  var t = el("table", null, [
    header([["Listener", 3, "name"], ["Connections", 3], ["Requests", 2], ["Responses", 4], ["Errors", 2], ["Bytes", 2]],
           ["name", "address", "protocol", "active", "accepted", "rejected", "total", "rate/s", "2xx", "3xx", "4xx", "5xx",
            "all", "no upstream", "in", "out"]),
    body]);
  var box = document.getElementById("listeners");
  box.textContent = "";
  box.appendChild(t);
}

function renderCluster(c, dt) {
  var body = el("tbody");
  c.endpoints.forEach(function (e) {
    var key = c.name + "\n" + e.address;
    var before = previous ? previous.endpoints[key] : undefined;
    var connectErrors = e.connect_errors.refused + e.connect_errors.timeout + e.connect_errors.other;
    var meanMs = e.response_time.count ? (1000 * e.response_time.sum / e.response_time.count).toFixed(1) + " ms" : "\u2013";
    var check = e.check.enabled ? (e.check.last || "pending") : "no check";
    body.appendChild(el("tr", {"data-cluster": c.name, "data-endpoint": e.address, "data-state": e.state}, [
      td(e.address, "name"), td(e.state, "state"), td(num(e.weight)),
      td(num(e.active)), td(num(e.idle)),
      td(num(e.requests)), td(rate(e.requests, before, dt)), td(meanMs),
      td(num(e.responses["2xx"])), errCell(e.responses["4xx"]), errCell(e.responses["5xx"]),
      errCell(connectErrors), errCell(e.failures), errCell(e.ejections),
      el("td", {"class": "check", title: check}, [check]), errCell(e.check.failures), td(num(e.check.transitions))]));
  });
  var s = c.states;
  return [
    el("h2", null, ["Cluster " + c.name, el("small", null, [c.balance + " \u00b7 " + s.UP + " up, " + s.DOWN + " down, " +
                                                            s.DRAIN + " drained, " + s.EJECTED + " ejected"])]),
    el("table", {"data-cluster-table": c.name}, [
      header([["Endpoint", 3, "name"], ["Connections", 2], ["Requests", 3], ["Responses", 3], ["Errors", 3], ["Active check", 3]],
             ["address", "state", "weight", "active", "idle", "total", "rate/s", "mean time", "2xx", "4xx", "5xx",
              "connect", "failures", "ejections", "last", "failures", "transitions"]),
      body])];
}

function render(stats) {
  // Rates use lbd's clock, not the browser's: a throttled background tab or a skewed client
  // clock still gets the right figure (and so does a headless browser's virtual clock).
  var now = stats.process.time;
  var dt = previous ? now - previous.t : 0;
  renderProcess(stats.process);
  renderListeners(stats.listeners, dt);
  var box = document.getElementById("clusters");
  box.textContent = "";
  stats.clusters.forEach(function (c) { renderCluster(c, dt).forEach(function (n) { box.appendChild(n); }); });
  var next = {t: now, listeners: {}, endpoints: {}};
  stats.listeners.forEach(function (l) { next.listeners[l.name] = l.protocol === "http" ? l.requests : l.connections.accepted; });
  stats.clusters.forEach(function (c) { c.endpoints.forEach(function (e) { next.endpoints[c.name + "\n" + e.address] = e.requests; }); });
  previous = next;
  samples++;
  document.body.setAttribute("data-samples", String(samples));
}

function refresh() {
  fetch("/stats", {cache: "no-store"})
    .then(function (r) { if (!r.ok) throw new Error("/stats answered " + r.status); return r.json(); })
    .then(function (s) { document.getElementById("error").textContent = ""; render(s); })
    .catch(function (e) { document.getElementById("error").textContent = "cannot fetch /stats: " + e.message; })
    .then(function () { setTimeout(refresh, 2000); });
}
refresh();
</script>
</body>
</html>
)HTML";

}  // namespace

std::string_view status_page_html() { return kPage; }

}  // namespace lbd::proxy
