// @ts-check
// The WebLLM engine's home: model loading and generation run here, never on the page's thread.
import { WebWorkerMLCEngineHandler } from "../../vendor/web-llm-0.2.86/index.js";

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (message) => handler.onmessage(message);
