/* Draws the dashboard's plotly figures (JSON embedded by the page) and wires the PNG/SVG downloads. */
(function () {
  "use strict";
  function download(div, format) {
    window.Plotly.downloadImage(div, { format: format, filename: div.dataset.filename, width: 1200, height: 700 });
  }
  document.querySelectorAll("[data-figure]").forEach(function (div) {
    var source = document.getElementById(div.dataset.figure);
    var figure = JSON.parse(JSON.parse(source.textContent));  // a JSON string holding the figure's JSON
    var config = {
      responsive: true,
      displaylogo: false,
      toImageButtonOptions: { format: "png", filename: div.dataset.filename, width: 1200, height: 700 },
      modebarButtonsToAdd: [{
        name: "Download plot as SVG",
        icon: window.Plotly.Icons.disk,
        click: function (gd) { download(gd, "svg"); }
      }]
    };
    window.Plotly.newPlot(div, figure.data, figure.layout, config);
  });
  // A link to a table inside a folded section opens the section first, so the jump lands on the table.
  function reveal(hash) {
    var target = hash && document.getElementById(decodeURIComponent(hash.slice(1)));
    for (var node = target; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
    return target;
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest('a[href^="#"]');
    if (link && reveal(link.getAttribute("href"))) { /* the browser then jumps to the opened target */ }
  });
  window.addEventListener("hashchange", function () { reveal(window.location.hash); });
  if (window.location.hash) {
    var shown = reveal(window.location.hash);
    if (shown) { shown.scrollIntoView(); }
  }
  document.querySelectorAll("button[data-download]").forEach(function (button) {
    button.addEventListener("click", function () {
      download(document.getElementById(button.dataset.target), button.dataset.download);
    });
  });
})();
