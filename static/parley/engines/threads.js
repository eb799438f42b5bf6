// @ts-check
/**
 * How many threads llama.cpp (wllama) should use here, from a short probe instead of a guess.
 *
 * llama.cpp's threads wait for each other at every layer by spinning, so a thread that the OS
 * deschedules stalls all the others: on a 2-core machine shared with other work, two threads
 * measured slower than one (docs/in-browser.md). What matters is not how many cores exist but
 * how many are free right now. The probe runs the same small busy loop in one worker, then in
 * N workers at once; if N together do nearly N times the work, N cores are free. It takes about
 * a quarter of a second and is remembered for the tab's session.
 */

const PROBE_MS = 60;
const KEY = "parley.threads";
/** Below this share of N-fold speed, N threads lose to one in llama.cpp's lockstep. */
const EFFICIENCY = 0.85;
const MAX_THREADS = 4;

const LOOP = `onmessage = ({ data: ms }) => {
  const end = performance.now() + ms; let n = 0, x = 0;
  while (performance.now() < end) { for (let i = 0; i < 10000; i++) x += Math.sqrt(i + n); n++; }
  postMessage(n + (x < 0 ? 1 : 0));
};`;

/** @param {number} count @returns {Promise<number>}  total loops done by `count` workers at once */
async function together(count) {
  const url = URL.createObjectURL(new Blob([LOOP], { type: "text/javascript" }));
  const workers = Array.from({ length: count }, () => new Worker(url));
  try {
    // A first short run warms every worker up (JIT), so the measured one compares like with like.
    const run = (/** @type {number} */ ms) => Promise.all(workers.map((w) => new Promise((resolve) => {
      w.onmessage = (e) => resolve(e.data);
      w.postMessage(ms);
    })));
    await run(15);
    const counts = await run(PROBE_MS);
    return counts.reduce((a, b) => a + b, 0);
  } finally {
    for (const w of workers) w.terminate();
    URL.revokeObjectURL(url);
  }
}

/**
 * Measure: the efficiency of N workers against one. Exposed for the benchmark and tests.
 * @param {number} n @returns {Promise<{threads: number, efficiency: number}>}
 */
export async function probe(n) {
  const one = await together(1);
  const many = await together(n);
  const efficiency = one > 0 ? many / (n * one) : 0;
  return { threads: efficiency >= EFFICIENCY ? n : 1, efficiency };
}

/** The thread count for this tab: 1 without shared memory, else what the probe found. */
export async function threadsToUse() {
  const cores = Math.min(MAX_THREADS, navigator.hardwareConcurrency || 1);
  if (!globalThis.crossOriginIsolated || cores < 2) return 1;
  try {
    const known = Number(sessionStorage.getItem(KEY));
    if (known >= 1) return known;
  } catch { /* storage blocked: probe every time */ }
  const { threads } = await probe(cores);
  try {
    sessionStorage.setItem(KEY, String(threads));
  } catch { /* see above */ }
  return threads;
}
