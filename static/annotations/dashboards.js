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
  document.querySelectorAll("button[data-download]").forEach(function (button) {
    button.addEventListener("click", function () {
      download(document.getElementById(button.dataset.target), button.dataset.download);
    });
  });
})();
