// @ts-check
/**
 * WebLLM (@mlc-ai/web-llm): MLC-compiled models on WebGPU. The engine runs in a Web Worker
 * (webllm-worker.js) and is driven from here through WebLLM's own worker protocol. The library
 * comes from npm (package.json; `make vendor` copies it to static/vendor/web-llm-0.2.86/).
 * Without WebGPU it is unavailable.
 *
 * A WebLLM model is more than weights: it needs a model library (WebGPU kernels compiled by MLC
 * for that exact model). WebLLM lists the ones it ships; the admin's URL says where the weights
 * are (Hugging Face, or any allowed host with the same layout), and the library comes from
 * WebLLM's list. A model WebLLM does not list cannot run, and says so before any download.
 */
import { moduleWorker, webgpu } from "./index.js";

/** @typedef {import("./index.js").BrowserModel} BrowserModel */
/** @typedef {import("./index.js").Turn} Turn */
/** @typedef {import("./index.js").Options} Options */
/** @typedef {import("../events.js").AnswerEvent} AnswerEvent */

export const LIBRARY = new URL("../../vendor/web-llm-0.2.86/index.js", import.meta.url).href;
const DEFAULT_MAX_TOKENS = 512;

export class Unavailable extends Error {}

/**
 * WebLLM's record for this model, pointing at the admin's weights URL.
 * @param {any} webllm  the library @param {BrowserModel} model
 */
export function record(webllm, model) {
  const id = modelId(model.url);
  const known = webllm.prebuiltAppConfig.model_list.find((/** @type {{model_id: string}} */ m) => m.model_id === id);
  if (!known) {
    throw new Unavailable(`${model.name} cannot run: WebLLM has no compiled model library for “${id}” `
      + "(it runs only the MLC-compiled models it lists).");
  }
  return { ...known, model: new URL(model.url, globalThis.location?.href).href };
}

/** A load failure in words a user can act on. @param {BrowserModel} model @param {unknown} error */
export function loadError(model, error) {
  const text = error instanceof Error ? error.message : String(error);
  const host = new URL(model.url, globalThis.location?.href).host;
  if (/fetch|network|404|not found|cache/i.test(text)) {
    return new Error(`${model.name} could not be downloaded from ${host}: the model's files are missing there `
      + `or the host cannot be reached (${text}). Ask an administrator to check the model's URL.`);
  }
  return new Error(`${model.name} could not be loaded: ${text}`);
}

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
  const appConfig = { ...webllm.prebuiltAppConfig, model_list: [record(webllm, model)] };
  const worker = moduleWorker(new URL("./webllm-worker.js", import.meta.url));
  let engine;
  try {
    engine = await webllm.CreateWebWorkerMLCEngine(worker, modelId(model.url), {
      appConfig,
      // WebLLM reports a 0..1 fraction, not bytes: scale it to the model's size for the bar.
      initProgressCallback: (/** @type {{progress: number}} */ p) => onProgress?.(p.progress * model.size, model.size),
    });
  } catch (error) {
    worker.terminate();
    throw loadError(model, error);
  }
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
      repetition_penalty: options.repetition_penalty,
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
