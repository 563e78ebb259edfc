// A CDN miss the way AWS's Dynamic Image Transformation makes it: the original's bytes (read
// from S3 by the caller, handed over here) resized and encoded by sharp on every miss:
//   sharp(bytes).rotate().resize(width, null, {withoutEnlargement: true}).jpeg({quality})
// Reads a JSON job on stdin ({files, widths, quality, rounds}); prints one JSON line per
// (file, width): the median wall time (ms) of the call, bytes out, the output size.
const fs = require("fs");
const sharp = require("sharp");

sharp.cache(false);

async function main() {
  const job = JSON.parse(fs.readFileSync(0, "utf8"));
  for (const file of job.files) {
    const input = fs.readFileSync(file);
    for (const width of job.widths) {
      const wall = [];
      let out = null;
      for (let round = 0; round < job.rounds; round++) {
        const started = process.hrtime.bigint();
        out = await sharp(input)
          .rotate()
          .resize(width, null, { withoutEnlargement: true })
          .jpeg({ quality: job.quality })
          .toBuffer({ resolveWithObject: true });
        wall.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
      wall.sort((a, b) => a - b);
      console.log(JSON.stringify({
        file, width, bytes: out.data.length, out_width: out.info.width,
        wall_ms: wall[Math.floor(wall.length / 2)], version: sharp.versions.sharp,
      }));
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
