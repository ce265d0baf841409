// A run's page: statuses and times redrawn from the run stream, step logs followed from their
// own streams while open, and the actions (Stop, Retry, Pass/Refuse) sent with fetch.
"use strict";

(() => {
  const page = document.getElementById("run");
  const active = new Set(page.dataset.active.split(" "));
  const retryable = new Set(page.dataset.retryable.split(" "));
  const jobRetryable = new Set(page.dataset.jobRetryable.split(" "));
  const logs = new Map();

  function setItem(id, [status, start, end]) {
    for (const el of document.querySelectorAll(`[data-id="${id}"]`)) {
      el.dataset.status = status;
    }
    for (const el of document.querySelectorAll(`[data-badge-of="${id}"]`)) {
      el.textContent = status;
      if (el.classList.contains("badge")) el.dataset.status = status;
    }
    for (const el of document.querySelectorAll(`[data-took-of="${id}"]`)) {
      el.dataset.start = start || "";
      el.dataset.end = end || "";
      el.textContent = Stageline.duration(start, end, Date.now() - Stageline.skew);
    }
    const review = document.querySelector(`[data-review-of="${id}"]`);
    if (review) review.hidden = status !== "PAUSED";
    const job = document.querySelector(`.job[data-id="${id}"] .retry-job`);
    if (job) job.hidden = !jobRetryable.has(status) || active.has(page.dataset.status);
  }

  function redraw(state) {
    Stageline.skew = Date.now() - state.now;
    setItem(page.dataset.id, state.run);
    const [status] = state.run;
    page.dataset.status = status;
    const message = document.getElementById("run-message");
    message.textContent = state.message || "";
    message.hidden = !state.message;
    for (const [id, item] of Object.entries(state.items)) setItem(id, item);
    for (const [id, shown] of Object.entries(state.outputs)) drawOutputs(id, shown);
    drawArtifacts(state.artifacts);
    const stop = document.getElementById("stop");
    if (stop) stop.hidden = !active.has(status);
    const retry = document.getElementById("retry");
    if (retry) retry.hidden = !retryable.has(status);
    for (const button of document.querySelectorAll(".retry-job")) {
      const job = button.closest(".job");
      button.hidden = !jobRetryable.has(job.dataset.status) || active.has(status);
    }
  }

  function cell(tag, text) {
    const el = document.createElement(tag);
    el.textContent = text;
    return el;
  }

  function drawOutputs(id, shown) {
    const table = document.querySelector(`[data-outputs-of="${id}"]`);
    if (!table) return;
    const rows = shown.map(({ key, value }) => {
      const row = document.createElement("tr");
      row.append(cell("th", key), cell("td", value));
      return row;
    });
    table.replaceChildren(cell("caption", "Outputs"), ...rows);
    table.hidden = !rows.length;
  }

  function drawArtifacts(artifacts) {
    const list = document.getElementById("artifacts");
    list.replaceChildren(...artifacts.map(([name, id]) => {
      const link = cell("a", name);
      link.href = list.dataset.base + id;
      link.download = "";
      const item = document.createElement("li");
      item.append(link);
      return item;
    }));
    document.getElementById("no-artifacts").hidden = artifacts.length > 0;
  }

  Stageline.listen(page.dataset.stream, {
    message(event) { redraw(JSON.parse(event.data)); },
  });

  // -- logs: a step's log streams while its details are open ---------------------------------

  function follow(step) {
    if (logs.has(step.dataset.id)) return;
    const pre = step.querySelector("pre.log");
    pre.textContent = "";
    const source = new EventSource(step.dataset.log);
    logs.set(step.dataset.id, source);
    source.addEventListener("lines", (event) => {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(document.createTextNode(JSON.parse(event.data).join("\n") + "\n"));
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("end", () => {
      source.close();
      pre.dataset.complete = "true";
    });
  }

  function unfollow(step) {
    const source = logs.get(step.dataset.id);
    if (source) source.close();
    logs.delete(step.dataset.id);
  }

  for (const step of document.querySelectorAll("details.step")) {
    step.addEventListener("toggle", () => (step.open ? follow(step) : unfollow(step)));
  }

  // -- actions -------------------------------------------------------------------------------

  async function act(button, body, done) {
    button.disabled = true;
    try {
      await Stageline.post(button.dataset.url, body);
      Stageline.toast(done, false);
    } catch (e) {
      Stageline.toast(e.message, true);
    } finally {
      button.disabled = false;
    }
  }

  const stop = document.getElementById("stop");
  if (stop) stop.addEventListener("click", () => act(stop, {}, "Stopping the run"));
  const retry = document.getElementById("retry");
  if (retry) retry.addEventListener("click", () => act(retry, {}, "Retrying the failed jobs"));
  for (const button of document.querySelectorAll(".retry-job")) {
    button.addEventListener("click", () =>
      act(button, { job_run_ids: [button.dataset.job] }, "Retrying the job"));
  }
  for (const button of document.querySelectorAll("button.review")) {
    button.addEventListener("click", (event) => {
      event.preventDefault();  // a button in a <summary> would toggle its details
      act(button, {}, button.textContent === "Pass" ? "Review passed" : "Review refused");
    });
  }
})();
