/* The admin's style editor (stylestacks/templates/admin/stylestacks/style_editor.html):
   tabs that set the hidden editor_mode input and carry edits across, live character
   counters, "Add a row" for the row groups, and the debounced live preview, which POSTs
   the change form's fields to the admin's preview/ endpoint. Plain JS, no library. */
"use strict";
(function () {
  const DEBOUNCE_MS = 400;

  function init() {
    const editor = document.getElementById("style-editor");
    if (!editor) return;
    const form = editor.closest("form");
    const mode = document.getElementById("id_editor_mode");
    const previewUrl = editor.dataset.previewUrl;
    const preview = document.getElementById("style-live-preview");
    const status = document.getElementById("style-live-preview-status");
    const structured = document.getElementById("style-editor-structured");
    let timer = null;
    let sequence = 0;

    function post(extra) {
      const data = new FormData(form);
      for (const [key, value] of Object.entries(extra || {})) data.set(key, value);
      return fetch(previewUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken") || "" },
      }).then((response) => response.json().then((body) => ({ ok: response.ok, body })));
    }

    function errorText(errors) {
      return Object.entries(errors)
        .map(([name, messages]) => name + ": " + messages.join(" "))
        .join("\n");
    }

    function showTab(name) {
      mode.value = name;
      for (const tab of editor.querySelectorAll(".style-tab")) {
        const active = tab.dataset.mode === name;
        tab.classList.toggle("active", active);
        tab.setAttribute("aria-selected", active ? "true" : "false");
        document.getElementById(tab.getAttribute("aria-controls")).hidden = !active;
      }
    }

    // Switching tabs hands the document over: the server reads the tab being left.
    function switchTab(name) {
      if (name === mode.value) return;
      status.textContent = "…";
      post({ editor_mode: mode.value, render_editor: name === "structured" ? "1" : "" }).then(({ ok, body }) => {
        if (!ok) {
          status.textContent = "Fix the errors in this tab first:\n" + errorText(body.errors || {});
          return;
        }
        if (name === "json") {
          document.getElementById("id_style").value = JSON.stringify(body.document, null, 2);
        } else {
          structured.innerHTML = body.editor_html;
          wire(structured);
        }
        status.textContent = "";
        showTab(name);
      });
    }

    function refresh() {
      const mine = ++sequence;
      status.textContent = "updating…";
      post({}).then(({ ok, body }) => {
        if (mine !== sequence) return; // an older answer arriving late
        if (ok) {
          preview.innerHTML = body.html;
          status.textContent = "";
        } else {
          status.textContent = "not updated: " + errorText(body.errors || {});
        }
      }).catch(() => { if (mine === sequence) status.textContent = "not updated (network error)"; });
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(refresh, DEBOUNCE_MS);
    }

    function count(textarea) {
      const counter = document.getElementById(textarea.id + "-counter");
      if (!counter) return;
      const limit = Number(textarea.dataset.limit);
      counter.querySelector(".style-count").textContent = textarea.value.length;
      counter.classList.toggle("style-over", textarea.value.length > limit);
    }

    function wire(root) {
      for (const textarea of root.querySelectorAll("textarea.style-counted")) {
        count(textarea);
        textarea.addEventListener("input", () => count(textarea));
      }
      for (const button of root.querySelectorAll(".style-add-row")) {
        button.addEventListener("click", () => addRow(button.dataset.prefix));
      }
    }

    function addRow(prefix) {
      const group = document.getElementById(prefix + "-group");
      const total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
      const html = group.querySelector("template.style-row-template").innerHTML.replace(/__prefix__/g, total.value);
      group.querySelector("tbody").insertAdjacentHTML("beforeend", html);
      total.value = Number(total.value) + 1;
    }

    for (const tab of editor.querySelectorAll(".style-tab")) {
      tab.addEventListener("click", () => switchTab(tab.dataset.mode));
    }
    showTab(mode.value === "json" ? "json" : "structured");
    wire(editor);
    // Any edit in the style or the models field updates the preview.
    form.addEventListener("input", (event) => {
      if (editor.contains(event.target) || /_models$/.test(event.target.name || "")) schedule();
    });
    form.addEventListener("change", (event) => { if (editor.contains(event.target)) schedule(); });
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
