// The project wall: filters in the page, and each tile redrawn from the batch-status element
// the stream sends when that pipeline's latest run changes.
"use strict";

(() => {
  const wall = document.getElementById("wall");
  const project = wall.dataset.project;
  const tiles = new Map();
  for (const tile of document.querySelectorAll(".tile")) tiles.set(tile.dataset.pipeline, tile);

  const nameFilter = document.getElementById("filter-name");
  const statusFilter = document.getElementById("filter-status");

  function matches(tile) {
    const name = nameFilter.value.trim().toLowerCase();
    const status = statusFilter.value;
    return (!name || tile.dataset.name.includes(name)) &&
      (!status || tile.dataset.status === status);
  }

  function applyFilters() {
    for (const tile of tiles.values()) tile.hidden = !matches(tile);
  }

  nameFilter.addEventListener("input", applyFilters);
  statusFilter.addEventListener("change", applyFilters);

  function dot(stage) {
    const span = document.createElement("span");
    span.className = "dot";
    span.dataset.status = stage.status;
    span.title = `${stage.name}: ${stage.status}`;
    return span;
  }

  function draw(tile, run) {
    const status = run ? run.status : "NONE";
    tile.dataset.status = status;
    const link = tile.querySelector(".run-link");
    if (run) {
      link.href = `/projects/${project}/pipelines/${run.pipeline_id}/runs/${run.pipeline_run_id}`;
      link.textContent = `#${run.run_number}`;
    } else {
      link.removeAttribute("href");
      link.textContent = "never run";
    }
    const badge = tile.querySelector(".badge");
    badge.dataset.status = status;
    badge.textContent = run ? run.status : "";
    tile.querySelector(".dots").replaceChildren(...(run ? run.stage_status_list.map(dot) : []));
    const params = (run && run.build_params) || {};
    tile.querySelector(".trigger").textContent = run ? run.trigger_type : "";
    tile.querySelector(".branch").textContent = params.target_branch || params.tag || "";
    tile.querySelector(".commit").textContent = (params.commit_id || "").slice(0, 8);
    const started = tile.querySelector(".started");
    started.dataset.ms = run ? run.start_time : "";
    started.textContent = run ? Stageline.clock(run.start_time) : "";
    const took = tile.querySelector(".took");
    took.dataset.start = run ? run.start_time : "";
    took.dataset.end = run && run.end_time ? run.end_time : "";
    took.textContent = run ? Stageline.duration(run.start_time, run.end_time, Date.now()) : "";
    tile.hidden = !matches(tile);
  }

  // A pipeline made after the page loaded: its tile is taken once from the wall page as the
  // server renders it now. Changes the stream tells while that page is on its way are kept in
  // `told`, and the newest is drawn on the tile once it is in: the page may have been rendered
  // before them, and the stream will not tell them again.
  const adopting = new Set();
  const told = new Map();
  async function adopt(pipelineId) {
    if (adopting.has(pipelineId)) return;
    adopting.add(pipelineId);
    try {
      const response = await fetch(location.pathname, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const found = page.querySelector(`.tile[data-pipeline="${pipelineId}"]`);
      const newest = told.get(pipelineId);
      if (!found || tiles.has(pipelineId) || newest.deleted) return;
      const tile = document.adoptNode(found);
      document.getElementById("tiles").append(tile);
      tiles.set(pipelineId, tile);
      draw(tile, newest.element);
      Stageline.showTimes(tile);
    } finally {
      adopting.delete(pipelineId);
      told.delete(pipelineId);
    }
  }

  Stageline.listen(wall.dataset.stream, {
    message(event) {
      const change = JSON.parse(event.data);
      const tile = tiles.get(change.pipeline_id);
      if (tile && change.deleted) {
        tile.remove();
        tiles.delete(change.pipeline_id);
      } else if (tile) {
        draw(tile, change.element);
      } else if (!change.deleted || adopting.has(change.pipeline_id)) {
        told.set(change.pipeline_id, change);
        adopt(change.pipeline_id);
      }
    },
  });
})();
