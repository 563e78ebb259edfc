// sharp's animated WebP of each input at each box, as sharp users write it:
//   sharp(file, {animated: true}).resize(box, box, {fit: "inside", withoutEnlargement: true})
//     .webp({quality, effort}).toBuffer()
// Reads a JSON job on stdin ({files, boxes, quality, effort, rounds}); prints one JSON line per
// (file, box): bytes, frames and the median CPU (user + system, ms) of the whole call.
const sharp = require("sharp");

sharp.concurrency(1); // one libvips thread per call, as the engine's one encode per core
sharp.cache(false);

async function main() {
  const job = JSON.parse(require("fs").readFileSync(0, "utf8"));
  for (const file of job.files) {
    for (const box of job.boxes) {
      const cpu = [];
      let out = null;
      for (let round = 0; round < job.rounds; round++) {
        const before = process.cpuUsage();
        out = await sharp(file, { animated: true, limitInputPixels: false })
          .resize(box, box, { fit: "inside", withoutEnlargement: true })
          .webp({ quality: job.quality, effort: job.effort })
          .toBuffer({ resolveWithObject: true });
        const used = process.cpuUsage(before);
        cpu.push((used.user + used.system) / 1000);
      }
      cpu.sort((a, b) => a - b);
      const meta = await sharp(out.data, { animated: true }).metadata();
      console.log(JSON.stringify({
        file, box, bytes: out.data.length, frames: meta.pages || 1,
        width: out.info.width, height: meta.pageHeight || out.info.height,
        cpu_ms: cpu[Math.floor(cpu.length / 2)], version: sharp.versions.sharp,
      }));
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
