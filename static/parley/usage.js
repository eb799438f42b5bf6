// @ts-check
/**
 * The usage page's charts (Chart.js, served from static/vendor/), drawn from #usage-data: the
 * same rows as the tables beside them, which stay the accessible reading of every chart.
 * Colours come from the stylesheet, so a chart follows the theme the page is in, and is
 * redrawn when the theme switch or the system changes it.
 */
// Chart.js's UMD build: self-contained (the ES build imports a bare module name, which a page
// without a bundler cannot resolve); loaded as a module it sets globalThis.Chart.
import "../vendor/chart.js-4.6.1/chart.umd.min.js";

/** @type {typeof import("chart.js").Chart} */
const Chart = /** @type {any} */ (globalThis).Chart;

/** @typedef {{labels: string[], tokens_in: number[], tokens_out: number[], cost: number[]}} Series */
/** @typedef {{primary: string, charts: Record<string, Series>}} UsageData */

/** @type {UsageData} */
const data = JSON.parse(document.getElementById("usage-data")?.textContent ?? "{}");

/** A colour the stylesheet gives for `name` in the current theme (custom properties stay unresolved). @param {string} name */
function ink(name) {
  const probe = document.createElement("span");
  probe.className = `chart-ink chart-ink-${name}`;
  document.body.append(probe);
  const color = getComputedStyle(probe).color;
  probe.remove();
  return color;
}

function palette() {
  return { in: ink("in"), out: ink("out"), cost: ink("cost"), text: ink("text"), grid: ink("grid") };
}

/**
 * @param {string} name  the table: day, user, group, model, provider
 * @param {Series} series
 * @param {ReturnType<typeof palette>} colors
 * @returns {import("chart.js").ChartConfiguration<"bar">}
 */
function config(name, series, colors) {
  const byCost = name === "user" && Boolean(data.primary);
  const datasets = byCost
    ? [{ label: `Cost (${data.primary})`, data: series.cost, backgroundColor: colors.cost }]
    : [
      { label: "Tokens in", data: series.tokens_in, backgroundColor: colors.in },
      { label: "Tokens out", data: series.tokens_out, backgroundColor: colors.out },
    ];
  const horizontal = name !== "day";
  const axis = { stacked: !byCost, grid: { color: colors.grid }, ticks: { color: colors.text } };
  return {
    type: "bar",
    data: { labels: series.labels, datasets },
    options: {
      indexAxis: horizontal ? "y" : "x",
      responsive: true,
      maintainAspectRatio: false,
      animation: matchMedia("(prefers-reduced-motion: reduce)").matches ? false : { duration: 300 },
      scales: { x: { ...axis, beginAtZero: true }, y: { ...axis } },
      plugins: { legend: { labels: { color: colors.text } } },
    },
  };
}

/** @type {import("chart.js").Chart<"bar">[]} */
const charts = [];

// Bars across the page: as tall as their rows need, up to the height of the days' chart.
const ROW_REM = 2.4;
const AXES_REM = 5;
const MAX_REM = 18;

function draw() {
  const colors = palette();
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const name = /** @type {HTMLCanvasElement} */ (canvas).dataset.chart ?? "";
    const series = data.charts?.[name];
    if (!series) continue;
    const box = /** @type {HTMLElement} */ (canvas.parentElement);
    // Set through the CSSOM, which the page's CSP allows (it refuses style attributes in the HTML).
    if (name !== "day") box.style.height = `${Math.min(MAX_REM, AXES_REM + ROW_REM * series.labels.length)}rem`;
    charts.push(new Chart(/** @type {HTMLCanvasElement} */ (canvas), config(name, series, colors)));
  }
}

/** The theme changed: the same charts in the new theme's colours. */
function recolor() {
  const colors = palette();
  for (const chart of charts) {
    const name = /** @type {HTMLCanvasElement} */ (chart.canvas).dataset.chart ?? "";
    const fresh = config(name, data.charts[name], colors);
    chart.data.datasets.forEach((set, i) => { set.backgroundColor = fresh.data.datasets[i].backgroundColor; });
    chart.options.scales = fresh.options?.scales;
    chart.options.plugins = fresh.options?.plugins;
    chart.update("none");
  }
}

draw();
new MutationObserver(recolor).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
matchMedia("(prefers-color-scheme: dark)").addEventListener("change", recolor);
