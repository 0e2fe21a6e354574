// Single-key shortcuts: an element with data-key="x" is clicked when x is pressed (links are followed),
// except while the moderator types in a field. "?" toggles the help overlay, Escape closes it.
(function () {
  const help = document.getElementById("shortcut-help");

  // Keys belong to the field while the moderator types; sliders, checkboxes and buttons do not take letters.
  const NOT_TYPING = new Set(["range", "checkbox", "radio", "button", "submit", "reset"]);
  function typing(target) {
    const field = target.closest("input, textarea, select, [contenteditable=true]");
    return field !== null && !(field.tagName === "INPUT" && NOT_TYPING.has(field.type));
  }

  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
    if (!help.hidden) help.querySelector("button").focus();
  }

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "Escape") { toggleHelp(false); return; }
    if (typing(e.target)) return;
    if (e.key === "?") { e.preventDefault(); toggleHelp(); return; }
    if (help && !help.hidden) return;
    const target = document.querySelector(`[data-key="${CSS.escape(e.key)}"]:not([disabled])`);
    if (!target) return;
    e.preventDefault();
    target.click();
  });
  if (help) {
    help.addEventListener("click", (e) => { if (e.target === help || e.target.dataset.key === "Escape") toggleHelp(false); });
  }
  window.Shortcuts = { typing, helpOpen: () => Boolean(help && !help.hidden) };
  // The "?" buttons in the pages open the overlay too; clicking them must not bubble into a double toggle.
  document.querySelectorAll('[data-key="?"]').forEach((el) => el.addEventListener("click", () => toggleHelp()));
})();
