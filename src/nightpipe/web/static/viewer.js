// The frame viewer: the full-resolution PNG on a canvas, pan (drag), zoom (wheel, buttons, fit),
// stretch switch, detected sources (circles) and catalogue stars (squares), click a star for its row.
// Overlay pixels follow nightpipe.web.results.imaging: PNG pixel (px, py) has its centre at canvas
// image coordinates (px + 0.5, py + 0.5).
const canvas = document.getElementById("viewer");
const panel = document.getElementById("star-panel");
const state = { scale: 1, ox: 0, oy: 0, image: null, overlay: { sources: [], catalogue: [] }, picked: null };

function draw() {
  const ctx = canvas.getContext("2d");
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!state.image) return;
  ctx.imageSmoothingEnabled = false;
  ctx.setTransform(state.scale, 0, 0, state.scale, state.ox, state.oy);
  ctx.drawImage(state.image, 0, 0);
  ctx.lineWidth = 1.5 / state.scale;
  if (document.getElementById("show-sources").checked) {
    ctx.strokeStyle = "#4cc38a";
    for (const s of state.overlay.sources) {
      const r = Math.max(4, 1.5 * (s.fwhm || 3));
      ctx.beginPath();
      ctx.arc(s.px + 0.5, s.py + 0.5, r, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }
  if (document.getElementById("show-catalogue").checked) {
    ctx.strokeStyle = "#f0b429";
    for (const c of state.overlay.catalogue) ctx.strokeRect(c.px + 0.5 - 7, c.py + 0.5 - 7, 14, 14);
  }
  if (state.picked) {
    ctx.strokeStyle = "#ef5b5b";
    ctx.lineWidth = 2.5 / state.scale;
    ctx.beginPath();
    ctx.arc(state.picked.px + 0.5, state.picked.py + 0.5, 10, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

function fit() {
  if (!state.image) return;
  state.scale = Math.min(canvas.width / state.image.width, canvas.height / state.image.height);
  state.ox = (canvas.width - state.image.width * state.scale) / 2;
  state.oy = (canvas.height - state.image.height * state.scale) / 2;
  draw();
}

function zoomAt(factor, cx, cy) {
  state.ox = cx - (cx - state.ox) * factor;
  state.oy = cy - (cy - state.oy) * factor;
  state.scale *= factor;
  draw();
}

function load(stretch) {
  const image = new Image();
  image.onload = () => { const first = !state.image; state.image = image; if (first) fit(); else draw(); };
  image.onerror = () => { panel.textContent = "The image could not be loaded: reload the page."; };
  image.src = `${canvas.dataset.image}?stretch=${encodeURIComponent(stretch)}`;
}

function show(star) {
  panel.replaceChildren();
  const title = document.createElement("h3");
  title.textContent = star.id !== undefined ? `Source ${star.id}` : "Catalogue star";
  const table = document.createElement("table");
  table.className = "grid";
  for (const [key, value] of Object.entries(star)) {
    const row = table.insertRow();
    row.insertCell().textContent = key;
    row.insertCell().textContent = typeof value === "number" ? String(Number(value.toPrecision(8))) : String(value);
  }
  panel.append(title, table);
}

function toImage(event) {
  const box = canvas.getBoundingClientRect();
  const cx = (event.clientX - box.left) * (canvas.width / box.width);
  const cy = (event.clientY - box.top) * (canvas.height / box.height);
  return { cx, cy, x: (cx - state.ox) / state.scale - 0.5, y: (cy - state.oy) / state.scale - 0.5 };
}

function nearest(x, y) {
  let best = null, bestD = 12 / state.scale + 3;
  const lists = [];
  if (document.getElementById("show-sources").checked) lists.push(state.overlay.sources);
  if (document.getElementById("show-catalogue").checked) lists.push(state.overlay.catalogue);
  for (const list of lists) for (const s of list) {
    const d = Math.hypot(s.px - x, s.py - y);
    if (d < bestD) { best = s; bestD = d; }
  }
  return best;
}

if (canvas) {
  let drag = null;
  canvas.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; });
  window.addEventListener("mouseup", (e) => {
    if (drag && !drag.moved) {
      const p = toImage(e);
      const star = nearest(p.x, p.y);
      if (star) { state.picked = star; show(star); draw(); }
    }
    drag = null;
  });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const k = canvas.width / canvas.getBoundingClientRect().width;
    const dx = (e.clientX - drag.x) * k, dy = (e.clientY - drag.y) * k;
    if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
    state.ox += dx; state.oy += dy; drag.x = e.clientX; drag.y = e.clientY;
    draw();
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const p = toImage(e);
    zoomAt(e.deltaY < 0 ? 1.25 : 0.8, p.cx, p.cy);
  }, { passive: false });
  document.getElementById("zoom-in").addEventListener("click", () => zoomAt(1.5, canvas.width / 2, canvas.height / 2));
  document.getElementById("zoom-out").addEventListener("click", () => zoomAt(1 / 1.5, canvas.width / 2, canvas.height / 2));
  document.getElementById("zoom-fit").addEventListener("click", fit);
  document.getElementById("stretch").addEventListener("change", (e) => load(e.target.value));
  document.getElementById("show-sources").addEventListener("change", draw);
  document.getElementById("show-catalogue").addEventListener("change", draw);
  document.getElementById("frame-select").addEventListener("change", (e) => { window.location.href = e.target.value; });
  fetch(canvas.dataset.overlay, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(r.statusText))))
    .then((data) => { state.overlay = data; draw(); })
    .catch(() => { panel.textContent = "The sources could not be loaded: reload the page."; });
  load(document.getElementById("stretch").value);
}
