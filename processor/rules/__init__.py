"""Pure decisions: what to make of an image (plan, cost), what an event should do (decide),
which images of a batch to start (pacing), and metadata helpers. No libvips, no AWS: tested
in milliseconds."""
