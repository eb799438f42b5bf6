// @ts-check
/**
 * Transformers.js (@huggingface/transformers): ONNX models on WebGPU when there is an adapter,
 * else on WebAssembly. The pipeline runs in transformers-worker.js; this module turns the
 * worker's small messages into AnswerEvents. The library and onnxruntime's wasm come from npm
 * (package.json; `make vendor` copies them to static/vendor/transformers-4.3.1/).
 *
 * The weights are 4-bit ONNX (`onnx/model_q4.onnx`, what Transformers.js calls dtype "q4"), in a
 * Hugging Face repo (a repo id or https://huggingface.co/<owner>/<name>) or in any folder URL
 * with the same files (tests/browser_local/onnx_model.py makes one from the bundled SmolLM2).
 */
import { moduleWorker, webgpu } from "./index.js";

/** @typedef {import("./index.js").BrowserModel} BrowserModel */
/** @typedef {import("./index.js").Turn} Turn */
/** @typedef {import("./index.js").Options} Options */
/** @typedef {import("../events.js").AnswerEvent} AnswerEvent */
/**
 * What transformers-worker.js posts.
 * @typedef {{type: "progress", loaded: number, total: number} | {type: "ready", device: string}
 *   | {type: "delta", text: string} | {type: "done", output_tokens: number, stopped: boolean, length: boolean}
 *   | {type: "error", message: string}} WorkerMessage
 */

const DEFAULT_MAX_TOKENS = 512;

const DTYPE = "q4";

/** The Hugging Face repo id from a model URL (https://huggingface.co/<owner>/<name>). @param {string} url */
export function repoId(url) {
  return url.replace(/^https:\/\/huggingface\.co\//, "").replace(/\/+$/, "");
}

/**
 * Where the worker fetches the files from: the Hub's layout for Hugging Face (or a bare repo
 * id), else the folder at `url` itself (Parley's own, or any host the admin allowed).
 * @param {string} url @param {string} [base]  the page's address, for relative URLs
 * @returns {{host: string, model: string, hub: boolean}}
 */
export function source(url, base = globalThis.location?.href) {
  if (!/^[a-z]+:|^\//i.test(url) || url.startsWith("https://huggingface.co/")) {
    return { host: "https://huggingface.co/", model: repoId(url), hub: true };
  }
  const folder = new URL(url.replace(/\/*$/, "/"), base);
  return { host: `${folder.origin}/`, model: folder.pathname.replace(/^\/|\/$/g, ""), hub: false };
}

/**
 * @param {BrowserModel} model
 * @param {{onProgress?: import("./index.js").Progress, nav?: any}} [options]
 * @returns {Promise<import("./index.js").LoadedModel>}
 */
export async function load(model, { onProgress, nav } = {}) {
  const device = (await webgpu(nav)).ok ? "webgpu" : "wasm";
  return loadOn(model, device, onProgress);
}

/**
 * Load on a given backend ("webgpu" or "wasm"); `load` picks WebGPU when there is an adapter.
 * @param {BrowserModel} model @param {"webgpu" | "wasm"} device @param {import("./index.js").Progress} [onProgress]
 * @returns {Promise<import("./index.js").LoadedModel & {device: string}>}
 */
export async function loadOn(model, device, onProgress) {
  const worker = moduleWorker(new URL("./transformers-worker.js", import.meta.url));
  await new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => {
      if (data.type === "progress") onProgress?.(data.loaded, data.total);
      else if (data.type === "ready") resolve(undefined);
      else if (data.type === "error") reject(new Error(data.message));
    };
    worker.onerror = (e) => reject(new Error(e.message || "the Transformers.js worker failed to start"));
    worker.postMessage({ type: "load", source: source(model.url), device, dtype: DTYPE });
  }).catch((error) => {
    worker.terminate();
    throw error;
  });
  return {
    device,
    threads: 1,
    generate: (turns, options, signal) => generate(worker, turns, options, signal),
    unload: async () => worker.terminate(),
  };
}

/**
 * One answer from the worker as AnswerEvents; aborting asks the worker to interrupt.
 * @param {{postMessage: (m: any) => void, addEventListener: Function, removeEventListener: Function}} worker
 * @param {Turn[]} turns @param {Options} options @param {AbortSignal} signal
 * @returns {AsyncGenerator<AnswerEvent>}
 */
export async function* generate(worker, turns, options, signal) {
  /** @type {WorkerMessage[]} */
  const queue = [];
  /** @type {(() => void) | null} */
  let wake = null;
  const onMessage = (/** @type {MessageEvent} */ e) => { queue.push(e.data); wake?.(); };
  const interrupt = () => worker.postMessage({ type: "interrupt" });
  worker.addEventListener("message", onMessage);
  signal.addEventListener("abort", interrupt, { once: true });
  worker.postMessage({ type: "generate", messages: turns, max_new_tokens: options.max_tokens ?? DEFAULT_MAX_TOKENS,
    temperature: options.temperature ?? 0.7, top_p: options.top_p, repetition_penalty: options.repetition_penalty });
  let text = "";
  try {
    while (true) {
      const message = queue.shift();
      if (!message) {
        await new Promise((resolve) => { wake = () => resolve(undefined); });
        wake = null;
        continue;
      }
      if (message.type === "delta" && message.text) {
        text += message.text;
        yield { type: "delta", text: message.text, reasoning: "" };
      } else if (message.type === "done") {
        const usage = { output_tokens: message.output_tokens };
        if (message.stopped || signal.aborted) yield { type: "end", status: "incomplete", reason: "stopped", usage, error: null };
        else yield { type: "end", status: "complete", reason: message.length ? "length" : "stop", usage, error: null };
        return;
      } else if (message.type === "error") {
        yield { type: "end", status: text ? "incomplete" : "error", reason: "error", usage: null,
          error: { kind: "unavailable", message: `Transformers.js failed: ${message.message}` } };
        return;
      }
    }
  } finally {
    worker.removeEventListener("message", onMessage);
    signal.removeEventListener("abort", interrupt);
  }
}
