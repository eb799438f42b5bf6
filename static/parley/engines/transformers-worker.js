// @ts-check
// The Transformers.js pipeline's home: loading and generation never block the page.
import {
  InterruptableStoppingCriteria, TextStreamer, env, pipeline,
} from "../../vendor/transformers-4.3.1/transformers.min.js";

// Only Parley's own copy of onnxruntime's wasm, never a CDN (CSP would refuse it anyway).
/** @type {any} */ (env.backends.onnx).wasm.wasmPaths = new URL("../../vendor/transformers-4.3.1/", import.meta.url).href;
env.allowLocalModels = false;

/** @type {any} */
let generator = null;
const stopping = new InterruptableStoppingCriteria();

/**
 * Where the model's files are: a Hugging Face repo (host + "{model}/resolve/{revision}/"), or
 * any other folder URL that holds config.json, the tokenizer and onnx/ directly.
 * @param {{host: string, model: string, hub: boolean}} source
 */
function locate({ host, model, hub }) {
  env.remoteHost = host;
  env.remotePathTemplate = hub ? "{model}/resolve/{revision}/" : "{model}/";
  return model;
}

/** @param {{source: {host: string, model: string, hub: boolean}, device: any, dtype: any}} request */
async function load({ source, device, dtype }) {
  const files = new Map();
  generator = await pipeline("text-generation", locate(source), {
    device, dtype,
    progress_callback: (p) => {
      if (p.status !== "progress") return;
      files.set(p.file, [p.loaded, p.total]);
      const [loaded, total] = [...files.values()].reduce(([a, b], [c, d]) => [a + c, b + d], [0, 0]);
      postMessage({ type: "progress", loaded, total });
    },
  });
  postMessage({ type: "ready", device });
}

/**
 * @param {{messages: {role: string, content: string}[], max_new_tokens: number, temperature: number,
 *   top_p?: number, repetition_penalty?: number}} request
 */
async function generate({ messages, max_new_tokens, temperature, top_p, repetition_penalty }) {
  stopping.reset();
  let tokens = 0;
  const streamer = new TextStreamer(generator.tokenizer, {
    skip_prompt: true, skip_special_tokens: true,
    callback_function: (text) => postMessage({ type: "delta", text }),
    token_callback_function: () => { tokens += 1; },
  });
  await generator(messages, {
    max_new_tokens, do_sample: temperature > 0, temperature: temperature || undefined, top_p,
    repetition_penalty, streamer, stopping_criteria: stopping,
  });
  postMessage({ type: "done", output_tokens: tokens, stopped: stopping.interrupted, length: tokens >= max_new_tokens });
}

self.onmessage = async ({ data }) => {
  try {
    if (data.type === "load") await load(data);
    else if (data.type === "generate") await generate(data);
    else if (data.type === "interrupt") stopping.interrupt();
  } catch (error) {
    postMessage({ type: "error", message: error instanceof Error ? error.message : String(error) });
  }
};
