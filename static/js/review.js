// The item page: keeps this moderator's claim alive while the page is open, releases it on leaving,
// and drives the heatmap overlay (opacity slider, h to hide or show).
(function () {
  const detail = document.querySelector(".detail[data-claim-url]");
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]");
  if (detail && csrf) {
    const body = () => { const data = new FormData(); data.append("csrfmiddlewaretoken", csrf.value); return data; };
    // Renew at a third of the hold so one lost request does not let the claim lapse.
    const every = Math.max(10, Number(detail.dataset.claimSeconds) / 3) * 1000;
    const timer = setInterval(() => {
      fetch(detail.dataset.claimUrl, { method: "POST", body: body(), credentials: "same-origin" }).then((r) => {
        if (r.status === 409) {
          clearInterval(timer);
          document.getElementById("claim-banner").hidden = false;
          document.querySelectorAll("form.decide button").forEach((b) => { b.disabled = true; });
        }
      }).catch(() => {});
    }, every);
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
})();
