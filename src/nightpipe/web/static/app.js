// Every htmx request carries the session's CSRF token; "all" buttons tick a group of checkboxes.
const token = document.querySelector('meta[name="csrf-token"]')?.content || "";

document.body.addEventListener("htmx:configRequest", (event) => {
  if (token) event.detail.headers["X-CSRF-Token"] = token;
});

for (const button of document.querySelectorAll("[data-check-all]")) {
  button.addEventListener("click", () => {
    const boxes = document.querySelectorAll(`input[name="${button.dataset.checkAll}"]`);
    const all = [...boxes].every((b) => b.checked);
    boxes.forEach((b) => { b.checked = !all; });
  });
}

export { token };
