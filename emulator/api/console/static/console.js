// The console's one script: live parts by polling, log streaming, and the few actions (with the page's token).
"use strict";
(function () {
  const token = document.querySelector('meta[name="console-token"]').content;
  const pollMs = Number(document.body.dataset.pollMs) || 1000;

  function post(url, payload) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Console-Token": token },
      body: JSON.stringify(payload),
    }).then((r) => r.json().then((data) => ({ status: r.status, data: data })));
  }

  // Live parts: the server renders them again; a part is replaced only when its HTML changed (so an opened
  // <details> stays open while nothing in it changes).
  const shown = new Map();
  function poll() {
    const url = new URL(location.href);
    url.searchParams.set("fragment", "1");
    fetch(url, { cache: "no-store" })
      .then((r) => r.json())
      .then((page) => {
        for (const [id, html] of Object.entries(page.parts)) {
          const el = document.querySelector('[data-part="' + id + '"]');
          if (el && shown.get(id) !== html) el.innerHTML = html;
          shown.set(id, html);
        }
        document.body.dataset.live = page.live ? "1" : "0";
        if (page.live) setTimeout(poll, pollMs);
      })
      .catch(() => setTimeout(poll, pollMs * 3));
  }
  if (document.body.dataset.live === "1") setTimeout(poll, pollMs);

  // Logs: only the lines after the cursor come back; they are appended as text.
  const logs = document.querySelector("[data-logs]");
  if (logs) {
    let cursor = "";
    const out = logs.querySelector("pre");
    const follow = () => {
      fetch(logs.dataset.logs + "?cursor=" + encodeURIComponent(cursor), { cache: "no-store" })
        .then((r) => r.json())
        .then((data) => {
          const atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
          for (const [host, line] of data.lines) {
            if (data.hosts > 1) {
              const h = document.createElement("span");
              h.className = "host";
              h.textContent = host + " ";
              out.appendChild(h);
            }
            out.appendChild(document.createTextNode(line + "\n"));
          }
          if (data.lines.length) logs.dataset.count = String(Number(logs.dataset.count || 0) + data.lines.length);
          if (atEnd) out.scrollTop = out.scrollHeight;
          cursor = data.cursor;
          if (!data.done) setTimeout(follow, pollMs);
        })
        .catch(() => setTimeout(follow, pollMs * 3));
    };
    follow();
  }

  // Actions: stop, delete endpoint (with a confirmation).
  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (!button) return;
    if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
    button.disabled = true;
    const result = document.querySelector('[data-result="' + button.dataset.action + '"]');
    post("/console/api/" + button.dataset.action, { kind: button.dataset.kind, name: button.dataset.name }).then((r) => {
      if (result) result.textContent = r.status === 200 ? r.data.message : "refused: " + r.data.error;
      if (document.body.dataset.live !== "1") { document.body.dataset.live = "1"; setTimeout(poll, pollMs); }
    });
  });

  // The invoke box of an endpoint page.
  const invoke = document.querySelector("form.invoke");
  if (invoke) {
    invoke.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const answer = document.querySelector(".answer");
      answer.className = "answer card";
      answer.querySelector("pre").textContent = "…";
      post("/console/api/invoke", {
        name: invoke.dataset.endpoint,
        body: invoke.elements.body.value,
        contentType: invoke.elements.contentType.value,
        accept: invoke.elements.accept.value,
      }).then((r) => {
        const d = r.data;
        answer.classList.add(d.ok ? "ok" : "bad");
        answer.dataset.status = String(d.ok ? 200 : d.status || r.status);
        answer.querySelector(".head").textContent = d.ok
          ? "200 " + (d.contentType || "") + " · " + d.bytes + " bytes"
          : d.error + (d.originalStatusCode ? " (the container answered " + d.originalStatusCode + ")" : "");
        answer.querySelector("pre").textContent = d.ok ? d.body : d.originalMessage || d.message;
      });
    });
  }

  // The contract report: a JUnit XML file picked in the browser, rendered by the server.
  const upload = document.querySelector("input[data-report]");
  if (upload) {
    upload.addEventListener("change", () => {
      const file = upload.files[0];
      if (!file) return;
      file.text().then((xml) => post("/console/api/report", { name: file.name, xml: xml })).then((r) => {
        const target = document.querySelector('[data-part="report"]');
        if (r.status === 200) target.innerHTML = r.data.html;
        else target.textContent = "refused: " + r.data.error;
      });
    });
  }
})();
