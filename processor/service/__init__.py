"""The processor's use cases, on ports only: apply one object event (images.py), erase a
deleted image for good (erase.py). No boto3 or pyvips: adapters and the engine are handed in."""
