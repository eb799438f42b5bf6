// @ts-check
/**
 * wllama: llama.cpp compiled to WebAssembly, running GGUF models on the CPU in any modern browser.
 * wllama runs llama.cpp in its own Web Worker (created from a blob: URL, hence `worker-src blob:`),
 * so the page stays responsive while a model loads or generates. Several threads need
 * SharedArrayBuffer, which needs a cross-origin isolated page (COOP + COEP on the chat page);
 * wllama's default is half the cores; we pass n_threads from a short probe of how many cores
 * are free right now (threads.js): on a busy 2-core machine two threads measured slower than one,
 * on an idle one nearly twice as fast (docs/in-browser.md).
 */
import { Wllama } from "../../vendor/wllama-2.4.0/index.js";
import { threadsToUse } from "./threads.js";

/** @typedef {import("./index.js").BrowserModel} BrowserModel */
/** @typedef {import("./index.js").Turn} Turn */
/** @typedef {import("./index.js").Options} Options */
/** @typedef {import("../events.js").AnswerEvent} AnswerEvent */

const VENDOR = new URL("../../vendor/wllama-2.4.0/", import.meta.url).href;
const CONTEXT_TOKENS = 2048;
const DEFAULT_MAX_TOKENS = 512;

/**
 * @param {BrowserModel} model
 * @param {{onProgress?: import("./index.js").Progress, threads?: number}} [options]
 * @returns {Promise<import("./index.js").LoadedModel>}
 */
export async function load(model, { onProgress, threads } = {}) {
  const wllama = new Wllama(
    {
      "single-thread/wllama.wasm": VENDOR + "single-thread/wllama.wasm",
      "multi-thread/wllama.wasm": VENDOR + "multi-thread/wllama.wasm",
    },
    // allowOffline: a cached model loads without asking the server whether it changed; our URL
    // carries the file's version, so a changed file is a different URL.
    { suppressNativeLog: true, allowOffline: true },
  );
  await wllama.loadModelFromUrl(new URL(model.url, location.href).href, {
    n_ctx: CONTEXT_TOKENS,
    n_threads: threads ?? await threadsToUse(),
    progressCallback: ({ loaded, total }) => onProgress?.(loaded, total),
  });
  return {
    threads: wllama.getNumThreads(),
    generate: (turns, options, signal) => generate(wllama, turns, options, signal),
    unload: () => wllama.exit(),
    warm: () => warm(wllama),
  };
}

/**
 * One token for a throwaway question. The first answer after a load pays for llama.cpp's buffers
 * and for reading the chat template's system prompt; both stay (wllama reuses the cached prefix),
 * so a warmed model starts answering about a second sooner (docs/in-browser.md). The page warms
 * a model it loads while the user types, never one someone is waiting for.
 * @param {any} wllama
 */
async function warm(wllama) {
  await wllama.createChatCompletion([{ role: "user", content: "Hi" }], { nPredict: 1, sampling: { temp: 0 } });
}

/**
 * One answer as AnswerEvents. wllama gives the whole text so far with each token (it decodes
 * multi-byte characters across tokens), so each delta is the new tail of that text.
 * @param {any} wllama @param {Turn[]} turns @param {Options} options @param {AbortSignal} signal
 * @returns {AsyncGenerator<AnswerEvent>}
 */
export async function* generate(wllama, turns, options, signal) {
  const limit = options.max_tokens ?? DEFAULT_MAX_TOKENS;
  let text = "";
  let tokens = 0;
  try {
    const stream = await wllama.createChatCompletion(turns, {
      nPredict: limit,
      sampling: { temp: options.temperature ?? 0.7, top_p: options.top_p ?? 0.95,
        penalty_repeat: options.repetition_penalty ?? 1, penalty_last_n: 64 },
      stream: true,
      abortSignal: signal,
    });
    for await (const chunk of stream) {
      tokens += 1;
      const delta = chunk.currentText.slice(text.length);
      text = chunk.currentText;
      if (delta) yield { type: "delta", text: delta, reasoning: "" };
      if (signal.aborted) break;
    }
  } catch (error) {
    if (!signal.aborted) {
      const message = error instanceof Error ? error.message : String(error);
      yield { type: "end", status: text ? "incomplete" : "error", reason: "error", usage: null,
        error: { kind: "unavailable", message: `The in-browser model failed: ${message}` } };
      return;
    }
  }
  const usage = { output_tokens: tokens };
  if (signal.aborted) yield { type: "end", status: "incomplete", reason: "stopped", usage, error: null };
  else yield { type: "end", status: "complete", reason: tokens >= limit ? "length" : "stop", usage, error: null };
}
