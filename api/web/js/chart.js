// The balance-over-time chart: uPlot (vendored), loaded only when a chart is drawn.

let library = null;

function loadLibrary() {
  if (!library) {
    const css = document.createElement("link");
    css.rel = "stylesheet";
    css.href = "/dashboard/static/vendor/uplot/uPlot.min.css";
    document.head.append(css);
    library = import("../vendor/uplot/uPlot.esm.js").then((module) => module.default);
  }
  return library;
}

// Draws `points` ([{at: ISO string, balance}], oldest first) into `container`, and
// keeps the chart as wide as the container. Returns a function that removes it.
export async function balanceChart(container, points) {
  const uPlot = await loadLibrary();
  const xs = points.map((p) => Date.parse(p.at) / 1000);
  const ys = points.map((p) => p.balance);
  const style = getComputedStyle(container);
  const accent = style.getPropertyValue("--accent").trim() || "#3b3fc4";
  const text = style.getPropertyValue("--text").trim() || "#1f2330";
  const width = () => Math.max(240, container.clientWidth);
  const axis = { stroke: text, grid: { stroke: "rgba(127,127,127,0.2)" } };
  const chart = new uPlot(
    {
      width: width(),
      height: 240,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true } },
      axes: [axis, { ...axis, size: 60 }],
      series: [
        {},
        {
          label: "Balance",
          stroke: accent,
          width: 2,
          fill: "rgba(59,63,196,0.12)",
          paths: uPlot.paths.stepped({ align: 1 }),
          points: { show: points.length < 60 },
        },
      ],
    },
    [xs, ys],
    container,
  );
  const observer = new ResizeObserver(() => chart.setSize({ width: width(), height: 240 }));
  observer.observe(container);
  return () => {
    observer.disconnect();
    chart.destroy();
  };
}
