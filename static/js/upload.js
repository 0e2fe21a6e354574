// Drag-and-drop upload: one row per file with its own scenery and declaration, sent in one request
// with a progress bar per file; the server answers per file, so a refused file never hides the accepted
// ones. Accepted files then show their analysis state live until it ends. Each file's scenery is
// pre-selected from the server's suggestion (a small copy of the image is sent for it) unless the
// contributor has picked one; no answer in time, nothing pre-selected.
(function () {
  const form = document.getElementById("upload-form");
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  const table = document.getElementById("file-rows");
  const body = table.querySelector("tbody");
  const options = document.getElementById("scenery-options").innerHTML;
  const defaults = document.getElementById("defaults");
  const button = document.getElementById("upload-button");
  // One entry per file: {file, scenery, suggested (the scenery came from the server), declared}.
  let files = [];
  let sending = false;

  function render() {
    body.innerHTML = "";
    table.hidden = files.length === 0;
    defaults.hidden = files.length > 0;
    files.forEach((entry, i) => {
      const row = document.createElement("tr");
      row.innerHTML =
        `<td class="name"></td><td><select name="row-scenery">${options}</select> <span class="muted suggested" hidden>suggested</span></td>` +
        `<td><input type="checkbox" name="row-declared"></td><td class="status"><progress max="100" value="0" hidden></progress><span></span></td>` +
        `<td><button type="button" class="link remove">Remove</button></td>`;
      row.querySelector(".name").textContent = `${entry.file.name} (${size(entry.file.size)})`;
      const select = row.querySelector("select");
      select.value = entry.scenery;
      row.querySelector(".suggested").hidden = !entry.suggested;
      select.addEventListener("change", () => {
        entry.scenery = select.value;
        entry.suggested = false;
        entry.chosen = true;
        row.querySelector(".suggested").hidden = true;
      });
      const declared = row.querySelector("input[type=checkbox]");
      declared.checked = entry.declared;
      declared.addEventListener("change", () => { entry.declared = declared.checked; });
      row.querySelector(".remove").addEventListener("click", () => { files.splice(i, 1); render(); });
      body.appendChild(row);
    });
  }

  // A copy with its short side at most 256 px is plenty: the suggestion looks at a 128 px square.
  function small(file) {
    return createImageBitmap(file).then((bitmap) => {
      const scale = Math.min(1, 256 / Math.min(bitmap.width, bitmap.height));
      const canvas = document.createElement("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject()), "image/jpeg", 0.92));
    });
  }

  function suggest(entry) {
    small(entry.file)
      .then((blob) => {
        const data = new FormData();
        data.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
        data.append("image", blob, "suggest.jpg");
        return fetch(form.dataset.suggestUrl, { method: "POST", body: data, credentials: "same-origin" });
      })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((answer) => {
        if (!answer.scenery || entry.chosen || sending || !files.includes(entry)) return;
        entry.scenery = answer.scenery;
        entry.suggested = true;
        render();
      })
      .catch(() => {});
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

  // A scenery the contributor set for the whole batch is a choice: no suggestion overrides it.
  const defaultScenery = document.getElementById("default-scenery");
  let defaultChosen = false;
  defaultScenery.addEventListener("change", () => { defaultChosen = true; });

  function add(list) {
    const scenery = defaultScenery.value;
    const declared = document.getElementById("default-declared").checked;
    const added = Array.from(list, (file) => ({ file, scenery, suggested: false, chosen: defaultChosen, declared }));
    files.push(...added);
    render();
    added.forEach(suggest);
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
    files.forEach((entry) => {
      data.append("files", entry.file);
      data.append("scenery", entry.scenery);
      data.append("declared_ai", entry.declared ? "1" : "0");
    });
    const bars = body.querySelectorAll("progress");
    bars.forEach((bar) => { bar.hidden = false; });
    button.disabled = true;
    sending = true;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action || window.location.href);
    xhr.setRequestHeader("Accept", "application/json");
    // One request carries every file in order, so each file's bar fills over its own share of the bytes.
    const ends = [];
    files.reduce((sum, entry, i) => { ends[i] = sum + entry.file.size; return ends[i]; }, 0);
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
      sending = false;
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
      sending = false;
      rows.forEach((row) => { row.querySelector(".status span").textContent = "Network error, please retry."; });
    });
    xhr.send(data);
  });
})();
