"""In-memory fakes of this project's own ports, one module per port set: records (the read
side), processor (object store, image table, CDN), engine, api (uploads and the queue), deploy
(Docker behind the deploy's builder and manifest reader). For tests of our own code only: the
real adapters are tested against moto and real engines."""
