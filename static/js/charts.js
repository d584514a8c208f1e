// eventops: draws the queue page's uPlot charts from the JSON data block that the
// server renders with json_script (no inline JavaScript: the CSP forbids it).
(function () {
  "use strict";

  var COLORS = ["#2f6fde", "#d9822b", "#2e9d5b", "#c23b3b", "#7b5cc4", "#6b7a8f"];

  function formatValue(unit) {
    return function (self, value) {
      if (value == null) return "—";
      if (unit === "seconds" && value >= 120) return (value / 60).toFixed(1) + " min";
      return (Math.round(value * 100) / 100).toString();
    };
  }

  function draw(container, chart) {
    var figure = document.createElement("figure");
    figure.className = "chart";
    var caption = document.createElement("figcaption");
    caption.textContent = chart.title + (chart.unit ? " (" + chart.unit + ")" : "");
    figure.appendChild(caption);
    container.appendChild(figure);

    var hasData = chart.data.slice(1).some(function (column) {
      return column.some(function (v) { return v !== null; });
    });
    if (!hasData) {
      var empty = document.createElement("p");
      empty.className = "muted";
      empty.textContent = "No datapoints in this range.";
      figure.appendChild(empty);
      return;
    }
    // Each figure is a cell of the .charts grid: draw at the cell's width.
    var width = Math.max(280, Math.floor(figure.getBoundingClientRect().width) || 480);
    var series = [{}];
    chart.labels.forEach(function (label, i) {
      var column = chart.data[i + 1];
      var present = column.filter(function (v) { return v !== null; }).length;
      series.push({
        label: label,
        stroke: COLORS[i % COLORS.length],
        width: 1.5,
        spanGaps: false,
        // Sparse series (a few datapoints among gaps) draw no line: show the points.
        points: { show: present <= 120, size: 5 },
        value: formatValue(chart.unit),
      });
    });
    // eslint-disable-next-line no-new
    new window.uPlot(
      {
        width: width,
        height: 220,
        series: series,
        axes: [{}, { values: function (self, ticks) { return ticks.map(formatValue(chart.unit).bind(null, self)); } }],
        scales: { x: { time: true } },
        // The dashboard speaks UTC everywhere.
        tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      },
      chart.data,
      figure
    );
  }

  function render() {
    var source = document.getElementById("queue-charts-data");
    var container = document.getElementById("queue-charts");
    if (!source || !container || !window.uPlot) return;
    var charts = JSON.parse(source.textContent);
    container.textContent = "";
    charts.forEach(function (chart) { draw(container, chart); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
