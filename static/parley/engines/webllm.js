// @ts-check
/**
 * WebLLM (@mlc-ai/web-llm): MLC-compiled models on WebGPU. The engine runs in a Web Worker
 * (webllm-worker.js) and is driven from here through WebLLM's own worker protocol. The library
 * (6 MB minified) is not vendored; deployments that want it drop the ESM build at
 * static/vendor/web-llm-0.2.86/index.js (docs/in-browser.md). Without WebGPU it is unavailable.
 */
import { moduleWorker, webgpu } from "./index.js";

/** @typedef {import("./index.js").BrowserModel} BrowserModel */
/** @typedef {import("./index.js").Turn} Turn */
/** @typedef {import("./index.js").Options} Options */
/** @typedef {import("../events.js").AnswerEvent} AnswerEvent */

export const LIBRARY = new URL("../../vendor/web-llm-0.2.86/index.js", import.meta.url).href;
const DEFAULT_MAX_TOKENS = 512;

export class Unavailable extends Error {}

/** The MLC model id is the last part of its Hugging Face URL (…/mlc-ai/<model id>). @param {string} url */
export function modelId(url) {
  return url.replace(/\/+$/, "").split("/").pop() ?? url;
}

/**
 * @param {BrowserModel} model
 * @param {{onProgress?: import("./index.js").Progress, nav?: any}} [options]
 * @returns {Promise<import("./index.js").LoadedModel>}
 */
export async function load(model, { onProgress, nav } = {}) {
  const gpu = await webgpu(nav);
  if (!gpu.ok) throw new Unavailable(`${model.name} needs WebGPU: ${gpu.reason}`);
  const webllm = await import(LIBRARY);
  const worker = moduleWorker(new URL("./webllm-worker.js", import.meta.url));
  const engine = await webllm.CreateWebWorkerMLCEngine(worker, modelId(model.url), {
    // WebLLM reports a 0..1 fraction, not bytes: scale it to the model's size for the bar.
    initProgressCallback: (/** @type {{progress: number}} */ p) => onProgress?.(p.progress * model.size, model.size),
  });
  return {
    threads: 1,
    generate: (turns, options, signal) => generate(engine, turns, options, signal),
    unload: async () => { await engine.unload(); worker.terminate(); },
  };
}

/**
 * WebLLM's OpenAI-style stream as AnswerEvents.
 * @param {any} engine  an MLCEngineInterface (or a fake with the same shape)
 * @param {Turn[]} turns @param {Options} options @param {AbortSignal} signal
 * @returns {AsyncGenerator<AnswerEvent>}
 */
export async function* generate(engine, turns, options, signal) {
  const interrupt = () => engine.interruptGenerate();
  signal.addEventListener("abort", interrupt, { once: true });
  let text = "";
  /** @type {string | null} */
  let finish = null;
  /** @type {import("../events.js").Usage | null} */
  let usage = null;
  try {
    const chunks = await engine.chat.completions.create({
      messages: turns, stream: true, stream_options: { include_usage: true },
      temperature: options.temperature ?? 0.7, top_p: options.top_p, max_tokens: options.max_tokens ?? DEFAULT_MAX_TOKENS,
    });
    for await (const chunk of chunks) {
      const choice = chunk.choices?.[0];
      const delta = choice?.delta?.content ?? "";
      if (delta) {
        text += delta;
        yield { type: "delta", text: delta, reasoning: "" };
      }
      finish = choice?.finish_reason ?? finish;
      if (chunk.usage) usage = { input_tokens: chunk.usage.prompt_tokens, output_tokens: chunk.usage.completion_tokens };
    }
  } catch (error) {
    if (!signal.aborted) {
      yield { type: "end", status: text ? "incomplete" : "error", reason: "error", usage,
        error: { kind: "unavailable", message: `WebLLM failed: ${error instanceof Error ? error.message : error}` } };
      return;
    }
  } finally {
    signal.removeEventListener("abort", interrupt);
  }
  if (signal.aborted || finish === "abort") {
    yield { type: "end", status: "incomplete", reason: "stopped", usage, error: null };
  } else {
    yield { type: "end", status: "complete", reason: finish === "length" ? "length" : "stop", usage, error: null };
  }
}
