"""Service-account tokens, CA and identity of pods running remotely (the I/O shell)."""
