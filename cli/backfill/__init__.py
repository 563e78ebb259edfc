"""`imgpipe backfill`: existing objects into the processing queue at a chosen pace.

``sources`` reads what to send (a bucket listing or an S3 Inventory report), ``estimate`` counts
it and prices it, ``feed`` sends it with a checkpoint, ``summary`` reads the outcome back from
the records, ``batch_operations`` writes an S3 Batch Operations job for the same objects.
"""
