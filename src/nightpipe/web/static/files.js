// The upload's progress bar (htmx reports the bytes sent).
const form = document.getElementById("upload-form");
const bar = document.getElementById("upload-progress");
form?.addEventListener("htmx:xhr:progress", (e) => {
  if (e.detail.lengthComputable) { bar.hidden = false; bar.value = e.detail.loaded / e.detail.total * 100; }
});
form?.addEventListener("htmx:afterRequest", () => { bar.hidden = true; });
