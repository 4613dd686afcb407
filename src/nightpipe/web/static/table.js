// The source table: click a header to sort (again to reverse), a filter box (text, or column=value,
// column<value, column>value), the CSV link follows the frame.
const table = document.getElementById("source-table");

function cellValue(row, col) {
  const text = row.cells[col].textContent;
  const number = Number(text);
  return text !== "" && !Number.isNaN(number) ? number : text;
}

function sortBy(col, header) {
  const body = table.tBodies[0];
  const reverse = header.dataset.sorted === "asc";
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, col), y = cellValue(b, col);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return reverse ? -order : order;
  });
  for (const th of table.tHead.rows[0].cells) delete th.dataset.sorted;
  header.dataset.sorted = reverse ? "desc" : "asc";
  body.append(...rows);
}

function matcher(text) {
  const names = Array.from(table.tHead.rows[0].cells, (th) => th.textContent.trim());
  const found = text.match(/^\s*([\w.]+)\s*(=|<|>)\s*(\S+)\s*$/);
  if (found && names.includes(found[1])) {
    const col = names.indexOf(found[1]), op = found[2], want = Number(found[3]);
    return (row) => {
      const v = cellValue(row, col);
      if (op === "=") return Number.isNaN(want) ? String(v) === found[3] : v === want;
      return op === "<" ? v < want : v > want;
    };
  }
  const needle = text.trim().toLowerCase();
  return (row) => !needle || row.textContent.toLowerCase().includes(needle);
}

if (table) {
  for (const th of table.tHead.rows[0].cells) {
    th.style.cursor = "pointer";
    th.addEventListener("click", () => sortBy(Number(th.dataset.col), th));
  }
  const count = document.getElementById("table-count");
  document.getElementById("table-filter").addEventListener("input", (e) => {
    const keep = matcher(e.target.value);
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      const ok = keep(row);
      row.hidden = !ok;
      shown += ok ? 1 : 0;
    }
    count.textContent = `${shown} of ${table.tBodies[0].rows.length} sources`;
  });
  document.getElementById("frame-select").addEventListener("change", (e) => { window.location.href = e.target.value; });
}
