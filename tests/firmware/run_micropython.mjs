// Runs tests/firmware/mp_runner.py under the real MicroPython interpreter (the
// WebAssembly port, under node) against the firmware in firmware/micropython.
// usage: node run_micropython.mjs MICROPYTHON_MJS FIRMWARE_DIR CASES_JSON
// Prints the results JSON on stdout; MicroPython's own output goes to stderr.
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const [mjs, firmwareDir, casesPath] = process.argv.slice(2);
const { loadMicroPython } = await import(pathToFileURL(mjs).href);
const mp = await loadMicroPython({
  heapsize: 16 * 1024 * 1024,
  stdout: (line) => process.stderr.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
mp.FS.mkdir("/fw");
for (const name of readdirSync(firmwareDir)) {
  if (name.endsWith(".py") && name !== "main.py") {
    mp.FS.writeFile("/fw/" + name, readFileSync(join(firmwareDir, name)));
  }
}
const here = dirname(fileURLToPath(import.meta.url));
mp.FS.writeFile("/fw/mp_runner.py", readFileSync(join(here, "mp_runner.py")));
mp.FS.writeFile("/cases.json", readFileSync(casesPath));
try {
  mp.runPython("import sys\nsys.path.insert(0, '/fw')\nimport mp_runner\nmp_runner.main()\n");
} catch (error) {
  process.stderr.write(String(error.message || error) + "\n");
  process.exit(2);
}
process.stdout.write(new TextDecoder().decode(mp.FS.readFile("/results.json")));
