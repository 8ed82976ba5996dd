"""Everything that touches the outside world: databases, Redis, FFmpeg, files, HTTP."""
