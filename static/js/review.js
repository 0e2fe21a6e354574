// The item page: claims the item for this moderator at once (reading the page takes nothing), keeps the
// claim alive while the page is open, releases it on leaving,
// drives the heatmap overlay (opacity slider, h to hide or show) and shows a requested layer once rendered.
(function () {
  const detail = document.querySelector(".detail[data-claim-url]");
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]");
  if (detail && csrf) {
    const body = () => { const data = new FormData(); data.append("csrfmiddlewaretoken", csrf.value); return data; };
    // Renew at a third of the hold so one lost request does not let the claim lapse.
    const every = Math.max(10, Number(detail.dataset.claimSeconds) / 3) * 1000;
    let timer = null;
    const beat = () => {
      fetch(detail.dataset.claimUrl, { method: "POST", body: body(), credentials: "same-origin" }).then((r) => {
        if (r.status === 409) {
          clearInterval(timer);
          document.getElementById("claim-banner").hidden = false;
          document.querySelectorAll("form.decide button").forEach((b) => { b.disabled = true; });
        }
      }).catch(() => {});
    };
    beat();
    timer = setInterval(beat, every);
    let deciding = false;
    document.querySelectorAll("form.decide").forEach((f) => f.addEventListener("submit", () => { deciding = true; }));
    window.addEventListener("pagehide", () => {
      if (!deciding) navigator.sendBeacon(detail.dataset.releaseUrl, body());
    });
  }

  const overlay = document.getElementById("heatmap");
  const slider = document.getElementById("opacity");
  const toggle = document.getElementById("heatmap-toggle");
  if (overlay && slider && toggle) {
    const apply = () => {
      const shown = toggle.getAttribute("aria-pressed") === "true";
      overlay.style.opacity = shown ? String(slider.value / 100) : "0";
      toggle.firstChild.textContent = shown ? "Hide heatmap " : "Show heatmap ";
    };
    slider.addEventListener("input", () => { toggle.setAttribute("aria-pressed", "true"); apply(); });
    toggle.addEventListener("click", () => {
      toggle.setAttribute("aria-pressed", toggle.getAttribute("aria-pressed") === "true" ? "false" : "true");
      apply();
    });
    apply();
  }

  const waiting = document.getElementById("heatmap-waiting");
  if (waiting) {
    // Grad-CAM renders on a worker in seconds; ask again with growing gaps, and give up after a few minutes.
    let delay = 1500;
    const started = Date.now();
    const again = () => {
      if (Date.now() - started > 180000) {
        waiting.textContent = "The heatmap is taking longer than usual; reload the page later.";
        return;
      }
      delay = Math.min(delay * 1.5, 10000);
      setTimeout(poll, delay);
    };
    const poll = () => {
      fetch(waiting.dataset.renderedUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : { rendered: [] }))
        .then((data) => {
          if (!data.rendered.includes(waiting.dataset.layer)) return again();
          const url = new URL(window.location.href);
          url.searchParams.delete("rendering");
          window.location.replace(url.toString());
        })
        .catch(again);
    };
    setTimeout(poll, delay);
  }
})();
