// Copy the front-end libraries Parley serves from node_modules/ (installed from package-lock.json
// by `npm ci --ignore-scripts`) to static/vendor/<name>-<version>/, with their licences.
//
// Why copy instead of serving node_modules/: the page may load only what is listed here (a few
// files out of 500 MB), the folder name carries the version (so a new version is a new URL and
// browsers may cache a file forever), and static/vendor/ is git-ignored, so nothing large is
// ever committed. Each JavaScript entry also gets a one-line `.d.ts` beside it that re-exports
// the package's own types, so `tsc --checkJs` type-checks our imports without checking the
// libraries' minified code. Run by `make vendor` (and so by `make run` and `make test`).
import {
  copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const MODULES = join(ROOT, "node_modules");
const VENDOR = join(ROOT, "static", "vendor");

/**
 * package: where it is in node_modules; dir: the folder name before "-<version>";
 * files: [from (in the package), to (in the folder)]; types: [entry file, module the types come from].
 */
const LIBRARIES = [
  { package: "marked", dir: "marked", files: [["lib/marked.esm.js", "marked.esm.js"], ["LICENSE", "LICENSE"]],
    types: [["marked.esm.js", "marked"]] },
  { package: "dompurify", dir: "dompurify",
    files: [["dist/purify.es.mjs", "purify.es.mjs"], ["LICENSE", "LICENSE"], ["LICENSE-MPL", "LICENSE-MPL"]],
    types: [["purify.es.mjs", "dompurify", "default"]] },
  { package: "@highlightjs/cdn-assets", dir: "highlight.js",
    files: [["es/highlight.min.js", "highlight.min.js"], ["LICENSE", "LICENSE"]],
    types: [["highlight.min.js", "highlight.js", "default"]] },
  { package: "axe-core", dir: "axe-core",
    files: [["axe.min.js", "axe.min.js"], ["LICENSE", "LICENSE"], ["LICENSE-3RD-PARTY.txt", "LICENSE-3RD-PARTY.txt"]] },
  { package: "@wllama/wllama", dir: "wllama",
    files: [["esm/index.js", "index.js"], ["esm/single-thread/wllama.wasm", "single-thread/wllama.wasm"],
      ["esm/multi-thread/wllama.wasm", "multi-thread/wllama.wasm"], ["LICENCE", "LICENCE"]],
    types: [["index.js", "@wllama/wllama"]] },
  // Transformers.js bundles onnxruntime-web's JavaScript; its WebAssembly (the asyncify build,
  // the one it asks for on every browser but old Safari) comes from onnxruntime-web itself.
  { package: "@huggingface/transformers", dir: "transformers",
    files: [["dist/transformers.min.js", "transformers.min.js"], ["LICENSE", "LICENSE"],
      ["../../onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.mjs"],
      ["../../onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.wasm", "ort-wasm-simd-threaded.asyncify.wasm"]],
    notices: { "LICENSE-onnxruntime-web": "onnxruntime-web" },
    types: [["transformers.min.js", "@huggingface/transformers"]] },
  { package: "@mlc-ai/web-llm", dir: "web-llm", files: [["lib/index.js", "index.js"], ["LICENSE", "LICENSE"]],
    types: [["index.js", "@mlc-ai/web-llm"]] },
  // The usage page's charts. The UMD build carries @kurkle/color inside it, so its licence too.
  { package: "chart.js", dir: "chart.js",
    files: [["dist/chart.umd.min.js", "chart.umd.min.js"], ["LICENSE.md", "LICENSE.md"],
      ["../@kurkle/color/LICENSE.md", "LICENSE-kurkle-color.md"]],
    types: [["chart.umd.min.js", "chart.js"]] },
];

/** @param {string} name */
function packageJson(name) {
  const path = join(MODULES, name, "package.json");
  if (!existsSync(path)) {
    console.error(`${name} is not in node_modules/: run \`npm ci --ignore-scripts\` (make vendor does).`);
    process.exit(1);
  }
  return JSON.parse(readFileSync(path, "utf8"));
}

/** Copy unless the target already has the same size and is newer (a second run costs nothing). */
function copy(from, to) {
  mkdirSync(dirname(to), { recursive: true });
  if (existsSync(to)) {
    const [a, b] = [statSync(from), statSync(to)];
    if (a.size === b.size && b.mtimeMs >= a.mtimeMs) return false;
  }
  copyFileSync(from, to);
  return true;
}

let copied = 0;
for (const lib of LIBRARIES) {
  const { version } = packageJson(lib.package);
  const folder = join(VENDOR, `${lib.dir}-${version}`);
  for (const [from, to] of lib.files) {
    if (copy(join(MODULES, lib.package, from), join(folder, to))) copied += 1;
  }
  for (const [file, pkg] of Object.entries(lib.notices ?? {})) {
    const meta = packageJson(pkg);
    writeFileSync(join(folder, file), `${pkg} ${meta.version}: ${meta.license} licence, ${meta.author ?? "see its package"}.\n`
      + `No licence file ships in the npm package; the ${meta.license} text is at https://opensource.org/license/${meta.license.toLowerCase()}\n`);
  }
  for (const [file, module, hasDefault] of lib.types ?? []) {
    const lines = [`// Generated by scripts/vendor.mjs: the types of ${module} for tsc --checkJs.`, `export * from "${module}";`];
    if (hasDefault) lines.push(`export { default } from "${module}";`);
    writeFileSync(join(folder, file.replace(/\.(m?)js$/, ".d.$1ts")), lines.join("\n") + "\n");
  }
}
// Drop the folders of versions no longer in the lockfile.
const wanted = new Set(LIBRARIES.map((lib) => `${lib.dir}-${packageJson(lib.package).version}`));
for (const entry of existsSync(VENDOR) ? readdirSync(VENDOR) : []) {
  if (!wanted.has(entry) && !entry.startsWith(".")) rmSync(join(VENDOR, entry), { recursive: true, force: true });
}
console.log(`static/vendor/: ${LIBRARIES.length} libraries, ${copied} files copied.`);
