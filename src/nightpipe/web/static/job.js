// Live progress of a job: server-sent events append log lines and move the bar; at the end the
// page reloads once to show the results.
const box = document.getElementById("job");
const FINISHED = ["done", "partial", "failed", "cancelled"];

function show(event) {
  const list = document.getElementById("events");
  const item = document.createElement("li");
  item.className = `ev-${event.kind}`;
  const time = document.createElement("time");
  time.textContent = event.at.slice(11, 19);
  item.append(time, document.createTextNode(" " + event.message));
  list.append(item);
  list.scrollTop = list.scrollHeight;
  if (event.kind === "step" || event.kind === "progress") {
    document.getElementById("job-step").textContent = event.message;
    const bar = document.getElementById("job-progress");
    if (event.total) { bar.max = event.total; bar.value = event.done || 0; }
  }
  if (event.kind === "status") {
    const status = event.message.split(/[ :]/)[0];
    if (["queued", "running", ...FINISHED].includes(status)) {
      const badge = document.getElementById("job-status");
      badge.textContent = status;
      badge.className = `badge ${status}`;
    }
  }
}

if (box && !FINISHED.includes(box.dataset.status)) {
  const source = new EventSource(`/jobs/${box.dataset.jobId}/events?after=${box.dataset.lastEvent}`);
  source.addEventListener("job", (message) => show(JSON.parse(message.data)));
  source.addEventListener("end", () => { source.close(); window.location.reload(); });
}
