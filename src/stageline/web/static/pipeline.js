// A pipeline's page: the run history, kept current without a reload, and the Run form, sent
// as RunPipelineDTO; then off to the new run's page.
"use strict";

(() => {
  const page = document.getElementById("pipeline");

  // When the stream says the pipeline's runs changed, the page is fetched again and its
  // history taken from it. One fetch at a time; a change told during one fetches once more
  // after it, since that page may have been rendered before the change.
  let fetching = false;
  let changedMeanwhile = false;
  async function refreshHistory() {
    if (fetching) {
      changedMeanwhile = true;
      return;
    }
    fetching = true;
    try {
      do {
        changedMeanwhile = false;
        const response = await fetch(location.href, { credentials: "same-origin" });
        if (!response.ok) return;
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        const history = fresh.getElementById("history");
        if (!history) return;
        document.getElementById("history").replaceWith(document.adoptNode(history));
        Stageline.showTimes(history);
      } while (changedMeanwhile);
    } finally {
      fetching = false;
    }
  }
  Stageline.listen(page.dataset.stream, { message: refreshHistory });

  const form = document.getElementById("run-form");
  const open = document.getElementById("run-open");
  if (!form || !open) return;
  const error = document.getElementById("run-error");

  open.addEventListener("click", () => { form.hidden = false; open.hidden = true; });
  document.getElementById("run-cancel").addEventListener("click", () => {
    form.hidden = true; open.hidden = false;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    const variables = [];
    for (const input of form.querySelectorAll("input[name^='var:']")) {
      if (input.type === "password" && !input.value) continue;
      variables.push({ name: input.name.slice(4), value: input.value });
    }
    if (variables.length) body.variables = variables;
    const boxes = [...form.querySelectorAll("input[name='stage']")];
    if (boxes.length && boxes.some((box) => !box.checked)) {
      body.choose_stages = boxes.filter((box) => box.checked).map((box) => box.value);
    }
    error.hidden = true;
    try {
      const started = await Stageline.post(page.dataset.runUrl, body);
      window.location.assign(started.url);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
    }
  });
})();
