"""In-memory fakes of this project's own ports (processor/core/ports.py), one module per port
set: records (the read side), processor (object store, image table, CDN), engine, api
(uploads and the queue). For tests of our own code only; users meet the real adapters, which
their own tests run against moto over HTTP."""
