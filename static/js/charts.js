// eventops: draws the queue page's uPlot charts from the JSON data block that the
// server renders with json_script (no inline JavaScript: the CSP forbids it).
(function () {
  "use strict";

  var COLORS = ["#2f6fde", "#d9822b", "#2e9d5b", "#c23b3b", "#7b5cc4", "#6b7a8f"];

  function formatValue(unit) {
    return function (self, value) {
      if (value == null) return "—";
      if (unit === "seconds" && value >= 7200) return trim(value / 3600) + " h";
      if (unit === "seconds" && value >= 120) return trim(value / 60) + " min";
      if (unit === "seconds") return trim(value) + " s";
      return trim(value);
    };
  }

  function trim(value) {
    return (Math.round(value * 10) / 10).toString();
  }

  // Wide enough for the longest tick label, so "3 min" is never cut to "0 min".
  function axisSize(self, values, axisIdx, cycleNum) {
    var axis = self.axes[axisIdx];
    if (cycleNum > 1) return axis._size;
    var longest = (values || []).reduce(function (n, v) { return Math.max(n, String(v).length); }, 0);
    return Math.max(40, longest * 8 + 24);
  }

  // A vertical line where the state changed (the alarm page's charts).
  function markerPlugin(at) {
    return {
      hooks: {
        draw: function (u) {
          var x = Math.round(u.valToPos(at, "x", true));
          var ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "#ff6b6b";
          ctx.lineWidth = 2 * (window.devicePixelRatio || 1);
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
          ctx.restore();
        },
      },
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
      var threshold = label === "threshold";
      series.push({
        label: label,
        stroke: threshold ? "#f2c14e" : COLORS[i % COLORS.length],
        dash: threshold ? [6, 4] : undefined,
        width: 1.5,
        spanGaps: false,
        // Sparse series (a few datapoints among gaps) draw no line: show the points.
        points: { show: present <= 120, size: 5 },
        value: formatValue(chart.unit),
      });
    });
    var ticks = function (self, values) { return values.map(formatValue(chart.unit).bind(null, self)); };
    var x = { time: true };
    if (chart.x_range) {
      x.range = function () { return chart.x_range; };
    }
    // eslint-disable-next-line no-new
    new window.uPlot(
      {
        width: width,
        height: 220,
        series: series,
        axes: [
          { label: "time (UTC)", labelSize: 18 },
          { label: chart.unit || "value", labelSize: 18, values: ticks, size: axisSize },
        ],
        scales: {
          x: x,
          // Counts and ages start at zero: a small change never looks like a cliff.
          y: { range: function (self, min, max) { return [Math.min(0, min), max > 0 ? max * 1.1 : 1]; } },
        },
        plugins: chart.marker ? [markerPlugin(chart.marker)] : [],
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
