// @ts-check
/**
 * In-browser engines by name. Each engine's module (and the library it vendors) is imported only
 * when a user first picks one of its models, so the chat page loads no engine code by itself.
 * Every engine exposes the same shape: `load(model, {onProgress})` resolves to a LoadedModel
 * whose `generate(turns, options, signal)` yields the AnswerEvents the server socket yields.
 */

/** @typedef {import("../events.js").AnswerEvent} AnswerEvent */
/**
 * @typedef {object} BrowserModel  one entry of page_data.browser_models
 * @property {string} id  "browser:<uuid>"
 * @property {string} name
 * @property {"wllama" | "webllm" | "transformers"} engine
 * @property {string} url  weights URL (Parley's own, or Hugging Face)
 * @property {number} size  bytes to download
 * @property {string} licence
 * @property {boolean} internet  true when the weights come from outside Parley
 * @property {boolean} [bundled]  Parley serves the weights itself: works on a fresh install
 */
/** @typedef {{role: "system" | "user" | "assistant", content: string}} Turn */
/** @typedef {{temperature?: number, max_tokens?: number, top_p?: number, repetition_penalty?: number}} Options */

/**
 * Sampling for small in-browser models when the chat settings leave it open. Greedy decoding
 * (temperature 0) makes a 135M model repeat one paragraph until the token limit; a low
 * temperature with a mild repetition penalty keeps it on topic without loops (bench/local_models.py
 * measures both). The chat settings' temperature and max tokens override these.
 */
export const SAMPLING = Object.freeze({ temperature: 0.2, top_p: 0.9, repetition_penalty: 1.15 });
/**
 * @typedef {object} LoadedModel
 * @property {(turns: Turn[], options: Options, signal: AbortSignal) => AsyncGenerator<AnswerEvent>} generate
 * @property {() => Promise<void>} unload
 * @property {number} threads
 * @property {string} [device]  where it runs, for engines that choose ("webgpu" or "wasm")
 * @property {() => Promise<void>} [warm]  run the model once while nobody waits (see wllama.js)
 */
/** @typedef {(loaded: number, total: number) => void} Progress */
/** @typedef {{ok: boolean, reason?: string}} Availability  reason: why not, when ok is false */

const LOADERS = {
  wllama: () => import("./wllama.js"),
  webllm: () => import("./webllm.js"),
  transformers: () => import("./transformers.js"),
};

/** Engines that cannot run without a WebGPU adapter. */
const NEEDS_WEBGPU = new Set(["webllm"]);

/**
 * Whether WebGPU works here, checked without loading any engine.
 * @param {any} [nav]  navigator, replaceable in tests
 * @returns {Promise<Availability>}
 */
export async function webgpu(nav = globalThis.navigator) {
  if (!nav?.gpu) return { ok: false, reason: "this browser has no WebGPU" };
  try {
    const adapter = await nav.gpu.requestAdapter();
    return adapter ? { ok: true } : { ok: false, reason: "no WebGPU adapter (no usable GPU)" };
  } catch (error) {
    return { ok: false, reason: `WebGPU failed: ${error instanceof Error ? error.message : error}` };
  }
}

/** @param {BrowserModel} model @returns {Promise<Availability>} */
export async function availability(model) {
  if (!(model.engine in LOADERS)) return { ok: false, reason: `unknown engine "${model.engine}"` };
  if (NEEDS_WEBGPU.has(model.engine)) return webgpu();
  if (typeof WebAssembly !== "object") return { ok: false, reason: "this browser has no WebAssembly" };
  return { ok: true };
}

/** @param {BrowserModel} model @param {{onProgress?: Progress}} [options] @returns {Promise<LoadedModel>} */
export async function load(model, options = {}) {
  const engine = await LOADERS[model.engine]();
  return engine.load(model, options);
}

/**
 * A module worker for `url` that works on the cross-origin isolated chat page. A worker script
 * fetched directly needs its own COEP header, which Parley's static files do not carry; a blob:
 * worker inherits the page's policy instead, and its same-origin import needs nothing more.
 * @param {URL} url
 */
export function moduleWorker(url) {
  const source = new Blob([`import ${JSON.stringify(url.href)};`], { type: "text/javascript" });
  const blobUrl = URL.createObjectURL(source);
  try {
    return new Worker(blobUrl, { type: "module" });
  } finally {
    URL.revokeObjectURL(blobUrl);
  }
}
