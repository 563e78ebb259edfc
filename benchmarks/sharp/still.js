// sharp's still encoders on given pixels, as sharp users call them: each reference PNG (the
// rendition's pixels, already resized) through sharp(file).jpeg/webp/avif(options), written
// to a file. Reads a JSON job on stdin ({files, out, encodes: [{label, format, options,
// qualities}]}); prints one JSON line per file written: file, label, quality, path, bytes,
// CPU (user + system, ms) and sharp's version.
const fs = require("fs");
const path = require("path");
const sharp = require("sharp");

sharp.concurrency(1); // one libvips thread per call, as the engine's one encode per core
sharp.cache(false);

async function main() {
  const job = JSON.parse(fs.readFileSync(0, "utf8"));
  let n = 0;
  for (const file of job.files) {
    for (const enc of job.encodes) {
      for (const quality of enc.qualities) {
        const options = { ...enc.options };
        if (quality !== null) options.quality = quality;
        const before = process.cpuUsage();
        const data = await sharp(file)[enc.format](options).toBuffer();
        const used = process.cpuUsage(before);
        const out = path.join(job.out, `${n++}.${enc.format}`);
        fs.writeFileSync(out, data);
        console.log(JSON.stringify({
          file, label: enc.label, quality: quality === null ? -1 : quality, path: out,
          bytes: data.length, cpu_ms: (used.user + used.system) / 1000,
          version: sharp.versions.sharp,
        }));
      }
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
