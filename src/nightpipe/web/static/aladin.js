// Aladin Lite (vendored from npm) showing the field with the detections, when the browser can
// reach the HiPS servers; offline the panel says so. The check is a fetch cut off after 4 s, and
// the 2 MB library is imported only when it can be used.
const box = document.getElementById("aladin");
const HIPS_PROBE = "https://alasky.cds.unistra.fr/DSS/DSSColor/properties";

async function online() {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 4000);
  try {
    await fetch(HIPS_PROBE, { mode: "no-cors", signal: stop.signal, cache: "no-store" });
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function say(text) {
  const p = document.createElement("p");
  p.className = "hint";
  p.id = "aladin-status";
  p.textContent = text;
  box.replaceChildren(p);
}

async function start() {
  say("Checking whether the sky survey servers can be reached…");
  if (!(await online())) { say("Aladin Lite needs the internet; offline"); return; }
  try {
    const overlay = await (await fetch(box.dataset.overlay, { credentials: "same-origin" })).json();
    const stars = overlay.sources.filter((s) => s.ra !== null && s.dec !== null);
    if (!stars.length) { say("This frame has no sky positions (not plate-solved): no sky view."); return; }
    const { default: A } = await import("/static/vendor/aladin.js");  // an ES module (npm dist)
    await A.init;
    box.replaceChildren();
    box.style.height = "480px";
    const ra = stars.reduce((a, s) => a + s.ra, 0) / stars.length;
    const dec = stars.reduce((a, s) => a + s.dec, 0) / stars.length;
    const aladin = A.aladin(box, { survey: "P/DSS2/color", fov: 0.5, target: `${ra} ${dec}` });
    const cat = A.catalog({ name: "detections", sourceSize: 12, color: "#4cc38a" });
    aladin.addCatalog(cat);
    cat.addSources(stars.map((s) => A.source(s.ra, s.dec, { id: s.id, flux: s.flux, mag: s.mag })));
  } catch (e) {
    say(`Aladin Lite could not start (${e.message}); the frame viewer above works offline.`);
  }
}

if (box) start();
