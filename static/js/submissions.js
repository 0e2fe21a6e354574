// The submissions list: while any visible upload is still being analysed, poll a small JSON endpoint for
// just those rows and update their state, score, outcome and appeal button in place.
(function () {
  const table = document.getElementById("submissions");
  if (!table) return;
  const ACTIVE = new Set(["received", "queued", "analysing"]);
  let delay = 2000;
  let timer = null;

  function pending() {
    return Array.from(table.querySelectorAll("tr[data-id]")).filter((r) => ACTIVE.has(r.dataset.state));
  }

  function update(row, s) {
    row.dataset.state = s.state;
    const badge = document.createElement("span");
    badge.className = `state state-${s.state}`;
    badge.textContent = s.state_label;
    row.querySelector(".js-state").replaceChildren(badge);
    const probability = row.querySelector(".js-probability"); // shown to those who may see scores only
    if (probability) probability.textContent = s.ai_probability == null ? "–" : s.ai_probability.toFixed(3);
    const outcome = row.querySelector(".js-outcome");
    outcome.textContent = s.outcome || s.failure_reason || "";
    if (s.appeal_url) {
      const link = document.createElement("a");
      link.className = "button small js-appeal";
      link.href = s.appeal_url;
      link.textContent = "Appeal";
      outcome.append(" ", link);
    }
  }

  function poll() {
    const rows = pending();
    if (rows.length === 0 || document.hidden) { schedule(); return; }
    const ids = rows.map((r) => r.dataset.id).join(",");
    fetch(`${table.dataset.statusUrl}?ids=${ids}`, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((data) => {
        rows.forEach((row) => { const s = data.submissions[row.dataset.id]; if (s) update(row, s); });
        delay = 2000;
      })
      .catch(() => { delay = Math.min(delay * 2, 30000); }) // back off while the server is unreachable
      .finally(schedule);
  }

  function schedule() {
    clearTimeout(timer);
    if (pending().length > 0) timer = setTimeout(poll, delay);
  }
  schedule();
})();
