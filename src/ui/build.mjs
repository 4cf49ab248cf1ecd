// Bundles the chat page (web/) into OUT_DIR: index.html, app.js (esbuild, minified, the npm
// libraries included), app.css, icon.svg, and a gzip copy (.gz) of each. CMake runs it at
// build time (ui.cmake) and embeds OUT_DIR's files into the binary.
//
//   node src/ui/build.mjs OUT_DIR
import { build } from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT_DIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

const common = { bundle: true, minify: true, write: false, legalComments: 'eof', logLevel: 'warning' };
const js = await build({
  ...common,
  entryPoints: [join(here, 'web/main.js')],
  format: 'esm',
  target: ['es2020'],
  // Nothing in the bundle may need eval or new Function (the page's CSP forbids both).
  supported: { 'dynamic-import': false },
});
const css = await build({ ...common, entryPoints: [join(here, 'web/style.css')], loader: { '.css': 'css' } });

const files = {
  'index.html': readFileSync(join(here, 'web/index.html')),
  'app.js': Buffer.from(js.outputFiles[0].contents),
  'app.css': Buffer.from(css.outputFiles[0].contents),
  'icon.svg': readFileSync(join(here, 'web/icon.svg')),
};
for (const [name, data] of Object.entries(files)) {
  if (name === 'app.js' && /\beval\s*\(|new Function\s*\(/.test(data.toString())) {
    console.error('build.mjs: the bundle calls eval or new Function, which the page CSP blocks');
    process.exit(1);
  }
  writeFileSync(join(out, name), data);
  writeFileSync(join(out, `${name}.gz`), gzipSync(data, { level: constants.Z_BEST_COMPRESSION }));
}
const total = (suffix) => Object.keys(files).reduce((n, f) => n + readFileSync(join(out, f + suffix)).length, 0);
console.log(`hearth web UI: ${Object.keys(files).length} files, ${total('')} bytes, ${total('.gz')} gzip`);
