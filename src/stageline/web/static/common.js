// Shared by every page: times in the browser's clock, durations, the toast, and actions sent
// with fetch and the session's CSRF token. No framework and nothing from the network.
"use strict";

const Stageline = (() => {
  const pad = (n) => String(n).padStart(2, "0");

  function clock(ms) {
    if (!ms) return "";
    const d = new Date(Number(ms));
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function duration(start, end, now) {
    if (!start) return "";
    let seconds = Math.max(0, Math.floor(((end || now) - start) / 1000));
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    seconds %= 60;
    if (hours) return `${hours}h ${minutes}m`;
    if (minutes) return `${minutes}m ${seconds}s`;
    return `${seconds}s`;
  }

  function showTimes(root) {
    for (const el of root.querySelectorAll("time[data-ms]")) {
      el.textContent = clock(el.dataset.ms);
    }
  }

  // A running thing's duration counts up in the page, from the times the server sent.
  function tickDurations() {
    const now = Date.now() - (Stageline.skew || 0);
    for (const el of document.querySelectorAll(".took[data-start]")) {
      if (el.dataset.start && !el.dataset.end) {
        el.textContent = duration(Number(el.dataset.start), 0, now);
      }
    }
  }

  function toast(message, isError) {
    const el = document.getElementById("toast");
    el.textContent = message;
    el.dataset.kind = isError ? "error" : "info";
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, 6000);
  }

  // POST JSON with the CSRF token; resolves to the parsed answer, rejects with the error body's
  // message (the same `{"error_code", "error_msg"}` the API answers).
  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRF-Token": document.body.dataset.csrf || "",
      },
      body: JSON.stringify(body || {}),
    });
    let answer = {};
    try { answer = await response.json(); } catch (e) { answer = {}; }
    if (!response.ok) {
      throw new Error(answer.error_msg || `${response.status} ${response.statusText}`);
    }
    return answer;
  }

  // An EventSource that shows its state in the page's "live" marker.
  function listen(url, handlers) {
    const marker = document.getElementById("live");
    const source = new EventSource(url);
    source.onopen = () => { if (marker) marker.dataset.state = "open"; };
    source.onerror = () => { if (marker) marker.dataset.state = "retrying"; };
    for (const [type, handler] of Object.entries(handlers)) {
      source.addEventListener(type, handler);
    }
    return source;
  }

  document.addEventListener("DOMContentLoaded", () => {
    showTimes(document);
    setInterval(tickDurations, 1000);
  });

  return { clock, duration, showTimes, toast, post, listen, skew: 0 };
})();
