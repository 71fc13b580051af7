// Tables become cards on a phone: every cell of a table in a .table-wrap gets data-label, the
// text of its column's header, and the table the class "stacks"; below 700 px site.css then shows
// each row as a card, each cell under its label. Without JavaScript the table scrolls sideways
// inside its .table-wrap instead. Run on load and after every htmx swap (filters, live lists).
(function () {
  "use strict";
  function label() {
    document.querySelectorAll(".table-wrap table").forEach(function (table) {
      var head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
      if (!head) { return; }
      var names = [];
      Array.prototype.forEach.call(head.cells, function (cell) {
        for (var i = 0; i < (cell.colSpan || 1); i++) { names.push(cell.textContent.trim()); }
      });
      Array.prototype.forEach.call(table.tBodies, function (body) {
        Array.prototype.forEach.call(body.rows, function (row) {
          var column = 0;
          Array.prototype.forEach.call(row.cells, function (cell) {
            if (!cell.hasAttribute("data-label") && names[column] && (cell.colSpan || 1) === 1) {
              cell.setAttribute("data-label", names[column]);
            }
            column += cell.colSpan || 1;
          });
        });
      });
      table.classList.add("stacks");
    });
  }
  document.addEventListener("DOMContentLoaded", label);
  document.addEventListener("htmx:afterSettle", label);
})();
