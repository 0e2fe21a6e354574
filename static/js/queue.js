// The queue: j/k move a cursor over the rows, x ticks the current row, Enter or o opens it; the bulk bar
// counts the ticked rows.
(function () {
  const rows = Array.from(document.querySelectorAll("tr.queue-row"));
  const counter = document.getElementById("selected-count");
  const all = document.getElementById("select-all");
  let cursor = -1;

  function count() {
    const n = rows.filter((r) => r.querySelector("input[name=ids]").checked).length;
    counter.textContent = `${n} selected`;
    all.checked = n > 0 && n === rows.length;
  }

  function move(step) {
    if (rows.length === 0) return;
    if (cursor >= 0) rows[cursor].classList.remove("cursor");
    cursor = Math.min(rows.length - 1, Math.max(0, cursor + step));
    rows[cursor].classList.add("cursor");
    rows[cursor].scrollIntoView({ block: "nearest" });
  }

  all.addEventListener("change", () => {
    rows.forEach((r) => { r.querySelector("input[name=ids]").checked = all.checked; });
    count();
  });
  rows.forEach((r) => r.querySelector("input[name=ids]").addEventListener("change", count));

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || Shortcuts.typing(e.target) || Shortcuts.helpOpen()) return;
    if (e.key === "j") move(1);
    else if (e.key === "k") move(-1);
    else if (e.key === "x" && cursor >= 0) {
      const box = rows[cursor].querySelector("input[name=ids]");
      box.checked = !box.checked;
      count();
    } else if ((e.key === "Enter" || e.key === "o") && cursor >= 0) window.location = rows[cursor].dataset.url;
    else return;
    e.preventDefault();
  });
  count();
})();
