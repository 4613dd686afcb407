// The light curve with uPlot (vendored, global uPlot): relative flux with error bars, the fitted
// model, comparison stars toggled on/off, a residuals panel; drag to zoom, hover for values.
const select = document.getElementById("lc-select");
const plotBox = document.getElementById("lc-plot");
const residualBox = document.getElementById("lc-residuals");
let plots = [];

function width() { return Math.max(400, plotBox.clientWidth || 900); }

function render(data) {
  for (const p of plots) p.destroy();
  plots = [];
  const x = data.time.map((t) => (t === null ? null : t - 2400000));
  const series = [{ label: `${data.time_scale} − 2400000`, value: (u, v) => (v === null ? "" : v.toFixed(5)) }];
  const columns = [x];
  const shown = data.detrended || data.flux;
  columns.push(shown);
  series.push({ label: `${data.target} ${data.detrended ? "detrended" : "relative"} flux`, stroke: "#6cb4ff",
                width: 0, points: { show: true, size: 5, fill: "#6cb4ff" } });
  if (data.model) {
    columns.push(data.model);
    series.push({ label: "transit model", stroke: "#ef5b5b", width: 2, points: { show: false }, spanGaps: true });
  }
  const palette = ["#4cc38a", "#f0b429", "#c792ea", "#89ddff", "#ff9e64"];
  data.comparisons.forEach((c, i) => {
    columns.push(c.flux);
    series.push({ label: `${c.label} ${c.name}`, stroke: palette[i % palette.length], width: 0, show: false,
                  points: { show: true, size: 3 } });
  });
  const sync = uPlot.sync("lc");
  const cursor = { sync: { key: sync.key } };
  plots.push(new uPlot({ width: width(), height: 360, series, cursor, scales: { x: { time: false } },
                         axes: [{}, { label: "relative flux" }] }, columns, plotBox));
  if (data.residuals) {
    plots.push(new uPlot({ width: width(), height: 160, cursor, scales: { x: { time: false } },
      series: [series[0], { label: "residuals", stroke: "#9aa5bd", width: 0, points: { show: true, size: 4 } }],
      axes: [{}, { label: "residual" }] }, [x, data.residuals], residualBox));
  }
  const box = document.getElementById("lc-comparisons");
  box.replaceChildren();
  const main = plots[0];
  data.comparisons.forEach((c, i) => {
    const index = series.length - data.comparisons.length + i;
    const label = document.createElement("label");
    label.className = "inline";
    const tick = document.createElement("input");
    tick.type = "checkbox";
    tick.addEventListener("change", () => main.setSeries(index, { show: tick.checked }));
    label.append(tick, document.createTextNode(` ${c.label} ${c.name}`));
    box.append(label);
  });
  const fit = document.getElementById("lc-fit");
  if (data.fit && data.fit.params) {
    const p = data.fit.params;
    const fmt = (k, d) => (p[k] ? `${k} ${p[k].median.toFixed(d)} +${p[k].plus.toFixed(d)}/−${p[k].minus.toFixed(d)}` : "");
    fit.textContent = [fmt("rp_rs", 4), fmt("tc", 5), fmt("a_rs", 2), fmt("inc", 2),
                       data.fit.rms ? `rms ${(100 * data.fit.rms).toFixed(3)} %` : ""].filter(Boolean).join(" · ");
  } else {
    fit.textContent = "No transit fit for this light curve.";
  }
}

function load(url) {
  fetch(url, { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error(r.statusText))))
    .then(render)
    .catch((e) => { plotBox.textContent = `The light curve could not be loaded (${e.message}): reload the page.`; });
}

if (select && typeof uPlot === "undefined") {
  plotBox.textContent = "uPlot is missing from /static/vendor: run `make web-assets`.";
} else if (select) {
  select.addEventListener("change", () => load(select.value));
  load(select.value);
}
