// Drag-and-drop upload: one row per file with its own scenery and declaration, sent in one request
// with a progress bar per file; the server answers per file, so a refused file never hides the accepted
// ones. Accepted files then show their analysis state live until it ends.
(function () {
  const form = document.getElementById("upload-form");
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  const table = document.getElementById("file-rows");
  const body = table.querySelector("tbody");
  const options = document.getElementById("scenery-options").innerHTML;
  const defaults = document.getElementById("defaults");
  const button = document.getElementById("upload-button");
  let files = [];

  function render() {
    body.innerHTML = "";
    table.hidden = files.length === 0;
    defaults.hidden = files.length > 0;
    files.forEach((file, i) => {
      const row = document.createElement("tr");
      row.innerHTML =
        `<td class="name"></td><td><select name="row-scenery">${options}</select></td>` +
        `<td><input type="checkbox" name="row-declared"></td><td class="status"><progress max="100" value="0" hidden></progress><span></span></td>` +
        `<td><button type="button" class="link remove">Remove</button></td>`;
      row.querySelector(".name").textContent = `${file.name} (${size(file.size)})`;
      row.querySelector("select").value = document.getElementById("default-scenery").value;
      row.querySelector(".remove").addEventListener("click", () => { files.splice(i, 1); render(); });
      body.appendChild(row);
    });
  }

  function size(bytes) {
    return bytes < 1048576 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
  }

  // Follow the accepted uploads through analysis on the same small endpoint the submissions list polls.
  function follow(tracked) {
    const ids = Object.keys(tracked);
    if (ids.length === 0) return;
    fetch(`${form.dataset.statusUrl}?ids=${ids.join(",")}`, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((data) => {
        for (const id of ids) {
          const s = data.submissions[id];
          if (!s) continue;
          tracked[id].querySelector(".js-analysis").textContent = s.in_progress ? `${s.state_label}…` : s.state_label;
          if (!s.in_progress) delete tracked[id];
        }
      })
      .catch(() => {})
      .finally(() => { if (Object.keys(tracked).length) setTimeout(() => follow(tracked), 1500); });
  }

  function add(list) {
    for (const file of list) files.push(file);
    render();
  }

  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); add(e.dataTransfer.files); });
  input.addEventListener("change", () => { add(input.files); input.value = ""; });

  form.addEventListener("submit", (e) => {
    if (files.length === 0) return; // let the plain form report "choose at least one image"
    e.preventDefault();
    const data = new FormData();
    data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    const rows = body.querySelectorAll("tr");
    files.forEach((file, i) => {
      data.append("files", file);
      data.append("scenery", rows[i].querySelector("select").value);
      data.append("declared_ai", rows[i].querySelector("input[type=checkbox]").checked ? "1" : "0");
    });
    const bars = body.querySelectorAll("progress");
    bars.forEach((bar) => { bar.hidden = false; });
    button.disabled = true;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("Accept", "application/json");
    // One request carries every file in order, so each file's bar fills over its own share of the bytes.
    const ends = [];
    files.reduce((sum, file, i) => { ends[i] = sum + file.size; return ends[i]; }, 0);
    xhr.upload.addEventListener("progress", (ev) => {
      if (!ev.lengthComputable) return;
      const sent = (ev.loaded / ev.total) * ends[ends.length - 1];
      bars.forEach((bar, i) => {
        const start = i === 0 ? 0 : ends[i - 1];
        bar.value = Math.max(0, Math.min(100, (100 * (sent - start)) / Math.max(1, ends[i] - start)));
      });
    });
    xhr.addEventListener("load", () => {
      button.disabled = false;
      let results = [];
      try { results = JSON.parse(xhr.responseText).results || []; } catch (err) { results = []; }
      if (results.length !== rows.length) {
        rows.forEach((row) => { row.querySelector(".status span").textContent = "Upload failed, please retry."; });
        return;
      }
      const tracked = {};
      results.forEach((r, i) => {
        const cell = rows[i].querySelector(".status");
        cell.querySelector("progress").hidden = true;
        const span = cell.querySelector("span");
        if (r.ok) {
          span.className = "row-ok";
          span.innerHTML = `<span class="js-analysis">Received</span> · <a href="${r.url}">#${r.id}</a>`;
          tracked[r.id] = span;
        } else {
          span.className = "row-error";
          span.textContent = r.error;
        }
      });
      files = [];
      rows.forEach((row) => { row.querySelector(".remove").remove(); row.querySelectorAll("select,input").forEach((el) => { el.disabled = true; }); });
      follow(tracked);
    });
    xhr.addEventListener("error", () => {
      button.disabled = false;
      rows.forEach((row) => { row.querySelector(".status span").textContent = "Network error, please retry."; });
    });
    xhr.send(data);
  });
})();
