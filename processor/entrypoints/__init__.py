"""The processor Lambda's shell: the handler, the batch runner, metrics from outcomes, the
composition root (bootstrap) and its settings. Everything below it is handed in from here."""
